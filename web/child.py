"""Work the API hands to a child Python process it can abandon: a resume PDF read, a prompt edit's
plan check. The child answers with one JSON line on stdout; past its time it is killed, so a
hostile input costs bounded time and never holds the API's event loop or threads."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parent.parent


class ChildTimedOut(Exception):
    """The child did not answer in time and was killed."""


class ChildStopped(Exception):
    """The child ended without a JSON answer; `returncode` says how (negative: a signal)."""

    def __init__(self, returncode: int | None) -> None:
        super().__init__(f"child process ended with {returncode}")
        self.returncode = returncode


async def run_child(
    module: str,
    *args: str,
    stdin: bytes | None = None,
    timeout_s: float,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`python -m module args...` with `stdin`; its one JSON answer, or ChildTimedOut /
    ChildStopped."""
    full_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(_REPO), os.environ.get("PYTHONPATH")])),
        **(env or {}),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=full_env,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(stdin), timeout_s)
    except TimeoutError:
        raise ChildTimedOut() from None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    try:
        answer = json.loads(out)
    except ValueError:
        raise ChildStopped(proc.returncode) from None
    if not isinstance(answer, dict):
        raise ChildStopped(proc.returncode)
    return answer
