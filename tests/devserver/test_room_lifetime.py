"""Room lifetime: agents do not keep a room open once the people have left (as livekit-server)."""

from __future__ import annotations

import asyncio

from livekit.protocol import models

from devserver.rooms import Participant, RoomRegistry

AGENT = models.ParticipantInfo.Kind.AGENT


async def _room_with(registry: RoomRegistry, *participants: Participant):
    room = await registry.get_or_create("interview", empty_timeout=1, departure_timeout=1)
    for participant in participants:
        await room.add_participant(participant)
    return room


async def test_room_closes_when_only_agents_remain():
    registry = RoomRegistry()
    closed: list[str] = []
    registry.on("room_closed", lambda room: closed.append(room.name))
    room = await _room_with(registry, Participant("candidate"), Participant("agent-1", kind=AGENT))

    await room.remove_participant("candidate")
    await asyncio.sleep(1.3)

    assert closed == ["interview"]
    assert registry.get("interview") is None
    assert "agent-1" not in room.participants


async def test_agent_leaving_keeps_the_candidates_room_open():
    registry = RoomRegistry()
    room = await _room_with(registry, Participant("candidate"), Participant("agent-1", kind=AGENT))

    await room.remove_participant("agent-1")
    await asyncio.sleep(1.3)

    assert registry.get("interview") is room
    assert list(room.participants) == ["candidate"]


async def test_an_agent_alone_does_not_stop_the_empty_timeout():
    registry = RoomRegistry()
    await _room_with(registry, Participant("agent-1", kind=AGENT))

    await asyncio.sleep(1.3)

    assert registry.get("interview") is None
