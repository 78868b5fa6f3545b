"""A dropped signal connection: the SDK tries to resume, is told to rejoin, and recovers.

Runs the server in-process so the test can cut one participant's WebSocket from the server side.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web
from livekit import api, rtc

from devserver.appkeys import ROOMS
from devserver.server import build_app

pytestmark = pytest.mark.integration

TIMEOUT = 20


def _token(identity: str) -> str:
    grants = api.VideoGrants(room_join=True, room="resume")
    return api.AccessToken("devkey", "secret").with_identity(identity).with_grants(grants).to_jwt()


async def test_dropped_signal_connection_rejoins_and_data_flows_again() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"ws://127.0.0.1:{port}"
    app = build_app({"devkey": "secret"}, public_url=url)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    alice, bob = rtc.Room(), rtc.Room()
    try:
        await alice.connect(url, _token("alice"))
        await bob.connect(url, _token("bob"))
        reconnected = asyncio.Event()
        alice.on("reconnected", lambda: reconnected.set())
        inbox: asyncio.Queue[rtc.DataPacket] = asyncio.Queue()
        bob.on("data_received", inbox.put_nowait)

        room = app[ROOMS].get("resume")
        await room.participants["alice"].session.ws.close()  # the signal link drops
        await asyncio.wait_for(reconnected.wait(), TIMEOUT)

        assert sorted(room.participants) == ["alice", "bob"]
        await alice.local_participant.publish_data(b"still here", reliable=True)
        packet = await asyncio.wait_for(inbox.get(), TIMEOUT)
        assert packet.data == b"still here"
        assert packet.participant is not None and packet.participant.identity == "alice"
    finally:
        await alice.disconnect()
        await bob.disconnect()
        await runner.cleanup()
