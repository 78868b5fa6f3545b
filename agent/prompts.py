"""Loads the interviewer's data files from prompts/ (instructions, lines, question banks, topics).

Everything the interviewer says or asks lives in YAML under prompts/<language>/ so it can be
edited without touching code; this module only reads and validates the shape.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any

import yaml

PROMPTS_DIR = Path(
    os.environ.get("INTERVIEW_PROMPTS_DIR") or Path(__file__).resolve().parents[1] / "prompts"
)


class PromptsError(RuntimeError):
    """A prompts file is missing or malformed; one sentence naming the file."""


@functools.cache
def load_yaml(rel_path: str) -> dict[str, Any]:
    path = PROMPTS_DIR / rel_path
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError:
        raise PromptsError(f"prompts file not found: {path}") from None
    except yaml.YAMLError as e:
        raise PromptsError(f"prompts file {path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise PromptsError(f"prompts file {path} must hold a mapping")
    return data


def interviewer_prompts(language: str) -> dict[str, Any]:
    return load_yaml(f"{language}/interviewer.yaml")


def question_bank(language: str) -> dict[str, Any]:
    return load_yaml(f"{language}/questions.yaml")


@functools.cache
def _protected_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    data = load_yaml("protected_topics.yaml")
    out: list[tuple[str, re.Pattern[str]]] = []
    for category, langs in data["categories"].items():
        words = [w for ws in langs.values() for w in ws]
        alternation = "|".join(re.escape(w) for w in words)
        out.append((category, re.compile(rf"(?:{alternation})", re.IGNORECASE)))
    return tuple(out)


def protected_topic(text: str) -> str | None:
    """The protected category `text` touches (family, age, ...), or None if it is fair to ask."""
    for category, pattern in _protected_patterns():
        if pattern.search(text):
            return category
    return None


def matches_any(text: str, phrases: list[str], *, word_boundaries: bool) -> bool:
    lowered = text.lower()
    for phrase in phrases:
        p = phrase.lower()
        if word_boundaries and p[:1].isalnum():
            if re.search(rf"\b{re.escape(p)}", lowered):
                return True
        elif p in lowered:
            return True
    return False
