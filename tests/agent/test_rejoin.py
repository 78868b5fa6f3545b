"""WelcomeBack on stand-in room and session objects: who counts as coming back, and what is said."""

from __future__ import annotations

import asyncio

from livekit.agents.llm import ChatContext

from agent.rejoin import WelcomeBack, WelcomeBackOptions, last_interviewer_words


class _Room:
    def __init__(self) -> None:
        self.handlers: dict[str, object] = {}
        self.remote_participants: dict[str, _Participant] = {}

    def on(self, event: str, handler: object) -> None:
        self.handlers[event] = handler


class _Session:
    def __init__(self) -> None:
        self.history = ChatContext()
        self.history.add_message(role="assistant", content="Hello. Are you ready?")
        self.history.add_message(role="user", content="Yes.")
        self.history.add_message(role="assistant", content="Tell me about yourself.")
        self.agent_state = "listening"
        self.user_state = "listening"
        self.said: list[str] = []

    def say(self, text: str) -> None:
        self.said.append(text)


class _Participant:
    def __init__(self, identity: str, sid: str = "PA_1") -> None:
        self.identity = identity
        self.sid = sid


def test_the_last_interviewer_words_are_its_latest_message():
    assert last_interviewer_words(_Session()) == "Tell me about yourself."  # type: ignore[arg-type]


async def test_a_returning_candidate_hears_the_last_words_again_but_not_after_a_blip():
    room, session = _Room(), _Session()
    room.remote_participants["candidate"] = _Participant("candidate", "PA_1")
    fast = WelcomeBackOptions(settle_s=0.0)
    WelcomeBack(session, room, lambda: "candidate", "Welcome back.", fast)  # type: ignore[arg-type]
    left, joined = room.handlers["participant_disconnected"], room.handlers["participant_connected"]

    left(_Participant("avatar"))  # someone else leaving is not the candidate
    joined(_Participant("avatar", "PA_9"))
    left(_Participant("candidate", "PA_1"))
    joined(_Participant("candidate", "PA_1"))  # the same session again: a blip, nothing missed
    await asyncio.sleep(0.05)
    assert session.said == []

    # a reload: a new session, announced as a departure and an arrival at the same instant
    # (livekit-server batches non-publishers' updates) or as the arrival alone
    left(_Participant("candidate", "PA_1"))
    joined(_Participant("candidate", "PA_2"))
    await asyncio.sleep(0.05)
    assert session.said == ["Welcome back. Tell me about yourself."]
    joined(_Participant("candidate", "PA_3"))
    await asyncio.sleep(0.05)
    assert len(session.said) == 2

    # back while the interviewer talks (they hear it anyway) or thinks (its reply is coming),
    # or while they already talk themselves: nothing is said over it
    busy = (("speaking", "listening"), ("thinking", "listening"), ("listening", "speaking"))
    for n, (agent, user) in enumerate(busy):
        session.agent_state, session.user_state = agent, user
        left(_Participant("candidate", f"PA_{3 + n}"))
        joined(_Participant("candidate", f"PA_{4 + n}"))
        await asyncio.sleep(0.05)
        assert len(session.said) == 2, (agent, user)
