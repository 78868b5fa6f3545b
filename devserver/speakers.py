"""Active speakers: who is talking in a room, from the audio levels publishers put in their RTP
(ssrc-audio-level header extension), sent to clients as SpeakersChanged like livekit-server does.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from livekit.protocol import models
from livekit.protocol import rtc as proto_rtc

from devserver.periodic import RoomTicker

if TYPE_CHECKING:
    from devserver.rooms import Room

UPDATE_INTERVAL_S = 0.3
ACTIVE_BELOW_DBOV = 45  # louder than -45 dBov counts as speaking
STALE_AFTER_S = 1.0


class AudioLevel:
    """Smoothed level of one audio track, in -dBov (0 loudest, 127 silence)."""

    def __init__(self) -> None:
        self.dbov = 127.0
        self.updated = 0.0

    def add(self, dbov: int) -> None:
        self.dbov += 0.25 * (dbov - self.dbov)  # ~80 ms time constant at 20 ms packets
        self.updated = time.monotonic()

    def current(self) -> float:
        return self.dbov if time.monotonic() - self.updated < STALE_AFTER_S else 127.0


def speaking_levels(room: Room) -> dict[str, float]:
    """Participant sid -> level (0..1, 1 loudest) of everyone speaking now."""
    speaking: dict[str, float] = {}
    for participant in room.participants.values():
        for track in participant.tracks.values():
            level = getattr(track.source, "level", None)
            if not isinstance(level, AudioLevel) or track.info.muted:
                continue
            dbov = level.current()
            if dbov < ACTIVE_BELOW_DBOV:
                linear = 10 ** (-dbov / 20)
                speaking[participant.sid] = max(speaking.get(participant.sid, 0.0), linear)
    return speaking


class SpeakerMonitor(RoomTicker):
    """Polls a room's audio levels and tells its participants when the set of speakers changes."""

    interval_s = UPDATE_INTERVAL_S

    def __init__(self, room: Room) -> None:
        super().__init__(room)
        self._active: dict[str, float] = {}

    async def tick(self) -> None:
        self.update()

    def update(self) -> None:
        now = speaking_levels(self._room)
        changes = [
            models.SpeakerInfo(sid=sid, level=level, active=True)
            for sid, level in now.items()
            if sid not in self._active
        ] + [
            models.SpeakerInfo(sid=sid, level=0.0, active=False)
            for sid in self._active
            if sid not in now
        ]
        self._active = now
        if changes:
            message = proto_rtc.SignalResponse(
                speakers_changed=proto_rtc.SpeakersChanged(speakers=changes)
            )
            for participant in list(self._room.participants.values()):
                if participant.session is not None:
                    participant.session.send_signal(message)
