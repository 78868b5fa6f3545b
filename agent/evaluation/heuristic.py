"""Offline heuristic assessor ("assessor": "heuristic"): scores from measurable cues only.

It looks for the presence of structure cues (STAR, 계기-행동-배운 점), the question's key words,
numbers and named tools, and reasoning/trade-off markers, as listed in
prompts/rubrics/cues.{ko,en}.yaml, and maps counts onto the 1-5 anchors of
prompts/rubrics/criteria.{ko,en}.yaml. It cannot tell whether an answer is true or good; the
report labels its scores as heuristic. Every piece of evidence is a verbatim span of the answer.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import resources
from .delivery import count_units
from .models import AnswerAssessment, CriterionResult, QuestionKind
from .resources import Language
from .text import quote_around, sentences

ASSESSOR_NAME = "heuristic"


@functools.cache
def _compile_one(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def _compile(patterns: list[str]) -> list[re.Pattern[str]]:
    return [_compile_one(p) for p in patterns]


@dataclass(frozen=True, slots=True)
class _Found:
    start: int
    end: int


def _first(patterns: list[re.Pattern[str]], text: str) -> _Found | None:
    best: _Found | None = None
    for p in patterns:
        m = p.search(text)
        if m and (best is None or m.start() < best.start):
            best = _Found(m.start(), m.end())
    return best


def _all(patterns: list[re.Pattern[str]], text: str) -> list[re.Match[str]]:
    return [m for p in patterns for m in p.finditer(text)]


def classify_question(
    question: str,
    language: Language,
    interview_type: str = "mixed",
    meta: Mapping[str, object] | None = None,
) -> QuestionKind:
    """The question's kind: the plan's own label if the transcript has one, else its wording."""
    for key in ("kind", "question_kind", "category"):
        value = (meta or {}).get(key)
        if value in ("behavioral", "technical", "general", "greeting", "closing"):
            return value  # type: ignore[return-value]
    cues = resources.cues(language)
    stage = (meta or {}).get("stage")
    if isinstance(stage, str) and stage in cues.get("stage_kinds", {}):
        return cues["stage_kinds"][stage]
    kinds = cues["question_kind"]
    for kind in ("closing", "general", "behavioral", "technical"):
        if _first(_compile(kinds.get(kind, [])), question):
            return kind  # type: ignore[return-value]
    return "technical" if interview_type == "technical" else "behavioral"


class HeuristicAssessor:
    """Scores one answer from cue counts; synchronous, about a millisecond per answer."""

    name = ASSESSOR_NAME

    def __init__(self, language: Language) -> None:
        self.language = language
        self.cues: dict[str, Any] = resources.cues(language)
        self.rubric: dict[str, Any] = resources.rubric(language)["criteria"]
        self.text: dict[str, Any] = resources.feedback(language)["heuristic"]
        self._numbers = _compile(self.cues["number_patterns"])
        self._structure = {
            kind: {name: (spec, _compile(spec.get("patterns", []))) for name, spec in comps.items()}
            for kind, comps in self.cues["structure"].items()
        }
        self._terms = [_term_pattern(str(t)) for t in self.cues["tech_terms"]]
        self._proper = re.compile(self.cues["proper_noun_pattern"])
        self._depth = {k: _compile(v) for k, v in self.cues["depth"].items()}
        self._stop = {str(w).lower() for w in self.cues["stopwords"]}

    def criteria_for(self, kind: QuestionKind) -> list[str]:
        return [name for name, spec in self.rubric.items() if kind in spec["applies_to"]]

    def assess(self, question: str, answer: str, kind: QuestionKind) -> AnswerAssessment:
        results: dict[str, CriterionResult] = {}
        tips: list[tuple[int, str]] = []
        outline: list[str] = []
        for criterion in self.criteria_for(kind):
            if criterion == "structure":
                result, tip, outline = self._structure_score(question, answer, kind)
            elif criterion == "relevance":
                measured = self._relevance(question, answer)
                if measured is None:  # too few topic words to compare: not measurable here
                    continue
                result, tip = measured
            elif criterion == "specificity":
                result, tip = self._specificity(answer)
            elif criterion == "depth":
                result, tip = self._depth_score(answer)
            else:  # a criterion added to the rubric file that the heuristic cannot measure
                continue
            results[criterion] = result
            if tip and result.score <= 3:
                tips.append((result.score, tip))
        tips.sort(key=lambda t: t[0])
        feedback = " ".join(t for _, t in tips[:2]) or self.text["tip_good"]
        return AnswerAssessment(
            question=question,
            answer=answer,
            kind=kind,
            assessor=ASSESSOR_NAME,
            criteria=results,
            feedback=feedback,
            better_answer_outline=outline,
        )

    # -- criteria ----------------------------------------------------------------------------

    def _has_number(self, text: str) -> bool:
        return any(p.search(text) for p in self._numbers)

    def _structure_score(
        self, question: str, answer: str, kind: QuestionKind
    ) -> tuple[CriterionResult, str | None, list[str]]:
        comps = self._structure[kind]
        text = self.text
        points, max_points = 0.0, 0.0
        found, missing, evidence, outline = [], [], [], []
        first_missing: str | None = None
        for name, (spec, patterns) in comps.items():
            bonus = bool(spec.get("bonus"))
            if spec.get("answer_first"):
                hit, gain, note = self._answer_first(question, answer)
                if hit is None and gain < 0:  # the question has no topic words to look for
                    continue
            else:
                hit = self._best_hit(patterns, answer, spec.get("needs_number", False))
                gain, note = 1.0, None
                if hit is None and spec.get("partial_patterns"):
                    hit = _first(_compile(spec["partial_patterns"]), answer)
                    gain, note = 0.5, text["partial_action"]
            if not bonus:
                max_points += 1
            hint = text["outline"][kind][name]
            if hit is None:
                if not bonus:
                    missing.append(spec["label"])
                    first_missing = first_missing or name
                outline.append(f"+ {spec['label']}: {hint}")
                continue
            quote = quote_around(answer, hit.start, hit.end)
            if spec.get("needs_number") and not self._has_number(quote):
                gain, note = 0.5, text["no_number"]
                first_missing = first_missing or f"{name}_number"
                outline.append(f"+ {spec['label']}: {text['outline_number'][kind]}")
            elif gain < 1:
                first_missing = first_missing or name
                outline.append(f"+ {spec['label']}: {hint}")
            else:
                outline.append(f"✓ {spec['label']}: “{_shorten(quote)}”")
            found.append(f"{spec['label']} ({note})" if note else spec["label"])
            points += 0.5 if bonus else gain
            evidence.append(quote)
        max_points = max(max_points, 1.0)
        score = _clamp(1 + math.floor(4 * min(points, max_points) / max_points))
        reason = text["structure_reason"].format(
            found=", ".join(found) or text["none"], missing=", ".join(missing) or text["none"]
        )
        tip = None
        if kind == "behavioral":
            we = len(re.findall(self.cues["we_pattern"], answer, re.I))
            me = len(re.findall(self.cues["i_pattern"], answer))
            if we > me:
                tip = text["tip_we"].format(we=we, i=me)
        if tip is None and first_missing:
            tip = text["tips"][kind].get(first_missing)
        return CriterionResult(score=score, reason=reason, evidence=_unique(evidence)), tip, outline

    def _answer_first(self, question: str, answer: str) -> tuple[_Found | None, float, None]:
        """Whether the first sentence already uses the question's topic words (answer first).

        Returns gain -1 when the question has no topic words, so the cue cannot be measured.
        """
        keys = self._keywords(question)
        spans = sentences(answer)
        if not keys or not spans:
            return None, -1.0, None
        s, e = spans[0]
        first = answer[s:e].lower()
        for stem in keys:
            i = first.find(stem)
            if i >= 0:
                return _Found(s + i, s + i + len(stem)), 1.0, None
        return None, 0.0, None

    def _best_hit(
        self, patterns: list[re.Pattern[str]], answer: str, needs_number: bool
    ) -> _Found | None:
        matches = _all(patterns, answer)
        if not matches:
            return None
        if needs_number:
            for m in sorted(matches, key=lambda m: m.start()):
                if self._has_number(quote_around(answer, m.start(), m.end())):
                    return _Found(m.start(), m.end())
        m = min(matches, key=lambda m: m.start())
        return _Found(m.start(), m.end())

    def _keywords(self, question: str) -> dict[str, str]:
        """Topic words of the question's asking sentence: stem -> the word as asked."""
        spans = sentences(question)
        asking = [sp for sp in spans if "?" in question[sp[0] : sp[1]]] or spans[-1:]
        focus = question[asking[-1][0] : asking[-1][1]] if asking else question
        words = re.findall(r"[\w'+#]+", focus.lower())
        keys: dict[str, str] = {}
        for w in words:
            if w in self._stop or w.isdigit():
                continue
            if self.language == "ko":
                hangul = re.match(r"[\uac00-\ud7a3]+", w)
                # the first two syllables approximate the stem, dropping particles and endings
                stem = hangul.group()[:2] if hangul and len(hangul.group()) >= 2 else None
                latin = re.match(r"[a-z][a-z0-9+#]*", w)
                if stem is None and latin and len(latin.group()) >= 2:
                    stem = latin.group()  # "api를" -> "api"
            else:
                stem = w[:5] if len(w) >= 4 else None
            if stem and stem not in keys and stem not in self._stop:
                keys[stem] = w
        return keys

    def _relevance(self, question: str, answer: str) -> tuple[CriterionResult, str | None] | None:
        text = self.text
        units = count_units(answer, self.language)
        if units < int(self.cues["min_units"]):
            reason = text["relevance_short"].format(units=units)
            return CriterionResult(score=1, reason=reason), text["tip_short"]
        keys = self._keywords(question)
        low = answer.lower()
        hits = [k for k in keys if k in low]
        hit_words = [keys[k] for k in hits]
        evidence = []
        for k in hits[:3]:
            i = low.index(k)
            evidence.append(quote_around(answer, i, i + len(k)))
        if len(keys) < 2:
            return None
        cover = len(hits) / len(keys)
        score = 5 if cover >= 0.5 else 4 if cover >= 0.34 else 3 if cover >= 0.2 else 2
        reason = text["relevance_reason"].format(
            hits=len(hits), total=len(keys), words=", ".join(hit_words) or text["none"]
        )
        missing = [w for k, w in keys.items() if k not in hits][:4]
        tip = text["tip_relevance"].format(words=", ".join(missing)) if missing else None
        return CriterionResult(score=score, reason=reason, evidence=_unique(evidence)), tip

    def _concrete(self, answer: str) -> list[re.Match[str]]:
        items = _all(self._numbers, answer) + _all(self._terms, answer)
        items += list(self._proper.finditer(answer))
        # one detail per distinct surface form; overlapping matches ("이백 건", "백 건") count once
        seen: dict[str, re.Match[str]] = {}
        covered_to = -1
        for m in sorted(items, key=lambda m: (m.start(), -m.end())):
            if m.start() < covered_to:
                continue
            covered_to = m.end()
            seen.setdefault(m.group().strip().lower(), m)
        return list(seen.values())

    def _specificity(self, answer: str) -> tuple[CriterionResult, str | None]:
        items = self._concrete(answer)
        n = len(items)
        score = 1 if n == 0 else 2 if n == 1 else 3 if n <= 3 else 4 if n <= 5 else 5
        # quote the sentences that carry the most details
        by_quote: dict[str, int] = {}
        for m in items:
            q = quote_around(answer, m.start(), m.end())
            by_quote[q] = by_quote.get(q, 0) + 1
        evidence = sorted(by_quote, key=lambda q: -by_quote[q])[:2]
        reason = self.text["specificity_reason"].format(
            n=n, items=", ".join(m.group().strip() for m in items[:6]) or self.text["none"]
        )
        return CriterionResult(score=score, reason=reason, evidence=evidence), self.text[
            "tip_specificity"
        ]

    def _depth_score(self, answer: str) -> tuple[CriterionResult, str | None]:
        terms = {m.group().lower() for m in _all(self._terms, answer)}
        found = {k: _first(p, answer) for k, p in self._depth.items()}
        points = min(2.0, len(terms) / 2)
        points += sum(1 for k in ("reasoning", "tradeoff") if found.get(k))
        points += 0.5 if found.get("example") else 0
        score = _clamp(1 + math.floor(points))
        evidence = [quote_around(answer, f.start, f.end) for f in found.values() if f]
        yes, no = self.text["present"], self.text["absent"]
        reason = self.text["depth_reason"].format(
            terms=len(terms),
            reasoning=yes if found.get("reasoning") else no,
            tradeoff=yes if found.get("tradeoff") else no,
        )
        return CriterionResult(score=score, reason=reason, evidence=_unique(evidence)), self.text[
            "tip_depth"
        ]


@functools.cache  # like _compile_one: once per process (agent/warmup.py), not per interview
def _term_pattern(term: str) -> re.Pattern[str]:
    body = term if "\\" in term else re.escape(term)
    if re.match(r"[\uac00-\ud7a3]", term):
        # Korean words carry particles ("인덱스는"): match the start of a word only
        return re.compile(rf"(?<![\uac00-\ud7a3]){body}")
    return re.compile(rf"(?<![\w]){body}(?![\w])", re.IGNORECASE)


def _clamp(score: int) -> int:
    return max(1, min(5, score))


def _shorten(quote: str, limit: int = 90) -> str:
    return quote if len(quote) <= limit else quote[: limit - 1].rstrip() + "…"


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))
