"""Background per-answer assessment, so evaluation never delays the conversation.

The live agent calls `submit(question, answer)` as soon as an answer is final; the assessment
runs as an asyncio task (LLM judge if an LLM was given, else the heuristic) while the interview
goes on. At the end, `await results()` gathers them, and `generate_report_async(...,
assessor=...)` reuses every assessment whose question and answer match the transcript.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

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
    ) -> None:
        self.language = language
        self.interview_type = interview_type
        self._heuristic = HeuristicAssessor(language)
        self._judge = LLMJudge(llm, language, position=position) if llm is not None else None
        self._limit = asyncio.Semaphore(max_concurrency)
        self._tasks: list[asyncio.Task[AnswerAssessment]] = []

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
        kind = kind or self.classify(question, meta)
        task = asyncio.create_task(self.assess(question, answer, kind), name="assess-answer")
        self._tasks.append(task)
        return task

    async def assess(self, question: str, answer: str, kind: QuestionKind) -> AnswerAssessment:
        """Assess one answer now (the judge never raises; failures come back marked failed)."""
        if not self._heuristic.criteria_for(kind):
            return not_scored(question, answer, kind, self.name, self.language)
        if self._judge is None:
            return self._heuristic.assess(question, answer, kind)
        async with self._limit:
            return await self._judge.assess(question, answer, kind)

    async def results(self) -> list[AnswerAssessment]:
        """Every submitted assessment, in submission order, once all have finished."""
        return list(await asyncio.gather(*self._tasks))

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
