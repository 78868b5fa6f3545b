"""Filler detection: unambiguous fillers always, ordinary words only in filler position."""

from __future__ import annotations

import pytest

from agent.evaluation.fillers import FillerDetector


@pytest.fixture(scope="module")
def ko() -> FillerDetector:
    return FillerDetector("ko")


@pytest.fixture(scope="module")
def en() -> FillerDetector:
    return FillerDetector("en")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # 그 as a determiner ("그 프로젝트", "그 역할") is not a filler
        ("그 프로젝트에서 제가 그 역할을 맡았습니다.", {}),
        # set off by a comma or an ellipsis it is
        ("그, 저희가 먼저 로그를 봤습니다.", {"그": 1}),
        ("그… 서버가 느렸습니다.", {"그": 1}),
        # before a pronoun or a connective a determiner is impossible
        ("그 제가 맡은 그 역할은 결제였습니다.", {"그": 1}),
        ("그 그래서 캐시를 넣었습니다.", {"그": 1}),
        # repeated, and next to another filler
        ("그 그 서버가 죽었어요.", {"그": 2}),
        ("음 그 이제 저희가 약간 느렸어요.", {"음": 1, "그": 1, "이제": 1}),
        # 약간 and 이제 as ordinary adverbs
        ("이제 배포를 시작했고 응답이 약간 느렸습니다.", {}),
        # unambiguous ones, elongated
        ("음... 어, 아 네. 으음 흠", {"음": 3, "어": 1, "아": 1}),
        # 저는 / 저기에 are other words than 저 / 저기
        ("저는 저기에 있는 서버를 봤습니다.", {}),
        ("저, 저기, 뭐, 그런 식이었습니다.", {"저": 1, "저기": 1, "뭐": 1}),
    ],
)
def test_korean_fillers(ko: FillerDetector, text: str, expected: dict[str, int]) -> None:
    assert dict(ko.count(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I like Python and I would like to learn Rust.", {}),
        ("It looks like a cache problem.", {}),
        ("Things I like.", {}),
        ("Um, I like Python, like, a lot.", {"um": 1, "like": 1}),
        ("like like we did", {"like": 2}),
        ("It was, you know, hard. You know the answer. Do you know Go?", {"you know": 1}),
        ("We shipped it, you know.", {"you know": 1}),
        ("I mean, it worked. What I mean is simple.", {"I mean": 1}),
        ("A kind of tool. It was kind of slow and sort of fragile.", {"kind of": 1, "sort of": 1}),
        ("Uhh, umm, er, hmm.", {"uh": 1, "um": 1, "er": 1, "hmm": 1}),
        ("Ummm so basically, the index was, um, basically missing", {"um": 2, "basically": 2}),
    ],
)
def test_english_fillers(en: FillerDetector, text: str, expected: dict[str, int]) -> None:
    assert dict(en.count(text)) == expected


def test_hits_point_at_the_words(ko: FillerDetector) -> None:
    text = "그 제가 음 했습니다"
    assert [text[h.start : h.end] for h in ko.find(text)] == ["그", "음"]
