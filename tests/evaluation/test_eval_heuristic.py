"""The offline heuristic assessor: scores follow measurable cues; evidence is verbatim."""

from __future__ import annotations

from agent.evaluation.heuristic import HeuristicAssessor, classify_question

STAR_EN = (
    "At my previous company our billing jobs failed every night. My role was to fix the "
    "pipeline. I added retries and I rewrote the scheduler in Go. As a result failures dropped "
    "by 90 percent."
)
VAGUE_EN = "We worked hard as a team and we did many things and it was a good experience overall."


def test_star_answer_scores_high_with_verbatim_evidence() -> None:
    h = HeuristicAssessor("en")
    a = h.assess("Tell me about a time you fixed a failing pipeline.", STAR_EN, "behavioral")
    assert a.assessor == "heuristic" and a.status == "ok"
    assert a.criteria["structure"].score == 5
    for c in a.criteria.values():
        assert c.reason
        for quote in c.evidence:
            assert quote in STAR_EN
    assert any("90 percent" in q for q in a.criteria["structure"].evidence)
    assert a.better_answer_outline and a.feedback


def test_vague_we_answer_scores_low_and_says_why() -> None:
    h = HeuristicAssessor("en")
    a = h.assess("Tell me about a time you fixed a failing pipeline.", VAGUE_EN, "behavioral")
    assert a.criteria["structure"].score <= 2
    assert a.criteria["specificity"].score == 1
    assert "“we”" in a.feedback  # the we-vs-I tip
    assert "Situation" in a.criteria["structure"].reason


def test_unquantified_result_scores_below_quantified() -> None:
    h = HeuristicAssessor("en")
    q = "Tell me about a time you fixed a failing pipeline."
    unquantified = STAR_EN.replace("by 90 percent", "a lot")
    assert (
        h.assess(q, unquantified, "behavioral").criteria["structure"].score
        < h.assess(q, STAR_EN, "behavioral").criteria["structure"].score
    )


def test_korean_star_and_depth() -> None:
    h = HeuristicAssessor("ko")
    answer = (
        "작년 인턴 당시 결제 실패가 하루 이백 건이었습니다. 제 역할은 원인을 찾는 것이었고, "
        "제가 로그를 분석해서 타임아웃을 고쳤습니다. 그 결과 실패를 70% 줄였고 모니터링의 "
        "중요성을 배웠습니다."
    )
    a = h.assess("가장 어려웠던 문제를 해결한 경험을 말씀해 주세요.", answer, "behavioral")
    assert a.criteria["structure"].score == 5
    assert all(q in answer for c in a.criteria.values() for q in c.evidence)

    tech = (
        "인덱스는 B-tree 구조라서 전체를 읽지 않아도 되기 때문에 조회가 빠릅니다. 하지만 쓰기가 "
        "많으면 인덱스 갱신 비용이 커지는 단점이 있습니다."
    )
    question = "데이터베이스 인덱스가 언제 성능에 도움이 되나요?"
    t = h.assess(question, tech, "technical")
    assert "depth" in t.criteria and t.criteria["depth"].score >= 3
    shallow = h.assess(question, "잘 모르겠습니다.", "technical")
    assert shallow.criteria["depth"].score == 1
    assert shallow.criteria["relevance"].score == 1  # too short to answer


def test_question_kinds() -> None:
    assert classify_question("먼저 간단하게 자기소개 부탁드립니다.", "ko") == "general"
    assert classify_question("갈등을 해결한 경험을 말씀해 주세요.", "ko") == "behavioral"
    assert classify_question("트랜잭션 격리 수준의 차이를 설명해 주세요.", "ko") == "technical"
    assert classify_question("마지막으로 궁금한 점 있으신가요?", "ko") == "closing"
    assert classify_question("Tell me about a time you failed.", "en") == "behavioral"
    assert classify_question("Do you have any questions for us?", "en") == "closing"
    # the plan's own label wins over the wording
    assert classify_question("Anything?", "en", meta={"stage": "experience"}) == "behavioral"
    assert classify_question("Hello!", "en", meta={"stage": "greeting"}) == "greeting"
    assert classify_question("Anything?", "en", meta={"kind": "technical"}) == "technical"
    # the "role" stage mixes kinds: the wording decides
    role = {"stage": "role"}
    assert classify_question("Explain a database index.", "en", meta=role) == "technical"
    assert classify_question("Anything?", "en", interview_type="technical") == "technical"


def test_actions_without_i_earn_half_credit() -> None:
    h = HeuristicAssessor("en")
    q = "Tell me about a time you fixed a failing pipeline."
    with_i = h.assess(q, STAR_EN, "behavioral").criteria["structure"]
    with_we = h.assess(
        q,
        STAR_EN.replace("I added retries and I rewrote", "We added retries and we rewrote"),
        "behavioral",
    ).criteria["structure"]
    assert with_we.score < with_i.score
    assert "“we”, not “I”" in with_we.reason


def test_technical_answer_first() -> None:
    h = HeuristicAssessor("en")
    q = "What is a database index?"
    direct = h.assess(
        q, "A database index is a sorted lookup structure. It avoids scans.", "technical"
    )
    indirect = h.assess(
        q, "Well, it depends on many things. A database index avoids scans.", "technical"
    )
    assert "Main point first" not in direct.criteria["structure"].reason.split("Missing")[1]
    assert "Main point first" in indirect.criteria["structure"].reason.split("Missing")[1]
