"""End-of-turn scoring from the transcript, and the detector wrapper around LiveKit's model."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from agent.turn_taking import TranscriptAwareTurnDetector, TranscriptCompleteness


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
