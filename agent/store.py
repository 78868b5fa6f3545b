"""Transcript store: every turn is written to SQLite the moment it happens.

A crash mid-interview loses nothing already said; `transcript()` rebuilds the transcript.json
contract (agent.transcript.Transcript) from the database at any time. The database lives at
INTERVIEW_DB_PATH, default INTERVIEW_DATA_DIR/interviews.sqlite3.

It is also where the interview's job and the web API meet when the job ends early:
- the job beats (`beat`, column `alive_at`, seconds since the epoch) every few seconds while
  the interview runs, so the API sees a killed job within seconds (web/interview_watch.py);
- the files made from the transcript (transcript.json, report) are written once, by whoever
  claims them first (`claim`: the job's shutdown callback, or the API for a job that died),
  into a staging directory, then moved into INTERVIEW_DATA_DIR/interviews/<id>/ by `publish`;
- `erase_interview` removes the rows and the files. Publishing and erasing both hold the
  database's write lock while they touch the files, so an erase racing a report writer never
  leaves a file behind: the writer publishes only while the interview's row is there.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import threading
import time
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
# columns added after the first release, for databases created before them: (column, declaration)
_ADDED_COLUMNS = (
    ("alive_at", "REAL"),  # the job's last heartbeat (unix seconds); NULL: no heartbeat yet
    ("end_reason", "TEXT"),  # why the interview ended (web/interviewer_state.py lists them)
    ("finalized_by", "TEXT"),  # who writes transcript.json and the report: "agent" or "api"
    ("finalized_at", "TEXT"),  # when the report was published
)
STAGING_PREFIX = ".staging-"  # INTERVIEW_DATA_DIR/interviews/.staging-<id>-<random>/


def data_dir() -> Path:
    return Path(os.environ.get("INTERVIEW_DATA_DIR") or "./data")


def default_db_path() -> Path:
    return Path(os.environ.get("INTERVIEW_DB_PATH") or data_dir() / "interviews.sqlite3")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def migrate(db: sqlite3.Connection) -> None:
    """Create the tables and add the columns a database made by an older release lacks. The
    job and the API may both do it at once: a column the other just added is not an error."""
    db.executescript(_SCHEMA)
    have = {row[1] for row in db.execute("PRAGMA table_info(interviews)")}
    for column, declaration in _ADDED_COLUMNS:
        if column in have:
            continue
        try:
            db.execute(f"ALTER TABLE interviews ADD COLUMN {column} {declaration}")
        except sqlite3.OperationalError as e:
            if "duplicate column" not in str(e):
                raise


def staging_dir(out_dir: Path) -> Path:
    """A fresh directory beside `out_dir` where a writer prepares files before `publish`."""
    path = out_dir.parent / f"{STAGING_PREFIX}{out_dir.name}-{secrets.token_hex(4)}"
    path.mkdir(parents=True)
    return path


def _staging_dirs(out_dir: Path) -> list[Path]:
    if not out_dir.parent.is_dir():
        return []
    return sorted(out_dir.parent.glob(f"{STAGING_PREFIX}{out_dir.name}-*"))


class TranscriptStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        migrate(self._db)

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
            # only while the interview's row is there: after an erase, a job still running
            # (one the API took for dead) stores nothing more
            self._db.execute(
                'INSERT INTO turns (interview_id, seq, speaker, text, start, "end", interrupted,'
                " extra) SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS"
                " (SELECT 1 FROM interviews WHERE id = ?)",
                (
                    interview_id,
                    seq,
                    speaker,
                    text,
                    max(0.0, start),
                    max(0.0, end, start),
                    int(interrupted),
                    json.dumps(extra, ensure_ascii=False) if extra else None,
                    interview_id,
                ),
            )

    def finish(self, interview_id: str, reason: str | None = None) -> None:
        """Mark the end (the first end and its reason stay)."""
        with self._lock:
            self._db.execute(
                "UPDATE interviews SET ended_at = COALESCE(ended_at, ?),"
                " end_reason = COALESCE(end_reason, ?) WHERE id = ?",
                (_now_iso(), reason, interview_id),
            )

    def beat(self, interview_id: str, at: float | None = None) -> bool:
        """The job's heartbeat; False when the interview's row is gone (erased)."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE interviews SET alive_at = ? WHERE id = ?",
                (time.time() if at is None else at, interview_id),
            )
        return cur.rowcount > 0

    def claim(
        self,
        interview_id: str,
        by: str,
        *,
        reason: str | None = None,
        dead_before: float | None = None,
    ) -> bool:
        """Become the one writer of the interview's transcript.json and report, and mark its
        end (with `reason`, unless one is set). True for the first claimant only; with
        `dead_before` (unix seconds), also over a claimant that never published and whose job's
        last heartbeat is older than that (it died while writing), and again by the same
        claimant when its own writing failed."""
        take_over = (
            " OR (finalized_at IS NULL AND (finalized_by = ?"
            " OR (alive_at IS NOT NULL AND alive_at < ?)))"
            if dead_before is not None
            else ""
        )
        args: tuple[object, ...] = (by, _now_iso(), reason, interview_id)
        if dead_before is not None:
            args += (by, dead_before)
        with self._lock:
            cur = self._db.execute(
                "UPDATE interviews SET finalized_by = ?, ended_at = COALESCE(ended_at, ?),"
                " end_reason = COALESCE(end_reason, ?)"
                f" WHERE id = ? AND (finalized_by IS NULL{take_over})",
                args,
            )
        return cur.rowcount > 0

    def publish(
        self, interview_id: str, by: str, staging: Path, out_dir: Path, *, final: bool
    ) -> bool:
        """Move the files prepared in `staging` into `out_dir` if `by` still holds the claim
        and the interview was not erased meanwhile; else drop them. `final`: the report is
        complete. The staging directory is removed either way."""
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")  # erase_interview waits, and vice versa
                try:
                    row = self._db.execute(
                        "SELECT finalized_by FROM interviews WHERE id = ?", (interview_id,)
                    ).fetchone()
                    if row is None or row[0] != by:
                        return False
                    out_dir.mkdir(parents=True, exist_ok=True)
                    for path in sorted(staging.iterdir()) if staging.is_dir() else []:
                        if path.is_file() and not path.name.endswith(".tmp"):
                            os.replace(path, out_dir / path.name)
                    if final:
                        self._db.execute(
                            "UPDATE interviews SET finalized_at = ? WHERE id = ?",
                            (_now_iso(), interview_id),
                        )
                finally:
                    self._db.execute("COMMIT")
            return True
        finally:
            shutil.rmtree(staging, ignore_errors=True)

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


def erase_interview(db_path: Path, interview_id: str, out_dir: Path) -> list[str]:
    """Remove everything recorded about one interview: its files (and any that a writer is still
    preparing), its turns and its row; return what was there.

    The files are removed while the database's write lock is held, as `publish` moves them: a
    writer racing the erase either published before (its files are removed here) or finds the
    row gone after and drops its files, so nothing appears after the erase."""
    erased: list[str] = []
    if not db_path.is_file():
        return _remove_files(out_dir)
    db = sqlite3.connect(db_path, isolation_level=None, timeout=10)
    try:
        # deleted text is overwritten, not left in free pages or the write-ahead log
        db.execute("PRAGMA secure_delete=ON")
        db.execute("BEGIN IMMEDIATE")
        try:
            erased += _remove_files(out_dir)
            try:
                turns = db.execute(
                    "DELETE FROM turns WHERE interview_id = ?", (interview_id,)
                ).rowcount
                rows = db.execute("DELETE FROM interviews WHERE id = ?", (interview_id,)).rowcount
            except sqlite3.OperationalError as e:
                if "no such table" not in str(e):
                    raise
                turns = rows = 0
        finally:
            db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    if turns:
        erased.append(f"{turns} stored turns")
    if rows:
        erased.append("interview record")
    return erased


def _remove_files(out_dir: Path) -> list[str]:
    removed: list[str] = []
    if out_dir.is_dir():
        removed += sorted(p.name for p in out_dir.rglob("*") if p.is_file())
        shutil.rmtree(out_dir)
    for staging in _staging_dirs(out_dir):  # a writer's files not yet published
        shutil.rmtree(staging, ignore_errors=True)
    return removed
