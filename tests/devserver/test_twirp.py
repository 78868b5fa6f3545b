"""The server API through the real `livekit.api.LiveKitAPI` client, on both servers.

RoomService and AgentDispatchService calls as an application makes them, real `livekit` SDK
participants to see their effects, what a room that does not exist gets (an empty participant
list, 404 for a participant, 503 for the calls livekit-server routes to the room's node), and the
refusals (status and Twirp code) for bad tokens and missing grants. The dev server's deliberate
differences are tested on it alone.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
import jwt
import pytest
from livekit import api, rtc

pytestmark = pytest.mark.integration

ATTEMPT_S = 10.0


def _room_name() -> str:
    return f"twirp-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def lkapi(livekit_server) -> AsyncIterator[api.LiveKitAPI]:
    url, key, secret = livekit_server
    async with api.LiveKitAPI(url, key, secret) as client:
        yield client


def _join_token(livekit_server, room: str, identity: str) -> str:
    _, key, secret = livekit_server
    grants = api.VideoGrants(room_join=True, room=room)
    return api.AccessToken(key, secret).with_identity(identity).with_grants(grants).to_jwt()


@asynccontextmanager
async def _participant(livekit_server, room: str, identity: str) -> AsyncIterator[rtc.Room]:
    url = livekit_server[0]
    peer = rtc.Room()
    await asyncio.wait_for(peer.connect(url, _join_token(livekit_server, room, identity)), 20)
    try:
        yield peer
    finally:
        await peer.disconnect()


async def _until(check: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(ATTEMPT_S):
            while True:  # polled: the state lives in the server or the SDK
                if check():
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def test_room_lifecycle(lkapi: api.LiveKitAPI) -> None:
    name = _room_name()
    created = await lkapi.room.create_room(
        api.CreateRoomRequest(name=name, metadata="m1", empty_timeout=60, max_participants=5)
    )
    assert created.name == name and created.sid.startswith("RM_")
    assert created.metadata == "m1"
    assert created.empty_timeout == 60 and created.max_participants == 5

    again = await lkapi.room.create_room(api.CreateRoomRequest(name=name))
    assert again.sid == created.sid  # an existing room is returned, not replaced

    other = _room_name()
    await lkapi.room.create_room(api.CreateRoomRequest(name=other))
    listed = await lkapi.room.list_rooms(api.ListRoomsRequest())
    assert {name, other} <= {r.name for r in listed.rooms}
    only = await lkapi.room.list_rooms(api.ListRoomsRequest(names=[other]))
    assert [r.name for r in only.rooms] == [other]

    await lkapi.room.delete_room(api.DeleteRoomRequest(room=name))
    await lkapi.room.delete_room(api.DeleteRoomRequest(room=other))
    listed = await lkapi.room.list_rooms(api.ListRoomsRequest(names=[name, other]))
    assert list(listed.rooms) == []

    with pytest.raises(api.TwirpError) as missing:
        await lkapi.room.delete_room(api.DeleteRoomRequest(room=name))
    assert (missing.value.status, missing.value.code) == (404, "not_found")


async def test_participant_calls(livekit_server, lkapi: api.LiveKitAPI) -> None:
    room = _room_name()
    await lkapi.room.create_room(api.CreateRoomRequest(name=room))
    async with (
        _participant(livekit_server, room, "alice") as alice,
        _participant(livekit_server, room, "bob") as bob,
    ):
        listed = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room))
        assert sorted(p.identity for p in listed.participants) == ["alice", "bob"]

        info = await lkapi.room.get_participant(
            api.RoomParticipantIdentity(room=room, identity="alice")
        )
        assert info.identity == "alice" and info.sid.startswith("PA_")
        assert info.kind == api.ParticipantInfo.Kind.STANDARD

        # UpdateParticipant: seen by the API answer and by the other participant.
        updated = await lkapi.room.update_participant(
            api.UpdateParticipantRequest(
                room=room,
                identity="alice",
                metadata="ready",
                name="Alice",
                attributes={"role": "candidate"},
            )
        )
        assert (updated.metadata, updated.name) == ("ready", "Alice")
        assert dict(updated.attributes) == {"role": "candidate"}
        seen = bob.remote_participants
        await _until(
            lambda: (
                "alice" in seen
                and seen["alice"].attributes.get("role") == "candidate"
                and seen["alice"].metadata == "ready"
            ),
            "bob to see alice's new attributes and metadata",
        )
        assert alice.local_participant.attributes.get("role") == "candidate"

        # SendData: server-originated data reaches only the named destination.
        got: dict[str, list[rtc.DataPacket]] = {"alice": [], "bob": []}
        alice.on("data_received", got["alice"].append)
        bob.on("data_received", got["bob"].append)
        await lkapi.room.send_data(
            api.SendDataRequest(
                room=room,
                data=b"hello bob",
                kind=api.DataPacket.Kind.RELIABLE,
                destination_identities=["bob"],
                topic="greeting",
            )
        )
        await _until(lambda: bool(got["bob"]), "bob to receive the server's data packet")
        assert got["bob"][0].data == b"hello bob" and got["bob"][0].topic == "greeting"
        await asyncio.sleep(0.3)
        assert got["alice"] == []

        # RemoveParticipant: bob is disconnected and gone from the room.
        bob_left = asyncio.Event()
        bob.on("disconnected", lambda *_: bob_left.set())
        await lkapi.room.remove_participant(api.RoomParticipantIdentity(room=room, identity="bob"))
        await asyncio.wait_for(bob_left.wait(), ATTEMPT_S)
        listed = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room))
        assert [p.identity for p in listed.participants] == ["alice"]

        for where in (room, _room_name()):  # gone from the room; a room that does not exist
            for call in (
                lkapi.room.get_participant(api.RoomParticipantIdentity(room=where, identity="bob")),
                lkapi.room.remove_participant(
                    api.RoomParticipantIdentity(room=where, identity="bob")
                ),
                lkapi.room.update_participant(
                    api.UpdateParticipantRequest(room=where, identity="bob", metadata="x")
                ),
            ):
                with pytest.raises(api.TwirpError) as missing:
                    await call
                assert (missing.value.status, missing.value.code) == (404, "not_found")
    await lkapi.room.delete_room(api.DeleteRoomRequest(room=room))


async def test_a_room_that_does_not_exist(lkapi: api.LiveKitAPI) -> None:
    """Lists nobody; the calls livekit-server routes to the room's node find none (503, after
    livekit-server's RPC timeout); dispatching to it does not create it."""
    room = _room_name()
    listed = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room))
    assert list(listed.participants) == []
    for call in (
        lkapi.room.send_data(api.SendDataRequest(room=room, data=b"x")),
        lkapi.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name="interviewer", room=room)
        ),
        lkapi.agent_dispatch.list_dispatch(room),
    ):
        with pytest.raises(api.TwirpError) as unavailable:
            await call
        assert (unavailable.value.status, unavailable.value.code) == (503, "unavailable")
    assert not (await lkapi.room.list_rooms(api.ListRoomsRequest(names=[room]))).rooms


async def test_dispatch_calls(lkapi: api.LiveKitAPI) -> None:
    room, with_agents = _room_name(), _room_name()
    # A room created without agents gets a dispatch for the unnamed agent (livekit-server's
    # default), one created with agents gets those only.
    await lkapi.room.create_room(api.CreateRoomRequest(name=room))
    (default,) = await lkapi.agent_dispatch.list_dispatch(room)
    assert default.agent_name == "" and default.id.startswith("AD_")
    await lkapi.room.create_room(
        api.CreateRoomRequest(
            name=with_agents, agents=[api.RoomAgentDispatch(agent_name="interviewer")]
        )
    )
    (named,) = await lkapi.agent_dispatch.list_dispatch(with_agents)
    assert named.agent_name == "interviewer"
    await lkapi.room.delete_room(api.DeleteRoomRequest(room=with_agents))

    dispatch = await lkapi.agent_dispatch.create_dispatch(
        api.CreateAgentDispatchRequest(
            agent_name="nobody-serves-this", room=room, metadata='{"k": 1}'
        )
    )
    assert dispatch.id.startswith("AD_")
    assert (dispatch.agent_name, dispatch.room, dispatch.metadata) == (
        "nobody-serves-this",
        room,
        '{"k": 1}',
    )
    second = await lkapi.agent_dispatch.create_dispatch(
        api.CreateAgentDispatchRequest(agent_name="other", room=room)
    )
    listed = await lkapi.agent_dispatch.list_dispatch(room)
    assert sorted(d.id for d in listed) == sorted([default.id, dispatch.id, second.id])
    fetched = await lkapi.agent_dispatch.get_dispatch(second.id, room)
    assert fetched is not None and fetched.agent_name == "other"

    deleted = await lkapi.agent_dispatch.delete_dispatch(dispatch.id, room)
    assert deleted.id == dispatch.id
    remaining = await lkapi.agent_dispatch.list_dispatch(room)
    assert sorted(d.id for d in remaining) == sorted([default.id, second.id])
    assert await lkapi.agent_dispatch.get_dispatch(dispatch.id, room) is None
    with pytest.raises(api.TwirpError) as missing:
        await lkapi.agent_dispatch.delete_dispatch(dispatch.id, room)
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    await lkapi.room.delete_room(api.DeleteRoomRequest(room=room))


# -- refusals -----------------------------------------------------------------------------------


async def _post(livekit_server, method: str, body: dict, token: str | None) -> tuple[int, dict]:
    """Status and Twirp error (livekit-server answers some 401s in plain text: as "msg")."""
    url = livekit_server[0].replace("ws://", "http://", 1)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/twirp/livekit.{method}", json=body, headers=headers) as resp,
    ):
        text = await resp.text()
    try:
        return resp.status, json.loads(text)
    except json.JSONDecodeError:
        return resp.status, {"msg": text}


def _token(livekit_server, grants: api.VideoGrants, *, secret: str | None = None) -> str:
    _, key, real_secret = livekit_server
    token = api.AccessToken(key, secret or real_secret).with_identity("tester")
    return token.with_grants(grants).to_jwt()


async def test_json_body_is_answered_in_json(livekit_server) -> None:
    room = _room_name()
    token = _token(livekit_server, api.VideoGrants(room_create=True, room_list=True))
    status, body = await _post(livekit_server, "RoomService/CreateRoom", {"name": room}, token)
    assert status == 200 and body["name"] == room and body["sid"].startswith("RM_")
    status, body = await _post(livekit_server, "RoomService/ListRooms", {"names": [room]}, token)
    assert status == 200 and [r["name"] for r in body["rooms"]] == [room]


async def test_bad_tokens_are_unauthenticated(livekit_server) -> None:
    _, key, secret = livekit_server
    grants = api.VideoGrants(room_list=True)
    expired = jwt.encode(
        {
            "iss": key,
            "sub": "x",
            "video": {"roomList": True},
            "exp": int((datetime.datetime.now() - datetime.timedelta(hours=2)).timestamp()),
        },
        secret,
        algorithm="HS256",
    )
    unknown_key = api.AccessToken("nokey", secret).with_grants(grants).to_jwt()
    for token in (None, "", "not-a-jwt", _token(livekit_server, grants, secret="x" * 32),
                  expired, unknown_key):  # fmt: skip
        status, body = await _post(livekit_server, "RoomService/ListRooms", {}, token)
        assert status == 401, token
        assert body.get("code", "unauthenticated") == "unauthenticated" and body["msg"]


@pytest.mark.parametrize(
    ("method", "body", "grants"),
    [
        ("RoomService/ListRooms", {}, api.VideoGrants(room_create=True)),
        ("RoomService/CreateRoom", {"name": "r"}, api.VideoGrants(room_list=True)),
        ("RoomService/DeleteRoom", {"room": "r"}, api.VideoGrants(room_admin=True, room="r")),
        ("RoomService/ListParticipants", {"room": "r"}, api.VideoGrants(room_join=True, room="r")),
        ("RoomService/ListParticipants", {"room": "r"}, api.VideoGrants(room_admin=True, room="x")),
        ("RoomService/SendData", {"room": "r"}, api.VideoGrants(room_create=True)),
        ("AgentDispatchService/CreateDispatch", {"room": "r"}, api.VideoGrants(room_list=True)),
        ("AgentDispatchService/ListDispatch", {"room": "r"}, api.VideoGrants(room_admin=True)),
    ],
)  # fmt: skip
async def test_missing_grants_are_unauthenticated(
    livekit_server, method: str, body: dict, grants: api.VideoGrants
) -> None:
    """livekit-server answers 401 unauthenticated, not 403 permission_denied."""
    status, answer = await _post(livekit_server, method, body, _token(livekit_server, grants))
    assert (status, answer["code"]) == (401, "unauthenticated")
    assert "permissions denied" in answer["msg"]


async def test_unknown_method_and_malformed_body(livekit_server) -> None:
    token = _token(livekit_server, api.VideoGrants(room_list=True))
    status, body = await _post(livekit_server, "RoomService/Explode", {}, token)
    assert (status, body["code"]) == (404, "bad_route")
    url = livekit_server[0].replace("ws://", "http://", 1)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{url}/twirp/livekit.RoomService/ListRooms",
            data=b"\xff\xff\xff",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/protobuf"},
        ) as resp,
    ):
        assert resp.status == 400
        assert json.loads(await resp.text())["code"] == "malformed"


async def test_the_dev_servers_deliberate_differences(dev_server) -> None:
    """An empty room name is refused (livekit-server creates a room called ""), and methods the
    product does not use say so instead of acting (livekit-server implements them)."""
    token = _token(dev_server, api.VideoGrants(room_create=True, room_list=True))
    status, body = await _post(dev_server, "RoomService/CreateRoom", {"name": ""}, token)
    assert (status, body["code"]) == (400, "invalid_argument") and "name" in body["msg"]
    status, body = await _post(dev_server, "RoomService/MutePublishedTrack", {}, token)
    assert (status, body["code"]) == (501, "unimplemented") and "dev server" in body["msg"]
