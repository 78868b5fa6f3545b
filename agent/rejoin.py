"""Who the interviewer hears, through rejoins; and the candidate coming back.

`hear_the_candidate`: the interviewer subscribes to the audio of the people in the room and to
nothing else. Not to video (it does not look, and a subscribed video track is decoded whether
anyone reads it or not), and not to the audio of other agents: the avatar publishes the
interviewer's own voice, which the server would otherwise forward back to the interviewer and
the interviewer decode again, for the whole interview.

When the connection cannot be resumed and the SDK rejoins from scratch (a "restart": the LiveKit
server lost the session, or the dev server, which never resumes), the SDK announces every remote
track again while the new signal connection is still being set up, and the subscription requests
sent then are dropped ("dropping pass-through signal — no stream available"). The interviewer
would stay in the room but no longer hear the candidate: seen with three interviews on two cores,
where every interview then waited in silence until the candidate gave up. So once the room
reports it is reconnected, it asks again for every such track not subscribed; a request for one
that is already subscribed is never sent.

`WelcomeBack`: the candidate's browser rejoins the same room after a page reload (the session
does not close when the candidate leaves, turn_taking.py `room_options`). Whatever the
interviewer said meanwhile went unheard, and the candidate would sit in silence waiting for it;
so once they are back, with the interviewer listening and the candidate silent, it says
`lines.welcome_back` and its last words again. "Back" is a new session of the candidate's
identity (a new participant sid), not the time between a departure and an arrival: livekit-server
announces the arrivals and departures of participants who publish nothing in batches every 3 s
(pkg/rtc/room.go `subscriberUpdateInterval`), so a reload inside one batch reaches the
interviewer as a departure and an arrival at the same instant, or as the arrival alone. A network
blip that the server resumes keeps the sid and is no rejoin.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from livekit import rtc
from livekit.agents import AgentSession
from livekit.agents.llm import ChatMessage

logger = logging.getLogger("interview.rejoin")


def _is_heard(participant: rtc.RemoteParticipant, publication: rtc.RemoteTrackPublication) -> bool:
    """Audio from a person (a browser, an app, a phone), not from an agent such as the avatar."""
    return (
        publication.kind == rtc.TrackKind.KIND_AUDIO
        and participant.kind != rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
    )


def _ask_for(participant: rtc.RemoteParticipant, publication: rtc.RemoteTrackPublication) -> bool:
    """Subscribe to a candidate's audio track not subscribed yet; whether it was asked for."""
    if _is_heard(participant, publication) and not publication.subscribed:
        publication.set_subscribed(True)
        return True
    return False


def subscribe_to_candidates(room: rtc.Room) -> int:
    """Ask for every candidate audio track the room is not subscribed to; returns how many."""
    return sum(
        _ask_for(participant, publication)
        for participant in room.remote_participants.values()
        for publication in list(participant.track_publications.values())
    )


def hear_the_candidate(room: rtc.Room, log_extra: dict[str, object] | None = None) -> None:
    """Subscribe to the candidates' audio now, as it is published, and again after a rejoin.

    For a room joined with `AutoSubscribe.SUBSCRIBE_NONE`."""
    subscribe_to_candidates(room)

    def _on_reconnected() -> None:
        asked = subscribe_to_candidates(room)
        if asked:
            logger.warning(
                "connection rebuilt: subscribed again to the candidate's audio",
                extra={**(log_extra or {}), "tracks": asked},
            )

    room.on("track_published", lambda publication, p: _ask_for(p, publication))
    room.on("reconnected", _on_reconnected)


@dataclass(frozen=True)
class WelcomeBackOptions:
    settle_s: float = 1.5  # after the rejoin, for the client to subscribe to the voice again


class WelcomeBack:
    """Says the interviewer's last words again when the candidate comes back to the room."""

    def __init__(
        self,
        session: AgentSession,
        room: rtc.Room,
        candidate: Callable[[], str | None],
        welcome: str,
        options: WelcomeBackOptions | None = None,
        *,
        log_extra: dict[str, object] | None = None,
    ) -> None:
        self._session = session
        # the linked candidate's identity; None while nobody is linked (RoomIO may drop the
        # link before this hears of the departure, so the last one known is kept)
        self._candidate_now = candidate
        self._candidate: str | None = candidate()
        self._welcome = welcome
        self.options = options or WelcomeBackOptions()
        self._log = dict(log_extra or {})
        self._sid = ""  # the candidate's session in the room, once known
        self._away_since: float | None = None
        self._task: asyncio.Task[None] | None = None
        if self._candidate and self._candidate in room.remote_participants:
            self._sid = room.remote_participants[self._candidate].sid
        room.on("participant_disconnected", self._on_left)
        room.on("participant_connected", self._on_joined)

    def _on_left(self, participant: rtc.RemoteParticipant) -> None:
        self._candidate = self._candidate_now() or self._candidate
        if participant.identity == self._candidate:
            self._away_since = time.monotonic()
            self._sid = self._sid or participant.sid
            if self._task is not None:
                self._task.cancel()

    def _on_joined(self, participant: rtc.RemoteParticipant) -> None:
        self._candidate = self._candidate_now() or self._candidate
        if participant.identity != self._candidate:
            return
        known, self._sid = self._sid, participant.sid
        if not known or participant.sid == known:
            return  # their first arrival, or the same session again
        away = time.monotonic() - self._away_since if self._away_since is not None else 0.0
        self._away_since = None
        logger.info("the candidate is back", extra={**self._log, "away_s": round(away, 1)})
        if self._task is not None:
            self._task.cancel()
        self._task = asyncio.create_task(self._welcome_back())

    async def _welcome_back(self) -> None:
        await asyncio.sleep(self.options.settle_s)
        if self._session.agent_state != "listening" or self._session.user_state == "speaking":
            return  # it speaks (they hear it now) or is about to reply, or they already talk
        last = last_interviewer_words(self._session)
        try:
            self._session.say(f"{self._welcome} {last}".strip())
        except RuntimeError as e:  # the session is closing: nothing to say any more
            logger.info("no welcome back", extra={**self._log, "error": str(e)})


def last_interviewer_words(session: AgentSession) -> str:
    """The text of the interviewer's latest message ("" before it said anything)."""
    for item in reversed(session.history.items):
        if isinstance(item, ChatMessage) and item.role == "assistant":
            return (item.text_content or "").strip()
    return ""
