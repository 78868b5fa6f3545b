"""The interview flow as LiveKit Agents idioms: one Agent per stage, function tools, handoffs.

Each stage (greeting, introduction, experience, role, candidate questions, closing) is a
`StageAgent`. Its tools move through the stage's questions; when a stage runs out of questions,
or time runs short, `next_question` hands off to the next stage's agent, whose `on_enter` asks
its first question. The LLM (OpenAI, or the offline scripted interviewer) decides which tool to
call after each answer: next question, a follow-up, a repeat/rephrase, or a skip.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from livekit.agents import Agent, ChatContext, ChatMessage, RunContext, StopResponse, function_tool
from pydantic import Field

from .plan import WRAP_UP_RESERVE_S, InterviewPlan, Question, StageName
from .prompts import protected_topic

logger = logging.getLogger("interview.flow")

MAX_FOLLOW_UPS = 2
STAGE_MARKER = "[stage: {name}]"


@dataclass
class InterviewState:
    """Where the interview is; shared by all stage agents as the session's userdata."""

    plan: InterviewPlan
    clock: Callable[[], float] = time.monotonic
    started_at: float | None = None
    stage: StageName = "greeting"
    index: int = 0
    follow_ups: int = 0
    wrapping_up: bool = False
    finished: bool = False
    stage_log: list[StageName] = field(default_factory=list)
    # wall-clock span of the interviewer's latest speech, to recognise backchannels over it
    agent_speech: tuple[float, float | None] = (0.0, 0.0)
    is_backchannel: Callable[[str], bool] = lambda _text: False
    asked: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def start_clock(self) -> None:
        if self.started_at is None:
            self.started_at = self.clock()

    def elapsed(self) -> float:
        return 0.0 if self.started_at is None else self.clock() - self.started_at

    def time_left(self) -> float:
        return self.plan.config.duration_minutes * 60.0 - self.elapsed()

    def current(self) -> Question | None:
        questions = self.plan.stage(self.stage).questions
        return questions[self.index] if self.index < len(questions) else None


class StageAgent(Agent):
    """One stage of the interview; the tools are shared, the instructions are per stage."""

    def __init__(
        self, state: InterviewState, stage: StageName, chat_ctx: ChatContext | None
    ) -> None:
        plan = state.plan
        sp = plan.stage(stage)
        instructions = "\n".join(
            [
                plan.system_prompt,
                "",
                f"{sp.title}: {sp.instructions}",
                STAGE_MARKER.format(name=stage),
            ]
        )
        super().__init__(instructions=instructions, chat_ctx=chat_ctx, id=f"interviewer_{stage}")
        self._state = state
        self._stage: StageName = stage

    @property
    def stage(self) -> StageName:
        return self._stage

    async def on_enter(self) -> None:
        st = self._state
        st.start_clock()
        st.stage, st.index, st.follow_ups = self._stage, 0, 0
        st.stage_log.append(self._stage)
        plan = st.plan
        logger.info(
            f"interview stage: {self._stage}",
            extra={"stage": self._stage, "elapsed_s": round(st.elapsed(), 1)},
        )
        if self._stage == "closing":
            # a backchannel must not cut the goodbye short
            handle = self.session.generate_reply(
                instructions=plan.directive("say", plan.line("closing")), allow_interruptions=False
            )
            await handle
            st.finished = True
            self.session.shutdown(drain=True)
            return
        q = st.current()
        if q is None:  # an empty stage: go straight on
            self.session.update_agent(self._next_agent())
            return
        st.asked.append(q.id)
        parts: list[str] = []
        if self._stage == "introduction":
            parts.append(plan.line("consent_ack"))
        if st.wrapping_up and self._stage == "candidate_questions":
            parts.append(plan.line("time_wrap_up"))
        sp = plan.stage(self._stage)
        if sp.intro_line:
            parts.append(sp.intro_line)
        parts.append(q.text)
        # after the first answers, a stage opens with a short acknowledgement of the last answer
        key = (
            "ask"
            if self._stage in ("greeting", "introduction") or st.wrapping_up
            else "ask_after_answer"
        )
        self.session.generate_reply(instructions=plan.directive(key, " ".join(parts)))

    async def on_user_turn_completed(self, turn_ctx: ChatContext, new_message: ChatMessage) -> None:
        """A "네"/"yeah" said over the interviewer's question is listening, not an answer."""
        st = self._state
        started = (new_message.metrics or {}).get("started_speaking_at")
        speech_start, speech_end = st.agent_speech
        over_agent = (
            started is not None
            and started >= speech_start
            and (speech_end is None or started <= speech_end + 0.3)
        )
        if over_agent and st.is_backchannel(new_message.text_content or ""):
            logger.info("backchannel over the interviewer ignored", extra={"stage": self._stage})
            raise StopResponse()

    def _next_agent(self) -> StageAgent:
        nxt = self._state.plan.next_stage(self._stage)
        assert nxt is not None, "closing has no next stage"
        return StageAgent(self._state, nxt, chat_ctx=self.chat_ctx)

    def _advance(self, *, prefix: str = "") -> str | StageAgent:
        st = self._state
        st.index += 1
        st.follow_ups = 0
        if (
            self._stage in ("introduction", "experience", "role")
            and st.time_left() < WRAP_UP_RESERVE_S
        ):
            # out of time: the remaining questions are dropped, never the candidate's answer
            st.wrapping_up = True
            logger.info("time is short, wrapping up", extra={"time_left_s": round(st.time_left())})
            return StageAgent(st, "candidate_questions", chat_ctx=self.chat_ctx)
        q = st.current()
        if q is None:
            return self._next_agent()
        st.asked.append(q.id)
        text = f"{prefix} {q.text}".strip()
        key = "say" if prefix else "ask_after_answer"
        return st.plan.directive(key, text)

    @function_tool()
    async def next_question(self, context: RunContext[InterviewState]) -> str | Agent:
        """Move on to the next planned question once the candidate has answered the current one.

        Call this when the answer is complete, or when the candidate has no (more) questions.
        """
        return self._advance()

    @function_tool()
    async def skip_question(self, context: RunContext[InterviewState]) -> str | Agent:
        """Skip the current question because the candidate asked to skip it or cannot answer."""
        st = self._state
        if (q := st.current()) is not None:
            st.skipped.append(q.id)
        return self._advance(prefix=st.plan.line("skip_ack"))

    @function_tool()
    async def repeat_question(
        self,
        context: RunContext[InterviewState],
        rephrase: Annotated[
            bool, Field(description="true to ask it in simpler words instead of repeating it")
        ] = False,
    ) -> str:
        """Say the current question again, as asked or in simpler words, when the candidate asks."""
        st = self._state
        q = st.current()
        if q is None:
            return st.plan.directive("say", st.plan.line("candidate_answer"))
        if rephrase:
            text = f"{st.plan.line('rephrase_prefix')} {q.alt or q.text}"
            return st.plan.directive("rephrase", text)
        return st.plan.directive("repeat", f"{st.plan.line('repeat_prefix')} {q.text}")

    @function_tool()
    async def ask_follow_up(
        self,
        context: RunContext[InterviewState],
        question: Annotated[
            str, Field(description="the follow-up question, built on what the candidate just said")
        ],
    ) -> str:
        """Ask one follow-up on a short or vague answer (at most two per planned question)."""
        st = self._state
        if st.follow_ups >= MAX_FOLLOW_UPS:
            return st.plan.directive("max_follow_ups")
        if (topic := protected_topic(question)) is not None:
            logger.warning("refused a follow-up on a protected topic", extra={"topic": topic})
            return st.plan.directive("protected")
        st.follow_ups += 1
        return st.plan.directive("follow_up", question)


def first_agent(state: InterviewState) -> StageAgent:
    return StageAgent(state, "greeting", chat_ctx=None)
