"""Loads the evaluation's data files from prompts/ (rubrics, cues, fillers, report strings).

Everything a reviewer may want to tune — scales, anchors, cue words, filler lists, feedback
wording, report UI strings — lives in plain YAML/text under prompts/; this module only reads it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

import yaml

Language = Literal["ko", "en"]

PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"


class ResourceError(RuntimeError):
    """A data file under prompts/ is missing or malformed; names the file."""


@functools.cache
def load_yaml(relative: str) -> Any:
    path = PROMPTS_DIR / relative
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResourceError(f"evaluation data file is missing: {path}") from None
    except yaml.YAMLError as e:
        raise ResourceError(f"evaluation data file {path} is not valid YAML: {e}") from None


@functools.cache
def load_text(relative: str) -> str:
    path = PROMPTS_DIR / relative
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResourceError(f"evaluation data file is missing: {path}") from None


def fillers(language: Language) -> dict[str, Any]:
    return load_yaml(f"fillers/{language}.yaml")


def rubric(language: Language) -> dict[str, Any]:
    return load_yaml(f"rubrics/criteria.{language}.yaml")


def cues(language: Language) -> dict[str, Any]:
    return load_yaml(f"rubrics/cues.{language}.yaml")


def feedback(language: Language) -> dict[str, Any]:
    return load_yaml(f"rubrics/feedback.{language}.yaml")


def judge_prompt(language: Language) -> str:
    return load_text(f"rubrics/judge.{language}.txt")


def protected_mentions() -> dict[str, Any]:
    return load_yaml("rubrics/protected_mentions.yaml")
