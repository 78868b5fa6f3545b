"""Fixtures of the interview API tests: an app built on test settings, with or without LiveKit."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from web_support import ADMIN_TOKEN

from agent.ports import free_loopback_port
from web.app import create_app
from web.settings import REPO_ROOT, RateLimit, WebSettings


@pytest.fixture
def data_dir(tmp_path) -> Path:
    # the same directory tests/conftest.py puts in INTERVIEW_DATA_DIR, which agent.store reads
    return tmp_path / "data"


@pytest.fixture
def prompts_dir(tmp_path) -> Path:
    """A copy of prompts/: editing tests must never touch the repository's files."""
    target = tmp_path / "prompts"
    shutil.copytree(REPO_ROOT / "prompts", target)
    return target


@pytest.fixture
def make_client(data_dir, prompts_dir) -> Iterator[Callable[..., TestClient]]:
    """make_client(livekit=None|LiveKitServer, **settings overrides) -> a started TestClient."""
    clients: list[TestClient] = []

    def make(livekit=None, **overrides: object) -> TestClient:
        if livekit is None:
            url = f"ws://127.0.0.1:{free_loopback_port()}"
            key, secret = "devkey", "secret"
        else:
            url, key, secret = livekit
        settings = WebSettings(
            livekit_url=url,
            livekit_public_url=url,
            api_key=key,
            api_secret=secret,
            data_dir=data_dir,
            prompts_dir=prompts_dir,
            avatar_service_url=f"http://127.0.0.1:{free_loopback_port()}",
            admin_token=ADMIN_TOKEN,
            session_rate=RateLimit(20, 60),
            end_grace_s=3.0,
        )
        settings = dataclasses.replace(settings, **overrides)
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)
