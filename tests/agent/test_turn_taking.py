"""End-of-turn scoring from the transcript, and the detector wrapper around LiveKit's model."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from agent.prompts import load_yaml
from agent.turn_taking import (
    MAX_BACKCHANNEL_WORDS,
    TranscriptAwareTurnDetector,
    TranscriptCompleteness,
    TurnTakingOptions,
    transcript_words,
    turn_handling,
)


@pytest.mark.parametrize(
    ("language", "text", "expected"),
    [
        ("ko", "응답 시간을 사십 퍼센트 줄였습니다.", 1.0),
        ("ko", "네, 좋습니다.", 1.0),
        ("ko", "인덱스를 다시 설계했고,", 0.0),
        ("ko", "가장 중요하게 생각하는 것은", 0.0),
        ("ko", "그리고 음", 0.0),
        ("en", "which cut the latency by forty percent.", 1.0),
        ("en", "In that project I", 0.0),
        ("en", "What matters most to me is", 0.0),
        ("en", "and we redesigned the indexes,", 0.0),
        ("en", "so, um", 0.0),
    ],
)
def test_transcript_endings(language, text, expected):
    assert TranscriptCompleteness(language).score(text) == expected


def test_short_answers_to_open_questions_count_as_unfinished():
    en = TranscriptCompleteness("en")
    assert en.score("I built an order service.", open_question=True) < 0.5
    assert en.score("I built an order service.", open_question=False) == 1.0
    long = (
        "I built an order service with FastAPI for our shop, and I also ran the PostgreSQL "
        "database behind it for two years."
    )
    assert en.score(long, open_question=True) == 1.0


def test_backchannels_are_recognised():
    ko, en = TranscriptCompleteness("ko"), TranscriptCompleteness("en")
    assert ko.is_backchannel("네.") and ko.is_backchannel("네, 네") and ko.is_backchannel("음")
    assert en.is_backchannel("Yeah.") and en.is_backchannel("uh-huh") and en.is_backchannel("Okay")
    assert not en.is_backchannel("Sorry, can I stop you there?")
    assert not ko.is_backchannel("잠깐만요, 질문이 있습니다")
    # phrases and repetitions of up to three words: listening, not interrupting
    assert en.is_backchannel("Yeah, yeah.") and en.is_backchannel("I see.")
    assert en.is_backchannel("Oh, I see.") and ko.is_backchannel("네 네")
    assert ko.is_backchannel("아 네 맞아요") and ko.is_backchannel("아하, 그렇군요.")
    assert not en.is_backchannel("Wait.") and not ko.is_backchannel("잠깐만요")
    assert not en.is_backchannel("I") and not en.is_backchannel("see")  # half a phrase
    assert not en.is_backchannel("Yeah, yeah, yeah, yeah.")  # longer than any backchannel
    assert not en.is_backchannel("")


def test_an_interim_may_become_a_backchannel_until_its_settled_words_say_more():
    ko, en = TranscriptCompleteness("ko"), TranscriptCompleteness("en")
    # the last word of an interim may be cut off: only the words before it count
    assert ko.is_backchannel("아 네 맞아", partial=True)
    assert en.is_backchannel("I se", partial=True) and en.is_backchannel("Yeah, yea", partial=True)
    assert not en.is_backchannel("Sorry, can I", partial=True)
    assert not en.is_backchannel("Wait, I", partial=True)
    assert not ko.is_backchannel("잠깐만요 제가", partial=True)
    assert not en.is_backchannel("Yeah, yeah, yeah, so", partial=True)


def test_the_frameworks_word_rule_stays_above_every_backchannel():
    """livekit-agents interrupts by itself at `min_words` words (agent_activity.py); it must
    never fire on a backchannel, which agent/barge_in.py resumes instead."""
    handling = turn_handling(TurnTakingOptions(), detector=None)
    min_words = handling["interruption"]["min_words"]
    assert min_words == MAX_BACKCHANNEL_WORDS + 1
    for language in ("en", "ko"):
        tc = TranscriptCompleteness(language)
        longest = "yeah, yeah, yeah" if language == "en" else "아 네 맞아요"
        assert tc.is_backchannel(longest)
        assert len(transcript_words(longest)) < min_words
        # every listed phrase, as spelled in the list ("uh-huh", "i see"), is recognised
        for phrase in load_yaml(f"{language}/turn_taking.yaml")["backchannels"]:
            assert tc.is_backchannel(phrase), phrase


@dataclass
class _Event:
    end_of_turn_probability: float
    last_speaking_time: float = 0.0


class _InnerStream:
    model = "turn-detector-v1-mini"
    provider = "livekit"
    is_fallback = False
    prediction_timeout = 1.0

    def __init__(self, probability: float) -> None:
        self.p = probability
        self.flushed: list[str | None] = []

    def predict(self) -> asyncio.Future[_Event]:
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(_Event(self.p))
        return fut

    def flush(self, reason: str | None = None) -> None:
        self.flushed.append(reason)


class _Inner:
    model = "turn-detector-v1-mini"
    provider = "livekit"

    def __init__(self, p: float) -> None:
        self.s = _InnerStream(p)

    def stream(self, **_kw: object) -> _InnerStream:
        return self.s


async def test_prediction_waits_for_the_transcript_and_mixes_both_signals():
    det = TranscriptAwareTurnDetector(_Inner(0.5), TranscriptCompleteness("en"))
    stream = det.stream()
    fut = stream.predict()
    await asyncio.sleep(0.05)
    assert not fut.done(), "the transcript of the segment has not arrived yet"
    det.on_transcript("In that project I")
    ev = await asyncio.wait_for(fut, 1)
    assert ev.end_of_turn_probability == pytest.approx(0.2 * 0.5)
    fut = stream.predict()
    det.on_transcript("found the slow queries and fixed them.")
    ev = await asyncio.wait_for(fut, 1)
    assert ev.end_of_turn_probability == pytest.approx(0.2 * 0.5 + 0.8)
    stream.flush("turn committed")
    assert det._turn_text == "" and det._inner.s.flushed == ["turn committed"]


async def test_a_slow_stt_is_waited_for_and_an_empty_result_releases_the_prediction():
    det = TranscriptAwareTurnDetector(_Inner(0.9), TranscriptCompleteness("en"))
    busy = [True]
    det.stt_settled_since = lambda _t: not busy[0]
    fut = det.stream().predict()
    await asyncio.sleep(0.5)
    assert not fut.done(), "whisper is still transcribing the segment"
    busy[0] = False  # it finished without words (noise): no transcript event will come
    ev = await asyncio.wait_for(fut, 1)
    assert ev.end_of_turn_probability == pytest.approx(0.2 * 0.9 + 0.8 * 0.5)
