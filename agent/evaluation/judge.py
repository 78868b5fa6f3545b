"""LLM judge ("assessor": "llm:<model>"): one structured-output call per answer.

The judge asks any livekit.agents.llm.LLM for a JSON verdict (the schema of JudgeVerdict, sent
as response_format where the plugin's chat() accepts it, e.g. livekit-plugins-openai; other
plugins get the shape in the prompt and the text is parsed). The reply is validated: every
criterion of the rubric that applies, scores 1-5, a reason, and evidence that really is the
candidate's own words (quotes not found verbatim in the answer are dropped; a verdict with
no verbatim quote at all is invalid). An invalid or missing reply is retried once with the
error named; after that the answer is marked failed — no score is ever invented.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
from collections.abc import Mapping
from string import Template
from typing import Any

from livekit.agents import APIStatusError
from livekit.agents import llm as lk_llm
from pydantic import BaseModel, ValidationError

from . import resources
from .models import AnswerAssessment, CriterionResult, QuestionKind
from .resources import Language
from .text import find_verbatim

logger = logging.getLogger("interview.evaluation")

_FENCE_RE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)


# The schema sent to the provider uses plain types only: strict structured-output modes accept
# a subset of JSON Schema (keywords such as minLength are refused), so ranges and non-empty
# strings are checked after parsing, in parse_verdict.
class JudgeCriterion(BaseModel):
    criterion: str
    score: int
    reason: str
    evidence: list[str]


class JudgeVerdict(BaseModel):
    criteria: list[JudgeCriterion]
    feedback: str
    better_answer_outline: list[str]


class JudgeReplyError(ValueError):
    """The judge's reply is not a valid verdict; the message goes into the retry prompt."""


def describe_position(config: Mapping[str, object]) -> str:
    """The position line of the judge prompt, e.g. "Backend engineer (junior, technical)"."""
    role = str(config.get("role") or "").strip()
    details = [str(config[k]) for k in ("seniority", "interview_type") if config.get(k)]
    return f"{role} ({', '.join(details)})" if details else role


def judge_name(llm: lk_llm.LLM) -> str:
    return f"llm:{llm.model}"


def _rubric_text(rubric: dict[str, Any], names: list[str]) -> str:
    lines = []
    for name in names:
        spec = rubric[name]
        lines.append(f"- {name} ({spec['label']}): {spec['description']}")
        for score, anchor in sorted(spec["anchors"].items()):
            lines.append(f"    {score}: {anchor}")
    return "\n".join(lines)


def parse_verdict(text: str, answer: str, required: list[str]) -> AnswerAssessment:
    """Validate a judge reply against the answer; raise JudgeReplyError naming the problem.

    Returns an assessment without question/kind/assessor filled in (caller completes it).
    """
    body = _FENCE_RE.sub("", text.strip())
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        raise JudgeReplyError("the reply contains no JSON object")
    try:
        data = json.loads(body[start : end + 1])
    except json.JSONDecodeError as e:
        raise JudgeReplyError(f"the JSON does not parse ({e.msg} at {e.pos})") from None
    try:
        verdict = JudgeVerdict.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise JudgeReplyError(f"field '{where}': {err['msg']}") from None
    for i, c in enumerate(verdict.criteria):
        if not 1 <= c.score <= 5:
            raise JudgeReplyError(f"criteria.{i}.score must be an integer from 1 to 5")
        if not c.reason.strip():
            raise JudgeReplyError(f"criteria.{i}.reason must not be empty")
    if not verdict.feedback.strip():
        raise JudgeReplyError("feedback must not be empty")
    names = [c.criterion for c in verdict.criteria]
    missing = [n for n in required if n not in names]
    unknown = [n for n in names if n not in required]
    if missing or unknown or len(set(names)) != len(names):
        raise JudgeReplyError(
            f"criteria must be exactly {required} (missing {missing}, unexpected {unknown})"
        )
    results: dict[str, CriterionResult] = {}
    quoted = dropped = 0
    for c in verdict.criteria:
        kept = []
        for q in c.evidence:
            found = find_verbatim(q, answer)
            if found is None:
                dropped += 1
            elif found not in kept:
                kept.append(found)
        quoted += len(kept)
        results[c.criterion] = CriterionResult(
            score=c.score, reason=c.reason.strip(), evidence=kept
        )
    if quoted == 0:
        raise JudgeReplyError(
            "no evidence quote is a verbatim span of the candidate's answer; copy exact words"
        )
    if dropped:
        logger.info("judge quotes not found in the answer were dropped", extra={"dropped": dropped})
    return AnswerAssessment(
        question="",
        answer=answer,
        kind="general",
        assessor="",
        criteria={n: results[n] for n in required},
        feedback=verdict.feedback.strip(),
        better_answer_outline=[
            line.strip() for line in verdict.better_answer_outline if line.strip()
        ],
    )


class LLMJudge:
    """Scores answers with an LLM; `assess` never raises, it returns a failed assessment."""

    def __init__(
        self,
        llm: lk_llm.LLM,
        language: Language,
        *,
        attempts: int = 2,
        timeout_s: float = 90.0,
        position: str = "",
    ) -> None:
        self.llm = llm
        self.position = position or "-"
        self.language = language
        self.attempts = attempts
        self.timeout_s = timeout_s
        self.name = judge_name(llm)
        self.rubric: dict[str, Any] = resources.rubric(language)["criteria"]
        self._template = Template(resources.judge_prompt(language))
        self._structured = "response_format" in inspect.signature(llm.chat).parameters

    def criteria_for(self, kind: QuestionKind) -> list[str]:
        return [n for n, spec in self.rubric.items() if kind in spec["applies_to"]]

    async def assess(self, question: str, answer: str, kind: QuestionKind) -> AnswerAssessment:
        required = self.criteria_for(kind)
        system = self._template.safe_substitute(
            kind=kind,
            position=self.position,
            criterion_names=", ".join(required),
            rubric=_rubric_text(self.rubric, required),
        )
        user = f"Question:\n{question}\n\nCandidate's answer:\n{answer}"
        ctx = lk_llm.ChatContext.empty()
        ctx.add_message(role="system", content=system)
        ctx.add_message(role="user", content=user)
        error = "no attempt made"
        for attempt in range(1, self.attempts + 1):
            text = ""
            try:
                text = await asyncio.wait_for(self._complete(ctx), self.timeout_s)
                result = parse_verdict(text, answer, required)
            except JudgeReplyError as e:
                error = str(e)
                ctx.add_message(role="assistant", content=text or "(empty reply)")
                ctx.add_message(
                    role="user",
                    content=f"That reply was invalid: {error}. Reply again with only the JSON "
                    "object, with the same shape.",
                )
            except TimeoutError:
                error = f"no reply within {self.timeout_s:.0f} s"
            except Exception as e:  # provider errors: the interview must not fail over them
                error = f"{type(e).__name__}: {e}"
            else:
                return result.model_copy(
                    update={"question": question, "kind": kind, "assessor": self.name}
                )
            logger.warning(
                "judge attempt failed",
                extra={"assessor": self.name, "attempt": attempt, "error": error},
            )
        return AnswerAssessment(
            question=question,
            answer=answer,
            kind=kind,
            assessor=self.name,
            status="failed",
            error=f"judge gave no valid verdict after {self.attempts} attempts: {error}",
        )

    async def _complete(self, ctx: lk_llm.ChatContext) -> str:
        if self._structured:
            try:
                return await self._stream_text(ctx, response_format=JudgeVerdict)
            except APIStatusError as e:
                if e.status_code not in (400, 422):
                    raise
                # an OpenAI-compatible server without JSON-schema support: the prompt carries
                # the shape, so go on with plain text for this and later answers
                self._structured = False
                logger.warning(
                    "judge LLM refused structured output; parsing plain text instead",
                    extra={"assessor": self.name, "status": e.status_code},
                )
        return await self._stream_text(ctx)

    async def _stream_text(self, ctx: lk_llm.ChatContext, **kwargs: Any) -> str:
        parts: list[str] = []
        async with self.llm.chat(chat_ctx=ctx.copy(), **kwargs) as stream:
            async for chunk in stream:
                if chunk.delta and chunk.delta.content:
                    parts.append(chunk.delta.content)
        return "".join(parts)
