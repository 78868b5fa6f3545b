"""Viewing and editing the interviewer's data files under prompts/ (admin token only).

Only existing .yaml and .txt files can be read or replaced; YAML is checked to parse into a
mapping (what agent/prompts.py requires) before it is written, atomically. Agent processes read
prompts when they load them, so a new worker process picks up an edit.
"""

from __future__ import annotations

import hmac
from pathlib import Path

import yaml

EDITABLE_SUFFIXES = (".yaml", ".txt")


class PromptError(ValueError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def token_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected and given) and hmac.compare_digest(expected.encode(), given.encode())


def list_prompts(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.suffix in EDITABLE_SUFFIXES
    )


def resolve(root: Path, name: str) -> Path:
    path = (root / name).resolve()
    if (
        not path.is_relative_to(root.resolve())
        or path.suffix not in EDITABLE_SUFFIXES
        or not path.is_file()
    ):
        raise PromptError(f"no prompt file named '{name}' (see GET /api/prompts)", 404)
    return path


def write_prompt(root: Path, name: str, text: str) -> None:
    path = resolve(root, name)
    if path.suffix == ".yaml":
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise PromptError(f"'{name}' is not valid YAML: {e}".splitlines()[0], 422) from None
        if not isinstance(data, dict):
            raise PromptError(f"'{name}' must hold a YAML mapping", 422)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
