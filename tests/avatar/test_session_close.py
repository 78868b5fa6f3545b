"""Stopping an avatar session that is still waiting for its agent: nothing raises while it
closes, and its room connection is let go (the server no longer lists the avatar).

Runs against each LiveKit server (the `livekit_server` fixture): the avatar joins a room with
its own token, the agent it speaks for never comes, and the service stops it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from livekit import api
from livekit.agents.types import ATTRIBUTE_PUBLISH_ON_BEHALF
from livekit.agents.voice.avatar import DataStreamAudioReceiver

from avatar_worker.avatars import get_composer
from avatar_worker.session import RoomSession, SessionOptions

pytestmark = pytest.mark.integration


async def _identities(livekit_server, room: str) -> set[str]:
    http_url = livekit_server.url.replace("ws", "http", 1)
    async with api.LiveKitAPI(http_url, livekit_server.api_key, livekit_server.api_secret) as lk:
        reply = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
    return {p.identity for p in reply.participants}


async def test_stopping_a_session_waiting_for_its_agent_closes_cleanly(livekit_server, caplog):
    room = f"avatar-close-{uuid.uuid4().hex[:8]}"
    await livekit_server.create_room(room)
    token = livekit_server.token(
        "avatar-a1", room, kind="agent", attributes={ATTRIBUTE_PUBLISH_ON_BEHALF: "agent-a1"}
    )
    session = RoomSession(
        "s1", SessionOptions(livekit_server.url, token, size=64), get_composer("woman", 64)
    )
    await session.connect()
    try:
        await asyncio.sleep(0.3)  # the runner is started and waits for the agent
        assert session.state == "waiting_agent"
        assert "avatar-a1" in await _identities(livekit_server, room)

        with caplog.at_level(logging.DEBUG, logger="avatar_worker.session"):
            await session.aclose("stopped by request")
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert not errors, [r.getMessage() + str(r.exc_info) for r in errors]
        assert session.state == "closed" and session.closed.is_set()
        assert not session.room.isconnected()
        # the receiver's per-agent RPC handler registration is gone too
        assert "agent-a1" not in DataStreamAudioReceiver._clear_buffer_handlers
        for _ in range(50):  # the server drops a participant that left at once; allow 5 s
            if "avatar-a1" not in await _identities(livekit_server, room):
                break
            await asyncio.sleep(0.1)
        assert "avatar-a1" not in await _identities(livekit_server, room)
    finally:
        if session.room.isconnected():  # what the defect left behind
            await session.room.disconnect()
