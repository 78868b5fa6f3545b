"""Audio -> mouth analysis: synthetic signals, bad input and real espeak-ng speech."""

from __future__ import annotations

import numpy as np
import pytest

from avatar_worker.lipsync import MouthAnalyzer, analyze, get_predictor, to_mono_float
from avatar_worker.phonemes import language_of, lookup

from .conftest import vowel


def _frames(seconds: float, fps: float = 25.0) -> int:
    return int(np.ceil(seconds * fps - 1e-9))


@pytest.mark.parametrize("rate", [16000, 22050, 44100, 48000])
def test_silence_keeps_the_mouth_closed_at_any_rate(rate):
    shapes = analyze(np.zeros(rate), rate)
    assert len(shapes) == _frames(1.0)
    assert max(s.open for s in shapes) < 0.05
    assert {s.viseme for s in shapes} == {"sil"}


def test_dc_offset_and_hum_are_not_speech():
    rate = 24000
    t = np.arange(rate) / rate
    signal = 0.3 + 0.002 * np.sin(2 * np.pi * 50 * t)
    assert max(s.open for s in analyze(signal, rate)) < 0.1


@pytest.mark.parametrize("rate", [16000, 24000, 48000])
def test_open_vowel_opens_the_mouth_even_clipped(rate):
    for gain in (1.0, 8.0):  # 8x: heavily clipped
        signal = np.clip(vowel(0.6, rate) * gain, -1, 1)
        shapes = analyze(signal, rate)
        middle = shapes[4:-4]
        assert np.mean([s.open for s in middle]) > 0.35, gain


def test_streaming_in_any_chunk_size_gives_the_same_frames():
    rate = 22050
    signal = vowel(0.5, rate)
    whole = analyze(signal, rate)
    analyzer = MouthAnalyzer(get_predictor(), rate)
    pieces = []
    for start in range(0, signal.size, 137):
        pieces.extend(analyzer.push(signal[start : start + 137].astype(np.float32)))
    pieces.extend(analyzer.flush())
    assert [s.open for s in pieces] == pytest.approx([s.open for s in whole], abs=1e-3)


def test_very_short_audio_still_yields_its_frame():
    assert len(analyze(np.zeros(50), 16000)) == 1
    assert analyze(np.zeros(0), 16000) == []


def test_stereo_int16_is_mixed_to_mono():
    stereo = np.array([1000, -1000, 32767, 32767], dtype=np.int16)
    assert to_mono_float(stereo, 2) == pytest.approx([0.0, 32767 / 32768])


def test_espeak_speech_closes_lips_on_bilabials_and_opens_on_a(espeak):
    utt = espeak("Mama bought a big map and a bamboo lamp.", "en-us", 150)
    shapes = analyze(utt.audio / 32768.0, utt.sample_rate)
    closed, opened = [], []
    for k, shape in enumerate(shapes):
        centre = (k + 0.5) / 25
        entry = next(
            (lookup(n, language_of(utt.voice)) for n, s, e in utt.phonemes if s <= centre < e),
            None,
        )
        if entry and entry[0] == "MBP":
            closed.append(shape.open <= 0.15)
        if entry and entry[0] == "AA":
            opened.append(shape.open >= 0.45)
    assert len(closed) >= 5 and np.mean(closed) >= 0.7
    assert len(opened) >= 5 and np.mean(opened) >= 0.7


def test_korean_speech_moves_the_mouth(espeak):
    utt = espeak("바다가 보이는 마을에서 자랐습니다.", "ko", 160)
    shapes = analyze(utt.audio / 32768.0, utt.sample_rate)
    opens = np.array([s.open for s in shapes])
    assert opens.max() > 0.6 and (opens < 0.1).sum() > 3
    assert {"AA", "MBP"} <= {s.viseme for s in shapes}
