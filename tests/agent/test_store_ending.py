"""The end of an interview in the transcript store: the job's heartbeat, the one-writer claim of
transcript.json and the report, the migration of older databases, and an erase racing a report
writer (agent/store.py, agent/ending.py)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest

import agent.evaluation
from agent.config import parse_config
from agent.ending import (
    BY_AGENT,
    BY_API,
    COMPLETED,
    INTERVIEWER_LOST,
    ROOM_CLOSED,
    Heartbeat,
    job_end_reason,
    write_from_store,
)
from agent.store import TranscriptStore, erase_interview, staging_dir

CONFIG = {"candidate_name": "Alex Kim", "role": "Backend engineer", "language": "en"}


def _interview(path: Path, interview_id: str = "iv-1") -> TranscriptStore:
    store = TranscriptStore(path)
    store.begin(interview_id, parse_config(CONFIG))
    store.add_turn(interview_id, "interviewer", "Tell me about a system you built.", 0.5, 3.0)
    store.add_turn(
        interview_id,
        "candidate",
        "I built a payment service in Go that handled 2,000 requests per second.",
        4.0,
        11.0,
    )
    return store


def _row(path: Path, interview_id: str = "iv-1") -> dict[str, object] | None:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        row = db.execute("SELECT * FROM interviews WHERE id = ?", (interview_id,)).fetchone()
    finally:
        db.close()
    return dict(row) if row else None


def test_an_older_database_gets_the_new_columns_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE interviews (id TEXT PRIMARY KEY, config TEXT NOT NULL,
                                 started_at TEXT NOT NULL, ended_at TEXT);
        INSERT INTO interviews VALUES ('iv-old', '{}', '2026-01-01T00:00:00+00:00', NULL);
        """
    )
    db.close()
    stores = [TranscriptStore(path), TranscriptStore(path)]  # the job and the API, both migrate
    row = _row(path, "iv-old")
    assert row is not None and row["started_at"] == "2026-01-01T00:00:00+00:00"
    assert {"alive_at", "end_reason", "finalized_by", "finalized_at"} <= row.keys()
    assert row["alive_at"] is None  # no heartbeat: the API does not judge it by one
    for s in stores:
        s.close()


def test_the_heartbeat_stamps_the_row_until_stopped(tmp_path):
    path = tmp_path / "t.sqlite3"
    store = _interview(path)
    t0 = time.time()
    beat = Heartbeat(store, "iv-1", interval_s=0.05).start()
    first = _row(path)["alive_at"]
    assert first is not None and first >= t0  # at once, not after the first interval
    time.sleep(0.3)
    later = _row(path)["alive_at"]
    assert later > first
    beat.stop()
    time.sleep(0.15)
    stopped = _row(path)["alive_at"]
    time.sleep(0.2)
    assert _row(path)["alive_at"] == stopped
    store.close()


def test_the_heartbeat_stops_once_the_interview_is_erased(tmp_path):
    path = tmp_path / "t.sqlite3"
    store = _interview(path)
    beat = Heartbeat(store, "iv-1", interval_s=0.05).start()
    erase_interview(path, "iv-1", tmp_path / "interviews" / "iv-1")
    beat._thread.join(2)
    assert not beat._thread.is_alive()
    assert _row(path) is None  # no beat brought the row back
    store.close()


def test_one_writer_claims_the_files_and_the_end(tmp_path):
    path = tmp_path / "t.sqlite3"
    store = _interview(path)
    assert store.claim("iv-1", BY_AGENT, reason=COMPLETED)
    row = _row(path)
    assert row["finalized_by"] == BY_AGENT and row["ended_at"] and row["end_reason"] == COMPLETED
    # the API comes second: nothing for it, and the end stays the job's
    assert not store.claim("iv-1", BY_API, reason=INTERVIEWER_LOST)
    store.finish("iv-1", INTERVIEWER_LOST)
    assert _row(path)["end_reason"] == COMPLETED
    assert not store.claim("iv-1", BY_AGENT)  # not twice either
    store.close()


def test_the_api_takes_over_only_from_a_job_that_died_while_writing(tmp_path):
    path = tmp_path / "t.sqlite3"
    store = _interview(path)
    store.beat("iv-1", at=1000.0)
    assert store.claim("iv-1", BY_AGENT, reason=COMPLETED)
    # the job's last beat is newer than the API's limit: it is still writing
    assert not store.claim("iv-1", BY_API, dead_before=999.0)
    # it stopped beating and never published: the API writes instead
    assert store.claim("iv-1", BY_API, dead_before=1007.0)
    assert _row(path)["finalized_by"] == BY_API and _row(path)["end_reason"] == COMPLETED
    # the job, had it lived on, publishes nothing now
    staging = staging_dir(tmp_path / "interviews" / "iv-1")
    (staging / "report.json").write_text("{}")
    assert not store.publish(
        "iv-1", BY_AGENT, staging, tmp_path / "interviews" / "iv-1", final=True
    )
    assert not staging.exists() and not (tmp_path / "interviews" / "iv-1").exists()
    # a failed attempt of the API's own may be tried again; a published one may not
    assert store.claim("iv-1", BY_API, dead_before=1007.0)
    staging = staging_dir(tmp_path / "interviews" / "iv-1")
    assert store.publish("iv-1", BY_API, staging, tmp_path / "interviews" / "iv-1", final=True)
    assert not store.claim("iv-1", BY_API, dead_before=2000.0)
    store.close()


def test_the_api_writes_transcript_and_report_from_the_stored_turns(tmp_path):
    path = tmp_path / "t.sqlite3"
    store = _interview(path)
    out = tmp_path / "interviews" / "iv-1"
    assert write_from_store(store, "iv-1", out, reason=INTERVIEWER_LOST)
    transcript = json.loads((out / "transcript.json").read_text())
    assert [t["speaker"] for t in transcript["turns"]] == ["interviewer", "candidate"]
    assert transcript["ended_at"]
    report = json.loads((out / "report.json").read_text())
    assert (
        report["interview_id"] == "iv-1" and "payment service" in report["questions"][0]["answer"]
    )
    assert (out / "report.html").is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == ["iv-1"]  # no staging left
    row = _row(path)
    assert row["end_reason"] == INTERVIEWER_LOST and row["finalized_at"]
    assert not write_from_store(store, "iv-1", out, reason=INTERVIEWER_LOST)  # once
    store.close()


def test_nothing_is_stored_for_an_erased_interview(tmp_path):
    path = tmp_path / "t.sqlite3"
    store = _interview(path)
    erase_interview(path, "iv-1", tmp_path / "interviews" / "iv-1")
    # a job the API took for dead, still running: its turns, beats and end go nowhere
    store.add_turn("iv-1", "candidate", "And then we sharded the database.", 12.0, 15.0)
    assert not store.beat("iv-1")
    store.finish("iv-1", COMPLETED)
    assert not store.claim("iv-1", BY_AGENT)
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*) FROM turns").fetchone() == (0,)
    assert db.execute("SELECT COUNT(*) FROM interviews").fetchone() == (0,)
    db.close()
    store.close()


@pytest.mark.parametrize("writer", ["api", "agent"])
def test_an_erase_racing_the_report_writer_leaves_nothing(tmp_path, monkeypatch, writer):
    """Erase at every moment of the writing (before the claim, between transcript and report,
    while the report is being made, after it): at the end no file, no staging directory and no
    row is left, whichever finished first."""
    real = agent.evaluation.generate_report

    def slow_report(transcript, out_dir, **kw):  # type: ignore[no-untyped-def]
        time.sleep(0.03)
        report = real(transcript, out_dir, **kw)
        time.sleep(0.03)
        return report

    monkeypatch.setattr(agent.evaluation, "generate_report", slow_report)
    path = tmp_path / "t.sqlite3"
    interviews = tmp_path / "interviews"
    for i, delay in enumerate(x * 0.012 for x in range(16)):
        sid = f"iv-{i}"
        out = interviews / sid
        store = _interview(path, sid)
        store.finish(sid, COMPLETED)  # the status says "ended": erase is allowed from here

        def write(store=store, sid=sid, out=out) -> None:  # type: ignore[no-untyped-def]
            if writer == "api":
                write_from_store(store, sid, out, reason=INTERVIEWER_LOST)
                return
            # as agent/worker.py's shutdown callback does it
            if not store.claim(sid, BY_AGENT, reason=COMPLETED):
                return
            staging = staging_dir(out)
            store.transcript(sid).write(staging / "transcript.json")
            if not store.publish(sid, BY_AGENT, staging, out, final=False):
                return
            staging = staging_dir(out)
            slow_report(store.transcript(sid), staging)
            store.publish(sid, BY_AGENT, staging, out, final=True)

        thread = threading.Thread(target=write)
        thread.start()
        time.sleep(delay)
        erase_interview(path, sid, out)
        thread.join(10)
        assert not out.exists(), (delay, sorted(p.name for p in out.iterdir()))
        assert not list(interviews.glob(f".staging-{sid}-*")) if interviews.exists() else True
        assert _row(path, sid) is None
        db = sqlite3.connect(path)
        assert (
            db.execute("SELECT COUNT(*) FROM turns WHERE interview_id = ?", (sid,)).fetchone()[0]
            == 0
        )
        db.close()
        store.close()


def test_the_jobs_end_reason():
    assert job_end_reason(True, None, True) == COMPLETED
    assert job_end_reason(True, 14, True) == COMPLETED  # said goodbye, then lost the connection
    assert job_end_reason(False, 5, True) == ROOM_CLOSED  # ROOM_DELETED
    assert job_end_reason(False, 10, False) == ROOM_CLOSED  # ROOM_CLOSED: the candidate left
    # the server ended the job before the room said why: the candidate had left, it closed
    assert job_end_reason(False, 1, False) == ROOM_CLOSED
    # cut short under a candidate still in the room: terminated, the connection timed out
    assert job_end_reason(False, 1, True) == INTERVIEWER_LOST  # CLIENT_INITIATED: our own
    assert job_end_reason(False, 14, True) == INTERVIEWER_LOST  # CONNECTION_TIMEOUT
    assert job_end_reason(False, None, True) == INTERVIEWER_LOST  # the worker shut down
