"""Joining a room over HTTP: the /rtc WebSocket upgrade and /rtc/validate.

The token is checked before the upgrade, so a refusal is a plain HTTP answer with the status
livekit-server uses and a one-line reason (livekit-client fetches /rtc/validate to show it). An
admitted participant gets a `SignalSession` for the rest of its stay.
"""

from __future__ import annotations

import logging

from aiohttp import web
from livekit import api
from livekit.protocol import models
from livekit.protocol import rtc as proto_rtc

from devserver.appkeys import KEYS, ROOMS
from devserver.auth import AuthError, check_join_grant, token_from_request, verify_token
from devserver.rooms import Participant, RoomRegistry
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


async def handle_rtc(request: web.Request) -> web.StreamResponse:
    """GET /rtc: the signal WebSocket. Refusals are plain HTTP answers before the upgrade."""
    registry: RoomRegistry = request.app[ROOMS]
    try:
        claims = verify_token(token_from_request(request), request.app[KEYS])
        room_name = check_join_grant(claims, request.query.get("room", ""))
    except AuthError as e:
        logger.warning("join refused: %s", e.reason, extra={"path": request.path})
        return web.Response(status=e.status, text=e.reason)
    config = claims.room_config
    room = await registry.get_or_create(
        room_name,
        empty_timeout=config.empty_timeout if config else 0,
        departure_timeout=config.departure_timeout if config else 0,
        max_participants=config.max_participants if config else 0,
        metadata=config.metadata if config else "",
        agents=list(config.agents) if config else (),
    )
    participant = participant_from_claims(claims)
    # Peers use these to decide on packet trailers and compressed data streams, as with LiveKit.
    participant.client_protocol = _int(request.query.get("client_protocol", "0"))
    participant.capabilities = [
        models.ClientInfo.Capability.Value(name)
        for name in request.query.get("capabilities", "").split(",")
        if name in models.ClientInfo.Capability.keys()
    ]
    ws = web.WebSocketResponse(max_msg_size=16 * 1024 * 1024)
    await ws.prepare(request)
    if request.query.get("reconnect") == "1":
        # No session resumption here: tell the client to rejoin from scratch right away.
        leave = proto_rtc.LeaveRequest(
            can_reconnect=True,
            reason=models.DisconnectReason.STATE_MISMATCH,
            action=proto_rtc.LeaveRequest.Action.RECONNECT,
        )
        await ws.send_bytes(proto_rtc.SignalResponse(leave=leave).SerializeToString())
        await ws.close()
        return ws
    session = SignalSession(
        ws, room, participant, auto_subscribe=request.query.get("auto_subscribe", "1") != "0"
    )
    participant.session = session
    try:
        await room.add_participant(participant)
    except RuntimeError as e:
        logger.warning("join refused: %s", e, extra={"room": room_name})
        await session.close(models.DisconnectReason.JOIN_FAILURE)
        return ws
    # a client that asks to leave has left; one whose connection just ended (dropped, silent,
    # broken) has not chosen to, and the others are told so: an avatar then waits for its agent
    reason = models.DisconnectReason.SIGNAL_CLOSE
    try:
        await session.start()
        if await session.run():
            reason = models.DisconnectReason.CLIENT_INITIATED
    except ProtocolError as e:
        logger.warning("closing connection: %s", e, extra=session._log)
    except Exception:
        logger.exception("signal session failed", extra=session._log)
    finally:
        if room.participants.get(participant.identity) is participant:
            await room.remove_participant(participant.identity, reason=reason)
        else:
            await session.close(reason)
    return ws


async def handle_validate(request: web.Request) -> web.Response:
    """GET /rtc/validate: livekit-client asks here why a WebSocket upgrade failed."""
    try:
        claims = verify_token(token_from_request(request), request.app[KEYS])
        check_join_grant(claims, request.query.get("room", ""))
    except AuthError as e:
        return web.Response(status=e.status, text=e.reason)
    return web.Response(text="success")
