"""`python -m web.prompt_check`: build the interview plans from INTERVIEW_PROMPTS_DIR; one JSON
line on stdout, `{"ok": true}` or `{"error": "<one sentence>"}`.

Run by prompts_admin.check_plan on a copy of prompts/ holding an admin's edit, in a child
process: agent/prompts.py reads its folder once and caches what it loaded, so the API's own
process keeps the prompts it has. Every language, interview type and persona is built, with a
resume and a job description (their hints are templates too), and every line, directive and
the notices the API sends (interview_watch.py) are filled in.
"""

from __future__ import annotations

import json
import sys
from typing import Any, get_args


def _why(e: BaseException) -> str:
    if isinstance(e, KeyError):
        return f"the key or placeholder {e.args[0]!r} is missing"
    if isinstance(e, IndexError):
        return "a list it needs is empty, or a {} placeholder has no value"
    return " ".join(f"{type(e).__name__}: {e}".split())[:200]


def check() -> str | None:
    from agent.config import InterviewConfig, InterviewType, Language, Persona
    from agent.plan import build_plan
    from agent.prompts import interviewer_prompts, protected_topic

    from .interview_watch import NOTICE_LINES

    protected_topic("")  # compiles the protected topics' patterns
    for language in get_args(Language):
        lines = interviewer_prompts(language).get("lines") or {}
        for notice in NOTICE_LINES.values():
            if not isinstance(lines.get(notice), str):
                return f"{language}/interviewer.yaml needs the text 'lines.{notice}'"
        for kind in get_args(InterviewType):
            for persona in get_args(Persona):
                for extra in ({}, {"resume_text": "Kafka, Python", "job_description": "Go, SQL"}):
                    config = InterviewConfig(
                        candidate_name="Kim",
                        role="Backend developer",
                        language=language,
                        interview_type=kind,
                        persona=persona,
                        **extra,  # type: ignore[arg-type]
                    )
                    try:
                        plan = build_plan(config)
                        _fill_all(plan)
                    except Exception as e:  # any failure is the edit's
                        return f"the {language} {kind} interview plan does not build ({_why(e)})"
    return None


def _fill_all(plan: Any) -> None:
    """Every line and directive, formatted as the interviewer would (extra placeholders that
    the code passes at the call are filled with a sample)."""
    import string

    for section in ("lines", "directives"):
        for key, template in (plan.prompts.get(section) or {}).items():
            if not isinstance(template, str):
                continue
            names = {f for _, f, _, _ in string.Formatter().parse(template) if f}
            sample = {n: "x" for n in names if n not in ("candidate_name", "role", "question")}
            if section == "lines":
                plan.line(key, **sample)
            else:
                template.format(question="x", **sample)


def main() -> int:
    try:
        error = check()
    except Exception as e:  # a file the loaders refuse
        error = _why(e)
    sys.stdout.write(json.dumps({"error": error} if error else {"ok": True}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
