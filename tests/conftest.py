"""Shared pytest setup: keep every test offline and its data in a temporary directory."""

from __future__ import annotations

import os

import pytest

# Tests must never reach a cloud provider, even on a machine whose shell has keys set.
for _key in ("DEEPGRAM_API_KEY", "OPENAI_API_KEY", "ELEVENLABS_API_KEY", "OPENAI_BASE_URL"):
    os.environ.pop(_key, None)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERVIEW_DATA_DIR", str(tmp_path / "data"))
