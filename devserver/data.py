"""Data routing: DataPackets from one participant (or the server) to the others in a room.

User packets, chat, transcriptions, RPC request/ack/response and data-stream header/chunk/
trailer packets are all DataPackets; the server only stamps the sender (identity and sid, as
livekit-server does, so receivers can trust them) and delivers each packet to its
`destination_identities`, or to everyone else when that list is empty, over the same kind of
channel (reliable/lossy) it came in on. As in livekit-server (pkg/rtc/participant.go), only
agents may send transcription packets (others' are dropped), and an agent may open a text
stream on behalf of another participant (a transcription of the candidate): its header keeps
that identity and is marked generated.
"""

from __future__ import annotations

import logging

from google.protobuf.message import DecodeError
from livekit.protocol import models

from devserver.rooms import Participant, Room

logger = logging.getLogger("devserver.data")


class DataError(ValueError):
    """A data packet that cannot be routed (undecodable or not allowed)."""


def parse_packet(raw: bytes) -> models.DataPacket:
    packet = models.DataPacket()
    try:
        packet.ParseFromString(raw)
    except DecodeError as e:
        raise DataError(f"undecodable DataPacket: {e}") from None
    return packet


def stamp_sender(packet: models.DataPacket, sender: Participant) -> None:
    """Fill in who sent the packet; clients must not be able to claim another identity, except
    an agent's text stream on behalf of someone."""
    value = packet.WhichOneof("value")
    on_behalf = (
        value == "stream_header"
        and sender.permission.agent
        and packet.participant_identity not in ("", sender.identity)
        and packet.stream_header.WhichOneof("content_header") == "text_header"
    )
    if on_behalf:
        packet.stream_header.text_header.generated = True
    else:
        packet.participant_identity = sender.identity
    packet.participant_sid = sender.sid
    if value == "user":
        packet.user.participant_identity = sender.identity
        packet.user.participant_sid = sender.sid
    elif value == "transcription":
        packet.transcription.transcribed_participant_identity = (
            packet.transcription.transcribed_participant_identity or sender.identity
        )


def route_packet(
    room: Room, sender: Participant | None, packet: models.DataPacket, *, reliable: bool
) -> int:
    """Deliver a packet; returns how many participants it was sent to."""
    destinations = set(packet.destination_identities)
    if not destinations and packet.WhichOneof("value") == "user":
        destinations = set(packet.user.destination_identities)  # older clients set it here
    packet.kind = models.DataPacket.Kind.RELIABLE if reliable else models.DataPacket.Kind.LOSSY
    raw = packet.SerializeToString()
    delivered = 0
    for participant in list(room.participants.values()):
        if participant is sender or participant.session is None:
            continue
        if destinations and participant.identity not in destinations:
            continue
        participant.session.send_data(packet, reliable=reliable, raw=raw)
        delivered += 1
    if destinations and delivered < len(destinations):
        logger.debug(
            "data packet for absent participants",
            extra={"room": room.name, "destinations": sorted(destinations)},
        )
    return delivered


def handle_incoming(room: Room, sender: Participant, raw: bytes, *, reliable: bool) -> None:
    """A packet a participant sent on one of its data channels."""
    packet = parse_packet(raw)
    value = packet.WhichOneof("value")
    if value in (None, "speaker"):
        return  # nothing a client may send to others (speaker updates come from the server)
    if not sender.permission.can_publish_data:
        raise DataError(f"participant {sender.identity!r} may not publish data")
    if value == "transcription" and not sender.permission.agent:
        return  # livekit-server forwards transcriptions from agents only, silently
    stamp_sender(packet, sender)
    route_packet(room, sender, packet, reliable=reliable)
