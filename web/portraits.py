"""Uploaded portraits belong to their uploader: who may use one, and when it is deleted.

`POST /api/avatars` answers with an upload key (random, 256 bits; only its SHA-256 is kept, in
the `portraits` table of the API's registry database). The portrait's image is served, and an
interview booked with it, only to a holder of that key, of the key of a booking that uses it,
or of the operator's admin token. It is deleted (row and INTERVIEW_DATA_DIR/avatars/<id>/)
when the last booking that used it is erased, and by `sweep` once it is older than the
operator's retention time (INTERVIEW_PORTRAIT_RETENTION_S), unless an interview booked with it
is still running. Each sweep deletes at most `SWEEP_BATCH` portraits.

Directories of uploads from before keys (named like an upload, `p-` and 12 hex digits, without
a row) are adopted at start with no key (the admin token only) and their directory's time, so
the retention applies to them too. Other directories under avatars/ are the operator's own
avatars (`python -m avatar_worker prepare`): anyone may book them, and their image is served
to the holders of such a booking.
"""

from __future__ import annotations

import hmac
import logging
import re
import shutil
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .auth import key_hash

logger = logging.getLogger("web.portraits")

UPLOAD_ID_RE = re.compile(r"^p-[0-9a-f]{12}$")
SWEEP_BATCH = 100
# a booking this recent and not ended may still be running: its portrait is kept
RUNNING_HORIZON = timedelta(hours=3)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS portraits (
    id TEXT PRIMARY KEY,
    key_hash TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS portraits_created ON portraits(created_at);
"""


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds")


class PortraitStore:
    """The `portraits` table, beside the registry's `sessions` (which has each booking's
    avatar): one connection and lock, shared with the registry, so an erase and a booking
    that race each see the other."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock, avatars_dir: Path) -> None:
        self._db = db
        self._lock = lock
        self.avatars_dir = avatars_dir
        with self._lock:
            self._db.executescript(_SCHEMA)

    def adopt_legacy(self) -> int:
        """Rows for upload directories made before keys (no key: admin only); their age is the
        directory's. Run once at start (in a thread: it lists the directory)."""
        if not self.avatars_dir.is_dir():
            return 0
        adopted = 0
        for entry in self.avatars_dir.iterdir():
            if not UPLOAD_ID_RE.match(entry.name) or not entry.is_dir():
                continue
            made = datetime.fromtimestamp(entry.stat().st_mtime, UTC)
            with self._lock:
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO portraits (id, key_hash, created_at)"
                    " VALUES (?, NULL, ?)",
                    (entry.name, _iso(made)),
                )
            adopted += cur.rowcount
        if adopted:
            logger.info("portraits from before upload keys adopted", extra={"count": adopted})
        return adopted

    def add(self, avatar_id: str, upload_key: str, now: datetime) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO portraits (id, key_hash, created_at) VALUES (?, ?, ?)",
                (avatar_id, key_hash(upload_key), _iso(now)),
            )

    def exists(self, avatar_id: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM portraits WHERE id = ?", (avatar_id,)).fetchone()
        return row is not None

    def is_upload(self, avatar_id: str) -> bool:
        """Whether `avatar_id` names an uploaded portrait (as opposed to a built-in character or
        an operator's avatar), whether or not it still exists."""
        return bool(UPLOAD_ID_RE.match(avatar_id)) or self.exists(avatar_id)

    def created_at(self, avatar_id: str) -> datetime | None:
        with self._lock:
            row = self._db.execute(
                "SELECT created_at FROM portraits WHERE id = ?", (avatar_id,)
            ).fetchone()
        return datetime.fromisoformat(row[0]) if row else None

    def upload_key_opens(self, avatar_id: str, given: str) -> bool:
        """Whether `given` is the portrait's upload key (constant-time on the hashes)."""
        with self._lock:
            row = self._db.execute(
                "SELECT key_hash FROM portraits WHERE id = ?", (avatar_id,)
            ).fetchone()
        stored = row[0] if row else None
        return hmac.compare_digest(key_hash(given), stored or key_hash("")) and stored is not None

    def booking_key_opens(self, avatar_id: str, given: str) -> bool:
        """Whether `given` is the key of a booking, not erased, made with this avatar."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key_hash FROM sessions WHERE avatar = ? AND erased_at IS NULL"
                " AND key_hash IS NOT NULL LIMIT 1000",
                (avatar_id,),
            ).fetchall()
        wanted = key_hash(given)
        found = False
        for (stored,) in rows:  # every row compared: the time says nothing about which matched
            found |= hmac.compare_digest(wanted, stored)
        return found

    # -- deleting ---------------------------------------------------------------------------------

    def _delete(self, avatar_id: str) -> None:
        if UPLOAD_ID_RE.match(avatar_id):  # never a path: ids of this shape only
            shutil.rmtree(self.avatars_dir / avatar_id, ignore_errors=True)

    def release(self, avatar_id: str | None) -> bool:
        """After an erase: delete the portrait when no booking that is not erased uses it.
        True when it was deleted."""
        if not avatar_id:
            return False
        with self._lock:
            in_use = self._db.execute(
                "SELECT 1 FROM sessions WHERE avatar = ? AND erased_at IS NULL LIMIT 1",
                (avatar_id,),
            ).fetchone()
            if in_use:
                return False
            gone = self._db.execute("DELETE FROM portraits WHERE id = ?", (avatar_id,)).rowcount
        if gone:
            self._delete(avatar_id)
            logger.info("portrait deleted with the last booking that used it")
        return bool(gone)

    def sweep(self, retention_s: float, now: datetime) -> list[str]:
        """Delete at most SWEEP_BATCH portraits older than the retention time whose bookings
        are not running; return their ids."""
        cutoff = _iso(now - timedelta(seconds=retention_s))
        running_since = _iso(now - RUNNING_HORIZON)
        with self._lock:
            ids = [
                row[0]
                for row in self._db.execute(
                    "SELECT p.id FROM portraits p WHERE p.created_at < ? AND NOT EXISTS ("
                    " SELECT 1 FROM sessions s WHERE s.avatar = p.id AND s.erased_at IS NULL"
                    " AND s.ended_at IS NULL AND s.created_at > ?)"
                    " ORDER BY p.created_at LIMIT ?",
                    (cutoff, running_since, SWEEP_BATCH),
                )
            ]
            if ids:
                marks = ",".join("?" * len(ids))
                self._db.execute(f"DELETE FROM portraits WHERE id IN ({marks})", ids)
        for avatar_id in ids:
            self._delete(avatar_id)
        if ids:
            logger.info("expired portraits deleted", extra={"count": len(ids)})
        return ids
