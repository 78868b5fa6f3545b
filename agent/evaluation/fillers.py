"""Filler-word detection for one utterance, driven by prompts/fillers/{ko,en}.yaml.

Words that are also ordinary words ("like" the verb, "그" the determiner in "그 프로젝트") are
counted only in filler position; the rules are described in the YAML files and kept
deliberately conservative: an unclear case is not counted, so the rate is a lower bound.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from . import resources
from .resources import Language

_TOKEN_RE = re.compile(r"[\w']+|[^\w\s]+")
# Marks that show a pause right after a word ("like," "그…" "um -").
_PAUSE_MARKS = (",", "…", "...", "-", "—", "–", "、", "，")
_SENTENCE_END = (".", "?", "!", "。", "？", "！")

Position = Literal["any", "set_off", "hedge"]


@dataclass(frozen=True, slots=True)
class Token:
    text: str  # lower-cased for comparison
    start: int  # character offsets into the utterance, for quoting
    end: int
    is_word: bool


@dataclass(frozen=True, slots=True)
class FillerRule:
    name: str
    position: Position
    pattern: re.Pattern[str] | None
    words: tuple[str, ...]
    not_after: frozenset[str]
    before: frozenset[str]

    @property
    def length(self) -> int:
        return len(self.words) if self.words else 1


@dataclass(frozen=True, slots=True)
class FillerHit:
    name: str
    start: int  # character span of the filler in the utterance
    end: int


def tokenize(text: str) -> list[Token]:
    return [
        Token(m.group().lower(), m.start(), m.end(), m.group()[0].isalnum() or m.group()[0] == "_")
        for m in _TOKEN_RE.finditer(text)
    ]


def _rule_from(entry: dict[str, Any]) -> FillerRule:
    pattern = entry.get("pattern")
    return FillerRule(
        name=str(entry["name"]),
        position=entry.get("position", "any"),
        pattern=re.compile(rf"(?:{pattern})") if pattern else None,
        words=tuple(str(w).lower() for w in entry.get("words", ())),
        not_after=frozenset(str(w).lower() for w in entry.get("not_after", ())),
        before=frozenset(str(w).lower() for w in entry.get("before", ())),
    )


def load_rules(language: Language) -> list[FillerRule]:
    data = resources.fillers(language)
    return [_rule_from(e) for e in data["fillers"]]


class FillerDetector:
    """Finds fillers in text of one language; cheap to call per utterance."""

    def __init__(self, language: Language, rules: list[FillerRule] | None = None) -> None:
        self.language = language
        # Longer phrases first, so "you know" is tried before a one-word rule could claim "you".
        self.rules = sorted(rules or load_rules(language), key=lambda r: -r.length)

    def find(self, text: str) -> list[FillerHit]:
        tokens = tokenize(text)
        words = [i for i, t in enumerate(tokens) if t.is_word]
        # candidates: word index (into `words`) -> (rule, number of words)
        candidates: dict[int, FillerRule] = {}
        claimed: set[int] = set()
        for rule in self.rules:
            for wi in range(len(words)):
                if wi in claimed or not self._matches(rule, tokens, words, wi):
                    continue
                if any(wi + k in claimed for k in range(rule.length)):
                    continue
                candidates[wi] = rule
                claimed.update(wi + k for k in range(rule.length))

        counted: set[int] = set()
        for wi, rule in candidates.items():
            if self._counts_alone(rule, tokens, words, wi, candidates):
                counted.add(wi)
        # A set-off word next to a counted filler is in filler position too ("um like", "그 이제").
        changed = True
        while changed:
            changed = False
            for wi, rule in candidates.items():
                if wi in counted or rule.position != "set_off":
                    continue
                if self._blocked(rule, tokens, words, wi):
                    continue
                prev_wi = self._prev_candidate(wi, candidates)
                next_wi = wi + rule.length
                if (prev_wi is not None and prev_wi in counted) or next_wi in counted:
                    counted.add(wi)
                    changed = True

        hits = []
        for wi in sorted(counted):
            rule = candidates[wi]
            first = tokens[words[wi]]
            last = tokens[words[wi + rule.length - 1]]
            hits.append(FillerHit(rule.name, first.start, last.end))
        return hits

    def count(self, text: str) -> Counter[str]:
        return Counter(h.name for h in self.find(text))

    # -- rules -----------------------------------------------------------------------------

    @staticmethod
    def _matches(rule: FillerRule, tokens: list[Token], words: list[int], wi: int) -> bool:
        if rule.pattern is not None:
            return rule.pattern.fullmatch(tokens[words[wi]].text) is not None
        if wi + len(rule.words) > len(words):
            return False
        for k, w in enumerate(rule.words):
            # a phrase must not straddle punctuation: "you, know" is not "you know"
            if k and words[wi + k] != words[wi + k - 1] + 1:
                return False
            if tokens[words[wi + k]].text != w:
                return False
        return True

    @staticmethod
    def _blocked(rule: FillerRule, tokens: list[Token], words: list[int], wi: int) -> bool:
        ti = words[wi]
        # only a directly preceding word (no punctuation between) can make it an ordinary word
        return ti > 0 and tokens[ti - 1].is_word and tokens[ti - 1].text in rule.not_after

    @staticmethod
    def _prev_candidate(wi: int, candidates: dict[int, FillerRule]) -> int | None:
        for pw, rule in candidates.items():
            if pw + rule.length == wi:
                return pw
        return None

    def _counts_alone(
        self,
        rule: FillerRule,
        tokens: list[Token],
        words: list[int],
        wi: int,
        candidates: dict[int, FillerRule],
    ) -> bool:
        if rule.position == "any":
            return True
        if self._blocked(rule, tokens, words, wi):
            return False
        if rule.position == "hedge":
            return True
        first_ti = words[wi]
        last_ti = words[wi + rule.length - 1]
        after = tokens[last_ti + 1] if last_ti + 1 < len(tokens) else None
        before = tokens[first_ti - 1] if first_ti > 0 else None
        if after is not None and not after.is_word and after.text.startswith(_PAUSE_MARKS):
            return True
        at_end = after is None or (not after.is_word and after.text.startswith(_SENTENCE_END))
        if at_end and before is not None and not before.is_word and before.text.startswith(","):
            return True
        if after is not None and after.is_word:
            if after.text in rule.before:
                return True
            # repeated: "like like", "그 그"
            nxt = wi + rule.length
            if candidates.get(nxt) is rule:
                return True
        # the second of a repeated pair ("like like", "그 그"), with no mark between them
        prev_wi = self._prev_candidate(wi, candidates)
        repeated = prev_wi is not None and candidates[prev_wi] is rule
        return repeated and before is not None and before.is_word
