"""Audio/video pacing for a published avatar: each video frame leaves when its audio plays.

livekit's `rtc.AVSynchronizer` puts video in a short queue paced at the frame rate and audio in
the AudioSource's queue. With a generator that is faster than real time (speech arrives ahead
of playback), the video queue fills and gates the producer, so the audio queue stays nearly
empty: the audio plays ~20 ms after it is pushed, its video ~110 ms after (measured as
published, 25 fps, 100 ms queues) — the mouth trails the voice by about three frames before the
network adds its own share.

`PairedSynchronizer` keeps the same interface for the AvatarRunner but ties the two together:
the generator yields each speech frame's audio first, then its video; the audio goes to the
AudioSource (whose 100 ms queue paces the producer), and the video is handed to the VideoSource
at the moment that audio starts playing out, plus `video_delay_s`: a deliberate lag of the
video for receivers whose audio path buffers more than their video path (browsers do; the
service's AVATAR_VIDEO_DELAY_MS, measured by browser_av_bench.py). Idle frames (video without audio)
take the next frame slot after the frames already queued, and `push` waits for that slot, so
the generator's idle frames follow the published video clock, never bunch up behind speech (an
encoder capped at the frame rate would drop bunched frames); while a delayed speech frame
waits, the last picture is repeated at the frame rate. A frame that could not leave in its
slot (the process kept off the CPU for a moment) leaves as soon as it can, up to CATCH_UP_S
late, stamped with its slot: the frames after a stall keep their spacing, so the receiver plays
them in time instead of losing them. It also reports the A/V offset as published: video handed
over minus its audio's start, per speech frame (so the delay included).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from livekit import rtc

STALL_S = 0.1  # a gap between two published frames a viewer sees as a freeze
CATCH_UP_S = 0.2  # how far behind its slot an idle frame may still be sent (and stamped) in it


class PairedSynchronizer:
    """Drop-in for `rtc.AVSynchronizer` as the AvatarRunner uses it (push, clear_queue, aclose)."""

    def __init__(
        self,
        *,
        audio_source: rtc.AudioSource,
        video_source: rtc.VideoSource,
        video_fps: float,
        video_delay_s: float = 0.0,
        # (wall time it was pushed, monotonic time it starts playing) per audio frame
        on_audio_queued: Callable[[float, float], None] | None = None,
    ) -> None:
        self._audio_source = audio_source
        self._video_source = video_source
        self._video_fps = video_fps
        self._video_delay_s = video_delay_s
        self._on_audio_queued = on_audio_queued
        self._interval = 1.0 / video_fps
        self._audio_start: float | None = None  # of the audio just pushed, for its video
        self._last_due = 0.0  # when the last queued video frame goes out
        # not bounded: the AudioSource's queue paces the producer, so only the few frames whose
        # audio is queued wait here
        self._video_q: asyncio.Queue[tuple[rtc.VideoFrame, float, bool]] = asyncio.Queue()
        self._sent: deque[float] = deque(maxlen=max(2, int(video_fps)))  # when, monotonic
        self._sent_due: float | None = None  # the slot of the frame published last
        # frames are stamped on the wall clock, as the SDK stamps unstamped ones
        self._clock_s = time.time() - time.monotonic()
        self.offsets_ms: deque[float] = deque(maxlen=1000)
        # frames handed to the room more than STALL_S after the one before, and the frame slots
        # skipped in all gaps: the service's own share of what a viewer sees as dropped frames
        self.stalls = 0
        self.slots_missed = 0
        self.frames_published = 0  # handed to the VideoSource (WebRTC may still drop some)
        self._task = asyncio.create_task(self._capture_video(), name="avatar-video-pacing")

    async def push(self, frame: rtc.VideoFrame | rtc.AudioFrame, timestamp: float | None = None):
        if isinstance(frame, rtc.AudioFrame):
            pushed_at = time.time()
            await self._audio_source.capture_frame(frame)
            # it plays once what was queued before it has played
            queued = self._audio_source.queued_duration
            self._audio_start = time.monotonic() + max(0.0, queued - frame.duration)
            if self._on_audio_queued is not None:
                self._on_audio_queued(pushed_at, self._audio_start)
            return
        now = time.monotonic()
        if self._audio_start is not None:  # the video of the audio just pushed
            # at least half a slot after the frame before (an idle one may have just left)
            due = max(self._audio_start + self._video_delay_s, self._last_due + self._interval / 2)
            speech = True
            self._audio_start = None
        else:  # an idle frame: the next slot, waited for here so the producer keeps the pace
            due, speech = self._slot_after(self._last_due, now), False
            if due - now > 0.002:
                await asyncio.sleep(due - now)
        self._last_due = due
        self._video_q.put_nowait((frame, due, speech))

    def _slot_after(self, due: float, now: float) -> float:
        """The frame slot after `due`: kept when up to CATCH_UP_S behind (the frame goes out at
        once, stamped with its slot), else now, the missed slots given up."""
        slot = due + self._interval
        return slot if slot >= now - CATCH_UP_S else now

    async def _capture_video(self) -> None:
        last: rtc.VideoFrame | None = None
        while True:
            frame, due, speech = await self._video_q.get()
            # a delayed speech frame after idle ones: hold the last picture at the frame rate
            # meanwhile (a ~100 ms gap in the video would show as a freeze before each phrase)
            while (
                last is not None
                and self._sent_due is not None
                and due - self._sent_due > 1.5 * self._interval
            ):
                await self._publish(last, self._slot_after(self._sent_due, time.monotonic()))
            last = frame
            await self._publish(frame, due)
            if speech:
                self.offsets_ms.append((self._sent[-1] - (due - self._video_delay_s)) * 1000)

    async def _publish(self, frame: rtc.VideoFrame, due: float) -> None:
        """Hand `frame` to the room at `due`, or at once when that has passed; stamped `due`, so
        frames that leave late after a stall keep their spacing: the receiver's jitter buffer
        plays them in time, and WebRTC's frame-rate limit does not drop them as a burst."""
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._video_source.capture_frame(frame, timestamp_us=round((due + self._clock_s) * 1e6))
        self._mark_sent(due, time.monotonic())

    def _mark_sent(self, due: float, now: float) -> None:
        self.frames_published += 1
        if self._sent:
            self.stalls += int(now - self._sent[-1] > STALL_S)
        if self._sent_due is not None:
            # every slot with no frame, also in the gaps too short to see as a freeze
            self.slots_missed += max(0, round((due - self._sent_due) / self._interval) - 1)
        self._sent.append(now)
        self._sent_due = due

    async def clear_queue(self) -> None:
        """Drop the queued audio and the video waiting for it."""
        self._audio_source.clear_queue()
        self._audio_start = None
        self._last_due = min(self._last_due, time.monotonic())
        while not self._video_q.empty():
            self._video_q.get_nowait()

    async def wait_for_playout(self) -> None:
        await self._audio_source.wait_for_playout()

    def reset(self) -> None:
        self._sent.clear()
        self._sent_due = None

    async def aclose(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    @property
    def actual_fps(self) -> float:
        if len(self._sent) < 2 or self._sent[-1] == self._sent[0]:
            return 0.0
        return (len(self._sent) - 1) / (self._sent[-1] - self._sent[0])

    def offset_summary(self) -> dict[str, float]:
        """A/V offset as published over the last speech frames, ms (positive: video late)."""
        offsets = sorted(self.offsets_ms)
        if not offsets:
            return {}
        n = len(offsets)
        return {
            "median": round(offsets[n // 2], 1),
            "p10": round(offsets[n // 10], 1),
            "p90": round(offsets[n * 9 // 10], 1),
            "frames": n,
        }
