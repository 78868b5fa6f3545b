"""The caption timing analysis (tests/web/caption_timing.py) on made-up recordings with known
answers, and the espeak-ng word timeline it aligns captions to."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from caption_timing import (
    CaptionStream,
    caption_timing,
    shown_at,
    speech_span,
    spoken_word_ends,
    word_ends,
)


def _audio(onset: float, end: float, total: float) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(0.0, total, 0.01)
    return t, np.where((t >= onset) & (t < end), 2000.0, 10.0)


def _stream(text: str, times: list[float]) -> CaptionStream:
    s = CaptionStream("agent", "SG_1", {})
    for end, t in zip(word_ends(text), times, strict=True):
        s.events.append((t, text[:end]))
    return s


def test_word_ends_and_shown_at() -> None:
    text = "안녕하세요, 김민준님. 시작할까요?"
    assert [text[:e] for e in word_ends(text)] == [
        "안녕하세요,",
        "안녕하세요, 김민준님.",
        "안녕하세요, 김민준님. 시작할까요?",
    ]
    events = [(1.0, "ab"), (2.0, "ab cd")]
    assert shown_at(events, 2) == 1.0 and shown_at(events, 4) == 2.0
    assert shown_at(events, 9) is None


def test_speech_span_ends_at_the_first_long_quiet() -> None:
    t, rms = _audio(2.0, 6.0, 12.0)
    rms[(t >= 8.0) & (t < 9.0)] = 2000.0  # the next turn, after 2 s of quiet
    onset, end = speech_span(t, rms, 0.0)
    assert onset == pytest.approx(2.0, abs=0.011) and end == pytest.approx(6.0, abs=0.011)
    with pytest.raises(ValueError):
        speech_span(t, np.zeros_like(t), 0.0)


def test_late_and_early_captions_have_the_right_sign() -> None:
    text = "one two three four"
    spoken = [0.5, 1.0, 1.5, 2.0]  # word ends in the synthesized speech, speech from 0.0
    t, rms = _audio(10.0, 12.0, 20.0)
    on_time = caption_timing(_stream(text, [10.5, 11.0, 11.5, 12.0]), t, rms, spoken, 0.0)
    assert max(abs(x) for x in on_time.word_lag_s) < 0.02
    assert on_time.stretch == pytest.approx(1.0, abs=0.01)
    late = caption_timing(_stream(text, [13.0, 13.0, 13.0, 13.5]), t, rms, spoken, 0.0)
    assert late.summary()["word_lag_max_s"] == pytest.approx(2.5, abs=0.02)
    assert late.first_word_lead_s == pytest.approx(-3.0, abs=0.02)
    assert late.complete_after_end_s == pytest.approx(1.5, abs=0.02)
    early = caption_timing(_stream(text, [9.8, 9.9, 10.0, 10.1]), t, rms, spoken, 0.0)
    assert early.complete_after_end_s == pytest.approx(-1.9, abs=0.02)
    assert early.summary()["word_lead_max_s"] == pytest.approx(1.9, abs=0.02)


def test_spoken_word_ends_follow_the_sentence() -> None:
    ends, start = spoken_word_ends("Tell me about a project you are proud of.", "en")
    assert len(ends) == 9
    assert 0.0 <= start < 0.3
    assert all(b > a for a, b in itertools.pairwise(ends))
    assert 1.0 < ends[-1] < 5.0
