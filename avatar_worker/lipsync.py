"""Streaming audio -> mouth shape analysis, one value per video frame, <= 40 ms lookahead.

A small MLP (numpy inference, weights in models/lipsync/mouth_mlp.npz, trained on espeak-ng
speech in several voices by `python -m avatar_worker.training`) reads 17 hops of log-mel
features (140 ms of past, 20 ms of future around each 10 ms hop) and predicts the mouth openness
and a viseme class. Hand-made spectral rules are kept as a fallback and as the baseline the
model has to beat (`lipsync-eval --analyzer rules`).

The model is shared by every session; a `MouthAnalyzer` holds one stream's small state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from .audio_features import N_FEATURES, N_MELS, StreamingFeatures
from .phonemes import VISEMES, Viseme

CONTEXT_PAST = 14
CONTEXT_FUTURE = 2
CONTEXT = CONTEXT_PAST + 1 + CONTEXT_FUTURE
MODEL_PATH = Path(__file__).resolve().parent.parent / "models" / "lipsync" / "mouth_mlp.npz"
AnalyzerKind = Literal["model", "rules"]

_ROUND = np.array([1.0 if v in ("OO", "UU") else 0.0 for v in VISEMES], dtype=np.float32)
_SPREAD = np.array([1.0 if v in ("EE", "II") else 0.0 for v in VISEMES], dtype=np.float32)
_MBP = VISEMES.index("MBP")
_QUIET_ENERGY = 2.0  # the absolute energy feature (log power above the floor) of near silence
_SILENCE_PROBS = np.eye(len(VISEMES), dtype=np.float32)[VISEMES.index("sil")]


@dataclass(frozen=True, slots=True)
class MouthShape:
    """One video frame's mouth: open 0..1, width -1 (rounded) .. +1 (spread)."""

    open: float
    width: float
    viseme: Viseme

    @staticmethod
    def closed() -> MouthShape:
        return MouthShape(0.0, 0.0, "sil")


class MouthPredictor(Protocol):
    """Maps feature contexts (n, CONTEXT, N_FEATURES) to openness (n,) and viseme probs (n, V)."""

    name: str

    def predict(self, contexts: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class MlpPredictor:
    """Numpy inference of the trained MLP: standardize, two hidden ReLU layers, two heads."""

    name = "model"

    def __init__(self, path: Path = MODEL_PATH) -> None:
        with np.load(path) as data:
            self._mean = data["mean"].astype(np.float32)
            self._std = data["std"].astype(np.float32)
            self._layers = [
                (data[f"w{i}"].astype(np.float32), data[f"b{i}"].astype(np.float32))
                for i in range(3)
            ]
            if int(data["context"]) != CONTEXT or int(data["n_features"]) != N_FEATURES:
                raise ValueError(f"lip-sync model {path} was trained for other features")

    def predict(self, contexts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = (contexts.reshape(contexts.shape[0], -1) - self._mean) / self._std
        for w, b in self._layers[:-1]:
            h = np.maximum(h @ w + b, 0.0)
        w, b = self._layers[-1]
        out = h @ w + b
        openness = 1.0 / (1.0 + np.exp(-out[:, 0]))
        logits = out[:, 1:]
        logits = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        return openness, probs


class RulePredictor:
    """Hand-made spectral rules: loudness opens, a low-band murmur or a dip closes the lips."""

    name = "rules"

    def predict(self, contexts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        now = contexts[:, CONTEXT_PAST]
        mel = now[:, :N_MELS]
        rel = now[:, -1]
        absolute = now[:, -2]
        low = mel[:, 0:4].mean(axis=1)  # 80-450 Hz: voicing / nasal murmur
        f1 = mel[:, 6:11].mean(axis=1)  # ~600-1200 Hz: first formant of open vowels
        f2 = mel[:, 13:18].mean(axis=1)  # ~1.9-3 kHz: second formant of spread vowels
        high = mel[:, 19:].mean(axis=1)  # fricative noise
        speech = (absolute > 2.5) & (rel > -7.0)
        loud = np.clip((rel + 5.0) / 4.0, 0.0, 1.0)
        vowel_open = np.clip((f1 - low + 2.0) / 4.0, 0.0, 1.0)
        openness = np.where(speech, loud * (0.35 + 0.65 * vowel_open), 0.0)
        nasal = speech & (low - f1 > 2.5) & (low - high > 6.0)
        openness = np.where(nasal, 0.0, openness)
        probs = np.zeros((contexts.shape[0], len(VISEMES)), dtype=np.float32)
        probs[:, VISEMES.index("sil")] = ~speech
        probs[:, _MBP] = nasal
        rest = speech & ~nasal
        spread = f2 - f1 > 0.5
        rounded = (f2 - f1 < -3.0) & ~spread
        probs[:, VISEMES.index("EE")] = rest & spread
        probs[:, VISEMES.index("OO")] = rest & rounded
        probs[:, VISEMES.index("AA")] = rest & ~spread & ~rounded & (openness > 0.5)
        probs[:, VISEMES.index("AH")] = rest & ~spread & ~rounded & (openness <= 0.5)
        return openness.astype(np.float32), probs


_PREDICTORS: dict[str, MouthPredictor] = {}


def get_predictor(kind: AnalyzerKind = "model") -> MouthPredictor:
    """The shared predictor; a missing model file is an error, never a silent fallback."""
    if kind not in _PREDICTORS:
        if kind == "rules":
            _PREDICTORS[kind] = RulePredictor()
        else:
            if not MODEL_PATH.is_file():
                raise FileNotFoundError(
                    f"lip-sync model {MODEL_PATH} is missing; run python -m avatar_worker.training"
                )
            _PREDICTORS[kind] = MlpPredictor()
    return _PREDICTORS[kind]


def _silence_features(sample_rate: int) -> np.ndarray:
    stream = StreamingFeatures(sample_rate)
    return stream.push(np.zeros(stream.spec.win * 2, dtype=np.float32))[0]


class MouthAnalyzer:
    """One stream's analysis state: push audio, get the mouth of every completed video frame.

    Frame k shows audio [k/fps, (k+1)/fps); its mouth is predicted at the two 10 ms hops around
    the frame's centre, each seeing 20 ms of future audio, so the frame is ready once audio up to
    ~17.5 ms past its end has arrived (or the segment is flushed).
    """

    def __init__(self, predictor: MouthPredictor, sample_rate: int, fps: float = 25.0) -> None:
        self.predictor = predictor
        self.sample_rate = sample_rate
        self.fps = fps
        self._features = StreamingFeatures(sample_rate)
        self._history = np.repeat(_silence_features(sample_rate)[None], CONTEXT_PAST, axis=0)
        self._pending = np.zeros((0, N_FEATURES), dtype=np.float32)  # hops from _pending_start
        self._next_frame = 0
        self._samples_in = 0
        self._prev_open = 0.0

    @property
    def frames_done(self) -> int:
        return self._next_frame

    @property
    def lookahead_s(self) -> float:
        return (CONTEXT_FUTURE + 0.5) * 0.01 + self._features.spec.win / self.sample_rate / 2

    def samples_needed(self) -> int:
        """Total samples after which the next frame can be emitted (callers may batch until)."""
        hop = self._hops_for(self._next_frame)[1] + CONTEXT_FUTURE
        spec = self._features.spec
        return hop * spec.hop - (spec.win // 2 - spec.hop // 2) + spec.win

    @property
    def samples_in(self) -> int:
        return self._samples_in

    def reset(self) -> None:
        """Forget the stream (new segment or interruption); the voice's level is kept."""
        peak = self._features._peak
        self._features = StreamingFeatures(self.sample_rate)
        self._features._peak = peak
        self._history = np.repeat(_silence_features(self.sample_rate)[None], CONTEXT_PAST, axis=0)
        self._pending = np.zeros((0, N_FEATURES), dtype=np.float32)
        self._next_frame = 0
        self._samples_in = 0
        self._prev_open = 0.0

    def push(self, samples: np.ndarray) -> list[MouthShape]:
        """Mono float samples in -1..1; returns the mouths of the frames now complete."""
        self._samples_in += samples.size
        new = self._features.push(samples)
        if new.size:
            self._pending = np.concatenate([self._pending, new])
        return self._emit(final=False)

    def flush(self) -> list[MouthShape]:
        """End of the segment: the remaining frames, the future filled with silence."""
        frames_total = math.ceil(self._samples_in * self.fps / self.sample_rate - 1e-9)
        pad = np.zeros(self._features.spec.win + 4 * self._features.spec.hop, dtype=np.float32)
        new = self._features.push(pad)
        if new.size:
            self._pending = np.concatenate([self._pending, new])
        shapes = self._emit(final=True)
        while self._next_frame < frames_total:  # audio shorter than one hop
            shapes.append(MouthShape.closed())
            self._next_frame += 1
        return shapes

    def _hops_for(self, frame: int) -> tuple[int, int]:
        centre_hops = (frame + 0.5) / self.fps / 0.01 - 0.5
        first = max(0, math.floor(centre_hops))
        return first, first + 1

    def _emit(self, final: bool) -> list[MouthShape]:
        hops_done = self._features.hops_done
        base = hops_done - self._pending.shape[0]  # absolute index of _pending[0]
        frames: list[int] = []
        frame = self._next_frame
        limit = math.ceil(self._samples_in * self.fps / self.sample_rate - 1e-9) if final else None
        while True:
            _, last = self._hops_for(frame)
            if last + CONTEXT_FUTURE >= hops_done or (limit is not None and frame >= limit):
                break
            frames.append(frame)
            frame += 1
        if not frames:
            return []
        all_hops = np.concatenate([self._history, self._pending])  # index 0 = base - PAST
        contexts = []
        for f in frames:
            for hop in self._hops_for(f):
                i = hop - base + CONTEXT_PAST
                contexts.append(all_hops[i - CONTEXT_PAST : i + CONTEXT_FUTURE + 1])
        stacked = np.stack(contexts)
        openness, probs = self.predictor.predict(stacked)
        openness = openness.reshape(len(frames), 2).mean(axis=1)
        probs = probs.reshape(len(frames), 2, -1).mean(axis=1)
        # no sound at all around the frame (below ~ -52 dBFS for 170 ms): at rest, not a closure
        quiet = (stacked[:, :, -2].max(axis=1) < _QUIET_ENERGY).reshape(len(frames), 2).all(axis=1)
        probs[quiet] = _SILENCE_PROBS
        shapes = [self._shape(float(o), p) for o, p in zip(openness, probs, strict=True)]
        self._next_frame = frame
        # keep the last CONTEXT_PAST hops before the next frame's first hop as history
        keep_from = self._hops_for(frame)[0] - CONTEXT_PAST  # absolute
        start = keep_from - (base - CONTEXT_PAST)
        self._history = all_hops[start : start + CONTEXT_PAST]
        self._pending = all_hops[start + CONTEXT_PAST :]
        return shapes

    def _shape(self, openness: float, probs: np.ndarray) -> MouthShape:
        viseme = VISEMES[int(np.argmax(probs))]
        if viseme in ("MBP", "sil"):
            openness = 0.0  # lips together (m/b/p) or at rest: exactly closed, no flicker
        # Opening eases in over a frame (lips have mass); closing is never delayed.
        if openness > self._prev_open:
            openness = self._prev_open + 0.8 * (openness - self._prev_open)
        self._prev_open = openness
        width = float(np.clip(probs @ _SPREAD - probs @ _ROUND, -1.0, 1.0))
        return MouthShape(round(float(np.clip(openness, 0.0, 1.0)), 4), round(width, 3), viseme)


def to_mono_float(pcm: np.ndarray, channels: int) -> np.ndarray:
    """Interleaved int16 -> mono float32 in -1..1 (stereo averaged)."""
    x = pcm.astype(np.float32) / 32768.0
    if channels > 1:
        x = x[: x.size - x.size % channels].reshape(-1, channels).mean(axis=1)
    return x


def analyze(
    samples: np.ndarray, sample_rate: int, fps: float = 25.0, kind: AnalyzerKind = "model"
) -> list[MouthShape]:
    """Whole-signal analysis through the streaming path (same results as live)."""
    analyzer = MouthAnalyzer(get_predictor(kind), sample_rate, fps)
    shapes: list[MouthShape] = []
    step = max(1, sample_rate // 100)
    for start in range(0, samples.size, step * 10):
        shapes.extend(analyzer.push(samples[start : start + step * 10]))
    shapes.extend(analyzer.flush())
    return shapes
