"""`python -m agent bench`: voice-to-voice latency and turn-taking of the offline stack.

Runs real-time rehearsals (the real AgentSession, offline providers) with answers that contain
1.5-3 s thinking pauses and backchannels, and prints: voice-to-voice latency (candidate's true
end of speech -> first interviewer audio, median and p90), its breakdown from the session's
metrics (end-of-turn wait, STT, LLM first token, TTS first audio), and how many thinking pauses
made the interviewer cut in. Timings on a shared machine are noisy: read them as indications.

`--stt` measures the offline STT alone instead: every stretch of speech of the answers (espeak,
as the rehearsal speaks it) decoded by WhisperSTT as configured and with whisper's fixed 30 s
encoder window, with the decode time (median, p90) and the word error rate against the script.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .answers import load_answers
from .config import parse_config
from .rehearsal import RehearsalResult, run_rehearsal

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


def _stt_line(lang: str, r: dict[str, Any]) -> str:
    c, f = r["configured"], r["window_30s"]
    before, after = r["load_average_1min"]
    return (
        f"offline STT, {lang} ({r['model']}, {r['utterances']} utterances): decode median "
        f"{_ms(c['decode_median_s'])}, p90 {_ms(c['decode_p90_s'])}, word error rate "
        f"{c['word_error_rate']:.2f}; with whisper's 30 s window: median "
        f"{_ms(f['decode_median_s'])}, p90 {_ms(f['decode_p90_s'])}, word error rate "
        f"{f['word_error_rate']:.2f}; load {before}/{after} on {os.cpu_count()} cores"
    )


def _word_errors(ref: str, hyp: str) -> tuple[int, int]:
    """Word-level edit distance between the script and the transcript, and the script's words."""
    r, h = (re.sub(r"[^\w\s']", " ", t.lower()).split() for t in (ref, hyp))
    row = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, row[0] = row[:], i
        for j in range(1, len(h) + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (r[i - 1] != h[j - 1]))
    return row[-1], len(r)


def stt_bench(lang: str, answers_path: Path) -> dict[str, Any]:
    """Decode time and word error rate of the offline STT on the answers' speech."""
    from .providers import build_stt, choose_providers
    from .providers.stt import WhisperSTT
    from .rehearsal import _speech as speak  # the simulated candidate's voice

    choice = choose_providers(lang, os.environ).stt
    stt = build_stt(choice, lang, os.environ)
    if not isinstance(stt, WhisperSTT):
        raise SystemExit(f"--stt measures the offline whisper STT, but {choice.provider} is set")
    full = WhisperSTT(replace(stt.options, min_window_s=30.0))
    pieces = [seg for a in load_answers(answers_path) for seg in a.segments]
    pad = np.zeros(int(0.3 * 16000), dtype=np.float32)  # the VAD's padding around speech
    audio = [np.concatenate([pad, speak(t, lang).astype(np.float32) / 32768, pad]) for t in pieces]
    out: dict[str, Any] = {"model": stt.model, "utterances": len(pieces)}
    for name, whisper in (("configured", stt), ("window_30s", full)):
        whisper.transcribe_sync(audio[0], lang)  # load and warm up
        times, errors, words = [], 0, 0
        for text, pcm in zip(pieces, audio, strict=True):
            t0 = time.perf_counter()
            hyp = whisper.transcribe_sync(pcm, lang)
            times.append(time.perf_counter() - t0)
            e, n = _word_errors(text, hyp)
            errors, words = errors + e, words + n
        out[name] = {
            "decode_median_s": round(float(np.median(times)), 3),
            "decode_p90_s": round(float(np.quantile(times, 0.9)), 3),
            "word_error_rate": round(errors / max(words, 1), 3),
        }
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m agent bench", description=__doc__)
    p.add_argument("--lang", nargs="+", choices=["ko", "en"], default=["en", "ko"])
    p.add_argument(
        "--answers", type=Path, help="answers file (default examples/<lang>/bench_answers.txt)"
    )
    p.add_argument("--out", type=Path, help="keep the rehearsal outputs here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--stt", action="store_true", help="measure the offline STT alone")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.stt:
        for lang in args.lang:
            load_before = os.getloadavg()[0]
            r = stt_bench(lang, args.answers or EXAMPLES / lang / "bench_answers.txt")
            r["load_average_1min"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
            print(json.dumps({lang: r}) if args.json else _stt_line(lang, r))
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
