"""The worker's HTTP server (livekit-agents': `GET /` health, `GET /worker` its name, jobs and
load) listens on loopback unless INTERVIEW_HEALTH_HOST opens it, e.g. for a container's health
check. It listened on every interface before.

Each case runs the real worker (agent/worker.py's `server`, unregistered: no LiveKit server, no
interview processes kept ready) in a process of its own, which reports where its HTTP server
listens and whether it answers on loopback and on this host's own network address.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from agent.env import listen_address

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import asyncio, json, socket, sys, urllib.request
from livekit.agents.worker import ServerEnvOption
from agent import worker

server = worker.server
server._num_idle_processes = ServerEnvOption(dev_default=0, prod_default=0)
server._port = 0

def answers(host: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/worker", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False

async def main() -> None:
    started = asyncio.Event()
    server.on("worker_started", started.set)
    task = asyncio.create_task(server.run(devmode=True, unregistered=True))
    await asyncio.wait_for(started.wait(), 60)
    http = server._http_server
    port = http.port
    outside = sys.argv[1]
    report = {
        "bound": sorted(a[0] for a in http._runner.addresses),
        "loopback": await asyncio.to_thread(answers, "127.0.0.1", port),
        "outside": await asyncio.to_thread(answers, outside, port) if outside else None,
    }
    print("REPORT " + json.dumps(report), flush=True)
    await server.aclose()
    task.cancel()

asyncio.run(main())
"""


def _own_address() -> str:
    """This host's address on its network (not loopback), or "" when it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # no packet is sent: only picks the route
            address = s.getsockname()[0]
        except OSError:
            return ""
    return "" if address.startswith("127.") else address


def _probe(host_setting: str | None) -> dict:
    env = {**os.environ}
    for name in ("INTERVIEW_HEALTH_HOST", "LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        env.pop(name, None)  # unregistered: no LiveKit server to know
    if host_setting is not None:
        env["INTERVIEW_HEALTH_HOST"] = host_setting
    out = subprocess.run(
        [sys.executable, "-c", PROBE, _own_address()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("REPORT ")]
    assert lines, out.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("REPORT "))


@pytest.mark.integration
def test_the_health_server_listens_on_loopback_by_default():
    report = _probe(None)
    assert report["bound"] == ["127.0.0.1"]
    assert report["loopback"] is True
    if report["outside"] is not None:
        assert report["outside"] is False  # not reachable from the network


@pytest.mark.integration
def test_the_health_server_opens_to_the_network_when_set():
    report = _probe("0.0.0.0")
    assert report["bound"] == ["0.0.0.0"]
    assert report["loopback"] is True
    if report["outside"] is not None:
        assert report["outside"] is True


def test_a_bad_health_host_names_the_setting():
    with pytest.raises(ValueError, match="INTERVIEW_HEALTH_HOST must be an IP address"):
        listen_address({"INTERVIEW_HEALTH_HOST": "all"}, "INTERVIEW_HEALTH_HOST", "127.0.0.1")
    assert listen_address({}, "INTERVIEW_HEALTH_HOST", "127.0.0.1") == "127.0.0.1"
    assert listen_address({"INTERVIEW_HEALTH_HOST": " :: "}, "INTERVIEW_HEALTH_HOST", "") == "::"
