"""`python -m agent bench`: voice-to-voice latency and turn-taking of the offline stack.

Runs real-time rehearsals (the real AgentSession, offline providers) with answers that contain
1.5-3 s thinking pauses and backchannels, and prints: voice-to-voice latency (candidate's true
end of speech -> first interviewer audio, median and p90), its breakdown from the session's
metrics (end-of-turn wait, STT, LLM first token, TTS first audio), and how many thinking pauses
made the interviewer cut in. Timings on a shared machine are noisy: read them as indications.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

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


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m agent bench", description=__doc__)
    p.add_argument("--lang", nargs="+", choices=["ko", "en"], default=["en", "ko"])
    p.add_argument(
        "--answers", type=Path, help="answers file (default examples/<lang>/bench_answers.txt)"
    )
    p.add_argument("--out", type=Path, help="keep the rehearsal outputs here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

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
