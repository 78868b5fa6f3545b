"""Answer assessment during a live interview, and the end-of-interview report that reuses it.

`LiveAssessment.start(...)` (called by agent.session.create_interview, so the LiveKit worker and
the rehearsal both get it) attaches an `AnswerAssessor` to the interview's AgentSession: each
finished answer is assessed in the background — by the LLM judge when one is configured (the
same rule as `python -m agent report`: OPENAI_API_KEY set), else by the offline heuristic —
while the interview goes on. `write_report(...)` then reuses those assessments, so the report is
ready sooner; anything that went wrong live is logged with the interview id and the report
assesses those answers itself. Nothing here may delay or break the conversation.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from livekit.agents import AgentSession
from livekit.agents import llm as lk_llm

from agent.config import InterviewConfig
from agent.transcript import Transcript

from .assessor import AnswerAssessor
from .judge import describe_position
from .models import AnswerAssessment, Report
from .report import generate_report_async

logger = logging.getLogger("interview.evaluation")

DEFAULT_JUDGE_MODEL = "gpt-4o-mini"


def judge_llm_from_env(env: Mapping[str, str] | None = None) -> lk_llm.LLM | None:
    """The judge LLM when OPENAI_API_KEY is set (OPENAI_BASE_URL, INTERVIEW_LLM_MODEL as for the
    interviewer), else None: the heuristic assesses."""
    env = os.environ if env is None else env
    key = env.get("OPENAI_API_KEY")
    if not key:
        return None
    from livekit.plugins import openai

    return openai.LLM(
        model=env.get("INTERVIEW_LLM_MODEL", DEFAULT_JUDGE_MODEL),
        api_key=key,
        base_url=env.get("OPENAI_BASE_URL") or None,
    )


class LiveAssessment:
    """One interview's background assessor, its judge LLM, and the report that reuses both."""

    def __init__(
        self,
        config: InterviewConfig,
        interview_id: str,
        *,
        llm: lk_llm.LLM | None = None,
        owns_llm: bool = False,
        log_extra: Mapping[str, object] | None = None,
    ) -> None:
        self.interview_id = interview_id
        self.llm = llm
        self._owns_llm = owns_llm
        self.log_extra = {"interview": interview_id, **(log_extra or {})}
        self.assessor = AnswerAssessor(
            config.language,
            llm=llm,
            interview_type=config.interview_type,
            position=describe_position(config.model_dump()),
            log_extra=self.log_extra,
        )

    @classmethod
    def start(
        cls,
        config: InterviewConfig,
        interview_id: str,
        session: AgentSession,
        *,
        stage: Callable[[], str] | None = None,
        llm: lk_llm.LLM | None = None,
        env: Mapping[str, str] | None = None,
        log_extra: Mapping[str, object] | None = None,
    ) -> LiveAssessment | None:
        """Attach to `session`; `llm` is the judge (None: from the environment, see
        judge_llm_from_env). None, with the reason logged, when it cannot start: the interview
        goes on and the report assesses every answer at the end."""
        extra = {"interview": interview_id, **(log_extra or {})}
        try:
            owns = llm is None
            judge = judge_llm_from_env(env) if owns else llm
            live = cls(config, interview_id, llm=judge, owns_llm=owns, log_extra=log_extra)
            live.assessor.attach(session, stage=stage)
        except Exception:
            logger.exception("live answer assessment not started", extra=extra)
            return None
        logger.info("answers assessed during the interview by %s", live.assessor.name, extra=extra)
        return live

    async def results(self) -> list[AnswerAssessment]:
        """The assessments made so far (waiting for those under way); never raises."""
        try:
            return await self.assessor.results()
        except Exception:
            logger.exception("live answer assessments unavailable", extra=self.log_extra)
            return []

    async def write_report(self, transcript: Transcript, out_dir: Path) -> Report:
        """report.json + report.html, reusing the live assessments; if that fails, every answer
        is assessed now."""
        try:
            return await generate_report_async(
                transcript, out_dir, llm=self.llm, reuse=await self.results()
            )
        except Exception:
            logger.exception(
                "report with live assessments failed; assessing every answer again",
                extra=self.log_extra,
            )
            return await generate_report_async(transcript, out_dir, llm=self.llm)

    async def aclose(self) -> None:
        await self.assessor.aclose()
        if self._owns_llm and self.llm is not None:
            await self.llm.aclose()
