"""Text-mode AgentSession tests: the interview flow with the scripted LLM and a tool-calling LLM."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from agent_doubles import ToolCallingLLM

from agent.config import parse_config
from agent.prompts import protected_topic
from agent.session import Interview, create_interview

KO = {"candidate_name": "김지원", "role": "백엔드 개발자", "duration_minutes": 5}
EN = {**KO, "candidate_name": "Jamie", "language": "en"}
LONG_KO = (
    "저는 결제 시스템 API를 이 년 동안 개발했고, 느린 쿼리를 고쳐서 응답 시간을 크게 줄였습니다."
)
LONG_EN = "I spent two years building the payments API and cut its latency by fixing slow queries."


async def _start(config: dict, **kwargs) -> Interview:
    iv = create_interview(parse_config(config), text_only=True, **kwargs)
    await iv.session.start(iv.first_agent(), record=False)
    for _ in range(100):  # the greeting comes from on_enter
        if iv.turn_metrics:
            break
        await asyncio.sleep(0.02)
    return iv


async def _say(iv: Interview, text: str) -> list[str]:
    """The candidate says `text`; returns what the interviewer said back."""
    result = iv.session.run(user_input=text)
    await result
    return [
        e.item.text_content
        for e in result.events
        if e.type == "message" and e.item.role == "assistant" and e.item.text_content
    ]


async def _close(iv: Interview) -> None:
    await iv.session.aclose()


async def test_scripted_interview_walks_every_stage_in_order():
    iv = await _start(KO)
    answers = ["네, 좋습니다.", LONG_KO, LONG_KO, LONG_KO, LONG_KO, "없습니다. 감사합니다."]
    for a in answers:
        if iv.state.finished:
            break
        await _say(iv, a)
    await asyncio.sleep(0.2)
    assert iv.state.stage_log == [
        "greeting",
        "introduction",
        "experience",
        "role",
        "candidate_questions",
        "closing",
    ]
    assert iv.state.finished
    turns = iv.transcript().turns
    assert turns[0].speaker == "interviewer" and "기록" in turns[0].text
    assert "감사합니다" in turns[-1].text and turns[-1].speaker == "interviewer"
    # one question at a time: speakers alternate
    assert all(a.speaker != b.speaker for a, b in itertools.pairwise(turns))
    await _close(iv)


async def test_short_answers_get_at_most_two_follow_ups():
    iv = await _start(KO)
    await _say(iv, "네.")  # consent
    q = iv.state.current()
    assert q is not None and q.id == "introduction"
    first = await _say(iv, "그냥 했어요.")
    second = await _say(iv, "열심히요.")
    third = await _say(iv, "네 뭐.")
    assert iv.state.current() != q, "after two follow-ups the interviewer moves on"
    assert iv.state.follow_ups == 0 and "introduction" not in iv.state.skipped
    assert first and second and third
    assert first[-1] != second[-1] and q.text not in first[-1]
    await _close(iv)


async def test_repeat_rephrase_and_skip_requests_en():
    iv = await _start(EN)
    await _say(iv, "Yes, I'm ready.")
    q = iv.state.current()
    assert q is not None
    repeated = await _say(iv, "Sorry, could you repeat that?")
    assert q.text in repeated[-1] and iv.state.current() == q
    rephrased = await _say(iv, "Could you rephrase the question?")
    assert (q.alt or q.text) in rephrased[-1] and iv.state.current() == q
    await _say(iv, "Can we skip this one?")
    assert q.id in iv.state.skipped and iv.state.current() != q
    await _close(iv)


async def test_time_running_out_wraps_up_after_the_answer():
    iv = await _start({**KO, "duration_minutes": 15})
    now = [0.0]
    iv.state.clock = lambda: now[0]
    iv.state.started_at = 0.0
    await _say(iv, "네.")
    await _say(iv, LONG_KO)  # self-introduction
    assert iv.state.stage == "experience"
    now[0] = 14 * 60.0  # one minute left while the candidate answers
    replies = await _say(iv, LONG_KO)
    assert iv.state.stage == "candidate_questions" and iv.state.wrapping_up
    assert any("시간 관계상" in r for r in replies)
    assert iv.state.asked.count("experience-1") == 0  # remaining questions were dropped
    await _say(iv, "없습니다.")
    await asyncio.sleep(0.2)
    assert iv.state.finished
    await _close(iv)


async def test_tool_calling_llm_follow_up_limit_and_protected_topics():
    llm = ToolCallingLLM(
        [
            ("next_question", {}),  # consent -> introduction
            ("ask_follow_up", {"question": "어떤 프로젝트였나요?"}),
            ("ask_follow_up", {"question": "결혼은 하셨나요?"}),  # refused: protected
            ("ask_follow_up", {"question": "결과는 어땠나요?"}),
            ("ask_follow_up", {"question": "또 다른 예가 있나요?"}),  # refused: third follow-up
            ("skip_question", {}),
        ]
    )
    iv = await _start(KO, llm_override=llm)
    for text in ["네.", "짧게", "음", "네", "그렇죠", "넘어갈게요"]:
        await _say(iv, text)
    outs = llm.outputs
    assert "«어떤 프로젝트였나요?»" in outs[0]
    assert "개인 정보" in outs[1] and "«" not in outs[1]
    assert "«결과는 어땠나요?»" in outs[2]
    assert "두 번" in outs[3]
    assert iv.state.stage == "experience", "skipping the introduction moves to the next stage"
    assert "introduction" in iv.state.skipped
    for turn in iv.transcript().turns:
        if turn.speaker == "interviewer":
            assert protected_topic(turn.text) is None, turn.text
    await _close(iv)


@pytest.mark.parametrize("config", [KO, EN], ids=["ko", "en"])
async def test_candidate_questions_get_an_answer_then_closing(config):
    iv = await _start(config)
    iv.state.stage = "candidate_questions"
    from agent.flow import StageAgent

    iv.session.update_agent(StageAgent(iv.state, "candidate_questions", chat_ctx=None))
    await asyncio.sleep(0.1)
    asked = "팀 분위기는 어떤가요?" if config is KO else "What is the team like?"
    replies = await _say(iv, asked)
    assert replies and iv.state.stage == "candidate_questions"
    await _say(iv, "없습니다." if config is KO else "No questions, thank you.")
    await asyncio.sleep(0.2)
    assert iv.state.finished
    await _close(iv)
