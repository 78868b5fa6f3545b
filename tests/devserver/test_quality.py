"""Connection quality: scoring of observed links, and updates reaching the Python SDK."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace

import pytest
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import RtpPacket
from livekit import rtc
from livekit.protocol import models

from devserver import media_forward
from devserver.media_forward import TrackSource
from devserver.quality import LinkObservation, LinkSample, assess

Q = models.ConnectionQuality
TIMEOUT = 15


def test_clean_link_is_excellent_and_loss_degrades_it() -> None:
    assert assess(LinkObservation(connected=True))[0] == Q.EXCELLENT  # nothing measured yet
    assert assess(LinkObservation(True, (LinkSample(loss=0.0, jitter_ms=5),)))[0] == Q.EXCELLENT
    assert assess(LinkObservation(True, (LinkSample(loss=0.05),)))[0] == Q.GOOD
    assert assess(LinkObservation(True, (LinkSample(loss=0.12),)))[0] == Q.POOR
    # high delay alone (900 ms round trip) also counts
    assert assess(LinkObservation(True, (LinkSample(loss=0.0, rtt_ms=900),)))[0] == Q.POOR


def test_worst_stream_decides_and_lost_links_score_zero() -> None:
    good, poor = LinkSample(loss=0.0), LinkSample(loss=0.2)
    quality, score = assess(LinkObservation(True, (good, poor)))
    assert quality == Q.POOR and 1.0 < score < 3.6
    assert assess(LinkObservation(True, (good, LinkSample(loss=1.0, silent=True)))) == (
        Q.LOST,
        0.0,
    )
    assert assess(LinkObservation(connected=False, samples=(good,))) == (Q.LOST, 0.0)


class _Receiver:
    """What TrackSource reads of aiortc's RTCRtpReceiver: its per-SSRC statistics."""

    def __init__(self) -> None:
        self._RTCRtpReceiver__remote_streams: dict[int, StreamStatistics] = {}


def _feed(source: TrackSource, receiver: _Receiver, seqs: range | list[int]) -> None:
    streams = receiver._RTCRtpReceiver__remote_streams
    for seq in seqs:
        packet = RtpPacket(payload_type=111, sequence_number=seq, timestamp=seq * 960, ssrc=7)
        packet.payload = b"\x01"
        streams.setdefault(7, StreamStatistics(48000)).add(packet)
        source.on_rtp(packet)


def test_track_window_counts_sequence_gaps_stalls_and_silence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    fake_time = SimpleNamespace(monotonic=lambda: clock[0], perf_counter=time.perf_counter)
    monkeypatch.setattr(media_forward, "time", fake_time)
    receiver = _Receiver()
    source = TrackSource("audio", "audio/opus", receiver)  # type: ignore[arg-type]

    _feed(source, receiver, [n for n in range(100) if n % 10 != 5])  # 10 % of packets missing
    clock[0] += 0.5  # a pause shorter than a stall
    _feed(source, receiver, [100])
    window = source.take_window()
    assert abs(window.loss - 10 / 101) < 0.01 and not window.silent

    clock[0] += 1.0
    _feed(source, receiver, range(101, 150))
    clock[0] += 2.0  # then nothing for 2 of the window's 3 s
    window = source.take_window()
    assert abs(window.loss - 2 / 3) < 0.01 and not window.silent

    clock[0] += 3.0
    window = source.take_window()
    assert window.silent and window.loss == 1.0


# -- with the SDK on the dev server ------------------------------------------------------------


# A publisher in its own process, so the test can freeze it (SIGSTOP) like a dead network: the
# SDK keeps sending silence when the application stops capturing, so only a frozen client stops.
_PUBLISHER = """
import asyncio, sys
import numpy as np
from livekit import rtc

async def main():
    room = rtc.Room()
    await room.connect(sys.argv[1], sys.argv[2])
    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("tone", source)
    await room.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(480) / 48000)
    frame = rtc.AudioFrame((tone * 32767).astype(np.int16).tobytes(), 48000, 1, 480)
    print("published", flush=True)
    while True:
        await source.capture_frame(frame)

asyncio.run(main())
"""


@asynccontextmanager
async def _publisher(server, identity: str, room: str) -> AsyncIterator[int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _PUBLISHER,
        server.url,
        server.token(identity, room),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
        assert line.strip() == b"published"
        yield proc.pid
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        await proc.wait()


class QualityLog:
    """Every connection quality `lk_room` is told of, from its creation: livekit-server sends one
    to a new participant and then only changes, so none may be missed."""

    def __init__(self, lk_room: rtc.Room) -> None:
        self.seen: list[tuple[str, int]] = []
        lk_room.on("connection_quality_changed", lambda p, q: self.seen.append((p.identity, q)))

    async def until(self, identity: str, wanted: set[int], *, after: int = 0) -> int:
        """The first quality of `identity` in `wanted` told since entry `after`."""
        async with asyncio.timeout(TIMEOUT):
            while True:  # polled: the SDK appends to `seen`
                for who, quality in self.seen[after:]:
                    if who == identity and quality in wanted:
                        return quality
                await asyncio.sleep(0.1)


@pytest.mark.integration
async def test_participants_learn_qualities_and_a_frozen_publisher_is_lost(
    livekit_server,
) -> None:
    room = f"test-{uuid.uuid4().hex[:8]}"
    good = {rtc.ConnectionQuality.QUALITY_EXCELLENT, rtc.ConnectionQuality.QUALITY_GOOD}
    bob = rtc.Room()
    qualities = QualityLog(bob)
    await livekit_server.create_room(room)  # livekit.yaml: auto_create false
    await bob.connect(livekit_server.url, livekit_server.token("bob", room))
    try:
        async with _publisher(livekit_server, "alice", room) as alice_pid:
            started = time.monotonic()
            # bob hears about the publisher and about himself within seconds
            assert await qualities.until("alice", good) in good
            assert await qualities.until("bob", good) in good
            assert time.monotonic() - started < 10

            os.kill(alice_pid, signal.SIGSTOP)  # no RTP, no pings: a dead network
            frozen = len(qualities.seen)
            lost = await qualities.until(
                "alice", {rtc.ConnectionQuality.QUALITY_LOST}, after=frozen
            )
            assert lost == rtc.ConnectionQuality.QUALITY_LOST
            os.kill(alice_pid, signal.SIGCONT)
            thawed = len(qualities.seen)
            assert await qualities.until("alice", good, after=thawed) in good
    finally:
        await bob.disconnect()
