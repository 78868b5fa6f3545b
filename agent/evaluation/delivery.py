"""Delivery metrics from the timed transcript: rate, articulation, fillers, pauses, latency.

What the transcript can and cannot show: each candidate turn has a start and an end, and the
speech recogniser cuts turns at pauses, so the silent gaps BETWEEN consecutive candidate
segments of one answer are measured pauses. Pauses INSIDE a segment are invisible unless the
turn carries word timings ("words": [{"text", "start", "end"}], optional): then gaps between
words of at least `min_pause_s` (0.25 s, the usual floor for a silent pause) count too. Hence:
  * speaking rate     = units / answer span (first segment start -> last segment end),
  * articulation rate = units / (span - measured pauses); without word timings the short pauses
                        inside segments remain, so it is a lower bound,
  * long pauses       = measured pauses > threshold inside one answer,
  * response latency  = answer start - end of the interviewer's question (a barge-in, where the
                        answer starts before the question ends, counts as 0 in the mean).
Units: Hangul syllables (U+AC00-U+D7A3) for Korean, per second; words for English, per minute.
Fillers are counted in every answer and divided by the answer span in minutes.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass

from .exchanges import Exchange
from .fillers import FillerDetector
from .models import AnswerDelivery, Delivery, RateUnit
from .resources import Language

_HANGUL_SYLLABLE = re.compile(r"[\uac00-\ud7a3]")
_EN_WORD = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)?")

METHOD = (
    "speaking rate = units / answer span; articulation rate = units / sum of speech segments "
    "(pauses between segments removed, pauses inside a segment are not visible in the "
    "transcript); long pauses = gaps between consecutive candidate segments of one answer; "
    "latency = answer start - question end (barge-in counts as 0)"
)


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    long_pause_s: float = 2.5
    min_pause_s: float = 0.25  # shorter gaps between words are articulation, not pauses


DEFAULT_OPTIONS = DeliveryOptions()


def count_units(text: str, language: Language) -> int:
    if language == "ko":
        return len(_HANGUL_SYLLABLE.findall(text))
    return len(_EN_WORD.findall(text))


def rate_unit(language: Language) -> RateUnit:
    return "syllables_per_second" if language == "ko" else "words_per_minute"


def _rate(units: int, seconds: float, language: Language) -> float | None:
    if seconds <= 0:
        return None
    per_second = units / seconds
    return round(per_second if language == "ko" else per_second * 60, 2)


def answer_delivery(
    exchange: Exchange,
    language: Language,
    detector: FillerDetector,
    options: DeliveryOptions | None = None,
) -> AnswerDelivery:
    options = options or DEFAULT_OPTIONS
    segments = sorted(exchange.segments, key=lambda s: s.start)
    start, end = segments[0].start, max(s.end for s in segments)
    duration = max(0.0, end - start)
    pauses = []
    reached = segments[0].end
    for seg in segments[1:]:
        pauses.append(round(max(0.0, seg.start - reached), 3))
        reached = max(reached, seg.end)
    inner = []  # pauses inside segments, visible only through word timings
    for seg in segments:
        words = seg.words or []
        inner.extend(
            round(b[0] - a[1], 3)
            for a, b in itertools.pairwise(words)
            if b[0] - a[1] >= options.min_pause_s
        )
    speech = max(0.0, duration - sum(pauses) - sum(inner))
    pauses = sorted(pauses + inner, reverse=True) if inner else pauses
    units = sum(count_units(s.text, language) for s in segments)
    fillers: Counter[str] = Counter()
    for seg in segments:
        fillers.update(detector.count(seg.text))
    total = sum(fillers.values())
    latency = None
    if exchange.question_end is not None:
        latency = round(start - exchange.question_end, 3)
    return AnswerDelivery(
        start=start,
        end=end,
        duration_s=round(duration, 3),
        speech_s=round(speech, 3),
        response_latency_s=latency,
        units=units,
        speaking_rate=_rate(units, duration, language),
        articulation_rate=_rate(units, speech, language),
        fillers=dict(fillers),
        filler_total=total,
        fillers_per_minute=round(total / (duration / 60), 2) if duration > 0 else None,
        long_pauses=sum(1 for p in pauses if p > options.long_pause_s),
        pauses_s=pauses,
        word_timed=all(seg.words for seg in segments),
    )


def overall_delivery(
    answers: list[AnswerDelivery], language: Language, options: DeliveryOptions | None = None
) -> Delivery:
    options = options or DEFAULT_OPTIONS
    span = sum(a.duration_s for a in answers)
    speech = sum(a.speech_s for a in answers)
    units = sum(a.units for a in answers)
    counts: Counter[str] = Counter()
    for a in answers:
        counts.update(a.fillers)
    latencies = [
        max(0.0, a.response_latency_s) for a in answers if a.response_latency_s is not None
    ]
    # a text rehearsal stores turns without durations: nothing about timing can be said
    timed = speech > 0
    if not timed:
        latencies = []
    return Delivery(
        timed=timed,
        word_timed=bool(answers) and all(a.word_timed for a in answers),
        speaking_rate=_rate(units, span, language),
        speaking_rate_unit=rate_unit(language),
        articulation_rate=_rate(units, speech, language),
        fillers_per_minute=round(sum(counts.values()) / (span / 60), 2) if span > 0 else None,
        filler_counts=dict(counts.most_common()),
        long_pauses=sum(a.long_pauses for a in answers),
        long_pause_threshold_s=options.long_pause_s,
        mean_response_latency_s=round(sum(latencies) / len(latencies), 2) if latencies else None,
        answer_durations_s=[a.duration_s for a in answers],
        total_answer_time_s=round(span, 3),
        total_speech_s=round(speech, 3),
        method=METHOD,
    )
