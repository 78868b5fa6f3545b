"""`python -m agent bench`: voice-to-voice latency and turn-taking of the offline stack.

Runs real-time rehearsals (the real AgentSession, offline providers) with answers that contain
1.5-3 s thinking pauses and backchannels, and prints: voice-to-voice latency (candidate's true
end of speech -> first interviewer audio, median and p90), its breakdown from the session's
metrics (end-of-turn wait, STT, LLM first token, TTS first audio), and how many thinking pauses
made the interviewer cut in. Timings on a shared machine are noisy: read them as indications.

`--stt` measures the offline STT alone instead: every stretch of speech of the answers (espeak,
as the rehearsal speaks it) decoded by WhisperSTT with each of the given shortest encoder windows
and thread counts (`--model`, `--window`, `--threads`; default the configured model, its window
and whisper's fixed 30 s), printing per setting the decode time (median, p90), the error rate
against the script (words for English, characters for Korean), and signs of a looping decode:
output length against the script, repeated word bigrams, decodes stopped by the token cap;
and how many utterances came out empty (whisper's no-speech filter dropped them).

`--vad` measures how soon candidate speech holds the interviewer instead (agent/vad_bench.py):
onset to hold per barge-in, backchannel and non-speech sound, for each input frame size
(`--frame-ms`) and hold rule (`--hold`), in audio time.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .answers import load_answers
from .config import parse_config
from .providers.models import WHISPER_MODELS
from .rehearsal import RehearsalResult, run_rehearsal
from .turn_taking import TurnTakingOptions
from .vad_bench import WINDOW, HoldRule

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TARGETS = {"voice_to_voice_median_s": 0.8, "voice_to_voice_p90_s": 1.2, "cut_ins": 0}


def _ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v * 1000:.0f} ms"


def _print(lang: str, s: dict[str, Any]) -> None:
    print(f"offline stack, {lang}: {s['turns_measured']} measured turns")
    print(
        f"  voice-to-voice: median {_ms(s['voice_to_voice_median_s'])} (target <= 800 ms), "
        f"p90 {_ms(s['voice_to_voice_p90_s'])} (target <= 1200 ms)"
    )
    print(
        f"  breakdown (medians): end-of-turn wait {_ms(s['end_of_turn_delay_median_s'])}, "
        f"STT {_ms(s['stt_delay_median_s'])}, LLM first token {_ms(s['llm_ttft_median_s'])}, "
        f"TTS first audio {_ms(s['tts_ttfb_median_s'])}"
    )
    print(
        f"  thinking pauses (1.5-3 s): {s['thinking_pauses']}, cut-ins: {s['cut_ins']} (target 0); "
        f"backchannels while the interviewer spoke: {s['backchannels']}, "
        f"interviewer turns cut short: {s['interviewer_turns_interrupted']}"
    )
    before, after = s["load_average_1min"]
    print(
        f"  machine load (1-min average) before/after: {before}/{after} on {os.cpu_count()} cores"
    )


def _stt_lines(lang: str, r: dict[str, Any]) -> list[str]:
    before, after = r["load_average_1min"]
    unit = "character" if r["error_unit"] == "char" else "word"
    lines = [
        f"offline STT, {lang} ({r['model']}, language={r['language']}, {r['utterances']} "
        f"utterances, {r['audio_s']} s of speech; load {before}/{after} on {os.cpu_count()} cores)"
    ]
    for c in r["configs"]:
        lines.append(
            f"  window >= {c['min_window_s']:g} s, {c['cpu_threads']} thread(s): decode median "
            f"{_ms(c['decode_median_s'])}, p90 {_ms(c['decode_p90_s'])}; {unit} error rate "
            f"{c['error_rate']:.3f}; output/script length {c['length_ratio']:.2f}; repeated "
            f"word bigrams {c['repeated_bigrams']}; at the token cap {c['at_token_cap']}; "
            f"empty {c['empty']}"
        )
    return lines


def _tokens(text: str, unit: str) -> list[str]:
    words = re.sub(r"[^\w\s']", " ", text.lower()).split()
    return [ch for w in words for ch in w] if unit == "char" else words


def _edit_errors(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance between two token lists."""
    row = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        prev, row[0] = row[:], i
        for j in range(1, len(hyp) + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ref[i - 1] != hyp[j - 1]))
    return row[-1]


def _repeated_bigrams(text: str) -> int:
    """Word bigrams that occur again in the same transcript: a decode looping on a phrase."""
    words = _tokens(text, "word")
    pairs = list(itertools.pairwise(words))
    return len(pairs) - len(set(pairs))


def stt_bench(
    lang: str,
    answers_path: Path,
    *,
    model: str | None = None,
    windows: list[float] | None = None,
    threads: list[int] | None = None,
) -> dict[str, Any]:
    """Decode time, error rate and signs of looping of offline whisper on the answers' speech,
    for each encoder window and thread count. The settings take turns on every utterance (the
    order rotating), so load from other work on the machine falls on all of them alike."""
    from .providers import ProviderError, choose_providers, offline_stt_threads
    from .providers.stt import (
        MIN_WINDOW_S,
        WHISPER_SAMPLE_RATE,
        WhisperOptions,
        WhisperSTT,
    )
    from .providers.whisper_model import ModelUnavailableError, check_available
    from .rehearsal import _speech as speak  # the simulated candidate's voice

    if model is None:
        choice = choose_providers(lang, os.environ).stt
        if choice.provider != "whisper":
            raise SystemExit(
                f"--stt measures the offline whisper STT, but {choice.provider} is set"
            )
        model = choice.model
    if model.endswith(".en") and lang != "en":
        raise SystemExit(f"--model {model} is English-only; it cannot decode --lang {lang}")
    try:
        check_available(model)  # type: ignore[arg-type]
    except ModelUnavailableError as e:
        raise SystemExit(f"--model {model}: {e}") from None
    if windows is None:
        windows = sorted({MIN_WINDOW_S[model], 30.0})
    if threads is None:
        try:
            threads = [offline_stt_threads(os.environ)]
        except ProviderError as e:
            raise SystemExit(str(e)) from None
    settings = [(w, t) for t in threads for w in windows]
    whispers = [
        WhisperSTT(
            WhisperOptions(model=model, language=lang, cpu_threads=t, min_window_s=w)  # type: ignore[arg-type]
        )
        for w, t in settings
    ]
    pieces = [seg for a in load_answers(answers_path) for seg in a.segments]
    pad = np.zeros(int(0.3 * 16000), dtype=np.float32)  # the VAD's padding around speech
    audio = [np.concatenate([pad, speak(t, lang).astype(np.float32) / 32768, pad]) for t in pieces]
    for whisper in whispers:
        whisper.transcribe_sync(audio[0], lang)  # load and warm up
    # Korean: characters (espeak's Korean is hardly understood, so read this as a sanity check)
    unit = "word" if lang == "en" else "char"
    n = len(settings)
    times: list[list[float]] = [[] for _ in range(n)]
    hyps: list[list[str]] = [[] for _ in range(n)]
    capped = [0] * n
    for k, pcm in enumerate(audio):
        for i in [(k + j) % n for j in range(n)]:
            t0 = time.perf_counter()
            hyp = whispers[i].transcribe_sync(pcm, lang)
            times[i].append(time.perf_counter() - t0)
            hyps[i].append(hyp)
            capped[i] += whispers[i].token_count(hyp, lang) >= whispers[i].token_cap(
                pcm.size / WHISPER_SAMPLE_RATE
            )
    ref_len = sum(len(_tokens(t, unit)) for t in pieces)
    configs = []
    for i, (w, t) in enumerate(settings):
        errors = sum(
            _edit_errors(_tokens(r, unit), _tokens(h, unit))
            for r, h in zip(pieces, hyps[i], strict=True)
        )
        configs.append(
            {
                "min_window_s": w,
                "cpu_threads": t,
                "decode_median_s": round(float(np.median(times[i])), 3),
                "decode_p90_s": round(float(np.quantile(times[i], 0.9)), 3),
                "error_rate": round(errors / max(ref_len, 1), 3),
                "length_ratio": round(
                    sum(len(_tokens(h, unit)) for h in hyps[i]) / max(ref_len, 1), 2
                ),
                "repeated_bigrams": sum(_repeated_bigrams(h) for h in hyps[i]),
                "at_token_cap": capped[i],
                # speech whisper judged to be no speech (its no-speech filter): words lost
                "empty": sum(not h for h in hyps[i]),
                "transcripts": hyps[i],
            }
        )
    return {
        "model": model,
        "language": lang,
        "utterances": len(pieces),
        "audio_s": round(sum(a.size for a in audio) / 16000, 1),
        "error_unit": unit,
        "configs": configs,
    }


def _window(text: str) -> float:
    v = float(text)
    if not 0 <= v <= 30:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 30 seconds")
    return v


def _threads(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a thread count of 1 or more")
    return v


def _frame_ms(text: str) -> int:
    v = int(text)
    if not 10 <= v <= 100 or v % 10:
        raise argparse.ArgumentTypeError(f"{text} is not a frame size of 10-100 ms in 10 ms steps")
    return v


def _hold(text: str) -> HoldRule:
    if text == WINDOW:
        return WINDOW
    v = float(text)
    if not 0 < v <= 2:
        raise argparse.ArgumentTypeError(f"{text} is not a hold threshold of 0-2 s or 'window'")
    return v


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m agent bench", description=__doc__)
    p.add_argument("--lang", nargs="+", choices=["ko", "en"], default=["en", "ko"])
    p.add_argument(
        "--answers", type=Path, help="answers file (default examples/<lang>/bench_answers.txt)"
    )
    p.add_argument("--out", type=Path, help="keep the rehearsal outputs here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--stt", action="store_true", help="measure the offline STT alone")
    p.add_argument(
        "--model", choices=WHISPER_MODELS, help="--stt: whisper model (default: as configured)"
    )
    p.add_argument(
        "--window",
        type=_window,
        nargs="+",
        metavar="S",
        help="--stt: shortest encoder windows to compare, seconds (default: configured and 30)",
    )
    p.add_argument(
        "--threads",
        type=_threads,
        nargs="+",
        metavar="N",
        help="--stt: CTranslate2 thread counts to compare (default: INTERVIEW_STT_THREADS)",
    )
    p.add_argument(
        "--vad", action="store_true", help="measure how soon speech holds the interviewer"
    )
    p.add_argument(
        "--frame-ms",
        type=_frame_ms,
        nargs="+",
        default=[50, TurnTakingOptions().input_frame_ms],
        metavar="MS",
        help="--vad: input frame sizes to compare (default: livekit-agents' 50 and the session's)",
    )
    p.add_argument(
        "--hold",
        type=_hold,
        nargs="+",
        default=[0.1, TurnTakingOptions().min_interruption_duration, WINDOW],
        metavar="RULE",
        help="--vad: hold rules, seconds of speech or 'window' (the first window rated speech); "
        "default: 0.1, the session's threshold and window",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.vad:
        from . import vad_bench

        results = asyncio.run(vad_bench.measure(args.lang, args.frame_ms, args.hold))
        if args.json:
            print(json.dumps(vad_bench.summary(results)))
        else:
            print("\n".join(vad_bench.lines(results)))
        return 0
    if args.stt:
        for lang in args.lang:
            load_before = os.getloadavg()[0]
            r = stt_bench(
                lang,
                args.answers or EXAMPLES / lang / "bench_answers.txt",
                model=args.model,
                windows=args.window,
                threads=args.threads,
            )
            r["load_average_1min"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
            print(json.dumps({lang: r}) if args.json else "\n".join(_stt_lines(lang, r)))
        return 0

    results: dict[str, Any] = {}
    for lang in args.lang:
        config = parse_config((EXAMPLES / lang / "config.json").read_text(encoding="utf-8"))
        answers = load_answers(args.answers or EXAMPLES / lang / "bench_answers.txt")
        out = (args.out / lang) if args.out else Path(tempfile.mkdtemp(prefix=f"bench-{lang}-"))
        load_before = os.getloadavg()[0]
        result: RehearsalResult = asyncio.run(run_rehearsal(config, answers, out))
        s = result.summary()
        # other work on the machine slows whisper and the VAD; say how busy it was
        s["load_average_1min"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
        results[lang] = {**s, "out_dir": str(out)}
        if not args.json:
            _print(lang, s)
    if args.json:
        print(json.dumps({"targets": TARGETS, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
