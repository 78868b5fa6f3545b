"""What the API says about an interview's interviewer: the status fields `interviewer` and
`end_reason`, and the API's own record of what its watch decided (web/interview_watch.py).

`WatchOptions` are the watch's timings (WebSettings.watch). The record is a table of the API's
registry database (INTERVIEW_DATA_DIR/web_sessions.sqlite3), `interviewer_watch`: one row per
session the watch ended (no interviewer took the booking, or it was lost) or the candidate
ended, with the reason and whether the candidate was told. It holds no candidate data, so an
erase keeps it. Everything else comes from the agent's store: whether the interviewer began,
its end and why (agent/ending.py has the reasons).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from agent.ending import ENDED_BY_REQUEST, INTERVIEWER_LOST
from agent.env import whole_number

from .models import InterviewerState

_SCHEMA = """
CREATE TABLE IF NOT EXISTS interviewer_watch (
    session_id TEXT PRIMARY KEY,
    interviewer TEXT,
    end_reason TEXT,
    decided_at TEXT NOT NULL,
    notified_at TEXT
);
"""

NONE_AVAILABLE: InterviewerState = "none_available"
LOST: InterviewerState = "lost"


@dataclass(frozen=True)
class WatchOptions:
    interval_s: float = 2.0
    # booked this long ago with no job for it: no worker took it. livekit-server gives up on an
    # offer no worker answered within 3 s and never asks another, but lists a job it did assign
    # only ~5 s later (measured, v1.13.5): 15 s leaves a loaded host room for both
    dispatch_timeout_s: float = 15.0
    # a worker took the job but no interviewer began this long after booking: a job process
    # that starts cold loads its models first (agent/worker.py allows it 60 s)
    start_timeout_s: float = 75.0
    # the job beats every 2 s (agent/ending.py): three missed beats mean it is gone
    heartbeat_timeout_s: float = 6.0
    notice_delay_s: float = 1.0  # the notice leaves before the room closes
    horizon_s: float = 3 * 3600.0  # the longest interview (90 min) and its waits, with room
    max_sessions: int = 200
    concurrency: int = 8  # LiveKit calls at once

    @classmethod
    def from_env(cls, env: Mapping[str, str], error: type[Exception]) -> WatchOptions:
        return cls(
            dispatch_timeout_s=float(
                whole_number(env, "INTERVIEW_DISPATCH_TIMEOUT_S", 15, 3, 600, error)
            ),
            heartbeat_timeout_s=float(
                whole_number(env, "INTERVIEW_HEARTBEAT_TIMEOUT_S", 6, 3, 600, error)
            ),
        )


@dataclass(frozen=True)
class WatchRecord:
    interviewer: InterviewerState | None
    end_reason: str | None
    notified: bool


@dataclass(frozen=True)
class OpenSession:
    """A session the registry has not seen end: what the watcher needs of it."""

    id: str
    identity: str  # the candidate's
    language: str
    created_at: datetime


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class InterviewerLog:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def get(self, session_id: str) -> WatchRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT interviewer, end_reason, notified_at FROM interviewer_watch"
                " WHERE session_id = ?",
                (session_id,),
            ).fetchone()
        return WatchRecord(row[0], row[1], row[2] is not None) if row else None

    def record(
        self, session_id: str, interviewer: InterviewerState | None, end_reason: str
    ) -> None:
        """The watcher's verdict (or the candidate's end); the first one stays."""
        with self._lock:
            self._db.execute(
                "INSERT INTO interviewer_watch (session_id, interviewer, end_reason, decided_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET"
                " interviewer = COALESCE(interviewer, excluded.interviewer),"
                " end_reason = COALESCE(end_reason, excluded.end_reason)",
                (session_id, interviewer, end_reason, _now_iso()),
            )

    def first_notice(self, session_id: str) -> bool:
        """True once per session: the candidate is told only once."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO interviewer_watch (session_id, decided_at) VALUES (?, ?)",
                (session_id, _now_iso()),
            )
            cur = self._db.execute(
                "UPDATE interviewer_watch SET notified_at = ? WHERE session_id = ?"
                " AND notified_at IS NULL",
                (_now_iso(), session_id),
            )
        return cur.rowcount > 0

    def open_sessions(self, since: datetime, limit: int) -> list[OpenSession]:
        """The registry's sessions (web/sessions.py, table `sessions`) created after `since` and
        neither ended nor erased, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, identity, language, created_at FROM sessions"
                " WHERE ended_at IS NULL AND erased_at IS NULL AND created_at > ?"
                " ORDER BY created_at DESC LIMIT ?",
                (since.astimezone(UTC).isoformat(timespec="milliseconds"), limit),
            ).fetchall()
        return [OpenSession(i, who, lang, datetime.fromisoformat(t)) for i, who, lang, t in rows]


def describe(
    *,
    ended: bool,
    agent_began: bool,
    agent_end_reason: str | None,
    watch: WatchRecord | None,
) -> tuple[InterviewerState, str | None]:
    """The status fields `interviewer` and `end_reason`."""
    if watch is not None and watch.interviewer in (NONE_AVAILABLE, LOST):
        return watch.interviewer, watch.end_reason
    # the candidate's end request outranks the job's account (its room was removed under it)
    reason = (watch.end_reason if watch else None) or agent_end_reason
    if agent_end_reason == INTERVIEWER_LOST and reason != ENDED_BY_REQUEST:
        return LOST, INTERVIEWER_LOST
    if ended:
        return "finished", reason
    if agent_began:
        return "in_room", None
    return "pending", None
