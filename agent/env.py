"""Numeric settings (and listen addresses) read from the environment: the value in range, or one
sentence naming the setting. The interviewer's providers and the web API read theirs through it."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T", int, float)


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
    return _in_range(env, name, default, low, high, error, int, "a whole number")


def number(
    env: Mapping[str, str],
    name: str,
    default: float,
    low: float,
    high: float,
    error: type[Exception] = ValueError,
) -> float:
    """The number in env[name] (`default` when unset or blank), from `low` to `high`; anything
    else raises `error` with one sentence naming `name`."""
    return _in_range(env, name, default, low, high, error, float, "a number")


def _in_range(
    env: Mapping[str, str],
    name: str,
    default: T,
    low: T,
    high: T,
    error: type[Exception],
    parse: type[T],
    what: str,
) -> T:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = parse(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise error(f"{name} must be {what} from {low} to {high}, not {raw!r}")
    return value


def listen_address(
    env: Mapping[str, str], name: str, default: str, error: type[Exception] = ValueError
) -> str:
    """The IP address (or `localhost`) in env[name] for a server to listen on, `default` when
    unset or blank; anything else raises `error` with one sentence naming `name`."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if raw != "localhost":
        try:
            ipaddress.ip_address(raw)
        except ValueError:
            raise error(
                f"{name} must be an IP address to listen on (127.0.0.1, 0.0.0.0, ::), not {raw!r}"
            ) from None
    return raw
