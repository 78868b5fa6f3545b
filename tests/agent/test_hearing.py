"""The interviewer's receive-buffer monitor (agent/hearing.py) on stand-in room objects."""

from __future__ import annotations

import asyncio
import logging

import pytest
from livekit import rtc

from agent.hearing import (
    HEARING_ATTRIBUTE,
    HearingDelay,
    HearingMonitor,
    HearingOptions,
    buffered_delay,
)


def inbound(delay_s: float, emitted: int) -> rtc.stats.RtcStats:
    s = rtc.stats.RtcStats()
    s.inbound_rtp.inbound.jitter_buffer_delay = delay_s
    s.inbound_rtp.inbound.jitter_buffer_emitted_count = emitted
    return s


class StandInTrack:
    def __init__(self, sid: str, samples: list[tuple[float, int]]) -> None:
        self.sid = sid
        self._samples = list(samples)

    async def get_stats(self) -> list[rtc.stats.RtcStats]:
        other = rtc.stats.RtcStats()
        other.codec.rtc.id = "codec"  # statistics of other kinds come along
        return [other, inbound(*self._samples.pop(0))]


class StandInPublication:
    def __init__(self, track: StandInTrack | None, source: int) -> None:
        self.track = track
        self.source = source


class StandInParticipant:
    def __init__(self, *pubs: StandInPublication) -> None:
        self.track_publications = {str(i): p for i, p in enumerate(pubs)}


class StandInLocal:
    def __init__(self) -> None:
        self.published: list[dict[str, str]] = []

    async def set_attributes(self, attributes: dict[str, str]) -> None:
        self.published.append(attributes)


class StandInRoom:
    def __init__(self) -> None:
        self.local_participant = StandInLocal()

    def isconnected(self) -> bool:
        return True


MIC = rtc.TrackSource.SOURCE_MICROPHONE


def monitor_for(*tracks: StandInTrack) -> tuple[HearingMonitor, StandInRoom, list]:
    room = StandInRoom()
    current: list = [StandInParticipant(StandInPublication(tracks[0], MIC))]
    m = HearingMonitor(room, lambda: current[0], HearingOptions(interval_s=0.01, warn_ms=300))
    return m, room, current


def test_buffered_delay_reads_the_inbound_rtp_statistics():
    assert buffered_delay([inbound(1.5, 48000)]) == (1.5, 48000)
    assert buffered_delay([]) is None


async def test_the_delay_is_the_buffer_per_sample_between_two_samples():
    # 0.1 s per sample over the first 48000, then 96000 samples that waited 48 s: 0.5 s each
    track = StandInTrack("TR_a", [(4800.0, 48000), (4800.0 + 48000.0, 48000 + 96000)])
    m, _room, _ = monitor_for(track)
    assert await m.sample() is None  # the first reading only sets the baseline
    assert await m.sample() == pytest.approx(500.0)
    assert m.delay.samples_ms == [pytest.approx(500.0)]


async def test_a_new_track_starts_a_new_baseline_and_no_track_gives_nothing():
    m, _room, current = monitor_for(StandInTrack("TR_a", [(1.0, 100), (2.0, 200)]))
    assert await m.sample() is None
    current[0] = StandInParticipant(StandInPublication(StandInTrack("TR_b", [(9.0, 10)]), MIC))
    assert await m.sample() is None  # TR_b's counters are not comparable with TR_a's
    current[0] = StandInParticipant(
        StandInPublication(StandInTrack("TR_cam", []), rtc.TrackSource.SOURCE_CAMERA),
        StandInPublication(None, MIC),  # published, not subscribed
    )
    assert await m.sample() is None
    current[0] = None
    assert await m.sample() is None
    assert m.delay.samples_ms == []


async def test_late_hearing_is_logged_once_then_its_recovery_and_the_attribute_follows(caplog):
    m, room, _ = monitor_for(StandInTrack("TR_a", []))
    with caplog.at_level(logging.INFO, logger="interview.hearing"):
        for ms in (120.4, 120.2, 650.0, 900.0, 180.0):
            await m._report(ms)
    late = [r for r in caplog.records if "hears the candidate late" in r.getMessage()]
    again = [r for r in caplog.records if "in time again" in r.getMessage()]
    assert len(late) == 1 and late[0].levelno == logging.WARNING
    assert late[0].hearing_ms == 650
    assert len(again) == 1
    # the same rounded value is not published twice
    assert room.local_participant.published == [
        {HEARING_ATTRIBUTE: v} for v in ("120", "650", "900", "180")
    ]


async def test_run_samples_until_cancelled_then_logs_a_summary(caplog):
    track = StandInTrack("TR_a", [(0.0, 0)] + [(100.0 * k, 1000 * k) for k in range(1, 200)])
    m, room, _ = monitor_for(track)
    three = asyncio.Event()
    sample = m.sample

    async def counted() -> float | None:
        ms = await sample()
        if len(m.delay.samples_ms) >= 3:
            three.set()
        return ms

    m.sample = counted  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, logger="interview.hearing"):
        task = asyncio.create_task(m.run())
        await asyncio.wait_for(three.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert all(ms == pytest.approx(100.0) for ms in m.delay.samples_ms)
    assert room.local_participant.published[0] == {HEARING_ATTRIBUTE: "100"}
    (summary,) = [r for r in caplog.records if "how late" in r.getMessage()]
    assert summary.median_ms == 100 and summary.samples == len(m.delay.samples_ms)


async def test_a_failing_statistics_call_does_not_end_the_monitor(caplog):
    class Broken(StandInTrack):
        async def get_stats(self):
            raise RuntimeError("engine closed")

    m, _room, _ = monitor_for(Broken("TR_a", []))
    with caplog.at_level(logging.WARNING, logger="interview.hearing"):
        task = asyncio.create_task(m.run())
        await asyncio.sleep(0.05)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert any("could not read" in r.getMessage() for r in caplog.records)


def test_summary_of_no_samples_and_of_some():
    assert HearingDelay().summary()["median_ms"] is None
    s = HearingDelay([50.0, 60.0, 70.0, 3000.0]).summary()
    assert s == {"samples": 4, "median_ms": 65, "p90_ms": 3000, "max_ms": 3000}
