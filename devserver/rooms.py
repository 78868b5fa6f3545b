"""Rooms registry: who is in which room, their published tracks, and room/participant lifecycle.

The registry owns `Room`s; a `Room` owns its `Participant`s. A connected participant has a
`session` (the signal connection, see signal.py) through which the room pushes updates, tracks
and data. Room-level events are emitted on the registry (`room_created`, `room_closed`,
`participant_joined`, `participant_left`) for the agent dispatcher and for logging.

Lifetimes follow livekit-server (pkg/rtc/room.go): once a second every room is checked; a room
with no person in it (agents and egress do not count) closes as ROOM_CLOSED `departure_timeout`
after the last departure of any participant, or `empty_timeout` after its creation while no
person has joined yet. A participant whose signal connection drops without leaving is kept for
`RoomSettings.dropped_participant_timeout_s` (livekit-server keeps it until its media transport
times out), then removed as CONNECTION_TIMEOUT; a rejoin with its identity replaces it sooner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from livekit.protocol import models
from livekit.protocol import rtc as proto_rtc
from livekit.rtc import EventEmitter

from devserver.quality import ConnectionQualityMonitor, LinkObservation
from devserver.speakers import SpeakerMonitor

logger = logging.getLogger("devserver.rooms")

_SID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"


# Protocol 12 clients reconnect by identity: livekit-server does not tell them that a participant
# was replaced by a newer connection of its identity (they see the new sid instead).
_IDENTITY_RECONNECT_PROTOCOL = 12


class JoinRefused(Exception):
    """A join the room cannot take (closed, full): the reason is sent back to the client."""


@dataclass(frozen=True)
class RoomSettings:
    """livekit.yaml's `room:` keys the dev server honours, with livekit-server's defaults, and how
    long a participant whose signal connection dropped is kept."""

    auto_create: bool = True  # joining a missing room creates it (else 404, unless roomCreate)
    empty_timeout: int = 300
    departure_timeout: int = 20
    max_participants: int = 0  # people only; 0 is no limit
    # livekit-server keeps such a participant until ICE gives up (10 s disconnected + 5 s
    # failed) plus 5 s of cleanup (pkg/rtc/transport.go, participant.go)
    dropped_participant_timeout_s: float = 20.0


def new_sid(prefix: str) -> str:
    """A LiveKit-style id: prefix (RM_, PA_, TR_) and 12 random characters."""
    return prefix + "".join(secrets.choice(_SID_ALPHABET) for _ in range(12))


class ParticipantSession(Protocol):
    """What a room needs from a connected participant (implemented by signal.SignalSession)."""

    def send_signal(self, message: proto_rtc.SignalResponse) -> None: ...

    def send_data(
        self, packet: models.DataPacket, *, reliable: bool, raw: bytes | None = None
    ) -> None: ...

    def track_published(self, publisher: Participant, track: PublishedTrack) -> None: ...

    def track_unpublished(self, publisher: Participant, track: PublishedTrack) -> None: ...

    def permission_changed(self) -> None: ...

    def subscribed_tracks(self) -> list[str]: ...

    async def close(self, reason: int) -> None: ...

    async def link_observation(self) -> LinkObservation: ...


@dataclass
class PublishedTrack:
    """A track a participant published; `source` is its RTP fan-out once media flows."""

    info: models.TrackInfo
    source: object | None = None  # media_forward.TrackSource; typed loosely to keep rooms light


@dataclass(eq=False)
class Participant:
    identity: str
    name: str = ""
    kind: int = models.ParticipantInfo.Kind.STANDARD
    metadata: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    permission: models.ParticipantPermission = field(default_factory=models.ParticipantPermission)
    sid: str = field(default_factory=lambda: new_sid("PA_"))
    joined_at: int = field(default_factory=lambda: int(time.time()))
    joined_at_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    state: int = models.ParticipantInfo.State.JOINING
    tracks: dict[str, PublishedTrack] = field(default_factory=dict)  # by track sid
    version: int = 0
    client_protocol: int = 0
    protocol: int = 0  # the signal protocol version the client speaks
    capabilities: list[int] = field(default_factory=list)  # models.ClientInfo.Capability
    session: ParticipantSession | None = None
    # why it left (models.DisconnectReason), told to the others with its departure
    disconnect_reason: int = models.DisconnectReason.UNKNOWN_REASON
    # set while its signal connection is gone and it waits to be removed (Room.keep_dropped)
    drop_task: asyncio.Task[None] | None = None

    @property
    def hidden(self) -> bool:
        return self.permission.hidden

    @property
    def is_dependent(self) -> bool:
        """Agents, egress and recorders are there for the others: they do not keep a room open
        nor count towards its participant limit (livekit-server's IsDependent)."""
        return (
            self.kind in (models.ParticipantInfo.Kind.AGENT, models.ParticipantInfo.Kind.EGRESS)
            or self.permission.agent
            or self.permission.recorder
        )

    def to_proto(self) -> models.ParticipantInfo:
        return models.ParticipantInfo(
            sid=self.sid,
            identity=self.identity,
            name=self.name,
            kind=self.kind,
            metadata=self.metadata,
            attributes=self.attributes,
            state=self.state,
            tracks=[t.info for t in self.tracks.values()],
            joined_at=self.joined_at,
            joined_at_ms=self.joined_at_ms,
            version=self.version,
            permission=self.permission,
            is_publisher=bool(self.tracks),
            client_protocol=self.client_protocol,
            capabilities=self.capabilities,
            disconnect_reason=self.disconnect_reason,
        )


class Room:
    def __init__(
        self,
        registry: RoomRegistry,
        name: str,
        *,
        metadata: str = "",
        empty_timeout: int = 300,
        departure_timeout: int = 20,
        max_participants: int = 0,
    ) -> None:
        self.registry = registry
        self.name = name
        self.sid = new_sid("RM_")
        self.metadata = metadata
        self.empty_timeout = empty_timeout
        self.departure_timeout = departure_timeout
        self.max_participants = max_participants
        self.creation_time = int(time.time())
        self.creation_time_ms = int(time.time() * 1000)
        self.participants: dict[str, Participant] = {}
        self.closed = False
        # monotonic times for the idle check: when a person first joined, when anyone last left
        self._created_at = time.monotonic()
        self._first_joined_at = 0.0
        self._last_left_at = 0.0
        self.speakers = SpeakerMonitor(self)
        self.quality = ConnectionQualityMonitor(self)

    def to_proto(self) -> models.Room:
        return models.Room(
            sid=self.sid,
            name=self.name,
            metadata=self.metadata,
            empty_timeout=self.empty_timeout,
            departure_timeout=self.departure_timeout,
            max_participants=self.max_participants,
            creation_time=self.creation_time,
            creation_time_ms=self.creation_time_ms,
            # people only, as livekit-server counts them
            num_participants=sum(1 for p in self.participants.values() if not p.is_dependent),
            num_publishers=sum(1 for p in self.participants.values() if p.tracks),
        )

    def others(self, participant: Participant) -> list[Participant]:
        """Participants `participant` can see: everyone else who is not hidden."""
        return [p for p in self.participants.values() if p is not participant and not p.hidden]

    # -- membership -------------------------------------------------------------------------

    async def add_participant(self, participant: Participant) -> None:
        """Admit a participant; an existing one with the same identity is replaced (as LiveKit
        does when the same identity joins twice). Raises JoinRefused."""
        if self.closed:
            raise JoinRefused(f"room {self.name!r} is closed")
        old = self.participants.get(participant.identity)
        if old is not None:
            await self.remove_participant(
                old.identity, reason=models.DisconnectReason.DUPLICATE_IDENTITY
            )
        if self.max_participants and not participant.is_dependent:
            people = sum(1 for p in self.participants.values() if not p.is_dependent)
            if people >= self.max_participants:
                raise JoinRefused("room has exceeded its max participants")
        if not participant.is_dependent and not self._first_joined_at:
            self._first_joined_at = time.monotonic()
        self.participants[participant.identity] = participant
        self.speakers.start()
        self.quality.start()
        logger.info(
            "participant joined",
            extra={"room": self.name, "identity": participant.identity, "sid": participant.sid},
        )
        self.registry.emit("participant_joined", self, participant)

    def mark_active(self, participant: Participant) -> None:
        """Called once the participant's JoinResponse is out: the others learn about them."""
        participant.state = models.ParticipantInfo.State.ACTIVE
        self.broadcast_participant(participant)

    async def remove_participant(
        self, identity: str, *, reason: int = models.DisconnectReason.PARTICIPANT_REMOVED
    ) -> bool:
        participant = self.participants.pop(identity, None)
        if participant is None:
            return False
        if participant.drop_task is not None:
            participant.drop_task.cancel()
            participant.drop_task = None
        self._last_left_at = time.monotonic()  # any departure restarts the departure timeout
        for track in list(participant.tracks.values()):
            self.unpublish_track(participant, track.info.sid, keep=True)
        participant.state = models.ParticipantInfo.State.DISCONNECTED
        participant.disconnect_reason = reason
        participant.version += 1
        if reason == models.DisconnectReason.DUPLICATE_IDENTITY:
            self.broadcast_participant(participant, max_protocol=_IDENTITY_RECONNECT_PROTOCOL - 1)
        else:
            self.broadcast_participant(participant)
        session, participant.session = participant.session, None
        if session is not None:
            await session.close(reason)
        logger.info(
            "participant left",
            extra={"room": self.name, "identity": identity, "reason": reason},
        )
        self.registry.emit("participant_left", self, participant)
        return True

    def keep_dropped(self, participant: Participant, timeout_s: float) -> None:
        """`participant`'s signal connection ended without a leave: it stays (the others still
        see it, its tracks stay published) until it rejoins or `timeout_s` has passed."""
        if participant.drop_task is not None:
            return

        async def expire() -> None:
            await asyncio.sleep(timeout_s)
            participant.drop_task = None  # not cancelled by its own removal
            if self.participants.get(participant.identity) is participant:
                await self.remove_participant(
                    participant.identity, reason=models.DisconnectReason.CONNECTION_TIMEOUT
                )

        participant.drop_task = asyncio.ensure_future(expire())
        logger.info(
            "participant dropped; kept until it rejoins or times out",
            extra={"room": self.name, "identity": participant.identity, "timeout_s": timeout_s},
        )

    async def update_participant(
        self,
        identity: str,
        *,
        metadata: str | None = None,
        name: str | None = None,
        attributes: dict[str, str] | None = None,
        permission: models.ParticipantPermission | None = None,
    ) -> Participant:
        participant = self.participants.get(identity)
        if participant is None:
            raise KeyError(identity)
        if metadata is not None:
            participant.metadata = metadata
        if name is not None:
            participant.name = name
        if attributes:
            # LiveKit semantics: keys with an empty value are deleted, others set.
            for key, value in attributes.items():
                if value:
                    participant.attributes[key] = value
                else:
                    participant.attributes.pop(key, None)
        if permission is not None:
            participant.permission = permission
        participant.version += 1
        self.broadcast_participant(participant, include_self=True)
        if permission is not None and participant.session is not None:
            participant.session.permission_changed()
        return participant

    # -- tracks -----------------------------------------------------------------------------

    def publish_track(self, participant: Participant, track: PublishedTrack) -> None:
        participant.tracks[track.info.sid] = track
        participant.version += 1
        logger.info(
            "track published",
            extra={
                "room": self.name,
                "identity": participant.identity,
                "track": track.info.sid,
                "type": models.TrackType.Name(track.info.type),
                "source": models.TrackSource.Name(track.info.source),
                "mime": track.info.mime_type,
            },
        )
        self.broadcast_participant(participant)

    def track_ready(self, participant: Participant, track: PublishedTrack) -> None:
        """Media of a published track is flowing: subscribers can be wired to it."""
        for other in self.others(participant):
            if other.session is not None:
                other.session.track_published(participant, track)
        # hidden participants (recorders, agents set hidden) may subscribe too
        for other in self.participants.values():
            if other.hidden and other is not participant and other.session is not None:
                other.session.track_published(participant, track)

    def unpublish_track(
        self, participant: Participant, track_sid: str, *, keep: bool = False
    ) -> None:
        track = participant.tracks.get(track_sid)
        if track is None:
            return
        if not keep:
            del participant.tracks[track_sid]
            participant.version += 1
        for other in self.participants.values():
            if other is not participant and other.session is not None:
                other.session.track_unpublished(participant, track)
        logger.info(
            "track unpublished",
            extra={"room": self.name, "identity": participant.identity, "track": track_sid},
        )
        if not keep:
            self.broadcast_participant(participant)

    def set_track_muted(self, participant: Participant, track_sid: str, muted: bool) -> None:
        track = participant.tracks.get(track_sid)
        if track is None or track.info.muted == muted:
            return
        track.info.muted = muted
        participant.version += 1
        self.broadcast_participant(participant)

    # -- messaging --------------------------------------------------------------------------

    def broadcast_participant(
        self, participant: Participant, *, include_self: bool = False, max_protocol: int = 0
    ) -> None:
        """Tell everyone (the participant too, if asked; with `max_protocol`, only clients of
        that protocol version or older) about the participant's new state."""
        update = proto_rtc.SignalResponse(
            update=proto_rtc.ParticipantUpdate(participants=[participant.to_proto()])
        )
        for other in list(self.participants.values()):
            if other.session is None or (other is participant and not include_self):
                continue
            if participant.hidden and other is not participant:
                continue
            if max_protocol and other.protocol > max_protocol:
                continue
            other.session.send_signal(update)

    async def send_data(
        self,
        payload: bytes,
        *,
        kind: int,
        destination_identities: Sequence[str] = (),
        topic: str | None = None,
    ) -> None:
        """Server-originated user data (Twirp SendData): no sender identity."""
        from devserver.data import route_packet  # local: data routing depends on rooms

        packet = models.DataPacket(
            kind=kind,
            destination_identities=list(destination_identities),
            user=models.UserPacket(
                payload=payload,
                destination_identities=list(destination_identities),
                topic=topic,
            ),
        )
        route_packet(self, None, packet, reliable=kind == models.DataPacket.Kind.RELIABLE)

    # -- lifecycle --------------------------------------------------------------------------

    def idle_too_long(self, now: float) -> bool:
        """Whether the once-a-second check closes the room now (livekit-server's CloseIfEmpty):
        only agents (or nobody) left, and the departure or empty timeout has run out."""
        if self.closed or any(not p.is_dependent for p in self.participants.values()):
            return False
        if self._first_joined_at and self._last_left_at:
            return now - self._last_left_at >= self.departure_timeout
        return now - self._created_at >= self.empty_timeout

    async def close(self, reason: int) -> None:
        """Send everyone away with `reason` (ROOM_DELETED, ROOM_CLOSED or SERVER_SHUTDOWN)."""
        self.closed = True
        await self.speakers.stop()
        await self.quality.stop()
        for identity in list(self.participants):
            await self.remove_participant(identity, reason=reason)


class RoomRegistry(EventEmitter):
    """All rooms of one server. Emits room_created(room, agents), room_closed(room),
    participant_joined(room, participant), participant_left(room, participant)."""

    IDLE_CHECK_INTERVAL_S = 1.0  # as livekit-server's room ticker

    def __init__(self, settings: RoomSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or RoomSettings()
        self._rooms: dict[str, Room] = {}
        self._lock = asyncio.Lock()
        self._idle_check: asyncio.Task[None] | None = None

    def get(self, name: str) -> Room | None:
        return self._rooms.get(name)

    def list(self) -> list[Room]:
        return list(self._rooms.values())

    async def get_or_create(
        self,
        name: str,
        *,
        metadata: str = "",
        empty_timeout: int = 0,
        departure_timeout: int = 0,
        max_participants: int = 0,
        agents: Sequence[models.RoomAgentDispatch] = (),
    ) -> Room:
        """The room called `name`, created if missing; zero timeouts and limits mean the
        server's settings."""
        async with self._lock:
            room = self._rooms.get(name)
            if room is not None:
                return room
            room = Room(
                self,
                name,
                metadata=metadata,
                empty_timeout=empty_timeout or self.settings.empty_timeout,
                departure_timeout=departure_timeout or self.settings.departure_timeout,
                max_participants=max_participants or self.settings.max_participants,
            )
            self._rooms[name] = room
            if self._idle_check is None:
                self._idle_check = asyncio.ensure_future(self._close_idle_rooms())
        logger.info("room created", extra={"room": name, "sid": room.sid, "agents": len(agents)})
        self.emit("room_created", room, list(agents))
        return room

    async def delete(
        self, name: str, *, reason: int = models.DisconnectReason.ROOM_DELETED
    ) -> bool:
        room = self._rooms.pop(name, None)
        if room is None:
            return False
        await room.close(reason)
        logger.info(
            "room closed",
            extra={"room": name, "sid": room.sid, "reason": models.DisconnectReason.Name(reason)},
        )
        self.emit("room_closed", room)
        return True

    async def _close_idle_rooms(self) -> None:
        while True:
            await asyncio.sleep(self.IDLE_CHECK_INTERVAL_S)
            now = time.monotonic()
            for room in self.list():
                if room.idle_too_long(now):
                    try:
                        await self.delete(room.name, reason=models.DisconnectReason.ROOM_CLOSED)
                    except Exception:  # one room failing to close must not stop the checks
                        logger.exception("closing an idle room failed", extra={"room": room.name})

    async def close(self) -> None:
        """Stop the idle check and send everyone away (server shutdown)."""
        if self._idle_check is not None:
            self._idle_check.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._idle_check
            self._idle_check = None
        for room in self.list():
            await self.delete(room.name, reason=models.DisconnectReason.SERVER_SHUTDOWN)
