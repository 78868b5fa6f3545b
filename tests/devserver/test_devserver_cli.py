"""`python -m devserver` command line: key pairs and bad input (no server is started)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from devserver.__main__ import parse_keys


def test_key_pairs_parse_like_livekit_server() -> None:
    assert parse_keys("devkey: secret") == {"devkey": "secret"}
    assert parse_keys("a:1, b: 2\nc :3") == {"a": "1", "b": "2", "c": "3"}


@pytest.mark.parametrize("text", ["", "nokey", ":secret", "key:"])
def test_bad_key_pairs_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_keys(text)


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["--keys", "devkey"], {}, "--keys"),
        (["--port", "70000"], {}, "--port"),
        ([], {"LIVEKIT_KEYS": "broken"}, "LIVEKIT_KEYS"),
    ],
)
def test_bad_input_is_one_line_on_stderr(args: list[str], env: dict[str, str], needle: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devserver", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
