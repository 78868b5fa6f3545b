"""Keeps what the candidate and the interviewer say out of the logs.

livekit-agents and its plugins log the conversation at DEBUG in `extra` fields they mark as
personal with a `pii` segment in the name: `lk.pii.user_transcript` (each final transcript),
`lk.pii.text` (every chat item, the candidate's and the interviewer's), `lk.pii.input` (the
end-of-turn model's input), `lk.pii.interim_transcript`, ... Their log formatters (the worker's
JSON and console logs) print every extra field. Erasing an interview removes its transcript,
report, audio and stored turns, but not what went to stdout or a log collector, so these fields
must never leave the process: `RedactPersonal` replaces each with its length.

`keep_conversation_out_of_logs()` is the one place it is installed: on the loggers of livekit
and of this project, which covers records whatever handler takes them later, and on the root
logger's handlers (an interview process forwards its records to the worker through one), which
covers loggers created later. `create_interview` (session.py) calls it, so every interview,
worker job or rehearsal, runs with it.
"""

from __future__ import annotations

import logging

REDACTED = "<redacted>"
# loggers of the code that sees the conversation: livekit-agents, its plugins, this project
PREFIXES = ("livekit", "interview", "agent", "avatar_worker")


def is_personal(field: str) -> bool:
    """livekit's convention (livekit.agents.telemetry.pii): a `pii` segment in the name."""
    return "pii" in field.split(".")


class RedactPersonal(logging.Filter):
    """Replaces a record's personal `extra` fields with their size; passes every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for field in [name for name in record.__dict__ if is_personal(name)]:
            value = record.__dict__[field]
            record.__dict__[field] = (
                f"{REDACTED} {len(value)} chars" if isinstance(value, str) else REDACTED
            )
        return True


_FILTER = RedactPersonal()


def keep_conversation_out_of_logs() -> None:
    """Install the redaction (idempotent; cheap enough to call at every interview's start)."""
    logging.getLogger("livekit.agents")  # the one logger all of livekit-agents uses
    loggers = [
        logger
        for name, logger in list(logging.Logger.manager.loggerDict.items())
        if isinstance(logger, logging.Logger) and name.startswith(PREFIXES)
    ]
    for target in [*loggers, *logging.getLogger().handlers]:
        if _FILTER not in target.filters:
            target.addFilter(_FILTER)
