"""Spare interview processes load once the host has room, not while interviews start."""

from __future__ import annotations

import asyncio
import multiprocessing

import pytest
from livekit.agents.ipc.proc_pool import ProcPool
from livekit.agents.job import JobExecutorType

from agent.spare_processes import SpareProcesses, SpareProcessOptions


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Server:
    def __init__(self, pool: ProcPool | None) -> None:
        self._proc_pool = pool


async def _noop(*_args: object) -> None:
    return None


def _pool(idle: int) -> ProcPool:
    """livekit-agents' own pool, not started: no process is spawned."""
    return ProcPool(
        initialize_process_fnc=lambda _proc: None,
        job_entrypoint_fnc=_noop,
        session_end_fnc=None,
        simulation_end_fnc=None,
        num_idle_processes=idle,
        initialize_timeout=10.0,
        close_timeout=1.0,
        session_end_timeout=1.0,
        inference_executor=None,
        job_executor_type=JobExecutorType.THREAD,
        mp_ctx=multiprocessing.get_context("spawn"),
        memory_warn_mb=0,
        memory_limit_mb=0,
        http_proxy=None,
        loop=asyncio.get_running_loop(),
    )


class _Proc:
    def __init__(self, job: object | None = None) -> None:
        self.running_job = job


async def test_spares_are_held_while_an_interview_starts_then_load_one_at_a_time():
    clock = _Clock()
    pool = _pool(idle=2)  # livekit-agents' own: the events and the target are its
    procs: list[_Proc] = pool.processes  # type: ignore[assignment]
    launched: list[object] = []

    async def _launch(info: object) -> None:
        # the hold is on before the pool takes a ready process
        assert pool.target_idle_processes == 0
        launched.append(info)

    pool.launch_job = _launch  # type: ignore[method-assign]
    spares = SpareProcesses(SpareProcessOptions(settle_s=20.0, max_load=0.9), cores=2, clock=clock)
    server = _Server(pool)

    spares.update(server, cpu_load=0.1)
    assert pool.target_idle_processes == 1 and not spares.held
    spare = _Proc()
    procs.append(spare)
    pool.emit("process_created", spare)
    spares.update(server, cpu_load=0.1)
    assert pool.target_idle_processes == 1  # one loading: no second at once
    pool.emit("process_ready", spare)
    assert pool.target_idle_processes == 2

    await pool.launch_job("job")  # type: ignore[arg-type]
    assert launched == ["job"]
    spare.running_job = "job"
    assert pool.target_idle_processes == 0 and spares.held
    clock.now += 19.0
    spares.update(server, cpu_load=0.1)
    assert pool.target_idle_processes == 0
    clock.now += 1.5
    spares.update(server, cpu_load=0.1)
    assert pool.target_idle_processes == 1 and not spares.held


async def test_spares_wait_for_a_free_core_and_livekit_requests_are_capped_not_lost():
    pool = _pool(idle=2)
    spares = SpareProcesses(SpareProcessOptions(settle_s=0.0, max_load=0.9), cores=2)
    server = _Server(pool)

    # 0.5 busy + one core of 2 loading a spare would be over 0.9
    spares.update(server, cpu_load=0.5)
    assert pool.target_idle_processes == 0 and spares.held
    # production: livekit-agents sets its own target from the load on every report
    pool.set_target_idle_processes(2)
    assert pool.target_idle_processes == 0
    spares.update(server, cpu_load=0.3)
    assert pool.target_idle_processes == 1
    pool.set_target_idle_processes(0)
    assert pool.target_idle_processes == 0


def test_without_a_pool_to_watch_nothing_changes():
    spares = SpareProcesses()
    spares.update(_Server(None), cpu_load=0.9)
    assert not spares.held


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INTERVIEW_SPARE_SETTLE_S": "soon"}, "INTERVIEW_SPARE_SETTLE_S"),
        ({"INTERVIEW_SPARE_MAX_LOAD": "1.5"}, "INTERVIEW_SPARE_MAX_LOAD"),
    ],
)
def test_bad_settings_name_themselves(env: dict[str, str], message: str):
    with pytest.raises(SystemExit, match=message):
        SpareProcessOptions.from_env(env)


def test_settings_are_read():
    opts = SpareProcessOptions.from_env(
        {"INTERVIEW_SPARE_SETTLE_S": "5", "INTERVIEW_SPARE_MAX_LOAD": "0.5"}
    )
    assert opts == SpareProcessOptions(settle_s=5.0, max_load=0.5)
