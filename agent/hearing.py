"""How late the interviewer hears the candidate: the receive buffer in front of its ears.

The candidate's voice waits in the interviewer's WebRTC receive (jitter) buffer before the VAD,
the STT and the barge-in controller see it, so every barge-in and every reply comes that much
later. The buffer follows how unevenly the audio arrives: on a quiet host it held 55-190 ms in
an interview's first seconds and 30-50 ms once it settled, but when arrival stalled on an
overloaded host (three whole interviews on two cores, `python -m avatar_worker.room_bench
--interviews 3`) it swelled to 3 s within 15 s and then drained by only 30-60 ms per second.
Nothing in the agent can shrink it; it can be seen, which tells an operator that a slow
interviewer is a host or network problem.

`HearingMonitor` reads the buffer from the candidate's subscribed microphone track every
`interval_s` (the receive statistics' jitter-buffer delay per emitted sample over the interval,
W3C `jitterBufferDelay / jitterBufferEmittedCount`), logs when it passes `warn_ms` and when it is
back under, keeps the agent's participant attribute `interview.hearing_ms` current (the room
benchmark reads it; the web client tells the candidate from 800 ms on) and logs a summary when
the interview ends.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from livekit import rtc

logger = logging.getLogger("interview.hearing")

HEARING_ATTRIBUTE = "interview.hearing_ms"  # on the agent: the candidate's audio waits this long


@dataclass(frozen=True)
class HearingOptions:
    interval_s: float = 2.0
    warn_ms: float = 300.0  # the barge-in target is 300 ms end to end


@dataclass
class HearingDelay:
    """Receive-buffer delays sampled over an interview, milliseconds."""

    samples_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float | int | None]:
        s = sorted(self.samples_ms)
        if not s:
            return {"samples": 0, "median_ms": None, "p90_ms": None, "max_ms": None}
        return {
            "samples": len(s),
            "median_ms": round(statistics.median(s)),
            "p90_ms": round(s[min(len(s) - 1, int(0.9 * len(s)))]),
            "max_ms": round(s[-1]),
        }


def buffered_delay(stats: list[rtc.stats.RtcStats]) -> tuple[float, int] | None:
    """(cumulative jitter-buffer delay in seconds, samples emitted) of a track's inbound RTP."""
    for s in stats:
        if s.WhichOneof("stats") == "inbound_rtp":
            inbound = s.inbound_rtp.inbound
            return inbound.jitter_buffer_delay, inbound.jitter_buffer_emitted_count
    return None


class HearingMonitor:
    """Samples how long the candidate's audio waits in the interviewer's receive buffer."""

    def __init__(
        self,
        room: rtc.Room,
        candidate: Callable[[], rtc.RemoteParticipant | None],
        options: HearingOptions | None = None,
        *,
        log_extra: dict[str, object] | None = None,
    ) -> None:
        self._room = room
        self._candidate = candidate
        self.options = options or HearingOptions()
        self._log = dict(log_extra or {})
        self.delay = HearingDelay()
        self._prior: tuple[str, float, int] | None = None  # track sid, delay s, samples
        self._late = False
        self._published = ""

    def _microphone(self) -> rtc.RemoteTrack | None:
        p = self._candidate()
        if p is None:
            return None
        for pub in p.track_publications.values():
            if pub.source == rtc.TrackSource.SOURCE_MICROPHONE and pub.track is not None:
                return pub.track
        return None

    async def sample(self) -> float | None:
        """The buffer's mean delay (ms) since the previous sample of the same track, if any."""
        track = self._microphone()
        if track is None:
            self._prior = None
            return None
        now = buffered_delay(await track.get_stats())
        if now is None:
            return None
        prior, self._prior = self._prior, (track.sid, *now)
        if prior is None or prior[0] != track.sid or now[1] <= prior[2]:
            return None  # a new track (resubscribed), or no audio played out meanwhile
        ms = 1000.0 * (now[0] - prior[1]) / (now[1] - prior[2])
        self.delay.samples_ms.append(ms)
        return ms

    async def _report(self, ms: float) -> None:
        extra = {**self._log, "hearing_ms": round(ms)}
        if ms >= self.options.warn_ms and not self._late:
            self._late = True
            logger.warning("the interviewer hears the candidate late (receive buffer)", extra=extra)
        elif ms < self.options.warn_ms and self._late:
            self._late = False
            logger.info("the interviewer hears the candidate in time again", extra=extra)
        value = str(round(ms))
        if value != self._published and self._room.isconnected():
            self._published = value
            await self._room.local_participant.set_attributes({HEARING_ATTRIBUTE: value})

    async def run(self) -> None:
        """Sample until cancelled; a failed sample is logged and the next one tried."""
        try:
            while True:
                await asyncio.sleep(self.options.interval_s)
                try:
                    ms = await self.sample()
                    if ms is not None:
                        await self._report(ms)
                except Exception as e:  # a diagnostic: never ends the interview
                    logger.warning(
                        "could not read or report the receive buffer",
                        extra={**self._log, "error": str(e)},
                    )
        finally:
            logger.info(
                "how late the interviewer heard the candidate",
                extra={**self._log, **self.delay.summary()},
            )
