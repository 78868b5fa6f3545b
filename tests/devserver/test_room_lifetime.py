"""Room lifetime as livekit-server defines it, on both servers: rooms the API did not create are
refused (`auto_create: false`), an idle room closes as ROOM_CLOSED (deleted ones as ROOM_DELETED),
every departure restarts the departure timer, the empty timeout runs until a person has joined,
agents neither keep a room open nor count towards `max_participants`, and a second connection
with the same identity replaces the first.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from livekit import api, rtc

pytestmark = pytest.mark.integration

TIMEOUT = 15


def _room_name() -> str:
    return f"life-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def lkapi(livekit_server) -> AsyncIterator[api.LiveKitAPI]:
    url, key, secret = livekit_server
    async with api.LiveKitAPI(url, key, secret) as client:
        yield client


@asynccontextmanager
async def joined(server, identity: str, room: str, *, kind: str = "") -> AsyncIterator[rtc.Room]:
    lk_room = rtc.Room()
    await asyncio.wait_for(lk_room.connect(server.url, server.token(identity, room, kind=kind)), 20)
    try:
        yield lk_room
    finally:
        await lk_room.disconnect()


def _disconnect_reason(lk_room: rtc.Room) -> asyncio.Future[int]:
    """The reason the server gives `lk_room` when it sends it away."""
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    lk_room.on("disconnected", lambda reason: future.done() or future.set_result(reason))
    return future


async def _until_seen(lk_room: rtc.Room, identity: str, sid: str) -> None:
    async with asyncio.timeout(TIMEOUT):
        while True:  # polled: the state lives in the SDK
            p = lk_room.remote_participants.get(identity)
            if p is not None and p.sid == sid:
                return
            await asyncio.sleep(0.05)


async def _exists(lkapi: api.LiveKitAPI, room: str) -> bool:
    listed = await lkapi.room.list_rooms(api.ListRoomsRequest(names=[room]))
    return [r.name for r in listed.rooms] == [room]


async def _gone_within(lkapi: api.LiveKitAPI, room: str, seconds: float) -> float:
    """Seconds until `room` is no longer listed; fails after `seconds`."""
    start = time.monotonic()
    while await _exists(lkapi, room):
        assert time.monotonic() - start < seconds, f"room {room} still open after {seconds} s"
        await asyncio.sleep(0.2)
    return time.monotonic() - start


async def test_joining_a_room_the_api_did_not_create_is_refused(livekit_server, lkapi) -> None:
    """livekit.yaml has `auto_create: false`; a token that may create rooms still creates one."""
    room = _room_name()
    http_url = livekit_server.url.replace("ws://", "http://")
    token = livekit_server.token("late", room)
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{livekit_server.url}/rtc?access_token={token}")
        assert refused.value.status == 404
        # livekit-client asks here for the reason of a failed upgrade
        async with http.get(f"{http_url}/rtc/validate?access_token={token}") as resp:
            assert resp.status == 404 and "does not exist" in await resp.text()
    with pytest.raises(rtc.ConnectError):
        await rtc.Room().connect(livekit_server.url, token)
    assert not await _exists(lkapi, room)

    creator = livekit_server.token("host", room, room_create=True)
    lk_room = rtc.Room()
    await lk_room.connect(livekit_server.url, creator)
    try:
        assert await _exists(lkapi, room)
        async with joined(livekit_server, "late", room) as late:
            assert "host" in late.remote_participants
    finally:
        await lk_room.disconnect()
    await lkapi.room.delete_room(api.DeleteRoomRequest(room=room))


async def test_an_idle_room_closes_as_room_closed_and_a_deleted_one_as_room_deleted(
    livekit_server, lkapi
) -> None:
    idle, deleted = _room_name(), _room_name()
    for name in (idle, deleted):
        await lkapi.room.create_room(api.CreateRoomRequest(name=name, departure_timeout=1))
    async with (
        joined(livekit_server, "agent", idle, kind="agent") as agent,
        joined(livekit_server, "agent", deleted, kind="agent") as other_agent,
        joined(livekit_server, "candidate", deleted),
    ):
        sent_away, deleted_away = _disconnect_reason(agent), _disconnect_reason(other_agent)
        async with joined(livekit_server, "candidate", idle):
            pass
        # the agent alone does not keep the room open: it is closed around it
        assert await asyncio.wait_for(sent_away, TIMEOUT) == rtc.DisconnectReason.ROOM_CLOSED
        await _gone_within(lkapi, idle, TIMEOUT)

        await lkapi.room.delete_room(api.DeleteRoomRequest(room=deleted))
        reason = await asyncio.wait_for(deleted_away, TIMEOUT)
        assert reason == rtc.DisconnectReason.ROOM_DELETED


async def test_every_departure_restarts_the_departure_timer(livekit_server, lkapi) -> None:
    """Rooms are checked once a second with times in whole seconds (livekit-server), so a room
    closes between departure_timeout - 1 and departure_timeout + 1 s after the last departure."""
    room = _room_name()
    await lkapi.room.create_room(api.CreateRoomRequest(name=room, departure_timeout=4))
    async with joined(livekit_server, "agent", room, kind="agent"):
        async with joined(livekit_server, "candidate", room):
            pass
        left = time.monotonic()
        await asyncio.sleep(3.0)
    # the agent's departure 3 s after the candidate's restarted the timer: without that the
    # room would be gone by 5 s after the candidate left
    await asyncio.sleep(max(0.0, left + 5.5 - time.monotonic()))
    assert await _exists(lkapi, room)
    await _gone_within(lkapi, room, 4.0)


async def test_the_empty_timeout_runs_until_a_person_has_joined(livekit_server, lkapi) -> None:
    with_agent, with_person = _room_name(), _room_name()
    for name in (with_agent, with_person):
        await lkapi.room.create_room(
            api.CreateRoomRequest(name=name, empty_timeout=2, departure_timeout=30)
        )
    async with (
        joined(livekit_server, "agent", with_agent, kind="agent") as agent,
        joined(livekit_server, "candidate", with_person),
    ):
        sent_away = _disconnect_reason(agent)
        # an agent that came and went is not a departure that starts the departure timer
        async with joined(livekit_server, "agent-2", with_agent, kind="agent"):
            pass
        assert await asyncio.wait_for(sent_away, TIMEOUT) == rtc.DisconnectReason.ROOM_CLOSED
        await _gone_within(lkapi, with_agent, TIMEOUT)
        assert await _exists(lkapi, with_person)
    await lkapi.room.delete_room(api.DeleteRoomRequest(room=with_person))


async def test_max_participants_counts_people_not_agents(livekit_server, lkapi) -> None:
    room = _room_name()
    await lkapi.room.create_room(api.CreateRoomRequest(name=room, max_participants=2))
    async with (
        joined(livekit_server, "agent-1", room, kind="agent"),
        joined(livekit_server, "agent-2", room, kind="agent"),
        joined(livekit_server, "candidate", room),
        joined(livekit_server, "observer", room),
        joined(livekit_server, "agent-3", room, kind="agent"),
    ):
        with pytest.raises(rtc.ConnectError):
            async with joined(livekit_server, "third-person", room):
                pass
        listed = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room))
        assert len(listed.participants) == 5
    await lkapi.room.delete_room(api.DeleteRoomRequest(room=room))


async def test_a_second_connection_with_the_same_identity_replaces_the_first(
    livekit_server, lkapi
) -> None:
    """The first is sent away as DUPLICATE_IDENTITY; the others (protocol > 11) are not told that
    reason: they see the identity come back with a new sid (the SDK drops the old one)."""
    room = _room_name()
    await lkapi.room.create_room(api.CreateRoomRequest(name=room))
    async with joined(livekit_server, "alice", room) as alice:
        left: list[tuple[str, int | None]] = []
        alice.on("participant_disconnected", lambda p: left.append((p.sid, p.disconnect_reason)))
        async with joined(livekit_server, "bob", room) as first:
            sent_away = _disconnect_reason(first)
            old_sid = first.local_participant.sid
            # livekit-server tells others of a participant that publishes nothing every 3 s
            await _until_seen(alice, "bob", old_sid)
            async with joined(livekit_server, "bob", room) as second:
                reason = await asyncio.wait_for(sent_away, TIMEOUT)
                assert reason == rtc.DisconnectReason.DUPLICATE_IDENTITY
                new_sid = second.local_participant.sid
                assert new_sid != old_sid
                await _until_seen(alice, "bob", new_sid)
                assert [sid for sid, _ in left] == [old_sid]
                assert left[0][1] != rtc.DisconnectReason.DUPLICATE_IDENTITY
                listed = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room))
                assert sorted(p.identity for p in listed.participants) == ["alice", "bob"]
    await lkapi.room.delete_room(api.DeleteRoomRequest(room=room))
