"""The load this host's interviewer worker reports to LiveKit: its share of interviews in use.

LiveKit hands each new interview to a worker chosen at random, weighted by spare capacity
(1 - load), and never to one reporting a load of 1 or more; it does not retry another worker nor
dispatch again later (livekit-server pkg/service/agentservice.go, pkg/agent/client.go). So the
load must say how many more interviews this host can hold, steadily: livekit-agents' default, the
host's CPU use over a few seconds, reaches 1 for a moment whenever a Whisper decode, a reply's
speech or a process loading its models fills both cores of a small host, and a booking that
arrives then is lost for good (seen on the real server with a browser test beside the stack).

A worker is full at `FULL_LOAD`, 0.7, not at 1: livekit-server sends a job request only to
nodes whose workers have load under its `agents.target_load` (0.7 by default,
pkg/service/agentservice.go `JobRequestAffinity`), and livekit-agents' production
`load_threshold` is 0.7 too. So the load is FULL_LOAD times the larger of
- the interviews this worker runs over the interviews a host holds (`INTERVIEW_HOST_CAPACITY`,
  by default the avatar service's own default: one per usable CPU core), and
- the co-located avatar service's own share of its capacity,
and 1 when the avatar service is full, so such a host receives no interviews.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from .env import whole_number


def host_capacity(env: Mapping[str, str] | None = None, error: type[Exception] = ValueError) -> int:
    """How many interviews this host holds at once (`INTERVIEW_HOST_CAPACITY`, 1-1000); a bad
    value raises `error` with one sentence naming the setting."""
    env = os.environ if env is None else env
    named = whole_number(env, "INTERVIEW_HOST_CAPACITY", 0, 1, 1000, error)
    if named:
        return named
    from avatar_worker.service import default_capacity  # the same rule as the avatar service

    return default_capacity()


# livekit-server's default agents.target_load and livekit-agents' production load_threshold
FULL_LOAD = 0.7


def host_load(running: int, capacity: int, avatar_load: float) -> float:
    """The load to report: under FULL_LOAD while the host has room for one more interview,
    FULL_LOAD once it runs `capacity`, 1 when its avatar service is full."""
    if avatar_load >= 1.0:
        return 1.0
    share = max(running / max(capacity, 1), avatar_load, 0.0)
    return min(1.0, FULL_LOAD * share)


class HostLoad:
    """`HostLoad(capacity, avatar_load)(running)`: the worker's load function, bound to the host's
    capacity and a probe of the avatar service's load."""

    def __init__(self, capacity: int, avatar_load: Callable[[], float]) -> None:
        self.capacity = capacity
        self._avatar_load = avatar_load

    def __call__(self, running: int) -> float:
        return host_load(running, self.capacity, self._avatar_load())
