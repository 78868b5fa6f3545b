"""Background per-answer assessment, so evaluation never delays the conversation.

Either call `submit(question, answer)` yourself when an answer is final, or `attach(session)` to
an AgentSession: every chat message is then observed, and when the interviewer speaks after the
candidate, the finished exchange is submitted — grouped exactly as the transcript groups it
(consecutive interviewer messages form the question, the candidate's messages the answer).
Each assessment runs as an asyncio task (the LLM judge if an LLM was given, else the heuristic)
while the interview goes on: the heuristic runs in a worker thread, the judge is awaited, so
neither holds the event loop the conversation runs on. A failing assessment or event handler is
logged (with the interview's `log_extra`) and left out; the report then assesses that answer
itself. At the end `await results()` gathers them (submitting the last, pending exchange), and
`generate_report_async(..., assessor=...)` reuses every assessment whose question and answer
match the transcript.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from livekit.agents import AgentSession, ChatMessage, ConversationItemAddedEvent
from livekit.agents import llm as lk_llm

from . import resources
from .heuristic import HeuristicAssessor, classify_question
from .judge import LLMJudge
from .models import AnswerAssessment, QuestionKind
from .resources import Language
from .text import normalize

logger = logging.getLogger("interview.evaluation")


def answer_key(question: str, answer: str) -> tuple[str, str]:
    return normalize(question), normalize(answer)


def not_scored(
    question: str, answer: str, kind: QuestionKind, assessor: str, language: Language
) -> AnswerAssessment:
    """Small talk and the candidate's own questions: recorded, with nothing to score."""
    return AnswerAssessment(
        question=question,
        answer=answer,
        kind=kind,
        assessor=assessor,
        status="not_scored",
        feedback=resources.feedback(language)["not_scored"][kind],
    )


class AnswerAssessor:
    """Assesses answers in background tasks; one instance per interview.

    `position` ("Backend engineer (junior, technical)", see judge.describe_position) tells the
    judge what level to expect; the heuristic ignores it.
    """

    def __init__(
        self,
        language: Language,
        *,
        llm: lk_llm.LLM | None = None,
        interview_type: str = "mixed",
        position: str = "",
        max_concurrency: int = 2,
        log_extra: Mapping[str, object] | None = None,
    ) -> None:
        self.language = language
        self.log_extra = dict(log_extra or {})
        self.interview_type = interview_type
        self._heuristic = HeuristicAssessor(language)
        self._judge = LLMJudge(llm, language, position=position) if llm is not None else None
        self._limit = asyncio.Semaphore(max_concurrency)
        self._tasks: list[asyncio.Task[AnswerAssessment]] = []
        self._question: list[str] = []
        self._question_meta: dict[str, object] = {}
        self._answer: list[str] = []

    @property
    def name(self) -> str:
        return self._judge.name if self._judge else self._heuristic.name

    def classify(self, question: str, meta: Mapping[str, object] | None = None) -> QuestionKind:
        return classify_question(question, self.language, self.interview_type, meta)

    def submit(
        self,
        question: str,
        answer: str,
        *,
        kind: QuestionKind | None = None,
        meta: Mapping[str, object] | None = None,
    ) -> asyncio.Task[AnswerAssessment]:
        """Schedule the assessment of one answer; returns at once (needs a running loop)."""
        task = asyncio.create_task(
            self._classify_and_assess(question, answer, kind, meta), name="assess-answer"
        )
        self._tasks.append(task)
        return task

    async def _classify_and_assess(
        self,
        question: str,
        answer: str,
        kind: QuestionKind | None,
        meta: Mapping[str, object] | None,
    ) -> AnswerAssessment:
        kind = kind or self.classify(question, meta)
        return await self.assess(question, answer, kind)

    async def assess(self, question: str, answer: str, kind: QuestionKind) -> AnswerAssessment:
        """Assess one answer now (the judge never raises; failures come back marked failed)."""
        if not self._heuristic.criteria_for(kind):
            return not_scored(question, answer, kind, self.name, self.language)
        if self._judge is None:
            return await asyncio.to_thread(self._heuristic.assess, question, answer, kind)
        async with self._limit:
            return await self._judge.assess(question, answer, kind)

    def observe(
        self, speaker: str, text: str, meta: Mapping[str, object] | None = None
    ) -> asyncio.Task[AnswerAssessment] | None:
        """Feed one transcript message; submits the previous exchange when a new question starts."""
        text = text.strip()
        if not text:
            return None
        if speaker == "candidate":
            self._answer.append(text)
            return None
        task = self._submit_pending()
        self._question.append(text)
        self._question_meta.update(meta or {})
        return task

    def attach(self, session: AgentSession, *, stage: Callable[[], str] | None = None) -> None:
        """Observe an AgentSession's chat; `stage` (the plan's current stage) labels questions."""

        def on_item(ev: ConversationItemAddedEvent) -> None:
            item = ev.item
            if not isinstance(item, ChatMessage) or item.role not in ("user", "assistant"):
                return
            try:
                interviewer = item.role == "assistant"
                meta = {"stage": stage()} if interviewer and stage is not None else None
                speaker = "interviewer" if interviewer else "candidate"
                self.observe(speaker, item.text_content or "", meta)
            except Exception:  # the conversation goes on; the report assesses this answer
                logger.exception("live answer assessment failed", extra=self.log_extra)

        session.on("conversation_item_added", on_item)

    def _submit_pending(self) -> asyncio.Task[AnswerAssessment] | None:
        if not self._answer:
            return None
        question, answer = " ".join(self._question), " ".join(self._answer)
        task = self.submit(question, answer, meta=self._question_meta)
        self._question, self._question_meta, self._answer = [], {}, []
        return task

    async def results(self) -> list[AnswerAssessment]:
        """Every assessment that succeeded (the pending exchange included), in order, once all
        have finished; failures are logged and left out."""
        try:
            self._submit_pending()
        except Exception:
            logger.exception("live answer assessment failed", extra=self.log_extra)
        done: list[AnswerAssessment] = []
        for result in await asyncio.gather(*self._tasks, return_exceptions=True):
            if isinstance(result, AnswerAssessment):
                done.append(result)
            else:
                logger.error(
                    "live answer assessment failed: %r",
                    result,
                    exc_info=result if isinstance(result, Exception) else None,
                    extra=self.log_extra,
                )
        return done

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
