"""The figures `python -m agent bench --stt` prints: error rates by words or characters, repeats
that reveal a looping decode, and the token cap a decode is held to."""

from __future__ import annotations

from agent.bench import _edit_errors, _repeated_bigrams, _stt_lines, _tokens
from agent.providers.stt import WhisperOptions, WhisperSTT


def test_error_rate_counts_words_in_english_and_characters_in_korean():
    assert _tokens("Yes, I'm ready.", "word") == ["yes", "i'm", "ready"]
    assert _tokens("네, 준비됐습니다.", "char") == list("네준비됐습니다")
    ref, hyp = (
        _tokens("I built an order service", "word"),
        _tokens("I will to order service", "word"),
    )
    assert _edit_errors(ref, hyp) == 2
    assert _edit_errors(ref, []) == len(ref)
    assert _edit_errors([], hyp) == len(hyp)


def test_repeated_bigrams_flag_a_decode_that_says_its_answer_twice():
    assert _repeated_bigrams("Yes, I'm ready.") == 0
    assert _repeated_bigrams("Yes, I'm ready. Yes, I'm ready") == 2
    assert _repeated_bigrams("go go go go") == 2


def test_token_cap_grows_with_the_audio_up_to_the_hard_limit():
    base = WhisperSTT(WhisperOptions(model="whisper-base", language="ko"))
    tiny = WhisperSTT(WhisperOptions(model="whisper-tiny.en", language="en"))
    assert base.token_cap(1.0) == 32 and tiny.token_cap(1.0) == 16
    assert base.token_cap(2.0) > base.token_cap(1.0)
    assert base.token_cap(60.0) == 160


def test_each_setting_gets_one_line():
    config = {
        "min_window_s": 10.0,
        "cpu_threads": 2,
        "decode_median_s": 0.3,
        "decode_p90_s": 0.45,
        "error_rate": 0.12,
        "length_ratio": 1.0,
        "repeated_bigrams": 0,
        "at_token_cap": 0,
        "empty": 1,
    }
    r = {
        "model": "whisper-base",
        "language": "en",
        "utterances": 13,
        "audio_s": 64.5,
        "error_unit": "word",
        "configs": [config, {**config, "min_window_s": 30.0, "cpu_threads": 1}],
        "load_average_1min": [1.0, 2.0],
    }
    lines = _stt_lines("en", r)
    assert len(lines) == 3 and "whisper-base" in lines[0]
    assert "window >= 10 s, 2 thread(s)" in lines[1] and "word error rate 0.120" in lines[1]
    assert lines[1].endswith("empty 1")
    assert "window >= 30 s, 1 thread(s)" in lines[2]
