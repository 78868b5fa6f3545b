"""The avatar service's watch stream and the agent's use of it, without a LiveKit server.

The service side runs the real aiohttp app in-process with a session that never joins a room.
The agent side (`ServiceAvatar`'s watch) follows it, and a copy of the service in a process of
its own (tests/avatar/watch_rig.py) that the tests kill -9 or stop, as an avatar service crashes
or hangs in production: the agent must give up on it at once (kill) or after WATCH_SILENCE_S
(hang), exactly once, and never when it closes the avatar itself or only its own loop stalled.
The avatar's audio output, once the avatar is lost, no longer waits on it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from livekit import rtc
from livekit.agents.voice.io import AudioOutput

from agent.avatar import (
    WATCH_SILENCE_S,
    AvatarServiceSettings,
    ReplayableAvatarOutput,
    ServiceAvatar,
)
from agent.ports import free_loopback_port
from avatar_worker.avatars import get_composer
from avatar_worker.protocol import EXTENSION_WATCH
from avatar_worker.service import WATCH_INTERVAL_S, AvatarService, ServiceOptions
from avatar_worker.session import RoomSession, SessionOptions

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret"
AUTH = {"Authorization": f"Bearer {SECRET}"}


def _session(service: AvatarService, session_id: str = "s1") -> RoomSession:
    """A session as the service holds it, that never joins a room."""
    options = SessionOptions("ws://127.0.0.1:1", "unused", avatar="woman", size=64)
    session = RoomSession(session_id, options, get_composer("woman", 64), service._forget)
    service.sessions[session_id] = session
    return session


@pytest.fixture
async def service() -> AsyncIterator[tuple[AvatarService, str]]:
    svc = AvatarService(ServiceOptions(secret=SECRET, capacity=2, preload=()))
    _session(svc)
    runner = web.AppRunner(svc.app())
    await runner.setup()
    port = free_loopback_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield svc, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _lines(resp: aiohttp.ClientResponse, n: int) -> list[dict]:
    return [json.loads(await resp.content.readline()) for _ in range(n)]


async def _until(check, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


# ---- the service's side ------------------------------------------------------------------


async def test_the_watch_needs_the_secret_and_a_known_session(service):
    _svc, url = service
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/sessions/s1/watch") as resp:
            assert resp.status == 401
        async with http.get(f"{url}/sessions/s1/watch", headers={"Authorization": "x"}) as resp:
            assert resp.status == 401
        async with http.get(f"{url}/sessions/nope/watch", headers=AUTH) as resp:
            assert resp.status == 404
            assert (await resp.json())["error"] == "no session nope"


async def test_the_session_info_announces_the_watch(service):
    svc, _url = service
    assert EXTENSION_WATCH in svc.sessions["s1"].info()["extensions"]


async def test_the_watch_beats_while_the_session_lives(service):
    svc, url = service
    async with aiohttp.ClientSession() as http:
        started = time.monotonic()
        async with http.get(f"{url}/sessions/s1/watch", headers=AUTH) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/x-ndjson"
            beats = await asyncio.wait_for(_lines(resp, 4), 10)
            took = time.monotonic() - started
            async with http.get(f"{url}/health") as health:
                assert (await health.json())["watchers"] == 1
    assert [b["beat"] for b in beats] == [0, 1, 2, 3]
    assert {b["state"] for b in beats} == {"connecting"}
    assert took >= 3 * WATCH_INTERVAL_S * 0.9  # paced, not a flood
    await _until(lambda: svc.watchers == 0, 5)  # a watcher that went away is let go


async def test_the_watch_ends_with_the_session_and_says_why(service):
    svc, url = service
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/sessions/s1/watch", headers=AUTH) as resp:
            await asyncio.wait_for(_lines(resp, 1), 10)
            async with http.delete(f"{url}/sessions/s1", headers=AUTH) as stop:
                assert stop.status == 200
            rest = [json.loads(line) async for line in resp.content]
    assert rest[-1] == {"state": "closed", "reason": "stopped by request"}
    assert all(m["state"] != "closed" for m in rest[:-1])
    assert svc.watchers == 0 and "s1" not in svc.sessions


async def test_a_stopping_service_ends_every_watch(service):
    svc, url = service
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/sessions/s1/watch", headers=AUTH) as resp:
            await asyncio.wait_for(_lines(resp, 1), 10)
            await svc.stop_all()
            rest = [json.loads(line) async for line in resp.content]
    assert rest[-1]["state"] == "closed"


# ---- the agent's side --------------------------------------------------------------------


class _Recorder:
    """Stands in for `ServiceAvatar.fall_back`: when and why it was called."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    def __call__(self, reason: str) -> None:
        self.calls.append((time.monotonic(), reason))


def _watching_avatar(url: str) -> tuple[ServiceAvatar, _Recorder]:
    avatar = ServiceAvatar(
        "woman", AvatarServiceSettings(service_url=url, secret=SECRET, request_timeout_s=2.0)
    )
    avatar._service_session = "s1"
    avatar._identity, avatar._agent_identity = "avatar-agent-x", "agent-x"
    recorder = _Recorder()
    avatar.fall_back = recorder  # type: ignore[method-assign]
    return avatar, recorder


async def _watch(avatar: ServiceAvatar) -> asyncio.Task[None]:
    """The agent's watch task, once the service has taken the watch request."""
    task = asyncio.create_task(avatar._watch_service())
    await asyncio.sleep(0.5)
    assert not task.done(), avatar.service_lost
    return task


@pytest.fixture
def rig() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The avatar service in a process of its own, holding session "s1"."""
    port = free_loopback_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "avatar" / "watch_rig.py"), str(port), SECRET],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait(10)


async def test_a_killed_service_is_noticed_from_its_connection_at_once(rig):
    proc, url = rig
    avatar, fell_back = _watching_avatar(url)
    task = await _watch(avatar)
    killed = time.monotonic()
    os.kill(proc.pid, signal.SIGKILL)
    await asyncio.wait_for(task, 10)
    assert len(fell_back.calls) == 1, fell_back.calls
    at, reason = fell_back.calls[0]
    # the connection, not the heartbeat's silence (WATCH_SILENCE_S), gave it away
    assert "connection" in reason and "heartbeat" not in reason, reason
    assert at - killed < WATCH_SILENCE_S, f"{at - killed:.2f} s: {reason}"
    assert avatar.service_lost == reason


async def test_a_hung_service_is_given_up_after_its_heartbeat_stops(rig):
    proc, url = rig
    avatar, fell_back = _watching_avatar(url)
    task = await _watch(avatar)
    stopped = time.monotonic()
    os.kill(proc.pid, signal.SIGSTOP)  # alive, connection open, silent
    await asyncio.wait_for(task, 10)
    assert len(fell_back.calls) == 1, fell_back.calls
    at, reason = fell_back.calls[0]
    assert reason.startswith("no heartbeat from the avatar service"), reason
    # not before its heartbeat was due three times; the upper bound only catches a watch that
    # waits for something else (a socket timeout, the room)
    assert WATCH_SILENCE_S - WATCH_INTERVAL_S <= at - stopped < 5.0, at - stopped


async def test_a_stall_of_the_agents_own_loop_is_not_blamed_on_the_service(rig):
    _proc, url = rig
    avatar, fell_back = _watching_avatar(url)
    task = await _watch(avatar)
    # this process's loop blocked (a long synchronous step); the service beats on meanwhile
    time.sleep(2 * WATCH_SILENCE_S)  # noqa: ASYNC251
    await asyncio.sleep(1.0)
    assert fell_back.calls == [] and not task.done()
    task.cancel()


async def test_the_service_ending_the_session_is_a_fallback_once(service):
    _svc, url = service
    avatar, fell_back = _watching_avatar(url)
    task = await _watch(avatar)
    async with aiohttp.ClientSession() as http, http.delete(f"{url}/sessions/s1", headers=AUTH):
        pass
    await asyncio.wait_for(task, 10)
    assert [r for _t, r in fell_back.calls] == [
        "the avatar service ended the session (stopped by request)"
    ]


async def test_a_session_the_service_does_not_know_is_a_fallback(service):
    _svc, url = service
    avatar, fell_back = _watching_avatar(url)
    avatar._service_session = "gone"
    await asyncio.wait_for(avatar._watch_service(), 10)
    assert [r for _t, r in fell_back.calls] == [
        "the avatar service lost the session (404: no session gone)"
    ]


async def test_closing_the_avatar_ends_the_watch_without_a_fallback(service):
    svc, url = service
    avatar, fell_back = _watching_avatar(url)
    avatar._service_watch = await _watch(avatar)
    assert svc.watchers == 1
    await avatar.aclose()  # the interview ends: the agent stops the session itself
    assert avatar._service_watch.done()
    assert fell_back.calls == [] and avatar.service_lost == ""
    assert "s1" not in svc.sessions  # it was told to stop
    await _until(lambda: svc.watchers == 0, 5)


# ---- the avatar's audio output once the avatar is lost -------------------------------------


class _SilentAvatar:
    """A participant whose RPCs are never answered: an avatar whose service hangs."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def perform_rpc(self, *, destination_identity: str, method: str, payload: str) -> str:
        self.calls.append(method)
        await asyncio.Event().wait()
        return "never"


class _Room(rtc.EventEmitter):
    """What DataStreamAudioOutput touches of a room before it is connected."""

    def __init__(self, participant: _SilentAvatar) -> None:
        super().__init__()
        self.local_participant = participant

    def isconnected(self) -> bool:
        return False


async def _output_with_a_segment(participant: _SilentAvatar) -> ReplayableAvatarOutput:
    out = ReplayableAvatarOutput(
        _Room(participant),  # type: ignore[arg-type]
        destination_identity="avatar-agent-x",
        sample_rate=24000,
    )
    frame = rtc.AudioFrame(np.zeros(240, np.int16).tobytes(), 24000, 1, 240)
    await AudioOutput.capture_frame(out, frame)  # one segment handed to the avatar, unfinished
    AudioOutput.flush(out)
    assert out._pending_playback_count == 1
    return out


async def test_a_lost_avatars_output_clears_without_asking_it():
    participant = _SilentAvatar()
    out = await _output_with_a_segment(participant)
    out.mark_lost()
    await asyncio.wait_for(out._clear_buffer_task(0.01, out.captured_playout_segments), 1)
    assert participant.calls == []
    finished = await asyncio.wait_for(out.wait_for_playout(), 1)
    assert finished.interrupted and out._pending_playback_count == 0
    # while an avatar not known lost is asked, and its silence holds the clear
    participant = _SilentAvatar()
    out = await _output_with_a_segment(participant)
    clearing = asyncio.create_task(out._clear_buffer_task(0.01, out.captured_playout_segments))
    await asyncio.sleep(0.5)
    assert participant.calls == ["lk.clear_buffer"] and not clearing.done()
    clearing.cancel()
