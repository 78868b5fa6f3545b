"""The interview config contract (DESIGN.md): job metadata JSON and the body of POST /api/sessions.

One model, used by the agent, the rehearsal command and the web API, so that every entry point
accepts and rejects exactly the same configs with the same one-sentence messages.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Language = Literal["ko", "en"]
InterviewType = Literal["behavioral", "technical", "mixed"]
Seniority = Literal["intern", "junior", "mid", "senior"]
Difficulty = Literal["easy", "normal", "hard"]
Persona = Literal["friendly", "neutral", "strict"]

BUILTIN_AVATARS: tuple[str, ...] = ("woman", "man")
AVATAR_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


class ConfigError(ValueError):
    """An interview config that breaks the contract; the message is one sentence for the user."""


class InterviewConfig(BaseModel):
    """What the candidate chose for one interview."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    candidate_name: str = Field(min_length=1, max_length=80)
    role: str = Field(min_length=1, max_length=120)
    language: Language = "ko"
    interview_type: InterviewType = "mixed"
    seniority: Seniority = "junior"
    difficulty: Difficulty = "normal"
    persona: Persona = "neutral"
    duration_minutes: int = Field(default=15, ge=3, le=90, strict=True)
    avatar: str = Field(default="woman", pattern=AVATAR_ID_PATTERN)
    resume_text: str | None = Field(default=None, max_length=20_000)
    job_description: str | None = Field(default=None, max_length=20_000)

    @field_validator("resume_text", "job_description")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)


def _describe(error: dict[str, Any]) -> str:
    field = ".".join(str(p) for p in error["loc"]) or "config"
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        return f"unknown field '{field}'"
    if kind == "missing":
        return f"field '{field}' is required"
    if kind == "literal_error":
        return f"field '{field}' must be one of {ctx.get('expected', '')}"
    if kind == "string_too_short":
        return f"field '{field}' must not be empty"
    if kind == "string_too_long":
        return f"field '{field}' must be at most {ctx.get('max_length')} characters"
    if kind in ("greater_than_equal", "less_than_equal", "int_type", "int_parsing"):
        if field == "duration_minutes":
            return "field 'duration_minutes' must be a whole number from 3 to 90"
        return f"field '{field}' has an invalid number"
    if kind == "string_pattern_mismatch" and field == "avatar":
        return (
            "field 'avatar' must be 'woman', 'man' or the id of a prepared avatar "
            "(letters, digits, '-' and '_', at most 64)"
        )
    if kind == "string_type":
        return f"field '{field}' must be a string"
    return f"field '{field}': {error['msg']}"


def parse_config(data: str | bytes | dict[str, Any] | None) -> InterviewConfig:
    """Validate a config given as JSON text or a dict; raise ConfigError with one sentence."""
    if data is None or (isinstance(data, (str, bytes)) and not data.strip()):
        raise ConfigError("interview config is empty: candidate_name and role are required")
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as e:
            raise ConfigError(f"interview config is not valid JSON ({e.msg} at {e.pos})") from None
    if not isinstance(data, dict):
        raise ConfigError("interview config must be a JSON object")
    try:
        return InterviewConfig.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        raise ConfigError(f"invalid interview config: {_describe(first)}") from None
