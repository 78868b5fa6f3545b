"""Fixtures for the evaluation tests: hand-made transcripts with exactly known timings."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.transcript import Transcript, load_transcript

DATA = Path(__file__).parent / "data"


def make_transcript(language: str, turns: list[tuple[str, str, float, float]]) -> Transcript:
    return Transcript.model_validate(
        {
            "interview_id": f"test-{language}",
            "config": {"candidate_name": "Test", "role": "Backend", "language": language},
            "started_at": "2026-01-01T00:00:00Z",
            "turns": [{"speaker": s, "text": t, "start": a, "end": b} for s, t, a, b in turns],
        }
    )


@pytest.fixture
def ko_demo() -> Transcript:
    return load_transcript(DATA / "ko_transcript.json")


@pytest.fixture
def en_demo() -> Transcript:
    return load_transcript(DATA / "en_transcript.json")
