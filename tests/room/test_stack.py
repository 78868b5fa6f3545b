"""`python -m agent stack`: a taken port is one clear line, before anything starts."""

from __future__ import annotations

import socket
import subprocess
import sys

from agent.stack import Stack, StackOptions, web_available


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
