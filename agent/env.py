"""Whole-number settings read from the environment: the value in range, or one sentence naming
the setting. The interviewer's providers and the web API read theirs through it."""

from __future__ import annotations

from collections.abc import Mapping


def whole_number(
    env: Mapping[str, str],
    name: str,
    default: int,
    low: int,
    high: int,
    error: type[Exception] = ValueError,
) -> int:
    """The whole number in env[name] (`default` when unset or blank), from `low` to `high`;
    anything else raises `error` with one sentence naming `name`."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise error(f"{name} must be a whole number from {low} to {high}, not {raw!r}")
    return value
