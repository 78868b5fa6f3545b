"""What the candidate and the interviewer say stays out of the logs, even at DEBUG.

livekit-agents logs every final transcript and every chat item at DEBUG in `lk.pii.*` extra
fields, and the worker's log formatters print extra fields: a log collector kept the
candidate's words after the interview was erased. A rehearsal turn (the real AgentSession with
offline STT, a simulated candidate speaking) runs with every logger at DEBUG and livekit's JSON
log formatter, as the worker logs; none of the candidate's words, nor the candidate's name the
interviewer says, may reach the log, while the records that carried them still do.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import logging
import re
import time

import pytest
from livekit.agents.cli.log import JsonFormatter

from agent.answers import parse_answer
from agent.config import parse_config
from agent.log_redaction import REDACTED, RedactPersonal
from agent.rehearsal import RehearsalResult, _AudioRun
from agent.session import create_interview

ANSWERS = [
    "Yes, I am ready.",
    "I rebuilt the invoice pipeline with Kafka and Postgres, and it halved our nightly batch time.",
]


def test_personal_fields_are_replaced_by_their_size():
    record = logging.LogRecord("livekit.agents", logging.DEBUG, "f", 1, "item", (), None)
    record.__dict__.update({"lk.pii.text": "my address", "lk.pii.x": {"a": 1}, "role": "user"})
    assert RedactPersonal().filter(record)
    assert record.__dict__["lk.pii.text"] == f"{REDACTED} 10 chars"
    assert record.__dict__["lk.pii.x"] == REDACTED
    assert record.__dict__["role"] == "user"


@pytest.mark.integration
@pytest.mark.timeout(240)
async def test_a_rehearsal_turn_at_debug_logs_no_words_of_the_conversation(tmp_path):
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    handler.setFormatter(JsonFormatter())  # prints every extra field, as the worker's logs do
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", "livekit", "livekit.agents")}
    root.addHandler(handler)
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        transcript = await _one_answer(tmp_path)
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)

    candidate = " ".join(t.text for t in transcript.turns if t.speaker == "candidate")
    interviewer = " ".join(t.text for t in transcript.turns if t.speaker == "interviewer")
    # word pairs: a single word may be the log's own ("pipeline" in "reusing STT pipeline")
    pairs = _pairs(candidate) - _pairs(interviewer)
    assert len(pairs) >= 5, candidate  # the candidate was heard: there is something to leak
    text = log.getvalue()
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    # the records that carried the conversation are still logged, without it
    transcripts = [r for r in records if r["message"] == "received user transcript"]
    assert transcripts and all(
        r["lk.pii.user_transcript"].startswith(REDACTED) for r in transcripts
    )
    logged = " ".join(_words(text))
    leaked = sorted(p for p in pairs if f" {p} " in f" {logged} ")
    assert not leaked, leaked
    assert "Alex" not in text  # the candidate's name, in the interviewer's greeting


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _pairs(text: str) -> set[str]:
    words = _words(text)
    return {f"{a} {b}" for a, b in itertools.pairwise(words)}


async def _one_answer(tmp_path):
    """The greeting, the candidate's two answers and the interviewer's replies; then stop."""
    config = parse_config(
        json.dumps(
            {
                "candidate_name": "Alex Kim",
                "role": "Backend engineer",
                "language": "en",
                "duration_minutes": 5,
                "interview_type": "technical",
            }
        )
    )
    iv = create_interview(config, log_extra={"room": "rehearsal"})
    run = _AudioRun(
        iv, [parse_answer(a) for a in ANSWERS], RehearsalResult(iv.transcript(), tmp_path)
    )
    iv.session.input.audio = run.mic
    iv.session.output.audio = run.spk
    await iv.session.start(iv.first_agent(), record=False)
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        spoke = [m["speaker"] for m in iv.turn_metrics]
        if spoke.count("candidate") >= 2 and spoke.count("interviewer") >= 3:
            break
    run.done.set()
    run.mic.close()
    await iv.session.aclose()
    return iv.finish()
