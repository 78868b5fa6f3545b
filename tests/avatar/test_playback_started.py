"""`lk.playback_started` leaves when the reply's first audio starts playing into the room."""

from __future__ import annotations

import asyncio
import time

import numpy as np
from livekit import rtc
from livekit.agents.utils.aio.channel import ChanEmpty
from livekit.agents.voice.io import PlaybackFinishedEvent

from avatar_worker.session import PatientAudioReceiver
from avatar_worker.sync import PairedSynchronizer

RATE = 24000


def _frame(seconds: float) -> rtc.AudioFrame:
    n = int(seconds * RATE)
    return rtc.AudioFrame(np.zeros(n, np.int16).tobytes(), RATE, 1, n)


def _sent(receiver: PatientAudioReceiver) -> list[str]:
    out = []
    while True:
        try:
            ev = receiver._rpc_send_ch.recv_nowait()
        except ChanEmpty:
            return out
        out.append("finished" if isinstance(ev, PlaybackFinishedEvent) else "started")


async def test_synchronizer_reports_when_each_frame_starts_playing() -> None:
    source = rtc.AudioSource(RATE, 1, queue_size_ms=100)
    plays: list[float] = []
    sync = PairedSynchronizer(
        audio_source=source,
        video_source=rtc.VideoSource(64, 64),
        video_fps=25,
        on_audio_queued=lambda _pushed, plays_at: plays.append(plays_at - time.monotonic()),
    )
    try:
        for _ in range(3):
            await sync.push(_frame(0.04))
    finally:
        await sync.aclose()
        await source.aclose()
    # an empty queue plays the first frame now; the next ones wait for those before them
    assert abs(plays[0]) < 0.01
    assert 0.02 < plays[2] - plays[0] < 0.1, plays


async def test_started_waits_for_the_audio_to_play_and_precedes_a_finish() -> None:
    receiver = PatientAudioReceiver(None)  # type: ignore[arg-type]  # no room: nothing is sent
    receiver.audio_plays_at = lambda: time.monotonic() + 0.15
    receiver.notify_playback_started()
    assert _sent(receiver) == []
    await asyncio.sleep(0.2)
    assert _sent(receiver) == ["started"]

    receiver.notify_playback_started()
    receiver.notify_playback_finished(playback_position=0.0, interrupted=True)
    assert _sent(receiver) == ["started", "finished"]
    await asyncio.sleep(0.2)
    assert _sent(receiver) == []  # not sent twice

    receiver.audio_plays_at = time.monotonic  # already playing: at once
    receiver.notify_playback_started()
    assert _sent(receiver) == ["started"]


class _StampRecorder:
    """A VideoSource double: the timestamp each frame was handed over with."""

    def __init__(self) -> None:
        self.stamps_us: list[int] = []

    def capture_frame(self, frame: rtc.VideoFrame, *, timestamp_us: int = 0) -> None:
        self.stamps_us.append(timestamp_us)


async def test_frames_late_after_a_short_stall_keep_their_slots() -> None:
    """A loop kept off the CPU for 120 ms still publishes the frames of those slots, at once and
    stamped 40 ms apart, so the receiver plays them in time; a longer stall gives the slots up,
    counted as the service's own share of what a viewer sees as dropped frames."""
    source = rtc.AudioSource(RATE, 1, queue_size_ms=100)
    video = _StampRecorder()
    sync = PairedSynchronizer(
        audio_source=source,
        video_source=video,  # type: ignore[arg-type]
        video_fps=25,
    )
    picture = rtc.VideoFrame(64, 64, rtc.VideoBufferType.RGBA, bytes(64 * 64 * 4))
    try:
        for _ in range(5):  # idle frames at the frame rate
            await sync.push(picture)
        await asyncio.sleep(0.05)
        short = len(video.stamps_us)
        time.sleep(0.12)  # noqa: ASYNC251 - the stall under test: the event loop does not run
        for _ in range(6):
            await sync.push(picture)
        await asyncio.sleep(0.05)
        missed_after_short = sync.slots_missed
        long = len(video.stamps_us)
        time.sleep(0.5)  # noqa: ASYNC251
        for _ in range(3):
            await sync.push(picture)
        await asyncio.sleep(0.05)
    finally:
        await sync.aclose()
        await source.aclose()
    gaps_ms = np.diff(video.stamps_us[short - 1 : long]) / 1000
    assert np.allclose(gaps_ms, 40, atol=1), gaps_ms
    assert missed_after_short == 0
    assert sync.slots_missed >= 6, sync.slots_missed  # 500 ms: 12 slots, 5 of them kept
    assert sync.stalls >= 1
