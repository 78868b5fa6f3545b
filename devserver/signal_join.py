"""Joining a room over HTTP: the /rtc WebSocket upgrade and /rtc/validate.

As with livekit-server, the token is checked and the participant admitted before the upgrade,
so a refusal is a plain HTTP answer with livekit-server's status (401 for the token, 404 for a
room that does not exist when rooms are not created on join, 500 for a full or closed room) and
a one-line reason (livekit-client fetches /rtc/validate to show it). An admitted participant
gets a `SignalSession` for the rest of its stay. A connected participant whose connection ends
without a leave request is kept for a while (rooms.py), as livekit-server keeps it for resuming.
"""

from __future__ import annotations

import logging

from aiohttp import web
from livekit import api
from livekit.protocol import models
from livekit.protocol import rtc as proto_rtc

from devserver.appkeys import KEYS, ROOMS
from devserver.auth import AuthError, check_join_grant, token_from_request, verify_token
from devserver.rooms import JoinRefused, Participant, Room, RoomRegistry
from devserver.signal import ProtocolError, SignalSession

logger = logging.getLogger("devserver.signal")

_KINDS = {
    "": models.ParticipantInfo.Kind.STANDARD,
    "standard": models.ParticipantInfo.Kind.STANDARD,
    "ingress": models.ParticipantInfo.Kind.INGRESS,
    "egress": models.ParticipantInfo.Kind.EGRESS,
    "sip": models.ParticipantInfo.Kind.SIP,
    "agent": models.ParticipantInfo.Kind.AGENT,
}
_SOURCES = {
    "camera": models.TrackSource.CAMERA,
    "microphone": models.TrackSource.MICROPHONE,
    "screen_share": models.TrackSource.SCREEN_SHARE,
    "screen_share_audio": models.TrackSource.SCREEN_SHARE_AUDIO,
}


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0


def participant_from_claims(claims: api.Claims) -> Participant:
    video = claims.video or api.VideoGrants()
    kind = _KINDS.get(claims.kind.lower(), models.ParticipantInfo.Kind.STANDARD)
    permission = models.ParticipantPermission(
        can_subscribe=video.can_subscribe,
        can_publish=video.can_publish,
        can_publish_data=video.can_publish_data,
        can_publish_sources=[_SOURCES[s] for s in video.can_publish_sources or () if s in _SOURCES],
        hidden=bool(video.hidden),
        recorder=bool(video.recorder),
        can_update_metadata=bool(video.can_update_own_metadata),
        agent=kind == models.ParticipantInfo.Kind.AGENT or bool(video.agent),
        can_subscribe_metrics=bool(video.can_subscribe_metrics),
        can_manage_agent_session=bool(video.can_manage_agent_session),
    )
    return Participant(
        identity=claims.identity,
        name=claims.name or "",
        kind=kind,
        metadata=claims.metadata or "",
        attributes=dict(claims.attributes or {}),
        permission=permission,
    )


async def _room_for(registry: RoomRegistry, claims: api.Claims, room_name: str) -> Room:
    """The room a join goes to. A missing one is created only if rooms are created on join
    (`room.auto_create`) or the token may create rooms (livekit-server's ValidateCreateRoom)."""
    room = registry.get(room_name)
    if room is not None:
        return room
    if not (registry.settings.auto_create or (claims.video and claims.video.room_create)):
        raise AuthError(404, "requested room does not exist")
    config = claims.room_config
    return await registry.get_or_create(
        room_name,
        empty_timeout=config.empty_timeout if config else 0,
        departure_timeout=config.departure_timeout if config else 0,
        max_participants=config.max_participants if config else 0,
        metadata=config.metadata if config else "",
        agents=list(config.agents) if config else (),
    )


async def handle_rtc(request: web.Request) -> web.StreamResponse:
    """GET /rtc: the signal WebSocket. Refusals are plain HTTP answers before the upgrade."""
    registry: RoomRegistry = request.app[ROOMS]
    try:
        claims = verify_token(token_from_request(request), request.app[KEYS])
        room_name = check_join_grant(claims, request.query.get("room", ""))
        room = await _room_for(registry, claims, room_name)
    except AuthError as e:
        logger.warning("join refused: %s", e.reason, extra={"path": request.path})
        return web.Response(status=e.status, text=e.reason)
    ws = web.WebSocketResponse(max_msg_size=16 * 1024 * 1024)
    if request.query.get("reconnect") == "1":
        # No session resumption here: tell the client to rejoin from scratch right away.
        await ws.prepare(request)
        leave = proto_rtc.LeaveRequest(
            can_reconnect=True,
            reason=models.DisconnectReason.STATE_MISMATCH,
            action=proto_rtc.LeaveRequest.Action.RECONNECT,
        )
        await ws.send_bytes(proto_rtc.SignalResponse(leave=leave).SerializeToString())
        await ws.close()
        return ws
    participant = participant_from_claims(claims)
    # Peers use these to decide on packet trailers and compressed data streams, as with LiveKit.
    participant.client_protocol = _int(request.query.get("client_protocol", "0"))
    participant.protocol = _int(request.query.get("protocol", "0"))
    participant.capabilities = [
        models.ClientInfo.Capability.Value(name)
        for name in request.query.get("capabilities", "").split(",")
        if name in models.ClientInfo.Capability.keys()
    ]
    session = SignalSession(
        ws, room, participant, auto_subscribe=request.query.get("auto_subscribe", "1") != "0"
    )
    participant.session = session
    try:
        await room.add_participant(participant)
    except JoinRefused as e:
        logger.warning("join refused: %s", e, extra={"room": room_name})
        participant.session = None
        await session.media.close()
        return web.Response(status=500, text=str(e))
    # a client that asks to leave has left; one whose connection just ended (dropped, silent,
    # broken) may come back: if its media ever connected it is kept for a while, as
    # livekit-server keeps it for resuming, else it is gone (SIGNAL_CLOSE)
    left = False
    try:
        await ws.prepare(request)
        await session.start()
        left = await session.run()
    except ProtocolError as e:
        logger.warning("closing connection: %s", e, extra=session._log)
    except Exception:
        logger.exception("signal session failed", extra=session._log)
    finally:
        if room.participants.get(participant.identity) is not participant:
            # removed meanwhile (replaced, removed, room closed): its session is closed already
            await session.close(participant.disconnect_reason)
        elif left:
            await room.remove_participant(
                participant.identity, reason=models.DisconnectReason.CLIENT_INITIATED
            )
        elif session.media.has_connected:
            session.signal_lost()
            room.keep_dropped(participant, registry.settings.dropped_participant_timeout_s)
        else:
            await room.remove_participant(
                participant.identity, reason=models.DisconnectReason.SIGNAL_CLOSE
            )
    return ws


async def handle_validate(request: web.Request) -> web.Response:
    """GET /rtc/validate: livekit-client asks here why a WebSocket upgrade failed."""
    registry: RoomRegistry = request.app[ROOMS]
    try:
        claims = verify_token(token_from_request(request), request.app[KEYS])
        room_name = check_join_grant(claims, request.query.get("room", ""))
        if registry.get(room_name) is None and not (
            registry.settings.auto_create or (claims.video and claims.video.room_create)
        ):
            raise AuthError(404, "requested room does not exist")
    except AuthError as e:
        return web.Response(status=e.status, text=e.reason)
    return web.Response(text="success")
