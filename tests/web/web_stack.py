"""The whole local stack for the browser tests: a LiveKit server (the `livekit_server` fixture),
the avatar service, the interviewer worker and `python -m web`, each its own process, as a person
on this machine would run them (imported by module name, like web_support)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import httpx
import pytest

from agent.ports import free_loopback_port

ROOT = pathlib.Path(__file__).resolve().parents[2]


class LiveKitServerInfo(Protocol):  # the `livekit_server` fixture's (tests/conftest.py)
    url: str
    api_key: str
    api_secret: str
    log_path: pathlib.Path

    @property
    def real(self) -> bool: ...


@dataclass(frozen=True)
class Stack:
    web_url: str
    data_dir: pathlib.Path
    logs: dict[str, pathlib.Path]
    procs: dict[str, subprocess.Popen]
    livekit: LiveKitServerInfo

    def tail(self) -> str:
        return "\n".join(
            f"--- {name}\n{path.read_text(errors='replace')[-1500:]}"
            for name, path in self.logs.items()
        )


def _wait_http(url: str, proc: subprocess.Popen, log: pathlib.Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args} exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} did not answer within {timeout:.0f} s:\n{log.read_text()[-2000:]}")


def _wait_log(text: str, proc: subprocess.Popen, log: pathlib.Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args} exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        if text in log.read_text(errors="replace"):
            return
        time.sleep(0.3)
    pytest.fail(f"'{text}' not logged within {timeout:.0f} s:\n{log.read_text()[-2000:]}")


@contextmanager
def running_stack(
    livekit_server: LiveKitServerInfo, base: pathlib.Path, env: Mapping[str, str] | None = None
) -> Iterator[Stack]:
    """Start the avatar service, a worker and the web app against `livekit_server`, with data
    and logs under `base` and `env` on top of the usual settings; stop them all on exit."""
    if not (ROOT / "web" / "client" / "dist" / "index.html").is_file():
        pytest.fail("the browser client is not built: run scripts/setup.sh")
    data_dir = base / "data"
    avatar_port, web_port = free_loopback_port(), free_loopback_port()
    full_env = {
        **os.environ,
        "LIVEKIT_URL": livekit_server.url,
        "LIVEKIT_API_KEY": livekit_server.api_key,
        "LIVEKIT_API_SECRET": livekit_server.api_secret,
        "AVATAR_SERVICE_URL": f"http://127.0.0.1:{avatar_port}",
        "INTERVIEW_DATA_DIR": str(data_dir),
        "INTERVIEW_END_GRACE_S": "20",
        # the tests book interviews back to back, and a finished one may hold its place for the
        # rejoin window: room for a few, so LiveKit never finds this host full
        "AVATAR_SERVICE_CAPACITY": "4",
        "INTERVIEW_HOST_CAPACITY": "4",
        **(env or {}),
    }
    commands = {
        "avatar": ["-m", "avatar_worker", "serve", "--port", str(avatar_port)],
        # dev mode: no CPU-load threshold (shared CI cores), no reload
        "agent": ["-m", "agent", "dev", "--no-reload", "--log-level", "info"],
        "web": ["-m", "web", "--port", str(web_port)],
    }
    procs: dict[str, subprocess.Popen] = {}
    logs = {name: base / f"{name}.log" for name in commands}
    try:
        for name, args in commands.items():
            with open(logs[name], "wb") as log:
                procs[name] = subprocess.Popen(
                    [sys.executable, *args],
                    cwd=ROOT,
                    env=full_env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        _wait_http(f"http://127.0.0.1:{avatar_port}/health", procs["avatar"], logs["avatar"], 180)
        _wait_http(f"http://127.0.0.1:{web_port}/health", procs["web"], logs["web"], 120)
        _wait_log("registered worker", procs["agent"], logs["agent"], 240)
        yield Stack(f"http://127.0.0.1:{web_port}", data_dir, logs, procs, livekit_server)
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def session_auth(page, session_id: str) -> dict[str, str]:
    """The `Authorization` header of the page's own booking: its key is kept in the tab."""
    stored = page.evaluate(
        "(id) => JSON.parse(sessionStorage.getItem('session:' + id))", session_id
    )
    assert stored and stored.get("session_key"), f"no key kept for {session_id}: {stored}"
    return {"Authorization": f"Bearer {stored['session_key']}"}


ARTIFACTS = ROOT / "test-artifacts" / "web"


def shot(page, name: str, full_page: bool = False) -> None:
    """A screenshot of the page into test-artifacts/web/, to look at after the run."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def wait_until(page, predicate, timeout_s: float, what: str, stack: Stack) -> None:
    """Poll `predicate` every 0.5 s; past `timeout_s` a screenshot and a failure naming `what`
    with the stack's log tails."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        page.wait_for_timeout(500)
    shot(page, f"failed_{what.replace(' ', '_')}")
    pytest.fail(f"{what} did not happen within {timeout_s:.0f} s\n{stack.tail()}")
