"""EspeakTTS word timings: they cover the text, run forward, and sit where the words are spoken."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from livekit.agents.tts.tts import USERDATA_TIMED_TRANSCRIPT

from agent.providers.espeak import Voice, engine
from agent.providers.espeak_words import SPEECH_LEVEL, WordAligner, WordSpan, syllable_pieces
from agent.providers.tts import EspeakTTS

TEXTS = {
    # "면접관입니다" and English "the" are words espeak-ng gives no word event for
    "ko": "안녕하세요, 저는 오늘 면접관입니다. 자기소개 부탁드립니다.",
    "en": "Hello! I'm Alex, and I'll be interviewing you today for the backend role.",
}


def _align(text: str, language: str) -> tuple[list[WordSpan], np.ndarray]:
    eng = engine()
    aligner = WordAligner(text, eng.sample_rate)
    words: list[WordSpan] = []
    audio: list[np.ndarray] = []

    def on_chunk(chunk: np.ndarray) -> bool:
        aligner.add_audio(chunk)
        audio.append(chunk)
        return True

    eng.synthesize(
        text, Voice(language=language), on_chunk, lambda c, t: words.extend(aligner.mark(c, t))
    )
    return words + aligner.finish(), np.concatenate(audio)


def _speech_end(pcm: np.ndarray) -> float:
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > SPEECH_LEVEL)
    return float(loud[-1] + 1) / engine().sample_rate


@pytest.mark.parametrize("language", ["ko", "en"])
def test_word_spans_cover_the_text_in_order(language: str) -> None:
    text = TEXTS[language]
    words, audio = _align(text, language)
    assert "".join(w.text for w in words) == text
    assert [w.text.strip() for w in words] == text.split()
    for prev, cur in itertools.pairwise(words):
        assert prev.start <= prev.end <= cur.start <= cur.end
    assert words[-1].end <= len(audio) / engine().sample_rate + 1e-6
    for w in words:  # every span holds speech at both ends
        sr = engine().sample_rate
        assert abs(int(audio[int(w.start * sr)])) > SPEECH_LEVEL or w.start == 0.0
        assert abs(int(audio[int(w.end * sr) - 1])) > SPEECH_LEVEL


@pytest.mark.parametrize("language", ["ko", "en"])
def test_word_ends_match_where_each_prefix_stops_speaking(language: str) -> None:
    """Independent reference: speak each prefix of the text and see where its speech ends.
    A prefix ends its sentence there, so its last word is drawn out a little (up to ~0.3 s)."""
    text = TEXTS[language]
    words, _ = _align(text, language)
    eng, voice = engine(), Voice(language=language)
    prefixes = [text[: m.end()] for m in re.finditer(r"\S+", text)]
    errors = [
        w.end - _speech_end(eng.synthesize_all(prefix, voice))
        for w, prefix in zip(words, prefixes, strict=True)
    ]
    errors_arr = np.array(errors)
    assert np.all(errors_arr > -0.35), errors
    assert np.all(errors_arr < 0.1), errors
    assert abs(float(np.median(errors_arr))) < 0.2, errors


def test_unmarked_words_split_at_a_pause_else_by_letters() -> None:
    sr = 1000
    loud, quiet = np.full(400, 5000, np.int16), np.zeros(100, np.int16)
    # "aa bbbbbb": one mark at the start, speech 0-0.4 s, pause, speech 0.5-0.9 s
    aligner = WordAligner("aa bbbbbb", sr)
    aligner.add_audio(np.concatenate([loud, quiet, loud]))
    assert aligner.mark(0, 0.0) == []
    words = aligner.finish()
    assert [(w.text, w.start, w.end) for w in words] == [("aa ", 0.0, 0.4), ("bbbbbb", 0.5, 0.9)]
    # continuous speech: the time is shared by letters (2 : 6)
    aligner = WordAligner("aa bbbbbb", sr)
    aligner.add_audio(np.full(800, 5000, np.int16))
    words = aligner.finish()
    assert [(w.start, w.end) for w in words] == [(0.0, 0.2), (0.2, 0.8)]


async def test_stream_pushes_word_timings_across_sentences() -> None:
    text = "Hello there. Tell me about your last project, please."
    tts = EspeakTTS(Voice(language="en"))
    timed = []
    duration = 0.0
    async with tts.stream() as stream:
        stream.push_text(text)
        stream.end_input()
        async for ev in stream:
            timed.extend(ev.frame.userdata.get(USERDATA_TIMED_TRANSCRIPT) or [])
            duration += ev.frame.duration
    words = [t for t in timed if t.strip()]
    assert "".join(timed) == text
    assert [w.strip() for w in words] == text.split()
    starts = [w.start_time for w in words]
    assert starts == sorted(starts)
    first_sentence_end = words[1].end_time
    assert words[2].start_time > first_sentence_end  # "Tell" follows the first sentence's audio
    assert first_sentence_end < duration / 2 and words[-1].end_time <= duration + 1e-6


def test_hangul_words_are_timed_per_syllable() -> None:
    pieces = syllable_pieces(WordSpan(text="면접관입니다. ", start=1.0, end=2.2))
    assert [p.text for p in pieces] == ["면", "접", "관", "입", "니", "다. "]
    assert [round(p.start, 3) for p in pieces] == [1.0, 1.2, 1.4, 1.6, 1.8, 2.0]
    assert pieces[-1].end == 2.2
    english = WordSpan(text="interviewing ", start=0.0, end=0.6)
    assert syllable_pieces(english) == [english]


async def test_korean_stream_releases_one_syllable_at_a_time() -> None:
    text = TEXTS["ko"]
    tts = EspeakTTS(Voice(language="ko"))
    timed = []
    async with tts.stream() as stream:
        stream.push_text(text)
        stream.end_input()
        async for ev in stream:
            timed.extend(ev.frame.userdata.get(USERDATA_TIMED_TRANSCRIPT) or [])
    assert "".join(timed) == text
    pieces = [t for t in timed if t.strip()]
    assert len(pieces) == sum("\uac00" <= c <= "\ud7a3" for c in text)
    assert all(p.start_time <= p.end_time for p in pieces)
    assert [p.start_time for p in pieces] == sorted(p.start_time for p in pieces)
