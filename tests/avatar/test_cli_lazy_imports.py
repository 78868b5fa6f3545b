"""The avatar worker's command line imports a command's heavy modules only for that command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from avatar_worker.__main__ import LAZY_COMMANDS, build_parser

_PROBE = """
import json, runpy, sys
sys.argv = ["avatar_worker", *sys.argv[1:]]
try:
    runpy.run_module("avatar_worker", run_name="__main__", alter_sys=True)
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _imported_modules(*args: str) -> set[str]:
    """Modules loaded by `python -m avatar_worker ARGS` (which must exit with status 0)."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=120
    )
    result = json.loads(proc.stderr.strip().splitlines()[-1])
    assert result["code"] in (0, None), proc.stderr[-2000:]
    return set(result["modules"])


@pytest.mark.parametrize("command", ["render", "bench", "lipsync-eval", "prepare"])
def test_other_commands_do_not_load_livekit_agents(command: str) -> None:
    modules = _imported_modules(command, "--help")
    assert "avatar_worker.avatars" in modules  # the command line did load
    assert "livekit.agents" not in modules
    assert "avatar_worker.service" not in modules


def test_serve_loads_its_module_and_keeps_its_options() -> None:
    modules = _imported_modules("serve", "--help")
    assert "avatar_worker.service" in modules
    serve_help = build_parser("serve")._subparsers._group_actions[0].choices["serve"].format_help()
    assert "--capacity" in serve_help and "--port" in serve_help


def test_the_command_list_is_the_same_with_or_without_the_lazy_modules() -> None:
    listing = build_parser().format_help()
    for lazy in LAZY_COMMANDS:
        assert build_parser(lazy.name).format_help() == listing  # same help line as the module's
