"""Shared pytest setup: keep every test offline and its data in a temporary directory."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from agent.ports import free_loopback_port, port_in_use

# Tests must never reach a cloud provider, even on a machine whose shell has keys set.
for _key in ("DEEPGRAM_API_KEY", "OPENAI_API_KEY", "ELEVENLABS_API_KEY", "OPENAI_BASE_URL"):
    os.environ.pop(_key, None)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERVIEW_DATA_DIR", str(tmp_path / "data"))


# -- LiveKit servers: the dev server and the real livekit-server ----------------------------------

# Every room, dispatch, API and browser test runs against both; where they differ the real server
# is the truth (DEVELOPERS.md). `pytest --livekit-server livekit` (or devserver) runs one of them.
SERVER_KINDS = ("devserver", "livekit")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--livekit-server",
        choices=(*SERVER_KINDS, "both"),
        default="both",
        help="which LiveKit server the room, dispatch, API and browser tests run against",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "server_kind" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--livekit-server")
        kinds = SERVER_KINDS if chosen == "both" else (chosen,)
        metafunc.parametrize("server_kind", kinds, scope="session")


@dataclasses.dataclass(frozen=True)
class LiveKitServer:
    """A running LiveKit server (see the `livekit_server` fixture): `kind` is "devserver" (this
    repository's) or "livekit" (the real livekit-server)."""

    url: str
    api_key: str
    api_secret: str
    log_path: pathlib.Path
    kind: str = "devserver"

    @property
    def real(self) -> bool:
        return self.kind == "livekit"

    def __iter__(self) -> Iterator[str]:
        """`url, api_key, api_secret = livekit_server` (and indexing) work too."""
        return iter((self.url, self.api_key, self.api_secret))

    def __getitem__(self, index: int) -> str:
        return (self.url, self.api_key, self.api_secret)[index]

    async def create_room(self, name: str, **options: object) -> None:
        """Create a room through the server API, as the interview API does: the real server
        refuses joins to rooms that do not exist (livekit.yaml `auto_create: false`)."""
        from livekit import api

        http_url = self.url.replace("ws", "http", 1)
        async with api.LiveKitAPI(http_url, self.api_key, self.api_secret) as lk:
            await lk.room.create_room(api.CreateRoomRequest(name=name, **options))  # type: ignore[arg-type]

    def token(
        self,
        identity: str,
        room: str,
        *,
        name: str = "",
        kind: str = "",
        attributes: dict[str, str] | None = None,
        **grants: object,
    ) -> str:
        """A join token for `room`; extra keyword arguments are VideoGrants fields."""
        from livekit import api

        token = (
            api.AccessToken(self.api_key, self.api_secret)
            .with_identity(identity)
            .with_name(name or identity)
            .with_grants(api.VideoGrants(room_join=True, room=room, **grants))  # type: ignore[arg-type]
        )
        if kind:
            token = token.with_kind(kind)  # type: ignore[arg-type]
        if attributes:
            token = token.with_attributes(attributes)
        return token.to_jwt()


@pytest.fixture(scope="session")
def livekit_server(server_kind, tmp_path_factory):
    """A LiveKit server on free loopback ports, shared by the session's tests of that kind: the
    dev server, or the real livekit-server with livekit.yaml's room settings."""
    if server_kind == "livekit":
        yield from _real_livekit_server(tmp_path_factory)
    else:
        yield from _dev_server(tmp_path_factory)


@pytest.fixture(scope="session")
def dev_server(tmp_path_factory):
    """The dev server alone, for tests of the dev server itself (its debug endpoints, its own
    bookkeeping) that have no counterpart on the real server."""
    yield from _dev_server(tmp_path_factory)


def _real_livekit_server(tmp_path_factory) -> Iterator[LiveKitServer]:
    from agent.livekit_server import LiveKitServerMissing, LocalLiveKitServer, server_binary

    try:
        binary = server_binary()
    except LiveKitServerMissing as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the real livekit-server is required in CI: {e}")
        pytest.skip(str(e))
    server = LocalLiveKitServer(workdir=tmp_path_factory.mktemp("livekit-server"), binary=binary)
    try:
        server.start()
    except RuntimeError as e:
        pytest.fail(str(e))
    try:
        key, secret = next(iter(server.options.keys.items()))
        yield LiveKitServer(server.url, key, secret, server.log_path, kind="livekit")
    finally:
        server.stop()


def _dev_server(tmp_path_factory) -> Iterator[LiveKitServer]:
    from agent.livekit_server import production_room_settings
    from devserver.__main__ import room_flags

    port = free_loopback_port()
    log_path = tmp_path_factory.mktemp("devserver") / "devserver.log"
    root = pathlib.Path(__file__).resolve().parent.parent
    # livekit.yaml's room settings, as the real server gets them (rooms created by the API only)
    command = [sys.executable, "-m", "devserver", "--port", str(port), "--keys", "devkey: secret"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*command, *room_flags(production_room_settings())],
            cwd=root,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            pytest.fail(f"devserver exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
        if port_in_use("127.0.0.1", port):
            break
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"devserver did not start listening: {log_path.read_text()[-2000:]}")
        time.sleep(0.1)
    try:
        yield LiveKitServer(f"ws://127.0.0.1:{port}", "devkey", "secret", log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
async def devserver_in_process():
    """(url, app) of a dev server running in the test's own process on a free loopback port,
    so the test can reach into its rooms (e.g. cut a participant's signal connection)."""
    from aiohttp import web

    from devserver.server import build_app

    port = free_loopback_port()
    url = f"ws://127.0.0.1:{port}"
    app = build_app({"devkey": "secret"}, public_url=url)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield url, app
    finally:
        await runner.cleanup()
