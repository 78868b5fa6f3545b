"""Server API of the dev server: LiveKit's RoomService and AgentDispatchService over Twirp.

`livekit-api` posts protobuf bodies to ``/twirp/livekit.<Service>/<Method>`` with a bearer access
token; other SDKs post JSON. Answers use the request's encoding; errors are Twirp JSON errors
with livekit-server's status and code. Grants are checked as livekit-server does: roomCreate for
CreateRoom/DeleteRoom, roomList for ListRooms, roomAdmin on the named room for the rest; a
missing grant is 401 unauthenticated there. A room that does not exist: ListParticipants lists
nobody, the participant calls answer 404, and the calls livekit-server routes to the room's node
(SendData, the dispatch calls) answer 503 unavailable, as no node answers for it. Dispatching
to a missing room does not create it.

Deliberately unlike livekit-server: an empty room name is refused (400) where livekit-server
creates a room called "", and the RoomService methods the product does not use answer 501.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from livekit import api
from livekit.protocol import agent_dispatch as proto_dispatch
from livekit.protocol import models
from livekit.protocol import room as proto_room

from devserver.agents import AGENT_DISPATCHER
from devserver.appkeys import KEYS, ROOMS
from devserver.auth import AuthError, token_from_request, verify_token
from devserver.rooms import Participant, Room

logger = logging.getLogger("devserver.twirp")

M = TypeVar("M", bound=Message)

# Twirp error codes -> HTTP status, as the Twirp spec (and so livekit-server) maps them.
_STATUS: dict[str, int] = {
    "invalid_argument": 400,
    "malformed": 400,
    "unauthenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "bad_route": 404,
    "already_exists": 409,
    "failed_precondition": 412,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
}


class TwirpError(Exception):
    """A request failure answered as a Twirp JSON error."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg

    @property
    def status(self) -> int:
        return _STATUS.get(self.code, 500)

    def response(self) -> web.Response:
        body = json.dumps({"code": self.code, "msg": self.msg})
        return web.Response(status=self.status, text=body, content_type="application/json")


@dataclass(frozen=True)
class _Grant:
    """Which video grant a method needs; ``room_field`` names the request field with the room."""

    flag: str  # "room_create" | "room_list" | "room_admin"
    room_field: str = ""


def _authorize(request: web.Request, grant: _Grant, body: Message) -> api.Claims:
    try:
        claims = verify_token(token_from_request(request), request.app[KEYS])
    except AuthError as e:
        raise TwirpError("unauthenticated", e.reason) from None
    video = claims.video or api.VideoGrants()
    # livekit-server answers a missing grant as unauthenticated (401), not permission_denied
    if not getattr(video, grant.flag):
        camel = "".join(w.capitalize() if i else w for i, w in enumerate(grant.flag.split("_")))
        raise TwirpError("unauthenticated", f"permissions denied: token lacks the {camel} grant")
    if grant.room_field:
        room = getattr(body, grant.room_field)
        # As livekit-server: roomAdmin is for exactly the named room (no wildcard).
        if video.room != room:
            raise TwirpError(
                "unauthenticated",
                f"permissions denied: the token's roomAdmin grant is for room {video.room!r}, "
                f"not {room!r}",
            )
    return claims


def _decode(request: web.Request, raw: bytes, cls: type[M]) -> M:
    msg = cls()
    try:
        if request.content_type == "application/json":
            json_format.Parse(raw or b"{}", msg, ignore_unknown_fields=True)
        else:
            msg.ParseFromString(raw)
    except (DecodeError, json_format.ParseError, UnicodeDecodeError) as e:
        raise TwirpError("malformed", f"cannot decode {cls.__name__}: {e}") from None
    return msg


def _encode(request: web.Request, msg: Message) -> web.Response:
    if request.content_type == "application/json":
        body = json_format.MessageToJson(msg, preserving_proto_field_name=True, indent=None)
        return web.Response(text=body, content_type="application/json")
    return web.Response(body=msg.SerializeToString(), content_type="application/protobuf")


Handler = Callable[[web.Application, Any], Awaitable[Message]]


@dataclass(frozen=True)
class _Method:
    request_cls: type[Message]
    grant: _Grant
    handler: Handler


def _required(value: str, field: str) -> str:
    if not value:
        raise TwirpError("invalid_argument", f"{field} is required")
    return value


def _room(app: web.Application, name: str, *, code: str = "not_found") -> Room:
    """The named room; a missing one is a Twirp error with `code`."""
    room = app[ROOMS].get(_required(name, "room"))
    if room is None:
        raise TwirpError(code, f"requested room {name!r} does not exist")
    return room


def _routed_room(app: web.Application, name: str) -> Room:
    """The room for a call livekit-server routes to the room's node: none answers for a missing
    room, so it is 503 unavailable there."""
    return _room(app, name, code="unavailable")


def _participant(app: web.Application, room_name: str, identity: str) -> tuple[Room, Participant]:
    """The room and the participant; either missing is 404, as livekit-server's store says."""
    room = app[ROOMS].get(_required(room_name, "room"))
    participant = room.participants.get(_required(identity, "identity")) if room else None
    if room is None or participant is None:
        raise TwirpError(
            "not_found", f"participant {identity!r} does not exist in room {room_name!r}"
        )
    return room, participant


# -- RoomService ----------------------------------------------------------------------------


async def _create_room(app: web.Application, req: proto_room.CreateRoomRequest) -> models.Room:
    name = _required(req.name, "name")
    existed = app[ROOMS].get(name) is not None
    options: dict[str, Any] = {"metadata": req.metadata, "agents": list(req.agents)}
    # Zero means "server default" in LiveKit's API, so only explicit values are passed on.
    for field in ("empty_timeout", "departure_timeout", "max_participants"):
        if getattr(req, field):
            options[field] = getattr(req, field)
    room = await app[ROOMS].get_or_create(name, **options)
    if not existed:
        logger.info("room created by API", extra={"room": name, "agents": len(req.agents)})
    return room.to_proto()


async def _list_rooms(app: web.Application, req: proto_room.ListRoomsRequest) -> Message:
    wanted = set(req.names)
    rooms = [r.to_proto() for r in app[ROOMS].list() if not wanted or r.name in wanted]
    return proto_room.ListRoomsResponse(rooms=rooms)


async def _delete_room(app: web.Application, req: proto_room.DeleteRoomRequest) -> Message:
    room = _room(app, req.room)
    await app[ROOMS].delete(room.name)
    logger.info("room deleted by API", extra={"room": room.name})
    return proto_room.DeleteRoomResponse()


async def _list_participants(
    app: web.Application, req: proto_room.ListParticipantsRequest
) -> Message:
    # a room that does not exist lists nobody (livekit-server's store), it is not an error
    room = app[ROOMS].get(_required(req.room, "room"))
    participants = room.participants.values() if room else ()
    return proto_room.ListParticipantsResponse(participants=[p.to_proto() for p in participants])


async def _get_participant(
    app: web.Application, req: proto_room.RoomParticipantIdentity
) -> Message:
    return _participant(app, req.room, req.identity)[1].to_proto()


async def _remove_participant(
    app: web.Application, req: proto_room.RoomParticipantIdentity
) -> Message:
    room, _ = _participant(app, req.room, req.identity)
    await room.remove_participant(req.identity)
    logger.info("participant removed by API", extra={"room": room.name, "identity": req.identity})
    return proto_room.RemoveParticipantResponse()


async def _update_participant(
    app: web.Application, req: proto_room.UpdateParticipantRequest
) -> Message:
    room, _ = _participant(app, req.room, req.identity)
    # As in livekit-server, empty fields mean "leave unchanged".
    participant = await room.update_participant(
        req.identity,
        metadata=req.metadata or None,
        name=req.name or None,
        attributes=dict(req.attributes) or None,
        permission=req.permission if req.HasField("permission") else None,
    )
    return participant.to_proto()


async def _send_data(app: web.Application, req: proto_room.SendDataRequest) -> Message:
    room = _routed_room(app, req.room)
    identities = list(req.destination_identities)
    # destination_sids is deprecated but still honoured by livekit-server.
    by_sid = {p.sid: p.identity for p in room.participants.values()}
    identities += [by_sid[sid] for sid in req.destination_sids if sid in by_sid]
    await room.send_data(
        req.data,
        kind=req.kind,
        destination_identities=identities,
        topic=req.topic if req.HasField("topic") else None,
    )
    return proto_room.SendDataResponse()


# -- AgentDispatchService -------------------------------------------------------------------


async def _create_dispatch(
    app: web.Application, req: proto_dispatch.CreateAgentDispatchRequest
) -> Message:
    room = _routed_room(app, req.room)
    return app[AGENT_DISPATCHER].create_dispatch(room, _room_agent(req))


def _room_agent(
    req: proto_dispatch.CreateAgentDispatchRequest,
) -> proto_dispatch.RoomAgentDispatch:
    """The RoomAgentDispatch equivalent of a CreateAgentDispatchRequest."""
    return proto_dispatch.RoomAgentDispatch(
        agent_name=req.agent_name,
        metadata=req.metadata,
        restart_policy=req.restart_policy,
        deployment=req.deployment,
        attributes=dict(req.attributes),
    )


async def _list_dispatch(
    app: web.Application, req: proto_dispatch.ListAgentDispatchRequest
) -> Message:
    room = _routed_room(app, req.room)
    dispatches = app[AGENT_DISPATCHER].list_dispatches(room.name)
    if req.dispatch_id:
        dispatches = [d for d in dispatches if d.id == req.dispatch_id]
    return proto_dispatch.ListAgentDispatchResponse(agent_dispatches=dispatches)


async def _delete_dispatch(
    app: web.Application, req: proto_dispatch.DeleteAgentDispatchRequest
) -> Message:
    room = _routed_room(app, req.room)
    _required(req.dispatch_id, "dispatch_id")
    dispatch = await app[AGENT_DISPATCHER].delete_dispatch(room.name, req.dispatch_id)
    if dispatch is None:
        raise TwirpError(
            "not_found", f"dispatch {req.dispatch_id!r} does not exist in room {req.room!r}"
        )
    return dispatch


_CREATE = _Grant("room_create")
_ADMIN = _Grant("room_admin", "room")

_METHODS: dict[tuple[str, str], _Method] = {
    ("RoomService", "CreateRoom"): _Method(proto_room.CreateRoomRequest, _CREATE, _create_room),
    ("RoomService", "ListRooms"): _Method(
        proto_room.ListRoomsRequest, _Grant("room_list"), _list_rooms
    ),
    ("RoomService", "DeleteRoom"): _Method(proto_room.DeleteRoomRequest, _CREATE, _delete_room),
    ("RoomService", "ListParticipants"): _Method(
        proto_room.ListParticipantsRequest, _ADMIN, _list_participants
    ),
    ("RoomService", "GetParticipant"): _Method(
        proto_room.RoomParticipantIdentity, _ADMIN, _get_participant
    ),
    ("RoomService", "RemoveParticipant"): _Method(
        proto_room.RoomParticipantIdentity, _ADMIN, _remove_participant
    ),
    ("RoomService", "UpdateParticipant"): _Method(
        proto_room.UpdateParticipantRequest, _ADMIN, _update_participant
    ),
    ("RoomService", "SendData"): _Method(proto_room.SendDataRequest, _ADMIN, _send_data),
    ("AgentDispatchService", "CreateDispatch"): _Method(
        proto_dispatch.CreateAgentDispatchRequest, _ADMIN, _create_dispatch
    ),
    ("AgentDispatchService", "ListDispatch"): _Method(
        proto_dispatch.ListAgentDispatchRequest, _ADMIN, _list_dispatch
    ),
    ("AgentDispatchService", "DeleteDispatch"): _Method(
        proto_dispatch.DeleteAgentDispatchRequest, _ADMIN, _delete_dispatch
    ),
}


# LiveKit methods this dev server does not implement: a clear "unimplemented", not a bad route.
_UNSUPPORTED = frozenset(
    {
        ("RoomService", "UpdateRoomMetadata"),
        ("RoomService", "ForwardParticipant"),
        ("RoomService", "MoveParticipant"),
        ("RoomService", "MutePublishedTrack"),
        ("RoomService", "UpdateSubscriptions"),
    }
)


async def _handle(request: web.Request) -> web.Response:
    service, method_name = request.match_info["service"], request.match_info["method"]
    try:
        method = _METHODS.get((service, method_name))
        if (service, method_name) in _UNSUPPORTED:
            raise TwirpError(
                "unimplemented",
                f"livekit.{service}/{method_name} is not supported by the dev server",
            )
        if method is None:
            raise TwirpError("bad_route", f"no method livekit.{service}/{method_name} here")
        body = _decode(request, await request.read(), method.request_cls)
        claims = _authorize(request, method.grant, body)
        result = await method.handler(request.app, body)
    except TwirpError as e:
        logger.info(
            "twirp request refused",
            extra={"method": f"{service}/{method_name}", "code": e.code, "reason": e.msg},
        )
        return e.response()
    logger.debug(
        "twirp request", extra={"method": f"{service}/{method_name}", "by": claims.identity}
    )
    return _encode(request, result)


def setup(app: web.Application) -> None:
    """Add the Twirp routes of RoomService and AgentDispatchService to the dev server's app."""
    app.router.add_post(r"/twirp/livekit.{service:\w+}/{method:\w+}", _handle)
