"""Interview evaluation: per-answer assessment, delivery metrics, report.json and report.html.

Interface used by the interviewer agent
---------------------------------------
* ``await generate_report_async(transcript, out_dir, *, llm=None, assessor=None) -> Report``
  (async; use it inside the agent's event loop). Writes ``out_dir/report.json`` (DESIGN.md
  contract, extended) and ``out_dir/report.html`` (self-contained page).
* ``generate_report(transcript, out_dir, *, llm=None, reuse=()) -> Report`` — the same,
  synchronous, for scripts; with ``llm`` it raises RuntimeError inside a running event loop.
  ``reuse`` (both forms): assessments made during the interview, kept where they match.
* ``cli.main(argv) -> int`` — ``python -m agent report TRANSCRIPT.json --out DIR
  [--assessor auto|heuristic|llm]``.

During a live interview (agent.session.create_interview does this for the worker and the
rehearsal)::

    live = LiveAssessment.start(config, interview_id, session, stage=lambda: state.stage)
    ...                                    # each finished answer is assessed in the background
    await live.write_report(transcript, out_dir)   # reuses them; falls back to assessing all
    await live.aclose()

By hand, the same with the assessor itself (never delays the conversation)::

    assessor = AnswerAssessor(config.language, llm=judge_llm_or_None,
                              interview_type=config.interview_type,
                              position=describe_position(config.model_dump()))
    assessor.attach(session, stage=lambda: state.stage)   # AgentSession; returns at once
    # (or, by hand, when a candidate answer is final: assessor.submit(question, answer))
    ...
    # at the end of the interview:
    report = await generate_report_async(transcript, out_dir, llm=judge_llm_or_None,
                                         assessor=assessor)

``generate_report_async`` awaits ``assessor.results()`` and reuses each assessment whose
(question, answer) text matches an exchange in the transcript (whitespace/case-insensitive);
answers the assessor did not see (or saw split differently) are assessed then. With ``llm``
the judge is ``"llm:<model>"``; without, the heuristic (``"heuristic"``). A judge reply that is
missing or invalid twice marks that answer ``"status": "failed"`` with no scores.

Transcript extras the evaluation reads when present: an interviewer turn's ``"stage"`` (the
plan's stage, for the question kind) and a candidate turn's ``"words"``: ``[{"text", "start",
"end"}, …]`` in interview seconds (word timings from the STT), which let pauses inside a segment
count for the articulation rate and long pauses.

Data files: prompts/rubrics/ (criteria.*.yaml scales and anchors, cues.*.yaml heuristic cues,
feedback.*.yaml wording and UI strings, judge.*.txt judge prompt, protected_mentions.yaml) and
prompts/fillers/{ko,en}.yaml.
"""

from .assessor import AnswerAssessor
from .judge import describe_position
from .live import LiveAssessment, judge_llm_from_env
from .models import AnswerAssessment, Report
from .report import generate_report, generate_report_async

__all__ = [
    "AnswerAssessment",
    "AnswerAssessor",
    "LiveAssessment",
    "Report",
    "describe_position",
    "generate_report",
    "generate_report_async",
    "judge_llm_from_env",
]
