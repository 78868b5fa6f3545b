"""Fair-hiring guard: protected personal information the candidate volunteered, no false alarms."""

from __future__ import annotations

import pytest

from agent.evaluation.fair_hiring import find_mentions


@pytest.mark.parametrize(
    ("text", "categories"),
    [
        ("저는 부산 출신이고 아버지께서 공무원이십니다.", {"hometown", "family"}),
        ("결혼해서 아이가 하나 있습니다.", {"marital_status", "family"}),
        ("올해 스물여덟 살입니다.", {"age"}),
        ("28살이고 키가 180입니다.", {"age", "appearance"}),
        ("주말에는 교회에 다닙니다.", {"religion"}),
        ("I'm 27 and I grew up in Busan.", {"age", "hometown"}),
        ("I am 30, married with two kids.", {"age", "marital_status", "family"}),
        ("My wife and I moved here last year.", {"marital_status"}),
        ("I go to church every Sunday.", {"religion"}),
    ],
)
def test_mentions_are_found_with_the_candidates_words(text: str, categories: set[str]) -> None:
    lang = "en" if text.isascii() else "ko"
    found = find_mentions(text, lang)  # type: ignore[arg-type]
    assert {m.category for m in found} == categories
    assert all(m.quote in text for m in found)


@pytest.mark.parametrize(
    "text",
    [
        "대학 시절에 프로젝트를 했습니다.",  # 시절에, not 절에 (temple)
        "데이터 유형이 달라서 개발자 출신이라도 어려웠습니다.",  # 유형이, a developer background
        "아이디어를 내고 문제를 해결했습니다.",
        "메모리를 16GB에서 8GB로 줄였습니다.",
        "I'm from a data background and I'm 10 minutes into the demo.",
        "We tuned the model weights and the height of the B-tree.",
        "The parent process forks a child process.",
    ],
)
def test_ordinary_answers_raise_nothing(text: str) -> None:
    lang = "en" if text.isascii() else "ko"
    assert find_mentions(text, lang) == []  # type: ignore[arg-type]
