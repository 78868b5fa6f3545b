"""Shared fixtures for the avatar tests: synthetic speech-like audio and espeak-ng utterances."""

from __future__ import annotations

import numpy as np
import pytest

from avatar_worker.espeak_data import EspeakToolError, synthesize, tool_path


def vowel(seconds: float, rate: int, f0: float = 140.0, formants=(750, 1250, 2600)) -> np.ndarray:
    """A loud open vowel: pulse train through three resonances, float in -1..1."""
    n = int(seconds * rate)
    src = np.zeros(n)
    src[:: max(1, int(rate / f0))] = 1.0
    out = np.zeros(n)
    for f, bw in zip(formants, (90, 110, 160), strict=True):
        r = np.exp(-np.pi * bw / rate)
        a1, a2 = 2 * r * np.cos(2 * np.pi * f / rate), -r * r
        y1 = y2 = 0.0
        y = np.empty(n)
        for i in range(n):
            y[i] = src[i] + a1 * y1 + a2 * y2
            y2, y1 = y1, y[i]
        out += y
    return out / np.abs(out).max() * 0.6


@pytest.fixture(scope="session")
def espeak():
    """Synthesize with the shared espeak-ng phoneme tool (CI: ../shared/tools beside the repo)."""
    if not tool_path().is_file():
        pytest.fail(f"espeak phoneme tool missing at {tool_path()} (set AVATAR_ESPEAK_TOOL)")

    def speak(text: str, voice: str = "en-us", rate: int = 160):
        try:
            return synthesize(text, voice, rate)
        except EspeakToolError as exc:
            pytest.fail(str(exc))

    return speak
