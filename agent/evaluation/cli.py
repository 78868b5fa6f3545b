"""`python -m agent report TRANSCRIPT.json --out DIR`: report.json + report.html from a transcript.

The assessor is the LLM judge when an OpenAI-compatible LLM is configured (OPENAI_API_KEY, with
OPENAI_BASE_URL and INTERVIEW_LLM_MODEL), otherwise the offline heuristic; `--assessor` forces
one. Bad input: exit status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import NoReturn

from livekit.agents import llm as lk_llm

from agent.transcript import TranscriptError, load_transcript

from .live import judge_llm_from_env
from .report import REPORT_HTML, REPORT_JSON, generate_report_async
from .resources import ResourceError


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m agent report", description=__doc__.splitlines()[0])
    p.add_argument("transcript", type=Path, help="transcript.json of one interview")
    p.add_argument("--out", type=Path, required=True, help="directory for report.json/html")
    p.add_argument(
        "--assessor",
        choices=("auto", "heuristic", "llm"),
        default="auto",
        help="auto: the LLM judge if OPENAI_API_KEY is set, else the heuristic",
    )
    return p


def make_llm(choice: str) -> lk_llm.LLM | None:
    """The judge LLM for the CLI, from the same environment variables as the interviewer."""
    if choice == "heuristic":
        return None
    llm = judge_llm_from_env()
    if llm is None and choice == "llm":
        raise _UsageError("--assessor llm needs OPENAI_API_KEY (and optionally OPENAI_BASE_URL)")
    return llm


async def _run(args: argparse.Namespace) -> None:
    transcript = load_transcript(args.transcript)
    llm = make_llm(args.assessor)
    try:
        report = await generate_report_async(transcript, args.out, llm=llm)
    finally:
        if llm is not None:
            await llm.aclose()
    score = "–" if report.overall.score is None else f"{report.overall.score:.1f}"
    print(
        f"{args.out / REPORT_JSON} and {args.out / REPORT_HTML} written "
        f"({len(report.questions)} answers, overall {score}/5, assessor {report.assessor})"
    )


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
        asyncio.run(_run(args))
    except _UsageError as e:
        print(f"report: {e}", file=sys.stderr)
        return 2
    except (TranscriptError, ResourceError) as e:
        print(f"report: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"report: cannot write the report to {args.out}: {e.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
