"""Hearing the candidate again after the interviewer's connection was rebuilt from scratch.

The interviewer joins audio-only (`AutoSubscribe.AUDIO_ONLY`): the room does not subscribe it to
anything, livekit-agents asks for each audio track as it is published. When the connection
cannot be resumed and the SDK rejoins from scratch (a "restart": the LiveKit server lost the
session, or the dev server, which never resumes), the SDK announces every remote track again while
the new signal connection is still being set up, and the subscription requests livekit-agents
sends then are dropped ("dropping pass-through signal — no stream available"). The interviewer
stays in the room but no longer hears the candidate: seen with three interviews on two cores,
where every interview then waited in silence until the candidate gave up.

`keep_hearing_after_rejoin` asks again, once the room reports it is reconnected, for every audio
track not subscribed; a request for one that is already subscribed is never sent.
"""

from __future__ import annotations

import logging

from livekit import rtc

logger = logging.getLogger("interview.rejoin")


def resubscribe_audio(room: rtc.Room) -> int:
    """Ask for every remote audio track the room is not subscribed to; returns how many."""
    asked = 0
    for participant in room.remote_participants.values():
        for publication in participant.track_publications.values():
            if publication.kind == rtc.TrackKind.KIND_AUDIO and not publication.subscribed:
                publication.set_subscribed(True)
                asked += 1
    return asked


def keep_hearing_after_rejoin(room: rtc.Room, log_extra: dict[str, object] | None = None) -> None:
    """After each reconnection, subscribe again to the audio the rejoin left unsubscribed."""

    def _on_reconnected() -> None:
        asked = resubscribe_audio(room)
        if asked:
            logger.warning(
                "connection rebuilt: subscribed again to the room's audio",
                extra={**(log_extra or {}), "tracks": asked},
            )

    room.on("reconnected", _on_reconnected)
