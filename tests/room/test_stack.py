"""`python -m agent stack`: a taken port is one clear line, before anything starts."""

from __future__ import annotations

import socket
import subprocess
import sys

from agent.stack import (
    Component,
    Stack,
    StackOptions,
    _ready_processes,
    _worker_ready,
    web_available,
)


def test_a_taken_port_is_one_clear_line_and_nothing_starts():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        free_port = free.getsockname()[1]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        argv = ["--livekit-port", str(free_port), "--avatar-port", str(port), "--no-web"]
        r = subprocess.run(
            [sys.executable, "-m", "agent", "stack", *argv],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port} for the avatar service" in lines[0]
    assert "Traceback" not in r.stderr


def test_the_stack_plan_starts_each_part_once_in_order(tmp_path):
    names = [c.name for c in Stack(StackOptions(data_dir=tmp_path)).plan()]
    expected = ["devserver", "avatar service", "interviewer worker"]
    assert names == expected + (["web app"] if web_available() else [])
    external = Stack(StackOptions(livekit_url="ws://127.0.0.1:1", web=False, data_dir=tmp_path))
    assert [c.name for c in external.plan()] == ["avatar service", "interviewer worker"]
    env = external.env()
    assert env["LIVEKIT_URL"] == "ws://127.0.0.1:1"
    assert env["AVATAR_SERVICE_URL"] == "http://127.0.0.1:8089"


class _Timeline(Stack):
    """Three stand-in components: `late` is ready 1 s after it starts, `after` needs it, `free`
    needs nothing. Each writes the time it started to a file and is ready when it exists."""

    def plan(self) -> list[Component]:
        d = self.options.data_dir

        def part(name: str, delay_s: float, needs: tuple[str, ...] = ()) -> Component:
            code = (
                "import pathlib, sys, time; t = time.time(); time.sleep(float(sys.argv[2])); "
                "pathlib.Path(sys.argv[1]).write_text(str(t)); time.sleep(60)"
            )
            mark = d / f"{name}.started"
            return Component(
                name,
                [sys.executable, "-c", code, str(mark), str(delay_s)],
                None,
                lambda c, m=mark: m.exists(),
                needs=needs,
            )

        return [part("late", 1.0), part("after", 0.0, needs=("late",)), part("free", 0.0)]


def test_parts_start_side_by_side_each_once_what_it_needs_is_ready(tmp_path):
    stack = _Timeline(StackOptions(data_dir=tmp_path))
    with stack:
        started = {
            c.name: float((tmp_path / f"{c.name}.started").read_text()) for c in stack.plan()
        }
        # stopped in the plan's reverse order, whatever order they became ready in
        assert [c.name for c in stack.components] == ["late", "after", "free"]
    assert started["free"] - started["late"] < 0.9  # did not wait for `late`
    assert started["after"] - started["late"] >= 1.0  # waited for `late` to be ready


def test_the_worker_is_ready_once_its_processes_have_their_models(monkeypatch):
    registered = "registered worker\n"
    ready = "process initialized\n"
    monkeypatch.delenv("INTERVIEW_IDLE_PROCESSES", raising=False)
    # the first interview would load the models
    assert not _worker_ready(registered, _ready_processes())
    assert _worker_ready(registered + ready, _ready_processes())
    monkeypatch.setenv("INTERVIEW_IDLE_PROCESSES", "2")
    assert not _worker_ready(registered + ready, _ready_processes())
    assert _worker_ready(registered + ready * 2, _ready_processes())
