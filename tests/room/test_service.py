"""The avatar service's control API and the agent's view of it, without a LiveKit server.

The real aiohttp app runs in-process on a free port: health, the shared secret, request
validation (sizes, avatar ids never paths), refusal at capacity (a start waiting for its
avatar's build included), what no route gives away (portrait ids, images); and the agent side
(`ServiceAvatar`, the worker load) against it, an unreachable service, a full one and one still
building the avatar.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from livekit import rtc

from agent import avatar as agent_avatar
from agent.avatar import AvatarServiceSettings, AvatarUnavailable, ServiceAvatar
from agent.ports import free_loopback_port
from avatar_worker import avatars
from avatar_worker.service import (
    DEFAULT_VIDEO_DELAY_MS,
    MAX_SESSION_SIZE,
    AvatarService,
    ServiceConfigError,
    ServiceOptions,
    cgroup_cpu_quota,
    default_capacity,
    is_loopback,
)


async def _serve(service: AvatarService) -> AsyncIterator[str]:
    runner = web.AppRunner(service.app())
    await runner.setup()
    port = free_loopback_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def service() -> AsyncIterator[tuple[AvatarService, str]]:
    svc = AvatarService(ServiceOptions(secret="s3cret", capacity=2, preload=()))
    async for url in _serve(svc):
        yield svc, url


async def test_health_is_public_and_reports_capacity_and_load(service):
    _svc, url = service
    async with aiohttp.ClientSession() as http, http.get(f"{url}/health") as resp:
        assert resp.status == 200
        health = await resp.json()
    assert health["status"] == "ok"
    assert health["sessions"] == 0 and health["capacity"] == 2 and health["load"] == 0.0
    assert "woman" in health["avatars"] and "man" in health["avatars"]


async def test_control_requests_need_the_shared_secret(service):
    _svc, url = service
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/sessions") as resp:
            assert resp.status == 401
        async with http.get(f"{url}/sessions", headers={"Authorization": "Bearer nope"}) as resp:
            assert resp.status == 401
        async with http.get(f"{url}/sessions", headers={"Authorization": "Bearer s3cret"}) as resp:
            assert resp.status == 200
            assert await resp.json() == {"sessions": []}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"token": "t"}, "livekit_url"),
        ({"livekit_url": "ws://127.0.0.1:1"}, "token"),
        ({"livekit_url": "ws://127.0.0.1:1", "token": "t", "size": 102}, "size"),
        ({"livekit_url": "ws://127.0.0.1:1", "token": "t", "size": 2048}, "size"),
        ({"livekit_url": "ws://127.0.0.1:1", "token": "t", "fps": 500}, "fps"),
        ({"livekit_url": "ws://127.0.0.1:1", "token": "t", "colour": "red"}, "colour"),
        ({"livekit_url": "ws://127.0.0.1:1", "token": "t", "avatar": "nobody"}, "nobody"),
    ],
)
async def test_bad_session_requests_name_the_field(service, body, needle):
    _svc, url = service
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/sessions", json=body, headers={"Authorization": "Bearer s3cret"}) as resp,
    ):
        assert resp.status == 400
        assert needle in (await resp.json())["error"]


async def test_a_full_service_refuses_with_503_and_a_reason(service):
    svc, url = service
    svc.pending = 2  # two sessions starting: the capacity is taken
    body = {"livekit_url": "ws://127.0.0.1:1", "token": "t"}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{url}/sessions", json=body, headers={"Authorization": "Bearer s3cret"}
        ) as resp:
            assert resp.status == 503
            refusal = await resp.json()
        async with http.get(f"{url}/health") as resp:
            health = await resp.json()
    assert refusal["reason"] == "capacity" and "capacity" in refusal["error"]
    assert health["status"] == "full" and health["load"] == 1.0


async def test_an_unreachable_livekit_server_is_a_clear_502(service):
    _svc, url = service
    body = {"livekit_url": f"ws://127.0.0.1:{free_loopback_port()}", "token": "t"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/sessions", json=body, headers={"Authorization": "Bearer s3cret"}) as resp,
    ):
        assert resp.status == 502
        assert "could not join" in (await resp.json())["error"]


def test_no_secret_means_loopback_only(monkeypatch):
    monkeypatch.delenv("AVATAR_SERVICE_SECRET", raising=False)
    assert ServiceOptions.from_env("127.0.0.1", 8089).secret == ""
    with pytest.raises(ServiceConfigError, match="AVATAR_SERVICE_SECRET"):
        ServiceOptions.from_env("0.0.0.0", 8089)
    monkeypatch.setenv("AVATAR_SERVICE_SECRET", "x")
    assert ServiceOptions.from_env("0.0.0.0", 8089).secret == "x"
    assert is_loopback("::1") and is_loopback("localhost") and not is_loopback("10.0.0.1")


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({"cpu.max": "200000 100000\n"}, 2.0),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "150000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1.5),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu.max": "garbled"}, None),
        ({}, None),
    ],
)
def test_a_container_cpu_quota_is_read_from_either_cgroup_version(tmp_path, files, quota):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cpu_quota(tmp_path) == quota


def test_the_default_capacity_is_a_session_per_usable_core(tmp_path, monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(8)))
    assert default_capacity(tmp_path) == 8  # no quota
    (tmp_path / "cpu.max").write_text("350000 100000")
    assert default_capacity(tmp_path) == 3  # a 3.5-core container
    (tmp_path / "cpu.max").write_text("50000 100000")
    assert default_capacity(tmp_path) == 1  # never zero
    monkeypatch.delenv("AVATAR_SERVICE_CAPACITY", raising=False)
    assert ServiceOptions.from_env("127.0.0.1", 8089).capacity == default_capacity()
    monkeypatch.setenv("AVATAR_SERVICE_CAPACITY", "7")
    assert ServiceOptions.from_env("127.0.0.1", 8089).capacity == 7


@pytest.mark.parametrize("raw", ["-1", "201", "70.5", "seventy", ""])
def test_a_bad_video_delay_names_the_setting(monkeypatch, raw):
    monkeypatch.setenv("AVATAR_VIDEO_DELAY_MS", raw)
    with pytest.raises(ServiceConfigError, match=r"AVATAR_VIDEO_DELAY_MS .* 0 to 200"):
        ServiceOptions.from_env("127.0.0.1", 8089)


def test_the_video_delay_defaults_and_accepts_whole_milliseconds(monkeypatch):
    monkeypatch.delenv("AVATAR_VIDEO_DELAY_MS", raising=False)
    assert ServiceOptions.from_env("127.0.0.1", 8089).video_delay_ms == DEFAULT_VIDEO_DELAY_MS
    for raw, ms in (("0", 0), ("200", 200), ("40", 40)):
        monkeypatch.setenv("AVATAR_VIDEO_DELAY_MS", raw)
        assert ServiceOptions.from_env("127.0.0.1", 8089).video_delay_ms == ms


def test_serve_cli_refuses_a_public_address_without_a_secret(monkeypatch):
    monkeypatch.delenv("AVATAR_SERVICE_SECRET", raising=False)
    r = subprocess.run(
        [sys.executable, "-m", "avatar_worker", "serve", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "AVATAR_SERVICE_SECRET" in lines[0]


# ---- the agent's side ---------------------------------------------------------------------


def _settings(url: str, secret: str = "s3cret") -> AvatarServiceSettings:
    return AvatarServiceSettings(service_url=url, secret=secret, request_timeout_s=2.0)


async def test_the_agent_treats_an_unreachable_service_as_audio_only():
    avatar = ServiceAvatar("woman", _settings(f"http://127.0.0.1:{free_loopback_port()}"))
    avatar._identity, avatar._agent_identity = "avatar-agent-x", "agent-x"
    with pytest.raises(AvatarUnavailable, match="unreachable"):
        await avatar._request_session("room-1")


async def test_the_agent_treats_a_full_service_as_audio_only(service):
    svc, url = service
    svc.pending = 2
    avatar = ServiceAvatar("woman", _settings(url))
    avatar._identity, avatar._agent_identity = "avatar-agent-x", "agent-x"
    with pytest.raises(AvatarUnavailable, match="at capacity"):
        await avatar._request_session("room-1")


def test_the_avatar_token_publishes_on_behalf_of_the_agent():
    from livekit import api

    avatar = ServiceAvatar("woman", _settings("http://127.0.0.1:1"))
    avatar._identity, avatar._agent_identity = "avatar-agent-x", "agent-x"
    claims = api.TokenVerifier("devkey", "secret").verify(avatar._token("room-1"))
    assert claims.identity == "avatar-agent-x"
    assert claims.kind == "agent"
    assert claims.attributes == {"lk.publish_on_behalf": "agent-x"}
    assert claims.video.room == "room-1" and claims.video.room_join
    assert claims.video.can_publish and claims.video.can_publish_data


async def test_worker_load_follows_the_avatar_service(service, monkeypatch):
    svc, url = service
    monkeypatch.setattr(agent_avatar, "_HEALTH", agent_avatar._HealthCache())
    settings = _settings(url)
    assert await asyncio.to_thread(agent_avatar.avatar_service_load, settings, 0.0) == 0.0
    svc.pending = 1
    assert await asyncio.to_thread(agent_avatar.avatar_service_load, settings, 0.0) == 0.5
    svc.pending = 2
    assert await asyncio.to_thread(agent_avatar.avatar_service_load, settings, 0.0) == 1.0
    # unreachable: interviews still run (audio-only), so it does not block dispatch
    dead = _settings(f"http://127.0.0.1:{free_loopback_port()}")
    assert await asyncio.to_thread(agent_avatar.avatar_service_load, dead, 0.0) == 0.0


async def test_the_agent_keeps_its_avatar_through_its_own_rejoin_but_not_a_real_departure():
    """While the agent's connection is rebuilt the SDK reports every participant gone and back:
    that is no reason to drop the avatar. After the rejoin, an avatar really gone is."""

    class _Room:
        def __init__(self) -> None:
            self.remote_participants: dict[str, object] = {"avatar-agent-x": object()}
            self.connection_state = rtc.ConnectionState.CONN_CONNECTED

    class _Participant:
        identity = "avatar-agent-x"

    avatar = ServiceAvatar("woman", _settings("http://127.0.0.1:1"))
    avatar._identity = "avatar-agent-x"
    avatar._room = _Room()  # type: ignore[assignment]
    joined = asyncio.get_running_loop().create_future()
    joined.set_result(None)
    avatar._join_watch = joined  # type: ignore[assignment]
    reasons: list[str] = []
    avatar.fall_back = reasons.append  # type: ignore[method-assign]

    avatar._room.connection_state = rtc.ConnectionState.CONN_RECONNECTING  # type: ignore[union-attr]
    avatar._on_participant_disconnected(_Participant())  # type: ignore[arg-type]
    avatar._room.connection_state = rtc.ConnectionState.CONN_CONNECTED  # type: ignore[union-attr]
    avatar._on_reconnected()
    assert reasons == []  # back with the avatar still there

    avatar._on_participant_disconnected(_Participant())  # type: ignore[arg-type]
    assert reasons == ["the avatar left the room"]

    avatar._room.remote_participants.clear()  # type: ignore[union-attr]
    avatar._on_reconnected()
    assert reasons[-1] == "the avatar was gone when the agent's connection came back"


# ---- what the service takes and what it gives away ----------------------------------------
SECRET = {"Authorization": "Bearer s3cret"}


def _portrait(avatar_id: str = "p-0123456789ab") -> tuple[str, bytes]:
    """A prepared portrait's files as the web API's upload leaves them (contents unchecked
    here: only whether the id names one)."""
    directory = avatars.avatars_dir() / avatar_id
    directory.mkdir(parents=True)
    (directory / "portrait.json").write_text("{}")
    png = b"\x89PNG\r\n\x1a\n-candidate-face-"
    (directory / "source.png").write_bytes(png)
    return avatar_id, png


async def test_a_size_beyond_the_maximum_is_refused_naming_the_field(service):
    _svc, url = service
    body = {"livekit_url": "ws://127.0.0.1:1", "token": "t", "size": MAX_SESSION_SIZE + 4}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/sessions", json=body, headers=SECRET) as resp,
    ):
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert error.startswith("size ") and str(MAX_SESSION_SIZE) in error


async def test_avatars_are_ids_never_paths_even_with_the_secret(service, tmp_path):
    _svc, url = service
    avatar_id, _ = _portrait()
    photo = tmp_path / "face.png"
    photo.write_bytes(b"not read")
    paths = [
        str(photo),  # an image on the service's disk
        str(avatars.avatars_dir() / avatar_id),  # the prepared portrait by its path
        f"../avatars/{avatar_id}",
        "/etc/passwd",
        "./woman",
    ]
    async with aiohttp.ClientSession() as http:
        for path in paths:
            body = {"livekit_url": "ws://127.0.0.1:1", "token": "t", "avatar": path}
            async with http.post(f"{url}/sessions", json=body, headers=SECRET) as resp:
                assert resp.status == 400, path
                error = (await resp.json())["error"]
            assert error.startswith("avatar ") and "not a path" in error, (path, error)


async def test_an_unknown_avatar_id_lists_the_built_ins_not_the_portraits(service):
    _svc, url = service
    avatar_id, _ = _portrait()
    body = {"livekit_url": "ws://127.0.0.1:1", "token": "t", "avatar": "p-fffffffffff0"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/sessions", json=body, headers=SECRET) as resp,
    ):
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert "p-fffffffffff0" in error and "woman, man" in error and avatar_id not in error


async def test_no_route_lists_a_portrait_or_serves_its_image(service):
    """Every route of the service, with and without the secret: the public health lists the
    built-in avatars only, and nothing answers with a prepared portrait's image."""
    svc, url = service
    avatar_id, png = _portrait()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/health") as resp:
            health = await resp.json()
        assert health["avatars"] == ["woman", "man"]
        for route in svc.app().router.routes():
            info = route.resource.get_info() if route.resource else {}
            path = info.get("path") or info.get("formatter", "")
            path = path.replace("{session_id}", avatar_id)
            for candidate in (path, f"/avatars/{avatar_id}/source.png", f"/{avatar_id}"):
                for headers in ({}, SECRET):
                    async with http.request(
                        route.method, f"{url}{candidate}", headers=headers
                    ) as r:
                        body = await r.read()
                        assert not r.content_type.startswith("image/"), candidate
                        assert png not in body, candidate
                        if candidate != "/health" and r.status < 400:
                            assert avatar_id not in body.decode(errors="replace"), candidate


async def _slow_builds(monkeypatch, delay_s: float) -> asyncio.Event:
    """Test double: every build the service starts takes `delay_s` longer (a portrait drawn
    for the first time on a busy host); the event is set when a build has ended."""
    real = avatars._build_elsewhere
    built = asyncio.Event()

    async def slow(avatar_id: str, size: int):  # type: ignore[no-untyped-def]
        await asyncio.sleep(delay_s)
        try:
            return await real(avatar_id, size)
        finally:
            built.set()

    monkeypatch.setattr(avatars, "_build_elsewhere", slow)
    return built


async def test_a_start_waiting_for_its_avatar_holds_its_place(monkeypatch):
    """Before, a start counted against the capacity only once its avatar was built: while a
    portrait was drawn for seconds, more starts were let in than the host can run."""
    await _slow_builds(monkeypatch, 2.0)
    avatars.release_composer("man", 136)
    svc = AvatarService(ServiceOptions(secret="s3cret", capacity=1, preload=()))
    async for url in _serve(svc):
        body = {"livekit_url": f"ws://127.0.0.1:{free_loopback_port()}", "token": "t"}
        async with aiohttp.ClientSession() as http:
            first = asyncio.ensure_future(
                http.post(
                    f"{url}/sessions", json={**body, "avatar": "man", "size": 136}, headers=SECRET
                )
            )
            await asyncio.sleep(0.5)  # its avatar is being built
            async with http.get(f"{url}/health") as resp:
                health = await resp.json()
            assert health["starting"] == 1 and health["status"] == "full"
            async with http.post(f"{url}/sessions", json=body, headers=SECRET) as resp:
                assert resp.status == 503 and (await resp.json())["reason"] == "capacity"
            async with await first as resp:
                assert resp.status == 502  # built, then the (absent) LiveKit server
        assert svc.pending == 0 and not svc.starting
    avatars.release_composer("man", 136)


async def test_a_start_whose_requester_left_during_the_build_does_not_join(monkeypatch):
    built = await _slow_builds(monkeypatch, 1.5)
    avatars.release_composer("man", 140)
    joins: list[str] = []

    async def connect(session):  # type: ignore[no-untyped-def]
        joins.append(session.session_id)

    monkeypatch.setattr("avatar_worker.service.RoomSession.connect", connect)
    svc = AvatarService(ServiceOptions(secret="s3cret", capacity=2, preload=()))
    async for url in _serve(svc):
        body = {"livekit_url": "ws://127.0.0.1:1", "token": "t", "avatar": "man", "size": 140}
        async with aiohttp.ClientSession() as http:
            with pytest.raises(TimeoutError):
                async with http.post(
                    f"{url}/sessions",
                    json=body,
                    headers=SECRET,
                    timeout=aiohttp.ClientTimeout(total=0.5),
                ):
                    pass
        await asyncio.wait_for(built.wait(), 30)
        await asyncio.sleep(0.5)  # the start goes on (or not) with its avatar
        assert svc.pending == 0 and not svc.sessions and not joins
    avatars.release_composer("man", 140)


async def test_the_agent_waits_for_its_avatar_to_be_built(monkeypatch):
    """A portrait drawn for the first time took longer than the agent's 3 s request timeout:
    the interview went audio-only for good (and the avatar joined anyway)."""
    await _slow_builds(monkeypatch, 3.5)
    avatars.release_composer("man", 144)
    svc = AvatarService(ServiceOptions(secret="s3cret", capacity=2, preload=(), size=144))
    async for url in _serve(svc):
        avatar = ServiceAvatar(
            "man",
            AvatarServiceSettings(
                service_url=url,
                secret="s3cret",
                livekit_url=f"ws://127.0.0.1:{free_loopback_port()}",
            ),
        )
        avatar._identity, avatar._agent_identity = "avatar-agent-x", "agent-x"
        # built, then refused for the LiveKit server this test does not run: the agent waited
        with pytest.raises(AvatarUnavailable, match=r"refused \(502\)"):
            await avatar._request_session("room-1")
    avatars.release_composer("man", 144)
