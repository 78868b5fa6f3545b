"""`VideoGenerator` for livekit-agents' AvatarRunner: audio in, paired video + audio frames out.

Per session: a MouthAnalyzer, a FaceAnimator and a small queue; the renderer (FrameComposer) is
shared by every session of the avatar. Incoming audio is converted to the session's output
format, re-chunked to one video frame's duration, and every chunk leaves together with the video
frame whose mouth it drives (audio first, then its video: the session's PairedSynchronizer
hands the video to the room when that audio plays, sync.py). `AudioSegmentEnd` is echoed after
the segment's last chunk. Without audio the iterator yields idle video frames; real-time pacing
is the runner's synchronizer (its AudioSource queue and its video slots block this iterator).

Pause (the project's avatar protocol extension, see protocol.py) holds the queue: idle frames
only, the mouth resting, until resume; the pairs the room had queued but not yet played can be
put back in front (`rewind`) so playback goes on where the listener stopped hearing it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
from livekit import rtc
from livekit.agents.voice.avatar import AudioSegmentEnd, VideoGenerator

from .animation import AnimationOptions, FaceAnimator
from .engine import FrameComposer
from .lipsync import MouthAnalyzer, MouthPredictor, MouthShape, get_predictor
from .sync import CATCH_UP_S

logger = logging.getLogger("avatar_worker.generator")


@dataclass(frozen=True)
class GeneratorOptions:
    fps: float = 25.0
    sample_rate: int = 24000  # the output audio, as the AvatarRunner's AudioSource takes it
    num_channels: int = 1
    # Idle frames follow the wall clock (one per frame interval); without pacing, an idle frame
    # comes whenever no audio arrived within idle_wait_s (tests, offline use).
    pace_idle: bool = True
    idle_wait_s: float = 0.02


@dataclass(frozen=True, slots=True)
class _Pair:
    shape: MouthShape
    audio: rtc.AudioFrame
    ready_at: float


class LipSyncVideoGenerator(VideoGenerator):
    """One avatar session's lip-sync stream."""

    REWIND_LIMIT = 8  # pairs remembered for a rewind: more than the room's 100 ms audio queue

    def __init__(
        self,
        composer: FrameComposer,
        options: GeneratorOptions | None = None,
        *,
        predictor: MouthPredictor | None = None,
        animation: AnimationOptions | None = None,
        seed: int | None = None,
        session_id: str = "",
    ) -> None:
        self.options = options or GeneratorOptions()
        o = self.options
        if abs(o.sample_rate / o.fps - round(o.sample_rate / o.fps)) > 1e-6:
            raise ValueError(
                f"sample_rate {o.sample_rate} is not a whole number of samples per video frame at "
                f"{o.fps} fps"
            )
        self.composer = composer
        self.session_id = session_id
        self._spf = round(o.sample_rate / o.fps)  # samples per channel per video frame
        self._analyzer = MouthAnalyzer(predictor or get_predictor(), o.sample_rate, o.fps)
        self._animator = FaceAnimator(animation or AnimationOptions(fps=o.fps), seed)
        self._pcm = np.zeros((0, o.num_channels), dtype=np.int16)  # not yet paired audio
        self._shapes: deque[MouthShape] = deque()
        self._unanalyzed: list[np.ndarray] = []
        self._unanalyzed_n = 0
        self._out: deque[_Pair | AudioSegmentEnd] = deque()
        # pairs of the current segment the runner has taken, newest last (for a rewind)
        self._taken: deque[_Pair] = deque(maxlen=self.REWIND_LIMIT)
        self._paused = False
        self._wakeup = asyncio.Event()
        self._resampler: rtc.AudioResampler | None = None
        self._resampler_rate = 0
        self._in_segment = False
        self._last_frame: rtc.VideoFrame | None = None
        self.last_latency_s = 0.0
        self.frames_out = 0
        self.idle_frames_out = 0

    # ---- input ---------------------------------------------------------------------------
    async def push_audio(self, frame: rtc.AudioFrame | AudioSegmentEnd) -> None:
        try:
            if isinstance(frame, AudioSegmentEnd):
                self._end_segment()
            else:
                self._push_pcm(self._convert(frame))
        except Exception:  # one bad frame must not end the session
            logger.exception("dropping an audio frame", extra={"session": self.session_id})
        self._wakeup.set()

    def clear_buffer(self) -> None:
        """Interruption: drop queued audio and frames now; the mouth closes within 2 frames."""
        dropped = sum(isinstance(item, _Pair) for item in self._out)
        self._out.clear()
        self._taken.clear()
        self._paused = False  # a clear ends a pause: the held audio is gone
        self._shapes.clear()
        self._pcm = self._pcm[:0]
        self._unanalyzed.clear()
        self._unanalyzed_n = 0
        self._analyzer.reset()
        self._in_segment = False
        self._resampler = None
        self._animator.interrupt()
        logger.debug(
            "buffer cleared", extra={"session": self.session_id, "frames_dropped": dropped}
        )
        self._wakeup.set()

    def pause(self) -> None:
        """Hold playback: idle frames from now on, the mouth closing as on an interruption."""
        if self._paused:
            return
        self._paused = True
        self._animator.interrupt()
        self._wakeup.set()

    def rewind(self, seconds: float) -> float:
        """Put back the last `seconds` of pairs already handed out (the room dropped them
        unplayed); returns the duration put back, whole frames of the current segment only."""
        n = min(len(self._taken), round(seconds * self.options.fps))
        for _ in range(n):
            self._out.appendleft(self._taken.pop())
        return n / self.options.fps

    def resume(self) -> None:
        """Play on from the first pair not yet heard."""
        self._paused = False
        self._wakeup.set()

    @property
    def paused(self) -> bool:
        return self._paused

    def _convert(self, frame: rtc.AudioFrame) -> np.ndarray:
        """Mono-mixed, resampled to the output rate, shaped (n, output channels)."""
        o = self.options
        mono = self._mono(frame)
        if frame.sample_rate != o.sample_rate:
            if self._resampler is None or self._resampler_rate != frame.sample_rate:
                self._resampler = rtc.AudioResampler(
                    frame.sample_rate, o.sample_rate, num_channels=1
                )
                self._resampler_rate = frame.sample_rate
            out = self._resampler.push(
                rtc.AudioFrame(mono.tobytes(), frame.sample_rate, 1, mono.size)
            )
            mono = np.concatenate([self._mono(f) for f in out]) if out else mono[:0]
        return np.repeat(mono[:, None], o.num_channels, axis=1)

    @staticmethod
    def _mono(frame: rtc.AudioFrame) -> np.ndarray:
        data = np.frombuffer(frame.data, dtype=np.int16)
        if frame.num_channels == 1:
            return data
        data = data[: data.size - data.size % frame.num_channels]
        return data.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)

    def _push_pcm(self, pcm: np.ndarray) -> None:
        if pcm.size == 0:
            return
        if not self._in_segment:
            self._in_segment = True
        self._pcm = np.concatenate([self._pcm, pcm]) if self._pcm.size else pcm.copy()
        self._unanalyzed.append(pcm)
        self._unanalyzed_n += pcm.shape[0]
        # analyse once per video frame rather than per (often 10 ms) input frame: same result,
        # a fraction of the per-call overhead
        if self._analyzer.samples_in + self._unanalyzed_n >= self._analyzer.samples_needed():
            self._analyze_pending()
            self._pair(final=False)

    def _analyze_pending(self) -> None:
        if not self._unanalyzed:
            return
        pcm = np.concatenate(self._unanalyzed) if len(self._unanalyzed) > 1 else self._unanalyzed[0]
        self._unanalyzed.clear()
        self._unanalyzed_n = 0
        mono = pcm.astype(np.float32).mean(axis=1) / 32768.0
        self._shapes.extend(self._analyzer.push(mono))

    def _end_segment(self) -> None:
        if self._resampler is not None:
            tail = self._resampler.flush()
            self._resampler = None
            if tail:
                mono = np.concatenate([self._mono(f) for f in tail])
                self._push_pcm(np.repeat(mono[:, None], self.options.num_channels, axis=1))
        if self._in_segment:
            self._analyze_pending()
            self._shapes.extend(self._analyzer.flush())
            rest = self._pcm.shape[0] % self._spf
            if rest:  # pad the last chunk to a whole frame with silence
                pad = np.zeros((self._spf - rest, self.options.num_channels), dtype=np.int16)
                self._pcm = np.concatenate([self._pcm, pad])
            self._pair(final=True)
            self._analyzer.reset()
            self._shapes.clear()
            self._pcm = self._pcm[:0]
        self._in_segment = False
        self._out.append(AudioSegmentEnd())

    def _pair(self, final: bool) -> None:
        o = self.options
        now = time.perf_counter()
        while self._shapes and self._pcm.shape[0] >= self._spf:
            chunk = np.ascontiguousarray(self._pcm[: self._spf])
            self._pcm = self._pcm[self._spf :]
            audio = rtc.AudioFrame(chunk.tobytes(), o.sample_rate, o.num_channels, self._spf)
            self._out.append(_Pair(self._shapes.popleft(), audio, now))
        if final:
            while self._shapes:  # analysis frames past the audio (rounding): drop
                self._shapes.popleft()

    # ---- output --------------------------------------------------------------------------
    def __aiter__(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        return self._stream()

    async def _stream(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        interval = 1.0 / self.options.fps
        pace = self.options.pace_idle
        wait = self.options.idle_wait_s
        next_idle = time.perf_counter()
        while True:
            if not self._out or self._paused:
                timeout = max(0.0, next_idle - time.perf_counter()) if pace else wait
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout=timeout)
                except TimeoutError:
                    pass
            if not self._out or self._paused:
                now = time.perf_counter()
                if pace and now < next_idle:
                    continue  # woken without audio before the next idle frame is due
                # idle frames no faster than real time, so the runner's video queue does not
                # fill with idle frames that would hold back the first speech frame; after a
                # stall, catching up the slots the synchronizer still keeps
                next_idle = max(next_idle + interval, now - CATCH_UP_S)
                yield self.idle_frame()
                continue
            item = self._out.popleft()
            if isinstance(item, AudioSegmentEnd):
                self._taken.clear()
                yield item
                continue
            video = self._frame(item.shape)
            self.last_latency_s = time.perf_counter() - item.ready_at
            self.frames_out += 1
            yield item.audio
            yield video
            # asked for the next item: the runner has queued this pair for the room
            self._taken.append(item)
            next_idle = time.perf_counter() + interval

    def idle_frame(self) -> rtc.VideoFrame:
        """The next frame with no speech (idle life, or the mouth closing after speech)."""
        self.idle_frames_out += 1
        return self._frame(None)

    def _frame(self, shape: MouthShape | None) -> rtc.VideoFrame:
        try:
            self._last_frame = self.composer.video_frame(self._animator.next_state(shape))
        except Exception:  # never end the stream over one frame: repeat the last good one
            logger.exception("frame failed", extra={"session": self.session_id})
            if self._last_frame is None:
                raise
        return self._last_frame

    @property
    def mouth_open(self) -> float:
        return self._animator.mouth_open

    @property
    def mouth_width(self) -> float:
        return self._animator.mouth_width

    @property
    def queued_frames(self) -> int:
        return sum(isinstance(item, _Pair) for item in self._out)


def session_generator(
    avatar: str,
    options: GeneratorOptions | None = None,
    *,
    size: int = 512,
    session_id: str = "",
) -> LipSyncVideoGenerator:
    """A new session on the avatar's shared renderer (raises AvatarError for unknown avatars)."""
    from .avatars import get_composer

    return LipSyncVideoGenerator(get_composer(avatar, size), options, session_id=session_id)
