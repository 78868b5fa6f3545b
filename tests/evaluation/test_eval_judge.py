"""The LLM judge with a scripted LLM: valid, invalid and missing JSON; retried once, then failed."""

from __future__ import annotations

import json

from eval_fakes import ScriptedLLM
from livekit.agents import APIStatusError

from agent.evaluation.judge import JudgeVerdict, LLMJudge

QUESTION = "Tell me about a time you fixed a failing pipeline."
ANSWER = (
    "At my previous company our billing jobs failed every night. I added retries and I "
    "rewrote the scheduler. As a result failures dropped by 90 percent."
)
BEHAVIORAL = ["structure", "relevance", "specificity"]


def verdict(evidence: str = "failures dropped by 90 percent", names: list[str] = BEHAVIORAL) -> str:
    return json.dumps(
        {
            "criteria": [
                {"criterion": n, "score": 4, "reason": f"{n} is good", "evidence": [evidence]}
                for n in names
            ],
            "feedback": "Name the scheduler you used.",
            "better_answer_outline": ["Situation: nightly failures", "Result: 90% fewer"],
        }
    )


async def test_valid_reply_is_used_with_structured_output() -> None:
    llm = ScriptedLLM([verdict()])
    a = await LLMJudge(llm, "en").assess(QUESTION, ANSWER, "behavioral")
    assert a.status == "ok" and a.assessor == "llm:test-model"
    assert {n: c.score for n, c in a.criteria.items()} == dict.fromkeys(BEHAVIORAL, 4)
    assert a.criteria["structure"].evidence == ["failures dropped by 90 percent"]
    assert a.better_answer_outline == ["Situation: nightly failures", "Result: 90% fewer"]
    assert len(llm.calls) == 1
    assert llm.calls[0]["response_format"] is JudgeVerdict
    prompt = llm.calls[0]["chat_ctx"].items[0].text_content
    assert "structure" in prompt and "depth" not in prompt.split("Criteria to score:")[1][:60]


async def test_fenced_json_and_spacing_differences_are_accepted() -> None:
    reply = "```json\n" + verdict(evidence="failures  dropped by 90 PERCENT") + "\n```"
    a = await LLMJudge(ScriptedLLM([reply]), "en").assess(QUESTION, ANSWER, "behavioral")
    assert a.status == "ok"
    # the stored quote is the candidate's exact text, not the model's rendering of it
    assert a.criteria["relevance"].evidence == ["failures dropped by 90 percent"]


async def test_invalid_then_valid_is_retried_once_with_the_error() -> None:
    llm = ScriptedLLM(['{"criteria": [{"criterion": "structure", "score": 9}]}', verdict()])
    a = await LLMJudge(llm, "en").assess(QUESTION, ANSWER, "behavioral")
    assert a.status == "ok" and len(llm.calls) == 2
    retry_msg = llm.calls[1]["chat_ctx"].items[-1].text_content
    assert "invalid" in retry_msg


async def test_invalid_twice_is_marked_failed_without_scores() -> None:
    bad = verdict(names=["structure"])  # relevance and specificity missing
    llm = ScriptedLLM([bad, bad, verdict()])
    a = await LLMJudge(llm, "en").assess(QUESTION, ANSWER, "behavioral")
    assert a.status == "failed" and a.criteria == {} and a.feedback == ""
    assert "missing" in (a.error or "")
    assert len(llm.calls) == 2  # retried once, not more


async def test_missing_json_is_marked_failed() -> None:
    llm = ScriptedLLM(["I think the answer was quite good overall.", ""])
    a = await LLMJudge(llm, "en").assess(QUESTION, ANSWER, "behavioral")
    assert a.status == "failed" and "no JSON" in (a.error or "")


async def test_invented_quotes_are_rejected() -> None:
    invented = verdict(evidence="I single-handedly saved the company")
    llm = ScriptedLLM([invented, invented])
    a = await LLMJudge(llm, "en").assess(QUESTION, ANSWER, "behavioral")
    assert a.status == "failed" and "verbatim" in (a.error or "")


async def test_provider_error_is_marked_failed_not_raised() -> None:
    err = APIStatusError("service unavailable", status_code=503, retryable=False)
    llm = ScriptedLLM([err, err])
    a = await LLMJudge(llm, "en").assess(QUESTION, ANSWER, "behavioral")
    assert a.status == "failed" and "APIStatusError" in (a.error or "")


async def test_technical_answers_are_judged_on_depth_too() -> None:
    names = [*BEHAVIORAL, "depth"]
    llm = ScriptedLLM([verdict(names=names)])
    a = await LLMJudge(llm, "ko").assess("인덱스란?", ANSWER, "technical")
    assert set(a.criteria) == set(names)
    assert "기준표" in llm.calls[0]["chat_ctx"].items[0].text_content


async def test_server_without_json_schema_falls_back_to_plain_text() -> None:
    refused = APIStatusError("response_format not supported", status_code=400, retryable=False)
    llm = ScriptedLLM([refused, verdict()])
    a = await LLMJudge(llm, "en").assess(QUESTION, ANSWER, "behavioral")
    assert a.status == "ok"
    assert llm.calls[0]["response_format"] is JudgeVerdict
    assert llm.calls[1]["response_format"] is not JudgeVerdict  # plain text the second time


async def test_out_of_range_score_is_invalid() -> None:
    bad = verdict().replace('"score": 4', '"score": 7')
    a = await LLMJudge(ScriptedLLM([bad, bad]), "en").assess(QUESTION, ANSWER, "behavioral")
    assert a.status == "failed" and "1 to 5" in (a.error or "")
