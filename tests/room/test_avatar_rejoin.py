"""The avatar and its agent's connection: it waits while the agent rebuilds a dropped connection,
and leaves at once when the agent leaves.

Runs the dev server in-process so the test can cut the agent's signal connection from the server
side (the SDK then rejoins from scratch, as after a lost connection the server cannot resume).
"""

from __future__ import annotations

import asyncio

import pytest
from livekit import api, rtc
from livekit.agents.types import ATTRIBUTE_PUBLISH_ON_BEHALF

from avatar_worker.avatars import get_composer
from avatar_worker.room_scenario import until
from avatar_worker.session import RoomSession, SessionOptions
from devserver.appkeys import ROOMS

pytestmark = pytest.mark.integration

ROOM = "rejoin"
TIMEOUT = 20


def _token(identity: str, *, kind: str = "standard", attributes: dict[str, str] | None = None):
    grants = api.VideoGrants(room_join=True, room=ROOM)
    token = api.AccessToken("devkey", "secret").with_identity(identity).with_grants(grants)
    return token.with_kind(kind).with_attributes(attributes or {}).to_jwt()


async def test_the_avatar_waits_for_a_rejoining_agent_and_leaves_with_a_leaving_one(
    devserver_in_process,
) -> None:
    url, app = devserver_in_process
    agent = rtc.Room()
    avatar: RoomSession | None = None
    try:
        await agent.connect(url, _token("agent-1", kind="agent"))
        reconnected = asyncio.Event()
        agent.on("reconnected", reconnected.set)
        token = _token(
            "avatar-1", kind="agent", attributes={ATTRIBUTE_PUBLISH_ON_BEHALF: "agent-1"}
        )
        avatar = RoomSession("s1", SessionOptions(url, token, size=128), get_composer("woman", 128))
        await avatar.connect()
        await until(lambda: avatar.state == "running", TIMEOUT, "the avatar runs")

        room = app[ROOMS].get(ROOM)
        await room.participants["agent-1"].session.ws.close()  # the agent's link drops
        await asyncio.wait_for(reconnected.wait(), TIMEOUT)
        await until(lambda: "agent-1" in avatar.room.remote_participants, TIMEOUT, "the agent back")
        await asyncio.sleep(1.0)
        assert avatar.state == "running", avatar.close_reason

        await agent.disconnect()  # leaves for good
        await asyncio.wait_for(avatar.closed.wait(), 5.0)
        assert avatar.close_reason == "the agent left"
    finally:
        if avatar is not None:
            await avatar.aclose()
        await agent.disconnect()
