"""Fair-hiring guard: finds protected personal information the candidate volunteered.

Patterns live in prompts/rubrics/protected_mentions.yaml (same categories as
prompts/protected_topics.yaml, which guards the interviewer's questions). A hit does not lower
any score; the report advises leaving the information out next time.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from . import resources
from .resources import Language
from .text import quote_around


@dataclass(frozen=True, slots=True)
class Mention:
    category: str
    label: str
    quote: str


@functools.cache
def _patterns(language: Language) -> list[tuple[str, str, re.Pattern[str]]]:
    data = resources.protected_mentions()["categories"]
    out = []
    for category, spec in data.items():
        label = spec["label"][language]
        for pattern in spec.get(language, []):
            out.append((category, label, re.compile(pattern, re.IGNORECASE)))
    return out


def find_mentions(answer: str, language: Language) -> list[Mention]:
    """One mention per category, quoting the candidate's sentence where it first appears."""
    found: dict[str, Mention] = {}
    for category, label, pattern in _patterns(language):
        m = pattern.search(answer)
        if m is None:
            continue
        mention = Mention(category, label, quote_around(answer, m.start(), m.end()))
        prev = found.get(category)
        if prev is None or answer.find(mention.quote) < answer.find(prev.quote):
            found[category] = mention
    return list(found.values())
