"""LiveKit's signal protocol on an admitted participant's WebSocket (see signal_join.py).

One `SignalSession` per connected participant. It turns `SignalRequest`s into room and media
actions and pushes `SignalResponse`s through a single writer task so they keep their order. A
malformed message or a protocol error closes this connection only; the participant is then
treated like any other that lost its connection (signal_join.py). After `signal_lost()` the
session keeps the participant's media running but sends nothing more, until the room closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiohttp import WSMsgType, web
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from livekit.protocol import models
from livekit.protocol import rtc as proto_rtc

from devserver import __version__
from devserver.data import DataError, handle_incoming
from devserver.media import ParticipantMedia
from devserver.media_forward import TrackSource
from devserver.quality import SIGNAL_SILENT_S, LinkObservation
from devserver.rooms import Participant, PublishedTrack, Room, new_sid

logger = logging.getLogger("devserver.signal")

PROTOCOL_VERSION = 16
PING_INTERVAL_S = 5
PING_TIMEOUT_S = 15

_PUBLISH_CODECS = [
    models.Codec(mime="audio/opus"),
    models.Codec(mime="video/VP8"),
    models.Codec(mime="video/H264"),
]


def _mime_type(req: proto_rtc.AddTrackRequest) -> str:
    """The codec a new track will most likely use, until its offer settles it."""
    if req.type == models.TrackType.AUDIO:
        return "audio/opus"
    if not req.simulcast_codecs or not req.simulcast_codecs[0].codec:
        return ""  # the Python SDK does not say; the publisher's offer will
    codec = req.simulcast_codecs[0].codec
    return {"vp8": "video/VP8", "h264": "video/H264"}.get(codec.lower(), f"video/{codec}")


class ProtocolError(Exception):
    """A client message that breaks the protocol: the connection is closed."""


class SignalSession:
    def __init__(
        self,
        ws: web.WebSocketResponse,
        room: Room,
        participant: Participant,
        *,
        auto_subscribe: bool,
    ) -> None:
        self.ws = ws
        self.room = room
        self.participant = participant
        self.auto_subscribe = auto_subscribe
        self._outbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        # started once the WebSocket is up (start()); messages queue until then
        self._writer: asyncio.Future[None] | None = None
        self._closing = False
        self._signal_gone = False
        self._last_heard = time.monotonic()  # any signal message from the client
        self.media = ParticipantMedia(
            participant,
            room_name=room.name,
            send_signal=self.send_signal,
            on_data=self._on_data,
            on_track_bound=self._on_track_bound,
            on_tracks_stopped=self._on_tracks_stopped,
        )

    @property
    def _log(self) -> dict[str, str]:
        return {"room": self.room.name, "identity": self.participant.identity}

    # -- ParticipantSession (called by the room) --------------------------------------------

    def send_signal(self, message: proto_rtc.SignalResponse) -> None:
        if not (self._closing or self._signal_gone):
            self._outbox.put_nowait(message.SerializeToString())

    def send_data(
        self, packet: models.DataPacket, *, reliable: bool, raw: bytes | None = None
    ) -> None:
        self.media.send_data(raw or packet.SerializeToString(), reliable=reliable)

    def track_published(self, publisher: Participant, track: PublishedTrack) -> None:
        if self.auto_subscribe and self.participant.permission.can_subscribe:
            self.media.subscribe(publisher, track)

    def track_unpublished(self, publisher: Participant, track: PublishedTrack) -> None:
        self.media.unsubscribe(track.info.sid)

    def subscribed_tracks(self) -> list[str]:
        return list(self.media.subscriptions)

    def permission_changed(self) -> None:
        """Apply new grants (RoomService.UpdateParticipant): drop what is no longer allowed."""
        permission = self.participant.permission
        if not permission.can_publish:
            self._on_tracks_stopped(list(self.participant.tracks))
        if not permission.can_subscribe:
            for sid, sub in list(self.media.subscriptions.items()):
                self.media.unsubscribe(sid)
                # SDKs drop the remote track on this, as they would under livekit-server
                update = proto_rtc.SubscriptionPermissionUpdate(
                    participant_sid=sub.publisher.sid, track_sid=sid, allowed=False
                )
                self.send_signal(proto_rtc.SignalResponse(subscription_permission_update=update))
        elif self.auto_subscribe:
            for other in self.room.others(self.participant):
                for track in other.tracks.values():
                    self.track_published(other, track)

    async def link_observation(self) -> LinkObservation:
        alive = time.monotonic() - self._last_heard < SIGNAL_SILENT_S
        return LinkObservation(
            connected=alive and not self.media.transport_failed,
            samples=tuple(await self.media.link_samples()),
        )

    def signal_lost(self) -> None:
        """The WebSocket is gone: send nothing more; the media stays until close()."""
        self._signal_gone = True
        self._outbox.put_nowait(None)

    async def close(self, reason: int) -> None:
        if self._closing:
            return
        # a client that left, or whose connection ended, is not told to go (it may rejoin)
        if reason not in (
            models.DisconnectReason.CLIENT_INITIATED,
            models.DisconnectReason.SIGNAL_CLOSE,
        ):
            self.send_signal(
                proto_rtc.SignalResponse(
                    leave=proto_rtc.LeaveRequest(
                        reason=reason, action=proto_rtc.LeaveRequest.Action.DISCONNECT
                    )
                )
            )
        self._closing = True
        self._outbox.put_nowait(None)
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer, 2)
        await self.media.close()
        await self.ws.close()

    # -- plumbing ---------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            data = await self._outbox.get()
            if data is None:
                return
            try:
                await self.ws.send_bytes(data)
            except (ConnectionError, RuntimeError):
                return

    def _on_data(self, raw: bytes, reliable: bool) -> None:
        try:
            handle_incoming(self.room, self.participant, raw, reliable=reliable)
        except DataError as e:
            logger.warning("data packet dropped: %s", e, extra=self._log)

    def _on_tracks_stopped(self, track_sids: list[str]) -> None:
        for sid in track_sids:
            track = self.participant.tracks.get(sid)
            self.room.unpublish_track(self.participant, sid)
            if track is not None and isinstance(track.source, TrackSource):
                track.source.close()

    def _on_track_bound(self, track: PublishedTrack) -> None:
        self.room.publish_track(self.participant, track)
        self.room.track_ready(self.participant, track)

    # -- join -------------------------------------------------------------------------------

    def join_response(self) -> proto_rtc.SignalResponse:
        others = [p.to_proto() for p in self.room.others(self.participant)]
        return proto_rtc.SignalResponse(
            join=proto_rtc.JoinResponse(
                room=self.room.to_proto(),
                participant=self.participant.to_proto(),
                other_participants=others,
                server_version=__version__,
                subscriber_primary=True,
                ping_interval=PING_INTERVAL_S,
                ping_timeout=PING_TIMEOUT_S,
                server_info=models.ServerInfo(
                    edition=models.ServerInfo.Edition.Standard,
                    version=__version__,
                    protocol=PROTOCOL_VERSION,
                    node_id="devserver",
                    region="local",
                ),
                enabled_publish_codecs=_PUBLISH_CODECS,
            )
        )

    async def start(self) -> None:
        self._writer = asyncio.ensure_future(self._write_loop())
        self.send_signal(self.join_response())
        self.room.mark_active(self.participant)
        self.media.negotiate()  # the first subscriber offer carries the data channels
        for other in self.room.others(self.participant):
            for track in other.tracks.values():
                if track.source is not None:
                    self.track_published(other, track)

    # -- requests ---------------------------------------------------------------------------

    async def run(self) -> bool:
        """Serve the client's requests; True when it left (a leave request), False when its
        connection closed without one."""
        while True:
            try:
                msg = await self.ws.receive(timeout=PING_TIMEOUT_S)
            except TimeoutError:
                raise ProtocolError(
                    f"no message (not even a ping) for {PING_TIMEOUT_S} s"
                ) from None
            self._last_heard = time.monotonic()
            if msg.type == WSMsgType.BINARY:
                request = proto_rtc.SignalRequest()
                try:
                    request.ParseFromString(msg.data)
                except DecodeError as e:
                    raise ProtocolError(f"undecodable SignalRequest: {e}") from None
            elif msg.type == WSMsgType.TEXT:
                try:
                    request = json_format.Parse(msg.data, proto_rtc.SignalRequest())
                except json_format.ParseError as e:
                    raise ProtocolError(f"undecodable SignalRequest JSON: {e}") from None
            else:
                return False
            if await self.handle(request):
                return True

    async def handle(self, request: proto_rtc.SignalRequest) -> bool:
        """Act on one request; True when the client is leaving."""
        kind = request.WhichOneof("message")
        media = self.media
        try:
            if kind == "offer":
                await media.handle_publisher_offer(request.offer)
            elif kind == "answer":
                await media.handle_subscriber_answer(request.answer)
            elif kind == "trickle":
                await media.add_candidate(request.trickle.target, request.trickle.candidateInit)
            elif kind == "add_track":
                self._add_track(request.add_track)
            elif kind == "mute":
                self._mute(request.mute)
            elif kind == "subscription":
                self._update_subscription(request.subscription)
            elif kind == "track_setting":
                for sid in request.track_setting.track_sids:
                    media.set_subscription_enabled(sid, not request.track_setting.disabled)
            elif kind == "leave":
                return True
            elif kind == "ping":
                self.send_signal(proto_rtc.SignalResponse(pong=int(time.time() * 1000)))
            elif kind == "ping_req":
                self.send_signal(
                    proto_rtc.SignalResponse(
                        pong_resp=proto_rtc.Pong(
                            last_ping_timestamp=request.ping_req.timestamp,
                            timestamp=int(time.time() * 1000),
                        )
                    )
                )
            elif kind == "update_metadata":
                await self._update_metadata(request.update_metadata)
            elif kind == "update_audio_track":
                self._update_track_features(request.update_audio_track)
            elif kind == "update_video_track":
                self._update_video_size(request.update_video_track)
            else:
                logger.debug("signal request ignored: %s", kind, extra=self._log)
        except (ValueError, KeyError, TypeError) as e:
            raise ProtocolError(f"bad {kind} request: {e}") from None
        return False

    def _add_track(self, req: proto_rtc.AddTrackRequest) -> None:
        permission = self.participant.permission
        allowed = permission.can_publish and (
            not permission.can_publish_sources or req.source in permission.can_publish_sources
        )
        if not allowed:
            logger.warning("add_track refused: no publish permission", extra=self._log)
            self.send_signal(
                proto_rtc.SignalResponse(
                    request_response=proto_rtc.RequestResponse(
                        reason=proto_rtc.RequestResponse.Reason.NOT_ALLOWED,
                        message="the token does not allow publishing this track",
                        add_track=req,
                    )
                )
            )
            return
        type_prefix = "TR_A" if req.type == models.TrackType.AUDIO else "TR_V"
        info = models.TrackInfo(
            sid=req.sid or new_sid(type_prefix),
            mime_type=_mime_type(req),
            type=req.type,
            name=req.name,
            muted=req.muted,
            width=req.width,
            height=req.height,
            simulcast=len(req.layers) > 1,
            disable_dtx=req.disable_dtx,
            source=req.source,
            layers=list(req.layers),
            stereo=req.stereo,
            disable_red=req.disable_red,
            encryption=req.encryption,
            stream=req.stream,
            audio_features=list(req.audio_features),
            backup_codec_policy=req.backup_codec_policy,
        )
        self.media.pending_tracks[req.cid] = PublishedTrack(info=info)
        self.send_signal(
            proto_rtc.SignalResponse(
                track_published=proto_rtc.TrackPublishedResponse(cid=req.cid, track=info)
            )
        )

    def _mute(self, req: proto_rtc.MuteTrackRequest) -> None:
        if req.sid in self.participant.tracks:
            self.room.set_track_muted(self.participant, req.sid, req.muted)
            return
        for pending in self.media.pending_tracks.values():
            if pending.info.sid == req.sid:
                pending.info.muted = req.muted

    def _update_subscription(self, req: proto_rtc.UpdateSubscription) -> None:
        if not self.participant.permission.can_subscribe:
            return
        wanted = set(req.track_sids)
        for pt in req.participant_tracks:
            wanted.update(pt.track_sids)
        for sid in wanted:
            if not req.subscribe:
                self.media.unsubscribe(sid)
                continue
            for other in self.room.others(self.participant):
                track = other.tracks.get(sid)
                if track is not None:
                    self.media.subscribe(other, track)

    async def _update_metadata(self, req: proto_rtc.UpdateParticipantMetadata) -> None:
        if not self.participant.permission.can_update_metadata:
            logger.warning("metadata update refused: no canUpdateOwnMetadata", extra=self._log)
            self.send_signal(
                proto_rtc.SignalResponse(
                    request_response=proto_rtc.RequestResponse(
                        request_id=req.request_id,
                        reason=proto_rtc.RequestResponse.Reason.NOT_ALLOWED,
                        message="the token does not allow updating own metadata",
                        update_metadata=req,
                    )
                )
            )
            return
        await self.room.update_participant(
            self.participant.identity,
            metadata=req.metadata if req.metadata else None,
            name=req.name if req.name else None,
            attributes=dict(req.attributes),
        )
        if req.request_id:
            self.send_signal(
                proto_rtc.SignalResponse(
                    request_response=proto_rtc.RequestResponse(
                        request_id=req.request_id, reason=proto_rtc.RequestResponse.Reason.OK
                    )
                )
            )

    def _update_track_features(self, req: proto_rtc.UpdateLocalAudioTrack) -> None:
        track = self.participant.tracks.get(req.track_sid)
        if track is not None:
            del track.info.audio_features[:]
            track.info.audio_features.extend(req.features)
            self.room.broadcast_participant(self.participant)

    def _update_video_size(self, req: proto_rtc.UpdateLocalVideoTrack) -> None:
        track = self.participant.tracks.get(req.track_sid)
        if track is not None:
            track.info.width, track.info.height = req.width, req.height
            self.room.broadcast_participant(self.participant)
