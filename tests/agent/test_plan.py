"""The interview plan: stage order, tailoring by config, and no protected questions anywhere."""

from __future__ import annotations

import pytest

from agent.config import parse_config
from agent.plan import STAGE_ORDER, build_plan, jd_keyword, resume_snippet
from agent.prompts import interviewer_prompts, protected_topic, question_bank

BASE = {"candidate_name": "김지원", "role": "백엔드 개발자"}


def _configs() -> list[dict]:
    out = []
    for language, role in (
        ("ko", "백엔드 개발자"),
        ("en", "Frontend engineer"),
        ("en", "Data analyst"),
    ):
        for itype in ("behavioral", "technical", "mixed"):
            for seniority in ("intern", "senior"):
                for difficulty in ("easy", "hard"):
                    out.append(
                        {
                            "candidate_name": "Test",
                            "role": role,
                            "language": language,
                            "interview_type": itype,
                            "seniority": seniority,
                            "difficulty": difficulty,
                            "duration_minutes": 30,
                            "resume_text": "Led the billing move to Kafka. 3 years",
                            "job_description": "You will run Kubernetes and PostgreSQL.",
                        }
                    )
    return out


def test_stages_come_in_the_interview_order():
    plan = build_plan(parse_config(BASE))
    assert tuple(s.name for s in plan.stages) == STAGE_ORDER
    assert plan.stage("closing").questions == ()
    for name in STAGE_ORDER[:-1]:
        assert plan.stage(name).questions, name


def test_greeting_tells_the_candidate_the_session_is_transcribed():
    ko = build_plan(parse_config(BASE)).stage("greeting").questions[0].text
    en = build_plan(parse_config({**BASE, "language": "en"})).stage("greeting").questions[0].text
    assert "기록" in ko and "김지원" in ko
    assert "transcribed" in en


def test_plan_is_tailored_by_type_resume_and_job_description():
    technical = build_plan(parse_config({**BASE, "interview_type": "technical"}))
    assert {q.kind for q in technical.stage("role").questions} == {"technical"}
    behavioral = build_plan(parse_config({**BASE, "interview_type": "behavioral"}))
    assert {q.kind for q in behavioral.stage("role").questions} == {"behavioral"}
    mixed = build_plan(parse_config({**BASE, "duration_minutes": 20}))
    assert {q.kind for q in mixed.stage("role").questions} == {"technical", "behavioral"}

    cfg = {
        **BASE,
        "resume_text": "결제 API 리팩터링으로 응답 시간 40% 단축",
        "job_description": "Kafka 운영 경험",
    }
    experience = [q.text for q in build_plan(parse_config(cfg)).stage("experience").questions]
    assert any("결제 API 리팩터링" in t for t in experience)
    assert any("Kafka" in t for t in experience)


def test_longer_interviews_get_more_role_questions_and_seniority_matters():
    short = build_plan(parse_config({**BASE, "duration_minutes": 5}))
    long = build_plan(parse_config({**BASE, "duration_minutes": 30}))
    assert len(long.stage("role").questions) > len(short.stage("role").questions)
    senior = build_plan(parse_config({**BASE, "seniority": "senior", "duration_minutes": 40}))
    intern = build_plan(parse_config({**BASE, "seniority": "intern", "duration_minutes": 40}))
    senior_only = "후배를 이끌었던"
    assert any(senior_only in q.text for q in senior.all_questions())
    assert not any(senior_only in q.text for q in intern.all_questions())


def test_resume_and_jd_extraction():
    assert (
        resume_snippet("- Led the billing migration to Kafka\n- 3 yrs")
        == "Led the billing migration to Kafka"
    )
    assert jd_keyword("We are hiring. You will run Kubernetes and Kafka.") == "Kubernetes"
    assert jd_keyword("no technical words here") is None


@pytest.mark.parametrize(
    "question",
    [
        "결혼은 하셨나요?",
        "고향이 어디세요?",
        "How old are you?",
        "Do you go to church?",
        "부모님은 뭐 하세요?",
    ],
)
def test_protected_topics_are_recognised(question):
    assert protected_topic(question) is not None


@pytest.mark.parametrize("language", ["ko", "en"])
def test_no_question_in_the_banks_touches_a_protected_topic(language):
    bank = question_bank(language)
    prompts = interviewer_prompts(language)
    texts = [q["text"] for q in bank["introduction"] + bank["technical"] + bank["behavioral"]]
    texts += [q.get("alt", "") for q in bank["technical"] + bank["behavioral"]]
    texts += [q["text"] for q in bank["experience"]["generic"] + bank["candidate_questions"]]
    texts += [bank["experience"]["resume"], bank["experience"]["job_description"]]
    texts += prompts["follow_ups"] + [v for v in prompts["lines"].values() if isinstance(v, str)]
    for text in texts:
        assert protected_topic(text) is None, text


def test_no_built_plan_asks_a_protected_question():
    for cfg in _configs():
        for q in build_plan(parse_config(cfg)).all_questions():
            assert protected_topic(q.text) is None, (cfg, q.text)
            assert protected_topic(q.alt or "") is None, (cfg, q.alt)
