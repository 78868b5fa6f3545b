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


async def test_synchronizer_counts_the_frames_a_stalled_loop_did_not_publish() -> None:
    """A loop blocked for 250 ms publishes no frame meanwhile: one stall of ~5 skipped slots,
    the service's own share of what a viewer sees as dropped frames."""
    source = rtc.AudioSource(RATE, 1, queue_size_ms=100)
    sync = PairedSynchronizer(
        audio_source=source, video_source=rtc.VideoSource(64, 64), video_fps=25
    )
    picture = rtc.VideoFrame(64, 64, rtc.VideoBufferType.RGBA, bytes(64 * 64 * 4))
    try:
        for _ in range(5):  # idle frames at the frame rate
            await sync.push(picture)
        await asyncio.sleep(0.05)
        before = (sync.stalls, sync.slots_missed)
        time.sleep(0.25)  # noqa: ASYNC251 - the stall under test: the event loop does not run
        for _ in range(3):
            await sync.push(picture)
        await asyncio.sleep(0.05)
    finally:
        await sync.aclose()
        await source.aclose()
    assert sync.stalls - before[0] >= 1
    assert sync.slots_missed - before[1] >= 4, (before, sync.slots_missed)
