"""When the interviewer worker loads a spare process: once the host has room, not while
interviews are starting.

livekit-agents replaces a ready process the moment an interview takes it. A process loads the
VAD, the end-of-turn model and both languages' Whisper models before it is ready: about 1 s of
CPU on an idle host, and 4-14 s of one core beside running interviews on 2 cores, where it
competes with the greetings, the candidates' first answers and the avatar's frames (measured:
three interviews started together lost up to 425 video frames each in their first 20 s).

`SpareProcesses` holds the replacements back for `settle_s` after an interview starts, and
while one more busy core would take the host's CPU over `max_load`; then it lets the pool load
them one at a time. An interview that finds no ready process still gets one at once: the pool
always starts a process for a waiting job.

It works on livekit-agents' process pool (`AgentServer._proc_pool`), which has no public hook for
this: if the pool is not there, spares load as livekit-agents decides, and the worker logs it once.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from livekit.agents.utils.hw import get_cpu_monitor

from .env import number

logger = logging.getLogger("interview.spare_processes")

# what this uses of livekit-agents' ProcPool
_POOL_API = ("set_target_idle_processes", "target_idle_processes", "launch_job", "processes", "on")


@dataclass(frozen=True)
class SpareProcessOptions:
    # an interview's first seconds are its busiest: joining, the avatar's first frames, the
    # greeting's speech and video, and often the next interviews starting beside it
    settle_s: float = 20.0
    # how busy (0-1) the host's CPU may be with a spare loading, which takes about one core:
    # on 2 cores a spare loads below 40 % load, on 8 cores below 77 %
    max_load: float = 0.9

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> SpareProcessOptions:
        """INTERVIEW_SPARE_SETTLE_S and INTERVIEW_SPARE_MAX_LOAD, or one sentence naming the
        setting that is wrong."""
        return cls(
            settle_s=number(env, "INTERVIEW_SPARE_SETTLE_S", cls.settle_s, 0, 3600, SystemExit),
            max_load=number(env, "INTERVIEW_SPARE_MAX_LOAD", cls.max_load, 0, 1, SystemExit),
        )


class SpareProcesses:
    """Caps how many ready processes the pool keeps: none while interviews are starting or the
    host has no core to spare, otherwise one more than it has (loaded or loading) at a time, up
    to what livekit-agents asks for (its idle default, or fewer under load in production)."""

    def __init__(
        self,
        options: SpareProcessOptions | None = None,
        *,
        cores: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._opts = options or SpareProcessOptions()
        self._core_share = 1.0 / (cores or get_cpu_monitor().cpu_count())
        self._clock = clock
        self._pool: Any = None
        self._set_target: Callable[[int], None] | None = None
        self._requested = 0
        self._loading: set[int] = set()
        self._last_start = -float("inf")
        self._held = False
        self._warned = False

    @property
    def held(self) -> bool:
        """Whether spares are being held back right now."""
        return self._held

    def update(self, server: Any, cpu_load: float) -> None:
        """Called on every load report (every 0.5 s): watch the server's pool once it exists,
        and hold spares back or let the next one load."""
        if self._pool is None and not self._watch(getattr(server, "_proc_pool", None)):
            return
        hold = self._clock() - self._last_start < self._opts.settle_s
        hold = hold or cpu_load + self._core_share > self._opts.max_load
        if hold != self._held:
            logger.debug(
                "spare interview processes held back" if hold else "a spare process may load",
                extra={"cpu_load": round(cpu_load, 2), "spares": self._requested},
            )
        self._held = hold
        self._apply()

    def _watch(self, pool: Any) -> bool:
        # the load reports start after the pool does, so a pool missing here is one this
        # livekit-agents version keeps elsewhere
        if not all(hasattr(pool, a) for a in _POOL_API):
            if not self._warned:
                logger.warning("spare processes load as livekit-agents decides: no pool to watch")
                self._warned = True
            return False
        self._pool = pool
        self._set_target = pool.set_target_idle_processes
        self._requested = pool.target_idle_processes
        # livekit-agents sets its own target on every load report in production; it becomes
        # the request this caps
        pool.set_target_idle_processes = self._on_request
        # before the pool takes a ready process (its "launched" event comes after, by when its
        # 0.1 s loop may already have started the replacement)
        launch_job = pool.launch_job

        async def _launch_job(info: Any) -> None:
            self._on_interview_started()
            await launch_job(info)

        pool.launch_job = _launch_job
        pool.on("process_created", lambda proc: self._loading.add(id(proc)))
        pool.on("process_ready", self._on_loaded)
        pool.on("process_closed", self._on_loaded)
        return True

    def _on_request(self, spares: int) -> None:
        self._requested = spares
        self._apply()

    def _on_interview_started(self) -> None:
        self._last_start = self._clock()
        self._held = True
        self._apply()

    def _on_loaded(self, proc: Any) -> None:
        self._loading.discard(id(proc))
        self._apply()

    def _apply(self) -> None:
        if self._set_target is None:
            return
        if self._held:
            self._set_target(0)
            return
        # the pool starts (target - processes ready or loading) at once: it may start one more
        # only when none is loading
        spares = sum(1 for p in self._pool.processes if p.running_job is None)
        self._set_target(min(self._requested, spares + (0 if self._loading else 1)))
