"""`python -m agent report`: outputs, and one clear stderr line for bad transcripts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATA

from agent.evaluation.cli import main


def test_report_from_transcript(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main([str(DATA / "ko_transcript.json"), "--out", str(out)]) == 0
    assert json.loads((out / "report.json").read_text(encoding="utf-8"))["language"] == "ko"
    assert (out / "report.html").is_file()
    assert "report.json" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "not found"),
        ("{not json", "not valid JSON"),
        (
            '{"interview_id": "x", "config": {}, "started_at": "t", "turns": [{"speaker": "bot"}]}',
            "turns.0.speaker",
        ),
    ],
)
def test_bad_transcripts_fail_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, needle: str
) -> None:
    path = tmp_path / "transcript.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert main([str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["only-a-path.json"]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and len(err.strip().splitlines()) == 1


def test_llm_assessor_without_key_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(DATA / "en_transcript.json"), "--out", str(tmp_path), "--assessor", "llm"]
    assert main(args) == 2
    assert "OPENAI_API_KEY" in capsys.readouterr().err


def test_module_entry_point_has_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent.evaluation.cli",
            str(tmp_path / "missing.json"),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("report: transcript file not found")
    assert "Traceback" not in proc.stderr


def test_agent_cli_dispatches_report(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent",
            "report",
            str(DATA / "en_transcript.json"),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "report.json").is_file() and (tmp_path / "report.html").is_file()
