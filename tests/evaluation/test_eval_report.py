"""report.json contract, background assessor reuse, fair-hiring advice, LLM failures in reports."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from eval_fakes import ScriptedLLM

from agent.evaluation import AnswerAssessor, generate_report, generate_report_async
from agent.transcript import Transcript


def test_heuristic_report_follows_the_contract(en_demo: Transcript, tmp_path: Path) -> None:
    report = generate_report(en_demo, tmp_path)
    data = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert data["interview_id"] == "demo-en-001" and data["language"] == "en"
    assert data["assessor"] == "heuristic"
    overall = data["overall"]
    assert 1 <= overall["score"] <= 5 and overall["summary"]
    assert overall["strengths"] and overall["improvements"]
    assert len(data["questions"]) == 4
    for q in data["questions"]:
        assert {"question", "answer", "scores", "feedback", "evidence"} <= set(q)
        assert all(1 <= s <= 5 for s in q["scores"].values())
        assert all(e in q["answer"] for e in q["evidence"])  # the candidate's own words
    assert data["questions"][3]["status"] == "not_scored"  # "any questions for us?"
    d = data["delivery"]
    assert d["speaking_rate_unit"] == "words_per_minute"
    assert d["filler_counts"]["um"] == 3
    assert d["long_pauses"] == 1  # 3.5 s gap inside the conflict answer
    assert d["mean_response_latency_s"] == pytest.approx((1.2 + 2.5 + 1.0 + 4.5) / 4, abs=0.01)
    assert report.overall.score == overall["score"]
    assert (tmp_path / "report.html").read_text(encoding="utf-8").startswith("<!doctype html>")


def test_korean_report_and_fair_hiring_advice(ko_demo: Transcript, tmp_path: Path) -> None:
    report = generate_report(ko_demo, tmp_path)
    assert report.language == "ko"
    assert report.delivery.speaking_rate_unit == "syllables_per_second"
    cats = {m.category for m in report.fair_hiring}
    assert cats == {"family", "marital_status"}
    assert all(m.quote in report.questions[m.question_index].answer for m in report.fair_hiring)
    assert any("개인 정보" in line for line in report.overall.improvements)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'lang="ko"' in html and "모의 면접 결과 보고서" in html


def test_no_protected_advice_for_a_clean_interview(en_demo: Transcript, tmp_path: Path) -> None:
    clean = en_demo.model_copy(deep=True)
    clean.turns[1].text = "Hi, I'm Alex, a backend developer with two years of Python."
    report = generate_report(clean, tmp_path)
    assert report.fair_hiring == []


async def test_judge_failures_are_reported_never_invented(
    en_demo: Transcript, tmp_path: Path
) -> None:
    # every reply is prose: each scored answer is tried twice and marked failed
    llm = ScriptedLLM(["no json here"] * 10)
    report = await generate_report_async(en_demo, tmp_path, llm=llm)
    assert report.assessor == "llm:test-model"
    scored = [q for q in report.questions if q.status != "not_scored"]
    assert scored and all(q.status == "failed" and q.scores == {} for q in scored)
    assert report.overall.score is None
    assert len(llm.calls) == 2 * len(scored)
    system = llm.calls[0]["chat_ctx"].items[0].text_content
    assert "Position: Backend engineer (mixed)" in system


async def test_background_assessments_are_reused(en_demo: Transcript, tmp_path: Path) -> None:
    from agent.evaluation.exchanges import split_exchanges

    assessor = AnswerAssessor("en")
    exchanges = split_exchanges(en_demo)
    tasks = [assessor.submit(ex.question, ex.answer) for ex in exchanges]
    assert all(isinstance(t, asyncio.Task) for t in tasks)
    results = await assessor.results()
    assert [r.answer for r in results] == [ex.answer for ex in exchanges]
    report = await generate_report_async(en_demo, tmp_path, assessor=assessor)
    assert [q.scores for q in report.questions] == [
        {n: c.score for n, c in r.criteria.items()} for r in results
    ]


async def test_background_judge_does_not_block(en_demo: Transcript) -> None:
    gate = asyncio.Event()

    class SlowLLM(ScriptedLLM):
        def chat(self, **kwargs):  # type: ignore[override]
            stream = super().chat(**kwargs)
            original = stream._run

            async def slow_run() -> None:
                await gate.wait()
                await original()

            stream._run = slow_run  # type: ignore[method-assign]
            return stream

    assessor = AnswerAssessor("en", llm=SlowLLM(["x", "x"]))
    task = assessor.submit("Tell me about a time you failed.", "I failed once, badly.")
    await asyncio.sleep(0.05)
    assert not task.done()  # submit returned at once; the judge is still waiting
    gate.set()
    [result] = await assessor.results()
    assert result.status == "failed"


def test_untimed_text_rehearsal_does_not_claim_delivery(
    en_demo: Transcript, tmp_path: Path
) -> None:
    untimed = en_demo.model_copy(deep=True)
    for turn in untimed.turns:
        turn.start = turn.end = 0.5
    report = generate_report(untimed, tmp_path)
    d = report.delivery
    assert d.timed is False
    assert d.speaking_rate is None and d.mean_response_latency_s is None
    assert d.filler_counts["um"] == 3  # counts need no timing
    assert "not measured" in report.overall.summary
    joined = " ".join(report.overall.strengths + report.overall.improvements)
    assert "pause" not in joined and "latency" not in joined
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "no speech timings" in html and '<div class="charts">' not in html


async def test_observed_session_messages_are_judged_once(
    en_demo: Transcript, tmp_path: Path
) -> None:
    from test_eval_judge import verdict

    # one valid verdict per scored answer (intro, conflict story, index question), in order
    quotes = ["I studied computer science", "I set up a meeting", "binary search"]
    base = ["structure", "relevance", "specificity"]
    replies = [
        verdict(evidence=q, names=base + (["depth"] if i == 2 else []))
        for i, q in enumerate(quotes)
    ]
    llm = ScriptedLLM(replies)
    assessor = AnswerAssessor("en", llm=llm)
    for turn in en_demo.turns:  # what attach(session) feeds it, message by message
        assessor.observe(turn.speaker, turn.text)
    results = await assessor.results()
    assert [r.status for r in results] == ["ok", "ok", "ok", "not_scored"]
    # the report reuses them all: the LLM is not called again
    report = await generate_report_async(en_demo, tmp_path, llm=llm, assessor=assessor)
    assert len(llm.calls) == 3
    assert report.assessor == "llm:test-model"
    assert [q.status for q in report.questions] == ["ok", "ok", "ok", "not_scored"]


async def test_attach_follows_an_agent_session() -> None:
    from livekit.agents import AgentSession, ChatMessage, ConversationItemAddedEvent

    session = AgentSession()
    assessor = AnswerAssessor("en")
    assessor.attach(session, stage=lambda: "experience")

    def say(role: str, text: str) -> None:
        item = ChatMessage(role=role, content=[text])  # type: ignore[arg-type]
        session.emit("conversation_item_added", ConversationItemAddedEvent(item=item))

    say("assistant", "Tell me about a project.")
    say("user", "I rebuilt our billing jobs.")
    say("user", "Failures dropped by 90 percent.")
    say("assistant", "Thanks.")  # the answer is complete: submitted now
    assert len(assessor._tasks) == 1
    [result] = await assessor.results()
    assert result.answer == "I rebuilt our billing jobs. Failures dropped by 90 percent."
    assert result.kind == "behavioral"  # from the stage
