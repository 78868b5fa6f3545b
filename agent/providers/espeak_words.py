"""Word timings of one espeak-ng utterance, from its WORD events and its audio.

espeak-ng marks where each word starts (character offset, audio position) but gives no word end,
and it silently skips some words (Korean words such as "면접관입니다", English "the" after some
words). The aligner turns those marks into one span per whitespace-separated word that covers the
whole text: a word espeak did not mark shares the time up to the next mark with the words before
it in proportion to their letters, and every span is then trimmed to where its audio is speech,
so a pause after a comma belongs to no word.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np

SPEECH_LEVEL = 200  # int16 amplitude above which a sample is speech rather than a fade/pause
PAUSE_S = 0.06  # a quiet stretch this long inside an unmarked run is taken as a word boundary
SNAP_S = 0.3  # how far a letter-proportional boundary may move to such a pause
_WORD = re.compile(r"\S+")
_HANGUL_SYLLABLE = re.compile(r"[\uac00-\ud7a3]")


@dataclass(frozen=True)
class WordSpan:
    """One word: `text` includes its surrounding whitespace so the spans concatenate to the
    input text; start/end are seconds of speech from the start of the utterance's audio."""

    text: str
    start: float
    end: float


class WordAligner:
    """Feed audio (`add_audio`) and espeak WORD marks (`mark`) in the order espeak produces them;
    each call returns the words whose timing is now settled, `finish` the rest."""

    def __init__(self, text: str, sample_rate: int) -> None:
        self._sample_rate = sample_rate
        spans = [m.span() for m in _WORD.finditer(text)]
        starts = [0] + [s for s, _ in spans[1:]] if spans else []
        ends = [s for s, _ in spans[1:]] + [len(text)] if spans else []
        self._texts = [text[a:b] for a, b in zip(starts, ends, strict=True)]
        self._letters = [e - s for s, e in spans]
        self._first_char = [s for s, _ in spans]
        self._audio: list[np.ndarray] = []
        self._samples = 0
        self._cursor = 0  # first word not yet returned
        self._cursor_time = 0.0  # when that word starts (its mark, or the previous word's end)

    def add_audio(self, samples: np.ndarray) -> None:
        self._audio.append(samples)
        self._samples += len(samples)

    def mark(self, char_index: int, time_s: float) -> list[WordSpan]:
        """espeak says the word at `char_index` of the text starts at `time_s`."""
        word = self._word_at(char_index)
        if word is None or word < self._cursor:
            return []
        if word == self._cursor:
            # a mark for the word already due: it moves that word's start, nothing is settled
            self._cursor_time = max(self._cursor_time, time_s)
            return []
        done = self._settle(word, time_s)
        self._cursor_time = max(self._cursor_time, time_s)
        return done

    def finish(self) -> list[WordSpan]:
        return self._settle(len(self._texts), self._samples / self._sample_rate)

    def _word_at(self, char_index: int) -> int | None:
        for i in range(len(self._first_char)):
            nxt = self._first_char[i + 1] if i + 1 < len(self._first_char) else None
            if nxt is None or char_index < nxt:
                return i
        return None

    def _settle(self, until: int, end_s: float) -> list[WordSpan]:
        """Words cursor..until-1 fill [cursor_time, end_s], split by letters, then trimmed."""
        words = range(self._cursor, until)
        if not words:
            return []
        start_s = self._cursor_time
        end_s = max(end_s, start_s)
        letters = np.array([self._letters[i] for i in words], dtype=float)
        bounds = start_s + (end_s - start_s) * np.concatenate(([0.0], np.cumsum(letters))) / max(
            letters.sum(), 1.0
        )
        audio = np.concatenate(self._audio) if self._audio else np.zeros(0, dtype=np.int16)
        if len(words) > 1:
            self._snap_to_pauses(bounds, audio)
        out = []
        for k, i in enumerate(words):
            start, end = self._speech_within(audio, float(bounds[k]), float(bounds[k + 1]))
            out.append(WordSpan(text=self._texts[i], start=start, end=end))
        self._cursor, self._cursor_time = until, end_s
        return out

    def _snap_to_pauses(self, bounds: np.ndarray, audio: np.ndarray) -> None:
        """Move each inner boundary of an unmarked run to the nearest unused pause, in order."""
        sr = self._sample_rate
        a, b = int(bounds[0] * sr), min(int(bounds[-1] * sr), len(audio))
        loud = np.flatnonzero(np.abs(audio[a:b].astype(np.int32)) > SPEECH_LEVEL)
        if loud.size < 2:
            return
        gaps = np.flatnonzero(np.diff(loud) >= PAUSE_S * sr)
        centres = [(a + (loud[g] + loud[g + 1]) / 2) / sr for g in gaps]
        lowest = 0
        for k in range(1, len(bounds) - 1):
            near = [
                j
                for j in range(lowest, len(centres))
                if abs(centres[j] - bounds[k]) <= SNAP_S and centres[j] > bounds[k - 1]
            ]
            if near:
                j = min(near, key=lambda j: abs(centres[j] - bounds[k]))
                bounds[k], lowest = centres[j], j + 1
        np.maximum.accumulate(bounds, out=bounds)

    def _speech_within(self, audio: np.ndarray, start: float, end: float) -> tuple[float, float]:
        a = round(start * self._sample_rate)
        b = min(round(end * self._sample_rate), len(audio))
        loud = np.flatnonzero(np.abs(audio[a:b].astype(np.int32)) > SPEECH_LEVEL)
        if loud.size == 0:  # no speech in the span (e.g. a silent letter name): keep the span
            return start, end
        return (a + int(loud[0])) / self._sample_rate, (a + int(loud[-1]) + 1) / self._sample_rate


def syllable_pieces(word: WordSpan) -> list[WordSpan]:
    """A Hangul word as one span per syllable (punctuation and spaces ride with a neighbour),
    sharing the word's time equally; any other word unchanged.

    The caption synchronizer paces by syllables but counts a whole Hangul word as one, so a
    word-level timing of Korean runs ahead of the voice; a closed span per syllable makes it
    release, and count, one syllable at a time.
    """
    cuts = [m.start() for m in _HANGUL_SYLLABLE.finditer(word.text)]
    if len(cuts) < 2:
        return [word]
    bounds = [0, *cuts[1:], len(word.text)]
    step = (word.end - word.start) / len(cuts)
    return [
        WordSpan(
            text=word.text[a:b],
            start=word.start + k * step,
            end=word.end if k == len(cuts) - 1 else word.start + (k + 1) * step,
        )
        for k, (a, b) in enumerate(itertools.pairwise(bounds))
    ]
