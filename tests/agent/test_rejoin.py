"""WelcomeBack on stand-in room and session objects: who counts as coming back, and what is said."""

from __future__ import annotations

import asyncio

from livekit.agents.llm import ChatContext

from agent.rejoin import WelcomeBack, WelcomeBackOptions, last_interviewer_words


class _Room:
    def __init__(self) -> None:
        self.handlers: dict[str, object] = {}

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
    def __init__(self, identity: str) -> None:
        self.identity = identity


def test_the_last_interviewer_words_are_its_latest_message():
    assert last_interviewer_words(_Session()) == "Tell me about yourself."  # type: ignore[arg-type]


async def test_a_returning_candidate_hears_the_last_words_again_but_not_after_a_blip():
    room, session = _Room(), _Session()
    fast = WelcomeBackOptions(min_away_s=0.05, settle_s=0.0)
    welcome = WelcomeBack(session, room, lambda: None, "Welcome back.", fast)  # type: ignore[arg-type]
    left, joined = room.handlers["participant_disconnected"], room.handlers["participant_connected"]

    welcome._candidate = "candidate"  # linked before it left
    left(_Participant("avatar"))  # someone else leaving is not the candidate
    joined(_Participant("avatar"))
    left(_Participant("candidate"))
    joined(_Participant("candidate"))  # back at once: a blip
    await asyncio.sleep(0.05)
    assert session.said == []

    left(_Participant("candidate"))
    await asyncio.sleep(0.1)
    joined(_Participant("candidate"))
    await asyncio.sleep(0.05)
    assert session.said == ["Welcome back. Tell me about yourself."]

    # back while the interviewer talks (they hear it anyway) or thinks (its reply is coming),
    # or while they already talk themselves: nothing is said over it
    busy = (("speaking", "listening"), ("thinking", "listening"), ("listening", "speaking"))
    for agent, user in busy:
        session.agent_state, session.user_state = agent, user
        left(_Participant("candidate"))
        await asyncio.sleep(0.1)
        joined(_Participant("candidate"))
        await asyncio.sleep(0.05)
        assert session.said == ["Welcome back. Tell me about yourself."], (agent, user)
