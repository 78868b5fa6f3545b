"""Transcript store: every turn is written to SQLite the moment it happens.

A crash mid-interview loses nothing already said; `transcript()` rebuilds the transcript.json
contract (agent.transcript.Transcript) from the database at any time. The database lives at
INTERVIEW_DB_PATH, default INTERVIEW_DATA_DIR/interviews.sqlite3.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from .config import InterviewConfig
from .transcript import Speaker, Transcript, Turn

_SCHEMA = """
CREATE TABLE IF NOT EXISTS interviews (
    id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT
);
CREATE TABLE IF NOT EXISTS turns (
    interview_id TEXT NOT NULL REFERENCES interviews(id),
    seq INTEGER NOT NULL,
    speaker TEXT NOT NULL,
    text TEXT NOT NULL,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    interrupted INTEGER NOT NULL DEFAULT 0,
    extra TEXT,
    PRIMARY KEY (interview_id, seq)
);
"""


def data_dir() -> Path:
    return Path(os.environ.get("INTERVIEW_DATA_DIR") or "./data")


def default_db_path() -> Path:
    return Path(os.environ.get("INTERVIEW_DB_PATH") or data_dir() / "interviews.sqlite3")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class TranscriptStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def begin(self, interview_id: str, config: InterviewConfig) -> str:
        started = _now_iso()
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO interviews (id, config, started_at) VALUES (?, ?, ?)",
                (interview_id, config.to_json(), started),
            )
        return started

    def add_turn(
        self,
        interview_id: str,
        speaker: Speaker,
        text: str,
        start: float,
        end: float,
        *,
        interrupted: bool = False,
        extra: dict[str, object] | None = None,
    ) -> None:
        with self._lock:
            (seq,) = self._db.execute(
                "SELECT COALESCE(MAX(seq), -1) + 1 FROM turns WHERE interview_id = ?",
                (interview_id,),
            ).fetchone()
            self._db.execute(
                'INSERT INTO turns (interview_id, seq, speaker, text, start, "end", interrupted,'
                " extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    interview_id,
                    seq,
                    speaker,
                    text,
                    max(0.0, start),
                    max(0.0, end, start),
                    int(interrupted),
                    json.dumps(extra, ensure_ascii=False) if extra else None,
                ),
            )

    def finish(self, interview_id: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE interviews SET ended_at = ? WHERE id = ?", (_now_iso(), interview_id)
            )

    def transcript(self, interview_id: str) -> Transcript:
        with self._lock:
            row = self._db.execute(
                "SELECT config, started_at, ended_at FROM interviews WHERE id = ?", (interview_id,)
            ).fetchone()
            if row is None:
                raise KeyError(interview_id)
            turns = self._db.execute(
                'SELECT speaker, text, start, "end", interrupted, extra FROM turns'
                " WHERE interview_id = ? ORDER BY seq",
                (interview_id,),
            ).fetchall()
        return Transcript(
            interview_id=interview_id,
            config=json.loads(row[0]),
            started_at=row[1],
            ended_at=row[2],
            turns=[
                Turn(
                    speaker=s,
                    text=t,
                    start=round(a, 3),
                    end=round(b, 3),
                    interrupted=bool(i),
                    **(json.loads(x) if x else {}),
                )
                for s, t, a, b, i, x in turns
            ],
        )
