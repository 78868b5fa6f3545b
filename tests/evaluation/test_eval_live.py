"""Live answer assessment: attached to the interview's session, reused by the report, and never
in the conversation's way when it fails."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from eval_fakes import RubricJudgeLLM
from livekit.agents import AgentSession, ChatMessage, ConversationItemAddedEvent

from agent.config import InterviewConfig
from agent.evaluation import LiveAssessment, cli, live
from agent.evaluation.heuristic import HeuristicAssessor
from agent.transcript import Transcript

ROOT = Path(__file__).resolve().parents[2]


def _config(transcript: Transcript) -> InterviewConfig:
    return InterviewConfig.model_validate(transcript.config)


def _replay(session: AgentSession, transcript: Transcript) -> None:
    """What the AgentSession emits during the interview, message by message."""
    for turn in transcript.turns:
        role = "assistant" if turn.speaker == "interviewer" else "user"
        item = ChatMessage(role=role, content=[turn.text])  # type: ignore[arg-type]
        session.emit("conversation_item_added", ConversationItemAddedEvent(item=item))


async def test_answers_judged_live_are_not_judged_again(
    en_demo: Transcript, tmp_path: Path
) -> None:
    judge = RubricJudgeLLM()
    session = AgentSession()
    assessment = LiveAssessment.start(_config(en_demo), "iv-live", session, llm=judge)
    assert assessment is not None
    _replay(session, en_demo)
    # the finished answers are under way before the interview ends
    assert len(assessment.assessor._tasks) == 3
    report = await assessment.write_report(en_demo, tmp_path)
    assert len(judge.calls) == 3  # intro, conflict story, index question: once each
    assert report.assessor == "llm:test-model"
    assert [q.status for q in report.questions] == ["ok", "ok", "ok", "not_scored"]
    data = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert data["questions"][0]["scores"] and all(
        s == 4 for s in data["questions"][0]["scores"].values()
    )


async def test_a_failed_live_assessment_is_logged_and_made_for_the_report(
    en_demo: Transcript,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real = HeuristicAssessor.assess
    calls = {"n": 0}

    def flaky(self: HeuristicAssessor, *args: object) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("heuristic broke")
        return real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(HeuristicAssessor, "assess", flaky)
    session = AgentSession()
    assessment = LiveAssessment.start(
        _config(en_demo), "iv-flaky", session, env={}, log_extra={"room": "r1"}
    )
    assert assessment is not None and assessment.assessor.name == "heuristic"
    with caplog.at_level(logging.ERROR, logger="interview.evaluation"):
        _replay(session, en_demo)  # nothing raises into the conversation
        live_results = await assessment.results()
    assert len(live_results) == 3  # of 4 answers: the failed one is left out
    failure = next(r for r in caplog.records if "failed" in r.getMessage())
    assert (failure.interview, failure.room) == ("iv-flaky", "r1")
    report = await assessment.write_report(en_demo, tmp_path)
    assert [q.status for q in report.questions] == ["ok", "ok", "ok", "not_scored"]
    assert calls["n"] == 4  # 3 live (one failed) + the failed answer again for the report


async def test_a_broken_observer_never_breaks_the_conversation(
    en_demo: Transcript, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def stage() -> str:
        raise KeyError("no stage")

    session = AgentSession()
    assessment = LiveAssessment.start(_config(en_demo), "iv-broken", session, stage=stage, env={})
    assert assessment is not None
    with caplog.at_level(logging.ERROR, logger="interview.evaluation"):
        _replay(session, en_demo)
    assert any(getattr(r, "interview", None) == "iv-broken" for r in caplog.records)
    report = await assessment.write_report(en_demo, tmp_path)  # assessed at the end instead
    assert [q.status for q in report.questions] == ["ok", "ok", "ok", "not_scored"]


async def test_no_live_assessment_when_it_cannot_start(
    en_demo: Transcript, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_judge(env: object = None) -> None:
        raise RuntimeError("judge plugin missing")

    monkeypatch.setattr(live, "judge_llm_from_env", no_judge)
    with caplog.at_level(logging.ERROR, logger="interview.evaluation"):
        assert LiveAssessment.start(_config(en_demo), "iv-none", AgentSession()) is None
    assert any(getattr(r, "interview", None) == "iv-none" for r in caplog.records)


def test_text_rehearsal_reuses_live_judgments_in_its_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.__main__ import _write_report
    from agent.answers import load_answers
    from agent.config import parse_config
    from agent.rehearsal import run_rehearsal

    judge = RubricJudgeLLM()
    # the judge "configured in the environment", for the interview and for the report
    monkeypatch.setattr(live, "judge_llm_from_env", lambda env=None: judge)
    monkeypatch.setattr(cli, "judge_llm_from_env", lambda env=None: judge)
    config = parse_config((ROOT / "examples/en/config.json").read_text(encoding="utf-8"))
    answers = load_answers(ROOT / "examples/en/answers.txt")
    result = asyncio.run(run_rehearsal(config, answers, tmp_path, text=True))
    judged_live = len(judge.calls)
    assert judged_live >= 3 and len(result.assessments) >= 4
    assert all(a.assessor == "llm:test-model" for a in result.assessments)

    assert _write_report(result.transcript, tmp_path, result.assessments) == 0
    assert len(judge.calls) == judged_live  # the report judged nothing again
    data = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert data["assessor"] == "llm:test-model"
    scored = [q for q in data["questions"] if q.get("status") != "not_scored"]
    assert len(scored) == judged_live and all(q["scores"] for q in scored)


def test_text_rehearsal_with_the_offline_heuristic(tmp_path: Path) -> None:
    from agent.answers import load_answers
    from agent.config import parse_config
    from agent.evaluation import generate_report
    from agent.rehearsal import run_rehearsal

    config = parse_config((ROOT / "examples/en/config.json").read_text(encoding="utf-8"))
    answers = load_answers(ROOT / "examples/en/answers.txt")
    result = asyncio.run(run_rehearsal(config, answers, tmp_path, text=True))
    assert result.assessments and all(a.assessor == "heuristic" for a in result.assessments)
    reused = generate_report(result.transcript, tmp_path / "reused", reuse=result.assessments)
    fresh = generate_report(result.transcript, tmp_path / "fresh")
    # the heuristic is deterministic: reusing its live results changes nothing in the report
    assert [q.model_dump() for q in reused.questions] == [q.model_dump() for q in fresh.questions]
    assert len(result.assessments) == len(reused.questions)
