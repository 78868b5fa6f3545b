"""Rooms registry: who is in which room, their published tracks, and room/participant lifecycle.

The registry owns `Room`s; a `Room` owns its `Participant`s. A connected participant has a
`session` (the signal connection, see signal.py) through which the room pushes updates, tracks
and data. Room-level events are emitted on the registry (`room_created`, `room_closed`,
`participant_joined`, `participant_left`) for the agent dispatcher and for logging.
"""

from __future__ import annotations

import asyncio
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
    capabilities: list[int] = field(default_factory=list)  # models.ClientInfo.Capability
    session: ParticipantSession | None = None
    # why it left (models.DisconnectReason), told to the others with its departure
    disconnect_reason: int = models.DisconnectReason.UNKNOWN_REASON

    @property
    def hidden(self) -> bool:
        return self.permission.hidden

    @property
    def is_dependent(self) -> bool:
        """Agents and egress are there for the others; they do not keep a room open."""
        return self.kind in (models.ParticipantInfo.Kind.AGENT, models.ParticipantInfo.Kind.EGRESS)

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
        self._close_timer: asyncio.TimerHandle | None = None
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
            num_participants=sum(1 for p in self.participants.values() if not p.hidden),
            num_publishers=sum(1 for p in self.participants.values() if p.tracks),
        )

    def others(self, participant: Participant) -> list[Participant]:
        """Participants `participant` can see: everyone else who is not hidden."""
        return [p for p in self.participants.values() if p is not participant and not p.hidden]

    # -- membership -------------------------------------------------------------------------

    async def add_participant(self, participant: Participant) -> None:
        """Admit a participant; an existing one with the same identity is replaced (as LiveKit
        does when the same identity joins twice)."""
        if self.closed:
            raise RuntimeError(f"room {self.name!r} is closed")
        old = self.participants.get(participant.identity)
        if old is not None:
            await self.remove_participant(
                old.identity, reason=models.DisconnectReason.DUPLICATE_IDENTITY
            )
        if self.max_participants and len(self.participants) >= self.max_participants:
            raise RuntimeError(f"room {self.name!r} is full ({self.max_participants})")
        if not participant.is_dependent:
            self._cancel_close_timer()
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
        for track in list(participant.tracks.values()):
            self.unpublish_track(participant, track.info.sid, keep=True)
        participant.state = models.ParticipantInfo.State.DISCONNECTED
        participant.disconnect_reason = reason
        participant.version += 1
        self.broadcast_participant(participant)
        session, participant.session = participant.session, None
        if session is not None:
            await session.close(reason)
        logger.info(
            "participant left",
            extra={"room": self.name, "identity": identity, "reason": reason},
        )
        self.registry.emit("participant_left", self, participant)
        if not self.participants or (
            not participant.is_dependent and not self._has_independent_participants()
        ):
            self._schedule_close(self.departure_timeout)
        return True

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
        self, participant: Participant, *, include_self: bool = False
    ) -> None:
        """Tell everyone (the participant too, if asked) about the participant's new state."""
        update = proto_rtc.SignalResponse(
            update=proto_rtc.ParticipantUpdate(participants=[participant.to_proto()])
        )
        for other in list(self.participants.values()):
            if other.session is None or (other is participant and not include_self):
                continue
            if participant.hidden and other is not participant:
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

    def _schedule_close(self, delay: int) -> None:
        self._cancel_close_timer()
        loop = asyncio.get_running_loop()
        self._close_timer = loop.call_later(
            max(delay, 0), lambda: asyncio.ensure_future(self._close_if_empty())
        )

    def _cancel_close_timer(self) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None

    def _has_independent_participants(self) -> bool:
        return any(not p.is_dependent for p in self.participants.values())

    async def _close_if_empty(self) -> None:
        # Agents (and egress) do not keep a room alive, as in livekit-server: once only they
        # remain the room closes, which ends their jobs.
        if not self.closed and not self._has_independent_participants():
            await self.registry.delete(self.name)

    async def close(self) -> None:
        self._cancel_close_timer()
        self.closed = True
        await self.speakers.stop()
        await self.quality.stop()
        for identity in list(self.participants):
            await self.remove_participant(identity, reason=models.DisconnectReason.ROOM_DELETED)


class RoomRegistry(EventEmitter):
    """All rooms of one server. Emits room_created(room, agents), room_closed(room),
    participant_joined(room, participant), participant_left(room, participant)."""

    def __init__(self) -> None:
        super().__init__()
        self._rooms: dict[str, Room] = {}
        self._lock = asyncio.Lock()

    def get(self, name: str) -> Room | None:
        return self._rooms.get(name)

    def list(self) -> list[Room]:
        return list(self._rooms.values())

    async def get_or_create(
        self,
        name: str,
        *,
        metadata: str = "",
        empty_timeout: int = 300,
        departure_timeout: int = 20,
        max_participants: int = 0,
        agents: Sequence[models.RoomAgentDispatch] = (),
    ) -> Room:
        async with self._lock:
            room = self._rooms.get(name)
            if room is not None:
                return room
            room = Room(
                self,
                name,
                metadata=metadata,
                empty_timeout=empty_timeout or 300,
                departure_timeout=departure_timeout or 20,
                max_participants=max_participants,
            )
            self._rooms[name] = room
            room._schedule_close(room.empty_timeout)
        logger.info("room created", extra={"room": name, "sid": room.sid, "agents": len(agents)})
        self.emit("room_created", room, list(agents))
        return room

    async def delete(self, name: str) -> bool:
        room = self._rooms.pop(name, None)
        if room is None:
            return False
        await room.close()
        logger.info("room closed", extra={"room": name, "sid": room.sid})
        self.emit("room_closed", room)
        return True
