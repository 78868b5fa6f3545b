"""Command line of the interviewer: the LiveKit worker, rehearsal, report and benchmark.

  python -m agent dev|start|console ...       LiveKit Agents CLI for the "interviewer" worker
  python -m agent rehearse --config C.json --answers A.txt --out DIR [--text]
  python -m agent report TRANSCRIPT.json --out DIR
  python -m agent bench [--lang ko|en] [--runs N] [--json]
  python -m agent stack [--no-web]             devserver + avatar service + worker + web app

Bad input: exit status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

WORKER_COMMANDS = {"dev", "start", "console", "connect", "download-files"}


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("livekit", "livekit.agents", "faster_whisper", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not verbose else logging.DEBUG)


def _rehearse(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m agent rehearse", description="offline rehearsal")
    p.add_argument("--config", required=True, type=Path)
    p.add_argument("--answers", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--text", action="store_true", help="send answers as text instead of speech")
    p.add_argument("--video", action="store_true", help="also DIR/interview.mp4 (avatar video)")
    p.add_argument("--no-report", action="store_true", help="skip report.json/report.html")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    if args.video and args.text:
        return _fail("--video needs spoken answers: drop --text")
    from .answers import AnswersError, load_answers
    from .config import ConfigError, parse_config
    from .providers import ProviderError

    try:
        config = parse_config(args.config.read_text(encoding="utf-8"))
    except OSError as e:
        return _fail(f"cannot read config file {args.config}: {e.strerror}")
    except UnicodeDecodeError:
        return _fail(f"config file {args.config} is not UTF-8 text")
    except ConfigError as e:
        return _fail(f"{args.config}: {e}")
    try:
        answers = load_answers(args.answers)
    except AnswersError as e:
        return _fail(str(e))
    _setup_logging(args.verbose)
    from .rehearsal import run_rehearsal

    try:
        result = asyncio.run(run_rehearsal(config, answers, args.out, text=args.text))
    except ProviderError as e:
        return _fail(str(e))
    summary = result.summary()
    print(f"transcript: {args.out / 'transcript.json'} ({len(result.transcript.turns)} turns)")
    if not args.text:
        print(f"audio: {args.out / 'interviewer.wav'}, {args.out / 'conversation.wav'}")
        print(
            f"latency: voice-to-voice median {summary['voice_to_voice_median_s']} s, "
            f"p90 {summary['voice_to_voice_p90_s']} s over {summary['turns_measured']} turns; "
            f"cut-ins {summary['cut_ins']}"
        )
    if args.video:
        from avatar_worker.avatars import AvatarError

        from .rehearsal_video import render_interview_video

        try:
            print(f"video: {render_interview_video(args.out, config.avatar)}")
        except AvatarError as e:
            return _fail(f"video not written: {e}")
    if not result.finished:
        print("warning: the interview did not reach its closing", file=sys.stderr)
    if args.no_report:
        return 0 if result.finished else 1
    reused = result.assessments  # answers assessed during the interview
    return _write_report(result.transcript, args.out, reused) or (0 if result.finished else 1)


def _write_report(transcript: object, out_dir: Path, reuse: Sequence[object] = ()) -> int:
    try:
        from .evaluation import generate_report
        from .evaluation.cli import make_llm
    except ImportError as e:
        return _fail(f"report not written: the evaluation module is unavailable ({e})", 1)
    # the LLM judge when OPENAI_API_KEY is set, else the offline heuristic (same rule as `report`)
    generate_report(transcript, out_dir, llm=make_llm("auto"), reuse=reuse)  # type: ignore[arg-type]
    print(f"report: {out_dir / 'report.json'}, {out_dir / 'report.html'}")
    return 0


def _report(argv: list[str]) -> int:
    try:
        from .evaluation.cli import main as report_main
    except ImportError as e:
        return _fail(f"the evaluation module is unavailable ({e})", 1)
    return int(report_main(argv))


def _bench(argv: list[str]) -> int:
    from .bench import main as bench_main

    return bench_main(argv)


def _worker(argv: list[str]) -> int:
    from .worker import run_worker

    sys.argv = [sys.argv[0], *argv]
    run_worker()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    commands = "dev, start, console, rehearse, report, bench, stack"
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "rehearse":
        return _rehearse(rest)
    if cmd == "report":
        return _report(rest)
    if cmd == "bench":
        return _bench(rest)
    if cmd == "stack":
        from .stack import main as stack_main

        return stack_main(rest)
    if cmd in WORKER_COMMANDS:
        return _worker(argv)
    return _fail(f"unknown command '{cmd}' (expected one of: {commands})")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
