"""Delivery metrics on hand-made transcripts whose counts and rates are known exactly."""

from __future__ import annotations

import pytest
from conftest import make_transcript

from agent.evaluation.delivery import answer_delivery, count_units, overall_delivery
from agent.evaluation.exchanges import split_exchanges
from agent.evaluation.fillers import FillerDetector


def test_korean_rates_pauses_fillers_latency() -> None:
    t = make_transcript(
        "ko",
        [
            ("interviewer", "맡은 역할을 말씀해 주세요.", 0.0, 10.0),
            # 12 Hangul syllables each; 음 (always) and 그 before 제가 (filler position)
            ("candidate", "음 저는 백엔드 개발자입니다", 11.0, 14.0),
            ("candidate", "그 제가 맡은 일은 결제입니다", 17.0, 20.0),
        ],
    )
    [ex] = split_exchanges(t)
    assert ex.answer == "음 저는 백엔드 개발자입니다 그 제가 맡은 일은 결제입니다"
    d = answer_delivery(ex, "ko", FillerDetector("ko"))
    assert d.units == 24
    assert d.duration_s == 9.0 and d.speech_s == 6.0
    assert d.speaking_rate == pytest.approx(24 / 9, abs=0.01)  # syllables per second, with pauses
    assert d.articulation_rate == 4.0  # 24 syllables / 6 s of speech
    assert d.fillers == {"음": 1, "그": 1}
    assert d.fillers_per_minute == pytest.approx(2 / (9 / 60), abs=0.01)
    assert d.pauses_s == [3.0] and d.long_pauses == 1
    assert d.response_latency_s == 1.0


def test_english_rates_and_barge_in_latency() -> None:
    t = make_transcript(
        "en",
        [
            ("interviewer", "What did you build?", 0.0, 5.0),
            ("candidate", "Um, I built the payment API.", 6.0, 9.0),  # 6 words
            ("candidate", "I like Python, like, a lot.", 9.5, 12.5),  # 6 words, one filler "like"
            ("interviewer", "Why Python?", 15.0, 20.0),
            # starts before the question ended: a barge-in, latency -0.5 counted as 0 in the mean
            ("candidate", "Because the team knew it well.", 19.5, 22.5),  # 6 words
        ],
    )
    exchanges = split_exchanges(t)
    assert [e.question for e in exchanges] == ["What did you build?", "Why Python?"]
    det = FillerDetector("en")
    first, second = (answer_delivery(e, "en", det) for e in exchanges)
    assert first.units == 12
    assert first.speaking_rate == pytest.approx(12 / 6.5 * 60, abs=0.01)  # words per minute
    assert first.articulation_rate == 120.0  # 12 words / 6 s of speech
    assert first.fillers == {"um": 1, "like": 1}
    assert first.long_pauses == 0 and first.pauses_s == [0.5]
    assert second.response_latency_s == -0.5

    total = overall_delivery([first, second], "en")
    assert total.speaking_rate_unit == "words_per_minute"
    assert total.speaking_rate == pytest.approx(18 / 9.5 * 60, abs=0.01)
    assert total.articulation_rate == pytest.approx(18 / 9 * 60, abs=0.01)
    assert total.filler_counts == {"um": 1, "like": 1}
    assert total.fillers_per_minute == pytest.approx(2 / (9.5 / 60), abs=0.01)
    assert total.mean_response_latency_s == 0.5  # (1.0 + 0) / 2
    assert total.answer_durations_s == [6.5, 3.0]
    assert total.long_pauses == 0


def test_long_pause_threshold_is_strict() -> None:
    t = make_transcript(
        "en",
        [
            ("interviewer", "Q?", 0.0, 1.0),
            ("candidate", "one", 2.0, 3.0),
            ("candidate", "two", 5.5, 6.0),  # 2.5 s gap: not longer than 2.5
            ("candidate", "three", 8.6, 9.0),  # 2.6 s gap: long
        ],
    )
    d = answer_delivery(split_exchanges(t)[0], "en", FillerDetector("en"))
    assert d.pauses_s == [2.5, 2.6] and d.long_pauses == 1


def test_units_count_hangul_syllables_and_english_words() -> None:
    assert count_units("API를 3번 호출했습니다!", "ko") == 8  # Latin letters and digits excluded
    assert count_units("I'm done, it's 30% faster.", "en") == 5


def test_interviewer_turns_merge_into_one_question_and_empty_turns_are_skipped() -> None:
    t = make_transcript(
        "en",
        [
            ("interviewer", "Thanks.", 0.0, 1.0),
            ("interviewer", "Next: why this role?", 1.2, 3.0),
            ("candidate", "  ", 3.1, 3.2),
            ("candidate", "Because I love payments.", 4.0, 6.0),
        ],
    )
    [ex] = split_exchanges(t)
    assert ex.question == "Thanks. Next: why this role?"
    assert ex.question_end == 3.0 and len(ex.segments) == 1


def test_word_timings_reveal_pauses_inside_a_segment() -> None:
    t = make_transcript(
        "ko",
        [
            ("interviewer", "역할을 말씀해 주세요.", 0.0, 10.0),
            ("candidate", "음 저는 백엔드 개발자입니다", 11.0, 17.0),  # 12 syllables
        ],
    )
    # gaps: 0.1 s (articulation), 1.0 s and 3.1 s (pauses, the second one long)
    t.turns[1].words = [  # type: ignore[attr-defined]
        {"text": "음", "start": 11.0, "end": 11.4},
        {"text": "저는", "start": 11.5, "end": 12.0},
        {"text": "백엔드", "start": 13.0, "end": 13.6},
        {"text": "개발자입니다", "start": 16.7, "end": 17.0},
    ]
    [ex] = split_exchanges(t)
    d = answer_delivery(ex, "ko", FillerDetector("ko"))
    assert d.word_timed and d.pauses_s == [3.1, 1.0] and d.long_pauses == 1
    assert d.speech_s == pytest.approx(1.9)
    assert d.speaking_rate == 2.0  # 12 / 6 s
    assert d.articulation_rate == pytest.approx(12 / 1.9, abs=0.01)
    assert overall_delivery([d], "ko").word_timed


def test_malformed_word_timings_fall_back_to_segments() -> None:
    t = make_transcript("en", [("interviewer", "Q?", 0.0, 1.0), ("candidate", "a b", 2.0, 4.0)])
    t.turns[1].words = [{"text": "a", "start": "x"}]  # type: ignore[attr-defined]
    d = answer_delivery(split_exchanges(t)[0], "en", FillerDetector("en"))
    assert not d.word_timed and d.speech_s == 2.0 and d.pauses_s == []
