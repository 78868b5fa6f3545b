"""Per-session face animation: idle life (blinks, breathing, sway) and speech transitions.

Cheap by design (a few floats per session): it turns the analysis' mouth shape for each video
frame, or None when there is no speech, into a `FaceState` the shared composer can draw.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from .engine import EYE_LEVELS, FaceState, Pose, mouth_index
from .lipsync import MouthShape


@dataclass(frozen=True)
class AnimationOptions:
    fps: float = 25.0
    blink_interval_s: tuple[float, float] = (2.2, 6.5)  # people blink every 2-10 s
    blink_duration_s: float = 0.22
    double_blink_chance: float = 0.15
    breath_period_s: float = 4.5
    sway_px: float = 2.4
    nod_px: float = 1.4
    speech_fade_frames: int = 8  # speaking fades in from idle over this many frames
    speech_fade_floor: float = 0.35  # first speaking frame shows this share of the mouth motion
    close_frames: int = 2  # mouth closes within this many frames after speech stops


class FaceAnimator:
    def __init__(self, options: AnimationOptions | None = None, seed: int | None = None) -> None:
        self.options = options or AnimationOptions()
        self._rng = random.Random(seed)
        rng = self._rng
        self._phases = [rng.uniform(0, 2 * math.pi) for _ in range(4)]
        self._freqs = [rng.uniform(0.09, 0.13), rng.uniform(0.045, 0.07), rng.uniform(0.07, 0.1)]
        self.frame = 0
        self._next_blink = self._blink_gap()
        self._blink_start = -1000
        self._speaking_frames = 0
        self._open = 0.0
        self._width = 0.0
        self._closing_from = 0.0
        self._closing_left = 0
        self.last_shape = MouthShape.closed()

    def _blink_gap(self) -> int:
        lo, hi = self.options.blink_interval_s
        return self.frame + max(2, round(self._rng.uniform(lo, hi) * self.options.fps))

    def interrupt(self) -> None:
        """Interruption: the mouth closes within `close_frames` frames from now."""
        self._speaking_frames = 0
        self._start_closing()

    def _start_closing(self) -> None:
        if self._open > 0.0 and self._closing_left == 0:
            self._closing_from = self._open
            self._closing_left = self.options.close_frames

    def _eyes(self) -> int:
        o = self.options
        if self.frame >= self._next_blink:
            self._blink_start = self.frame
            double = self._rng.random() < o.double_blink_chance
            gap = round(o.blink_duration_s * o.fps * 1.6) if double else 0
            self._next_blink = self._blink_gap() if not double else self.frame + gap
        t = (self.frame - self._blink_start) / o.fps / o.blink_duration_s
        if not 0.0 <= t < 1.0:
            return 0
        closure = 1.0 - abs(2.0 * t - 0.6) / (1.4 if t > 0.3 else 0.6)  # fast close, slower open
        return max(0, min(EYE_LEVELS - 1, round(closure * (EYE_LEVELS - 1))))

    def _pose(self) -> Pose:
        o = self.options
        t = self.frame / o.fps
        p, f = self._phases, self._freqs
        energy = 1.25 if self._speaking_frames else 1.0  # a little livelier while talking
        dx = (
            o.sway_px
            * energy
            * (
                0.65 * math.sin(2 * math.pi * f[0] * t + p[0])
                + 0.35 * math.sin(2 * math.pi * f[1] * t + p[1])
            )
        )
        dy = o.nod_px * energy * math.sin(2 * math.pi * f[2] * t + p[2])
        if self._speaking_frames and self._open > 0.6:
            dy += 0.6  # emphasis: the head dips slightly on open vowels
        body = 1.0 + math.sin(2 * math.pi * t / o.breath_period_s + p[3])
        return Pose(
            max(-3, min(3, round(dx))), max(-2, min(2, round(dy))), max(0, min(2, round(body)))
        )

    def next_state(self, shape: MouthShape | None) -> FaceState:
        """The next frame's state; `shape` is the analysed mouth, None when not speaking."""
        o = self.options
        if shape is not None:
            self._closing_left = 0
            self._speaking_frames += 1
            k = min(1.0, (self._speaking_frames - 1) / max(1, o.speech_fade_frames - 1))
            gain = o.speech_fade_floor + (1.0 - o.speech_fade_floor) * (k * k * (3 - 2 * k))
            self._open = shape.open * gain
            self._width = shape.width * gain
            self.last_shape = shape
        else:
            if self._speaking_frames:
                self._speaking_frames = 0
                self._start_closing()
            if self._closing_left > 0:
                self._closing_left -= 1
                self._open = self._closing_from * self._closing_left / (o.close_frames + 1)
            else:
                self._open = 0.0
            self._width *= 0.5
            self.last_shape = MouthShape.closed()
        state = FaceState(self._pose(), mouth_index(self._open, self._width), self._eyes())
        self.frame += 1
        return state

    @property
    def mouth_open(self) -> float:
        """The openness actually drawn in the last frame."""
        return self._open

    @property
    def mouth_width(self) -> float:
        """The width (-1 rounded .. +1 spread) drawn in the last frame."""
        return self._width
