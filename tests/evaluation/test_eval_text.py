"""Quotes are always verbatim spans of the answer and hold the cue they quote."""

from __future__ import annotations

import random

from agent.evaluation.text import find_verbatim, quote_around, quote_span, sentences


def test_quote_around_is_verbatim_and_holds_the_match() -> None:
    rng = random.Random(7)
    words = ["payments", "API", "캐시를", "줄였습니다", "latency", "40%", "we", "I", "설계했고"]
    for _ in range(300):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 80)))
        if rng.random() < 0.5:
            text = text.replace(" we ", ". We ", 1)
        start = rng.randrange(len(text))
        end = min(len(text), start + rng.randint(1, 12))
        s, e = quote_span(text, start, end)
        assert quote_around(text, start, end) == text[s:e]
        assert e - s <= 140 or e - s <= end - start
        # the quote holds the cue (up to the end of its sentence)
        sentence_end = next((b for a, b in sentences(text) if a <= start < b), None)
        if sentence_end is not None and not text[start:end].isspace():
            assert s <= start + 1 and min(end, sentence_end) <= e + 1


def test_sentences_and_verbatim_matching() -> None:
    text = "First one.  Second, with “quotes”!\nThird"
    assert [text[s:e] for s, e in sentences(text)] == [
        "First one.",
        "Second, with “quotes”!",
        "Third",
    ]
    assert find_verbatim('second, with "quotes"', text) == "Second, with “quotes”"
    assert find_verbatim("first   one", text) == "First one"
    assert find_verbatim("not there", text) is None
