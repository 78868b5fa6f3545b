"""Connection quality: what the server observes of each participant's link, sent to clients as
`ConnectionQualityUpdate` every few seconds like livekit-server does.

Each interval a participant's session reports a `LinkObservation`: whether its signal connection
and peer connections are alive, and one `LinkSample` per media stream the server saw during the
interval — RTP the participant published (sequence-number loss, interarrival jitter, stalls) and
what its subscriptions' receiver reports say about media sent to it (loss, jitter, round trip).
Each sample is scored with the ITU-T G.107 E-model reduced to loss and delay (R factor -> MOS);
the participant gets its worst sample. A published track that delivered nothing for a whole
interval, a silent signal connection or a failed peer connection is LOST. With nothing to
measure (no media yet) a live connection is EXCELLENT, as livekit-server also starts out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from livekit.protocol import models
from livekit.protocol import rtc as proto_rtc

from devserver.periodic import RoomTicker

logger = logging.getLogger("devserver.quality")

UPDATE_INTERVAL_S = 3.0
# A gap this long between two packets of an unmuted track is a stall, not packet pacing
# (Opus DTX sends one packet per 400 ms of silence; video at least a few frames per second).
STALL_GAP_S = 1.0
# Clients ping every 5 s (signal.PING_INTERVAL_S); two missed pings mean the signal link is gone.
SIGNAL_SILENT_S = 11.0
# E-model constants: the default R0 with no impairment, and Opus' packet-loss robustness (Bpl)
# with in-band FEC, which puts ~12 % loss at POOR as with livekit-server's scorer.
_R_DEFAULT = 93.2
_OPUS_BPL = 25.0
EXCELLENT_MOS = 4.1
GOOD_MOS = 3.6

Quality = models.ConnectionQuality.ValueType


@dataclass(frozen=True)
class LinkSample:
    """One media stream over the last interval, as the server saw it."""

    loss: float  # fraction of packets lost, 0-1 (stalled time counts as lost)
    jitter_ms: float = 0.0
    rtt_ms: float = 0.0
    silent: bool = False  # media was expected and nothing arrived at all


@dataclass(frozen=True)
class LinkObservation:
    """A participant's connection over the last interval."""

    connected: bool  # signal heard from recently and no peer connection failed
    samples: tuple[LinkSample, ...] = ()


def mos(sample: LinkSample) -> float:
    """Mean opinion score (1-4.5) of a stream with this loss and delay (E-model, G.107)."""
    latency = sample.rtt_ms / 2 + 2 * sample.jitter_ms + 10  # one way, plus a jitter buffer
    delay_impairment = latency / 40 if latency < 160 else (latency - 120) / 10
    loss_pct = 100 * min(max(sample.loss, 0.0), 1.0)
    loss_impairment = 95 * loss_pct / (loss_pct + _OPUS_BPL)
    r = _R_DEFAULT - delay_impairment - loss_impairment
    if r <= 0:
        return 1.0
    r = min(r, 100.0)
    return 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r)


def assess(observation: LinkObservation) -> tuple[Quality, float]:
    """The participant's quality and score (MOS; 0 when lost)."""
    if not observation.connected or any(s.silent for s in observation.samples):
        return models.ConnectionQuality.LOST, 0.0
    score = min((mos(s) for s in observation.samples), default=mos(LinkSample(loss=0.0)))
    if score >= EXCELLENT_MOS:
        return models.ConnectionQuality.EXCELLENT, score
    if score >= GOOD_MOS:
        return models.ConnectionQuality.GOOD, score
    return models.ConnectionQuality.POOR, score


class ConnectionQualityMonitor(RoomTicker):
    """Every `UPDATE_INTERVAL_S`, scores each participant of a room and tells everyone: each
    participant learns its own quality and that of the (visible) others."""

    interval_s = UPDATE_INTERVAL_S

    async def tick(self) -> None:
        infos: dict[str, proto_rtc.ConnectionQualityInfo] = {}
        participants = [p for p in self._room.participants.values() if p.session is not None]
        for participant in participants:
            assert participant.session is not None
            observation = await participant.session.link_observation()
            quality, score = assess(observation)
            infos[participant.sid] = proto_rtc.ConnectionQualityInfo(
                participant_sid=participant.sid, quality=quality, score=round(score, 2)
            )
            if quality in (models.ConnectionQuality.POOR, models.ConnectionQuality.LOST):
                logger.info(
                    "connection quality %s",
                    models.ConnectionQuality.Name(quality),
                    extra={
                        "room": self._room.name,
                        "identity": participant.identity,
                        "score": round(score, 2),
                    },
                )
        for participant in participants:
            if participant.session is None:
                continue  # left while the others were measured
            visible = [participant, *self._room.others(participant)]
            update = proto_rtc.ConnectionQualityUpdate(
                updates=[infos[p.sid] for p in visible if p.sid in infos]
            )
            participant.session.send_signal(proto_rtc.SignalResponse(connection_quality=update))
