"""Streaming log-mel features of speech at any sample rate (16-48 kHz), 10 ms hops.

The mel filters are built for the input's own sample rate, so no resampling is needed and the
features of one voice look the same at 16, 22.05, 24 or 48 kHz. Each window has its mean removed
(DC offset) and a pre-emphasis; energy is reported both in absolute dBFS-like units and relative
to a running speech peak, so the model sees shape and loudness independent of the voice's gain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HOP_S = 0.010
WIN_S = 0.025
N_MELS = 24
F_MIN = 80.0
F_MAX = 7600.0
# Natural-log energy of a full-scale sine is about 0; silence floor about -14 (~ -60 dBFS).
_ENERGY_FLOOR = -14.0
_PEAK_DECAY_PER_HOP = 0.007  # ~3 dB per second in natural-log power units
N_FEATURES = N_MELS + 2


def _mel(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + f / 700.0)


def _mel_filters(sample_rate: int, n_fft: int) -> np.ndarray:
    top = min(F_MAX, sample_rate / 2 - 100)
    edges_mel = np.linspace(_mel(np.array(F_MIN)), _mel(np.array(top)), N_MELS + 2)
    edges = 700.0 * (10 ** (edges_mel / 2595.0) - 1.0)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    filters = np.zeros((N_MELS, freqs.size), dtype=np.float32)
    for i in range(N_MELS):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        rise = (freqs - lo) / (mid - lo)
        fall = (hi - freqs) / (hi - mid)
        filters[i] = np.clip(np.minimum(rise, fall), 0.0, None)
        filters[i] /= max(filters[i].sum(), 1e-9)
    return filters


@dataclass(frozen=True)
class FeatureSpec:
    """Per-sample-rate constants, built once and shared by every stream at that rate."""

    sample_rate: int
    hop: int
    win: int
    n_fft: int
    window: np.ndarray
    filters: np.ndarray

    @classmethod
    def for_rate(cls, sample_rate: int) -> FeatureSpec:
        hop = round(sample_rate * HOP_S)
        win = round(sample_rate * WIN_S)
        n_fft = 1 << (win - 1).bit_length()
        window = np.hanning(win).astype(np.float32)
        return cls(sample_rate, hop, win, n_fft, window, _mel_filters(sample_rate, n_fft))


_SPECS: dict[int, FeatureSpec] = {}


def spec_for(sample_rate: int) -> FeatureSpec:
    if sample_rate not in _SPECS:
        _SPECS[sample_rate] = FeatureSpec.for_rate(sample_rate)
    return _SPECS[sample_rate]


def frame_features(spec: FeatureSpec, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log-mel (n, N_MELS) and log-energy (n,) of windows shaped (n, win)."""
    x = frames - frames.mean(axis=1, keepdims=True)
    x = np.concatenate([x[:, :1], x[:, 1:] - 0.95 * x[:, :-1]], axis=1) * spec.window
    power = np.abs(np.fft.rfft(x, n=spec.n_fft, axis=1)) ** 2
    mel = np.log(power @ spec.filters.T + 1e-10)
    energy = np.log(np.mean(x * x, axis=1) + 1e-10)
    return mel.astype(np.float32), energy.astype(np.float32)


class StreamingFeatures:
    """Per-stream feature state: hop j is centred at (j + 0.5) * 10 ms of the stream's audio."""

    def __init__(self, sample_rate: int) -> None:
        self.spec = spec_for(sample_rate)
        pad = self.spec.win // 2 - self.spec.hop // 2
        self._buf = np.zeros(pad, dtype=np.float32)  # zeros before the stream starts
        self._next_start = 0  # buffer index of the next hop's window start
        self._peak = _ENERGY_FLOOR
        self.hops_done = 0

    def reset(self) -> None:
        self.__init__(self.spec.sample_rate)  # type: ignore[misc]

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add mono float samples (-1..1); returns features of the hops now complete."""
        if samples.size:
            self._buf = np.concatenate([self._buf, samples.astype(np.float32, copy=False)])
        spec = self.spec
        available = (self._buf.size - self._next_start - spec.win) // spec.hop + 1
        if available <= 0:
            return np.zeros((0, N_FEATURES), dtype=np.float32)
        view = np.lib.stride_tricks.sliding_window_view(self._buf[self._next_start :], spec.win)
        frames = view[: available * spec.hop : spec.hop]
        mel, energy = frame_features(spec, frames)
        out = np.empty((available, N_FEATURES), dtype=np.float32)
        for i in range(available):
            e = float(energy[i])
            self._peak = max(e, self._peak - _PEAK_DECAY_PER_HOP, _ENERGY_FLOOR)
            out[i, -2] = max(e, _ENERGY_FLOOR) - _ENERGY_FLOOR
            out[i, -1] = max(e - self._peak, -12.0)
        out[:, :N_MELS] = mel - mel.mean(axis=1, keepdims=True)
        self._next_start += available * spec.hop
        # keep only what future windows need
        drop = self._next_start
        self._buf = self._buf[drop:]
        self._next_start = 0
        self.hops_done += available
        return out
