"""Transcript store (persisted turn by turn), the command line's error handling, the worker's
invalid-config path."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import parse_config
from agent.store import TranscriptStore
from agent.transcript import load_transcript

ROOT = Path(__file__).resolve().parents[2]
CONFIG = {"candidate_name": "김지원", "role": "백엔드 개발자"}


def test_each_turn_is_on_disk_as_soon_as_it_is_added(tmp_path):
    store = TranscriptStore(tmp_path / "t.sqlite3")
    store.begin("iv1", parse_config(CONFIG))
    store.add_turn("iv1", "interviewer", "안녕하세요", 0.2, 3.0, extra={"stage": "greeting"})
    # another connection (as after a crash) already sees it
    rows = (
        sqlite3.connect(tmp_path / "t.sqlite3")
        .execute("SELECT speaker, text FROM turns")
        .fetchall()
    )
    assert rows == [("interviewer", "안녕하세요")]
    store.add_turn("iv1", "candidate", "네", 3.5, 4.0)
    store.add_turn("iv1", "interviewer", "자기소개", 5.0, 6.0, interrupted=True)
    store.finish("iv1")
    out = tmp_path / "transcript.json"
    store.transcript("iv1").write(out)
    t = load_transcript(out)
    assert [x.speaker for x in t.turns] == ["interviewer", "candidate", "interviewer"]
    assert t.turns[2].interrupted and t.ended_at and t.config["role"] == "백엔드 개발자"
    assert json.loads(out.read_text())["turns"][0]["stage"] == "greeting"


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_bad_inputs_give_one_line_and_a_non_zero_exit(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**CONFIG, "duration_minutes": 1, "height": 3}))
    answers = tmp_path / "a.txt"
    answers.write_text("네\n")
    cases = [
        (
            ["rehearse", "--config", str(bad), "--answers", str(answers), "--out", str(tmp_path)],
            "duration_minutes",
        ),
        (
            [
                "rehearse",
                "--config",
                str(tmp_path / "missing.json"),
                "--answers",
                str(answers),
                "--out",
                str(tmp_path),
            ],
            "cannot read config",
        ),
        (
            [
                "rehearse",
                "--config",
                str(ROOT / "examples/ko/config.json"),
                "--answers",
                str(tmp_path / "none.txt"),
                "--out",
                str(tmp_path),
            ],
            "answers file",
        ),
        (
            [
                "rehearse",
                "--config",
                str(ROOT / "examples/ko/config.json"),
                "--answers",
                str(answers),
                "--out",
                str(tmp_path),
                "--video",
                "--text",
            ],
            "drop --text",
        ),
        (["frobnicate"], "unknown command"),
    ]
    for argv, needle in cases:
        r = _cli(*argv)
        assert r.returncode != 0, argv
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (argv, r.stderr)
        assert "Traceback" not in r.stderr


def test_text_rehearsal_writes_transcript_and_report(tmp_path):
    r = _cli(
        "rehearse",
        "--config",
        str(ROOT / "examples/en/config.json"),
        "--answers",
        str(ROOT / "examples/en/answers.txt"),
        "--out",
        str(tmp_path),
        "--text",
    )
    assert r.returncode == 0, r.stderr
    t = load_transcript(tmp_path / "transcript.json")
    assert t.turns[0].speaker == "interviewer" and len(t.turns) >= 12
    assert (tmp_path / "report.json").is_file() and (tmp_path / "report.html").is_file()


class _FakeParticipant:
    def __init__(self) -> None:
        self.attributes: dict[str, str] = {}
        self.data: list[tuple[str, str]] = []

    async def set_attributes(self, attributes: dict[str, str]) -> None:
        self.attributes.update(attributes)

    async def publish_data(self, payload: str, *, reliable: bool = True, topic: str = "") -> None:
        self.data.append((topic, payload))


class _FakeRoom:
    name = "room-1"

    def __init__(self) -> None:
        self.local_participant = _FakeParticipant()


class _FakeJob:
    id = "job-1"
    metadata = json.dumps({"candidate_name": "A"})


class _FakeCtx:
    def __init__(self) -> None:
        self.room, self.job = _FakeRoom(), _FakeJob()
        self.shutdown_reason: str | None = None

    async def connect(self) -> None:
        return None

    def shutdown(self, reason: str = "") -> None:
        self.shutdown_reason = reason


def test_invalid_job_metadata_is_published_and_the_agent_leaves_quietly(monkeypatch):
    from agent import worker

    monkeypatch.setattr(asyncio, "sleep", _no_sleep)
    ctx = _FakeCtx()
    asyncio.run(worker.entrypoint(ctx))  # type: ignore[arg-type]
    message = "invalid interview config: field 'role' is required"
    assert ctx.room.local_participant.attributes == {worker.ERROR_ATTRIBUTE: message}
    topic, payload = ctx.room.local_participant.data[0]
    assert topic == worker.ERROR_TOPIC and json.loads(payload)["message"] == message
    assert ctx.shutdown_reason == message


_real_sleep = asyncio.sleep


async def _no_sleep(_s: float) -> None:
    await _real_sleep(0)


def test_console_jobs_read_the_config_named_by_interview_config(tmp_path, monkeypatch):
    from agent.config import ConfigError
    from agent.worker import job_config

    path = tmp_path / "c.json"
    path.write_text(json.dumps(CONFIG), encoding="utf-8")
    monkeypatch.setenv("INTERVIEW_CONFIG", str(path))
    assert job_config("").role == "백엔드 개발자"
    assert job_config(json.dumps({**CONFIG, "role": "QA"})).role == "QA"  # metadata wins
    monkeypatch.setenv("INTERVIEW_CONFIG", str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="INTERVIEW_CONFIG"):
        job_config("")
