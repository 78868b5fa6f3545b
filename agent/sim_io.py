"""Audio I/O for running the real AgentSession without a LiveKit room (rehearsal, benchmark).

`SimulatedCandidateInput` is the microphone: it emits 20 ms frames in real time, silence unless
a queued answer is being "spoken". `CaptureAudioOutput` is the speaker: it plays the
interviewer's audio out in real time (so pauses and interruptions behave as in a room), can be
paused and cleared like a room's track, and records what was actually heard on a timeline.
"""

from __future__ import annotations

import asyncio
import collections
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
from livekit import rtc
from livekit.agents.voice import io

from .turn_taking import TurnTakingOptions

# the microphone delivers what the room's input does (turn_taking.room_options)
INPUT_SAMPLE_RATE = TurnTakingOptions.input_sample_rate
FRAME_MS = TurnTakingOptions.input_frame_ms
OUTPUT_SAMPLE_RATE = 24000


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    if src_rate == dst_rate or samples.size == 0:
        return samples.astype(np.int16)
    r = rtc.AudioResampler(input_rate=src_rate, output_rate=dst_rate, num_channels=1)
    frame = rtc.AudioFrame(
        data=samples.astype(np.int16).tobytes(),
        sample_rate=src_rate,
        num_channels=1,
        samples_per_channel=samples.size,
    )
    out = [*r.push(frame), *r.flush()]
    return np.concatenate([np.frombuffer(bytes(f.data), dtype=np.int16) for f in out])


class Timeline:
    """A mono int16 track addressed by wall-clock time since t0, grown on demand."""

    def __init__(self, t0: float, sample_rate: int) -> None:
        self.t0 = t0
        self.sample_rate = sample_rate
        self._buf = np.zeros(sample_rate * 60, dtype=np.int16)
        self._len = 0

    def write(self, at_wall: float, samples: np.ndarray) -> None:
        start = max(0, int((at_wall - self.t0) * self.sample_rate))
        end = start + samples.size
        if end > self._buf.size:
            grown = np.zeros(max(end, self._buf.size * 2), dtype=np.int16)
            grown[: self._buf.size] = self._buf
            self._buf = grown
        self._buf[start:end] = samples
        self._len = max(self._len, end)

    def samples(self) -> np.ndarray:
        return self._buf[: self._len]

    def save(self, path: Path, length: int | None = None) -> None:
        data = self.samples()
        if length is not None and length > data.size:
            data = np.concatenate([data, np.zeros(length - data.size, dtype=np.int16)])
        write_wav(path, data, self.sample_rate)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(samples.astype(np.int16).tobytes())


class SimulatedCandidateInput(io.AudioInput):
    """A real-time microphone that speaks queued utterances and is silent otherwise."""

    def __init__(self, timeline: Timeline) -> None:
        super().__init__(label="simulated-candidate")
        self._timeline = timeline
        self._queue: collections.deque[np.ndarray] = collections.deque()
        self._samples_per_frame = INPUT_SAMPLE_RATE * FRAME_MS // 1000
        self._next_t: float | None = None
        self._closed = False
        self._was_busy = False
        self.on_drained: Callable[[float], None] | None = None

    @property
    def busy(self) -> bool:
        return bool(self._queue)

    def say(self, pieces: list[np.ndarray]) -> None:
        """Queue int16 16 kHz pieces (speech, or zeros for a pause) to be spoken back to back."""
        self._queue.extend(p for p in pieces if p.size)

    def close(self) -> None:
        self._closed = True

    def _take(self, n: int) -> np.ndarray:
        out = np.zeros(n, dtype=np.int16)
        filled = 0
        while filled < n and self._queue:
            head = self._queue[0]
            k = min(n - filled, head.size)
            out[filled : filled + k] = head[:k]
            filled += k
            if k == head.size:
                self._queue.popleft()
            else:
                self._queue[0] = head[k:]
        return out

    async def __anext__(self) -> rtc.AudioFrame:
        if self._closed:
            raise StopAsyncIteration
        frame_s = FRAME_MS / 1000
        now = time.monotonic()
        if self._next_t is None or self._next_t < now - 0.5:
            self._next_t = now
        self._next_t += frame_s
        delay = self._next_t - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        busy_before = bool(self._queue)
        data = self._take(self._samples_per_frame)
        wall = time.time()
        self._timeline.write(wall - frame_s, data)
        if busy_before and not self._queue and self.on_drained is not None:
            self.on_drained(wall)
        return rtc.AudioFrame(
            data=data.tobytes(),
            sample_rate=INPUT_SAMPLE_RATE,
            num_channels=1,
            samples_per_channel=data.size,
        )


class CaptureAudioOutput(io.AudioOutput):
    """Plays interviewer audio in real time onto a timeline; supports pause and clear_buffer."""

    def __init__(self, timeline: Timeline) -> None:
        super().__init__(
            label="capture",
            capabilities=io.AudioOutputCapabilities(pause=True),
            sample_rate=OUTPUT_SAMPLE_RATE,
        )
        self._timeline = timeline
        self._frames: asyncio.Queue[rtc.AudioFrame | None] = asyncio.Queue()
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._task: asyncio.Task[None] | None = None
        self._segment_played = 0.0
        self._segment_started = False
        self._seg_active = False
        self._seg_flushed = False
        self._ignore_flush = False
        self.on_first_audio: Callable[[float], None] | None = None

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._task is None:
            self._task = asyncio.create_task(self._playout(), name="capture-playout")
        if not self._seg_active:
            self._seg_active, self._seg_flushed, self._ignore_flush = True, False, False
        self._frames.put_nowait(frame)

    def flush(self) -> None:
        super().flush()
        if self._ignore_flush:  # its segment already ended in clear_buffer()
            self._ignore_flush = False
            return
        self._seg_flushed = True
        self._frames.put_nowait(None)

    def clear_buffer(self) -> None:
        while not self._frames.empty():
            self._frames.get_nowait()
        if self._seg_active:
            self._ignore_flush = not self._seg_flushed
            self._finish(interrupted=True)
        self._resumed.set()

    def pause(self) -> None:
        self._resumed.clear()

    def resume(self) -> None:
        self._resumed.set()

    def _finish(self, *, interrupted: bool) -> None:
        played = self._segment_played
        self._segment_played = 0.0
        self._segment_started = False
        self._seg_active = False
        self.on_playback_finished(playback_position=played, interrupted=interrupted)

    async def _playout(self) -> None:
        cursor = time.monotonic()
        while True:
            item = await self._frames.get()
            if item is None:
                if self._seg_active:
                    self._finish(interrupted=False)
                continue
            await self._resumed.wait()
            if not self._seg_active:  # cleared while paused
                continue
            now = time.monotonic()
            cursor = max(cursor, now)
            if not self._segment_started:
                self._segment_started = True
                wall = time.time()
                self.on_playback_started(created_at=wall)
                if self.on_first_audio is not None:
                    self.on_first_audio(wall)
            samples = np.frombuffer(bytes(item.data), dtype=np.int16)
            self._timeline.write(time.time() + (cursor - now), samples)
            cursor += item.duration
            self._segment_played += item.duration
            delay = cursor - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
