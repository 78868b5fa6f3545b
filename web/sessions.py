"""Sessions the API created, and what the interviewer agent recorded about them.

The API keeps its own small registry (INTERVIEW_DATA_DIR/web_sessions.sqlite3: when a session was
created, until when its room waits for the candidate, its planned length, whether it was ended
or erased, and a SHA-256 hash of its key, never the key). Everything about the interview itself
comes from the agent's transcript store (agent/store.py, the `interviews` and `turns` tables of
INTERVIEW_DATA_DIR/interviews.sqlite3) and the files it writes under
INTERVIEW_DATA_DIR/interviews/<id>/ (transcript.json, report.json, report.html, audio), which is
also exactly what erasing removes.
"""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from agent.config import InterviewConfig
from agent.store import erase_interview

from .interviewer import InterviewerLog, describe
from .models import SessionState, SessionStatus
from .portraits import PortraitStore

SESSION_ID_RE = re.compile(r"^iv-[0-9a-f]{12}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    language TEXT NOT NULL,
    planned_s INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    ended_at TEXT,
    erased_at TEXT,
    key_hash TEXT,
    avatar TEXT
);
"""
# columns added after a release, for registries created before them: (column, declaration)
_ADDED_COLUMNS = (
    # SHA-256 of the session's key (auth.py); NULL for sessions booked before keys: those open
    # with the admin token only
    ("key_hash", "TEXT"),
    # the booking's avatar: an uploaded portrait is kept while a booking that is not erased
    # uses it, and opens to that booking's key (portraits.py)
    ("avatar", "TEXT"),
)


def now_utc() -> datetime:
    return datetime.now(UTC)


def iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds")


def new_session_id() -> str:
    return "iv-" + secrets.token_hex(6)


@dataclass(frozen=True)
class SessionRecord:
    id: str
    identity: str
    language: str
    planned_s: int
    created_at: str
    expires_at: str
    ended_at: str | None
    erased_at: str | None
    key_hash: str | None = None
    avatar: str | None = None


@dataclass(frozen=True)
class AgentRecord:
    """What the agent's store holds for one interview (None when the agent never began)."""

    started_at: str
    ended_at: str | None
    turns: int
    candidate_turns: int
    end_reason: str | None = None  # agent/ending.py


class SessionRegistry:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            data_dir / "web_sessions.sqlite3", check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        have = {row[1] for row in self._db.execute("PRAGMA table_info(sessions)")}
        for column, declaration in _ADDED_COLUMNS:
            if column not in have:
                self._db.execute(f"ALTER TABLE sessions ADD COLUMN {column} {declaration}")
        self._db.execute("CREATE INDEX IF NOT EXISTS sessions_avatar ON sessions(avatar)")
        # what the API's interview watch decided (web/interview_watch.py), in the same database
        self.interviewer_log = InterviewerLog(data_dir / "web_sessions.sqlite3")
        # uploaded portraits and their keys, in this connection (portraits.py)
        self.portraits = PortraitStore(self._db, self._lock, data_dir / "avatars")

    def close(self) -> None:
        self.interviewer_log.close()
        with self._lock:
            self._db.close()

    # -- the API's own records ------------------------------------------------------------------

    def add(
        self,
        session_id: str,
        identity: str,
        config: InterviewConfig,
        expires_at: datetime,
        key_hash: str | None = None,
    ) -> SessionRecord:
        record = SessionRecord(
            id=session_id,
            identity=identity,
            language=config.language,
            planned_s=config.duration_minutes * 60,
            created_at=iso(now_utc()),
            expires_at=iso(expires_at),
            ended_at=None,
            erased_at=None,
            key_hash=key_hash,
            avatar=config.avatar,
        )
        with self._lock:
            self._db.execute(
                "INSERT INTO sessions (id, identity, language, planned_s, created_at, expires_at,"
                " key_hash, avatar) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.identity,
                    record.language,
                    record.planned_s,
                    record.created_at,
                    record.expires_at,
                    record.key_hash,
                    record.avatar,
                ),
            )
        return record

    def get(self, session_id: str) -> SessionRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, identity, language, planned_s, created_at, expires_at, ended_at,"
                " erased_at, key_hash, avatar FROM sessions WHERE id = ?",
                (session_id,),
            ).fetchone()
        return SessionRecord(*row) if row else None

    def mark_ended(self, session_id: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE sessions SET ended_at = COALESCE(ended_at, ?) WHERE id = ?",
                (iso(now_utc()), session_id),
            )

    def mark_erased(self, session_id: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE sessions SET erased_at = ?, ended_at = COALESCE(ended_at, ?) WHERE id = ?",
                (iso(now_utc()), iso(now_utc()), session_id),
            )

    # -- what the agent recorded ----------------------------------------------------------------

    def interview_dir(self, session_id: str) -> Path:
        return self.data_dir / "interviews" / session_id

    def _agent_db(self) -> Path:
        # the same rule as agent.store.default_db_path, for this registry's data directory
        return Path(os.environ.get("INTERVIEW_DB_PATH") or self.data_dir / "interviews.sqlite3")

    def agent_record(self, session_id: str) -> AgentRecord | None:
        path = self._agent_db()
        if not path.is_file():
            return None
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = db.execute(
                "SELECT started_at, ended_at, end_reason FROM interviews WHERE id = ?",
                (session_id,),
            ).fetchone()
            if row is None:
                return None
            total, cand = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(speaker = 'candidate'), 0) FROM turns"
                " WHERE interview_id = ?",
                (session_id,),
            ).fetchone()
        except sqlite3.OperationalError:  # the agent has not created its tables yet
            return None
        finally:
            db.close()
        return AgentRecord(row[0], row[1], int(total), int(cand), row[2])

    def erase(self, session_id: str) -> list[str]:
        """Remove everything recorded about one interview, and its uploaded portrait when no
        other booking uses it; return what was there. Final even while a report is being
        written: agent/store.py erase_interview."""
        erased = erase_interview(self._agent_db(), session_id, self.interview_dir(session_id))
        self.mark_erased(session_id)
        # its uploaded portrait goes too, unless another booking not erased still uses it
        record = self.get(session_id)
        if record and self.portraits.release(record.avatar):
            erased.append("portrait")
        return erased

    # -- status ---------------------------------------------------------------------------------

    def status(self, record: SessionRecord) -> SessionStatus:
        agent = None if record.erased_at else self.agent_record(record.id)
        report_ready = (self.interview_dir(record.id) / "report.json").is_file()
        ended_at = (agent.ended_at if agent else None) or record.ended_at
        state: SessionState
        if record.erased_at:
            state = "erased"
        elif ended_at:
            state = "ended"
        elif agent:
            state = "in_progress"
        elif now_utc() > datetime.fromisoformat(record.expires_at):
            state = "expired"
        else:
            state = "waiting"
        interviewer, end_reason = describe(
            ended=bool(ended_at or record.erased_at),
            agent_began=agent is not None,
            agent_end_reason=agent.end_reason if agent else None,
            watch=self.interviewer_log.get(record.id),
        )
        duration = None
        if agent:
            start = datetime.fromisoformat(agent.started_at)
            end = datetime.fromisoformat(ended_at) if ended_at else now_utc()
            duration = round(max(0.0, (end - start).total_seconds()), 1)
        return SessionStatus(
            session_id=record.id,
            status=state,
            created_at=record.created_at,
            started_at=agent.started_at if agent else None,
            ended_at=ended_at,
            duration_s=duration,
            planned_duration_s=record.planned_s,
            turn_count=agent.turns if agent else 0,
            candidate_turns=agent.candidate_turns if agent else 0,
            language=record.language,  # type: ignore[arg-type]
            report_ready=report_ready,
            interviewer=interviewer,
            end_reason=end_reason,
        )
