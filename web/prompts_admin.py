"""Viewing and editing the interviewer's data files under prompts/ (admin token only).

Only existing .yaml and .txt files can be read or replaced, by names made of letters, digits,
'-', '_', '.' and '/'. An edited YAML file is checked before it is written, atomically:
it parses (no aliases, bounded depth) into a mapping; it keeps the shape of the file it
replaces (every key, the type of every value, non-empty lists, no `{placeholder}` the code does
not fill: `check_shape`); and the interview plan builds from it, for both languages, every
interview type and persona (prompt_check.py, in a child process on a copy of prompts/, so the
API's own loaded prompts are untouched). Agent processes read prompts when they load them, so a
new worker process picks up an edit.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import shutil
import string
import tempfile
from pathlib import Path
from typing import Any

import yaml

from .child import ChildStopped, ChildTimedOut, run_child

EDITABLE_SUFFIXES = (".yaml", ".txt")
NAME_RE = re.compile(r"^[A-Za-z0-9_.-][A-Za-z0-9_./-]{0,199}$")
PLAN_CHECK_TIMEOUT_S = 60.0


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
    if not NAME_RE.match(name):
        raise PromptError(
            "a prompt name is a path under prompts/ like 'ko/interviewer.yaml' (letters, digits,"
            " '-', '_', '.' and '/')",
            422,
        )
    path = (root / name).resolve()
    if (
        not path.is_relative_to(root.resolve())
        or path.suffix not in EDITABLE_SUFFIXES
        or not path.is_file()
    ):
        raise PromptError(f"no prompt file named '{name}' (see GET /api/prompts)", 404)
    return path


class _NoAliases(yaml.SafeLoader):
    """YAML without anchors and aliases: a few aliases can stand for a huge document."""

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("aliases (*name) are not allowed in prompt files")
        return super().compose_node(parent, index)


def parse_yaml(name: str, text: str) -> dict[str, Any]:
    try:
        data = yaml.load(text, Loader=_NoAliases)  # _NoAliases is a SafeLoader
    except yaml.YAMLError as e:
        raise PromptError(f"'{name}' is not valid YAML: {e}".splitlines()[0], 422) from None
    except RecursionError:
        raise PromptError(f"'{name}' is nested too deeply", 422) from None
    if not isinstance(data, dict):
        raise PromptError(f"'{name}' must hold a YAML mapping", 422)
    return data


def _fields(text: str) -> set[str]:
    # `{}` counts as the field '' (positional), which no caller passes
    parsed = string.Formatter().parse(text)
    return {f.split(".")[0].split("[")[0] for _, f, _, _ in parsed if f is not None}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "null"


def check_shape(old: Any, new: Any, where: str = "") -> None:
    """Raise ValueError naming the first place where `new` lost the shape of `old`: a missing
    key, a value of another kind, an emptied list, a placeholder the code does not fill."""
    label = where or "the file"
    if old is None:
        return
    if _kind(old) != _kind(new):
        raise ValueError(f"'{label}' must be {_kind(old)}, not {_kind(new)}")
    if isinstance(old, dict):
        for key, value in old.items():
            path = f"{where}.{key}" if where else str(key)
            if key not in new:
                raise ValueError(f"the key '{path}' is missing")
            check_shape(value, new[key], path)
    elif isinstance(old, list):
        if old and not new:
            raise ValueError(f"the list '{label}' must not be empty")
        if old:
            _check_items(old, new, label)
    elif isinstance(old, str):
        _check_placeholders(_fields(old), new, label)


def _check_items(old: list[Any], new: list[Any], label: str) -> None:
    kinds = {_kind(v) for v in old}
    dicts = [v for v in old if isinstance(v, dict)]
    common = set.intersection(*(set(d) for d in dicts)) if dicts else set()
    allowed = set().union(*(_fields(v) for v in old if isinstance(v, str)))
    for i, item in enumerate(new):
        path = f"{label}[{i}]"
        if _kind(item) not in kinds:
            raise ValueError(f"'{path}' must be {' or '.join(sorted(kinds))}, not {_kind(item)}")
        if isinstance(item, dict):
            for key in sorted(common):
                if key not in item:
                    raise ValueError(f"the key '{path}.{key}' is missing")
                sample = next(d[key] for d in dicts)
                if isinstance(sample, str):
                    fields = set().union(
                        *(_fields(d[key]) for d in dicts if isinstance(d[key], str))
                    )
                    _check_placeholders(fields, item[key], f"{path}.{key}")
        elif isinstance(item, str):
            _check_placeholders(allowed, item, path)


def _check_placeholders(allowed: set[str], text: Any, label: str) -> None:
    if not isinstance(text, str):
        raise ValueError(f"'{label}' must be text, not {_kind(text)}")
    try:
        used = _fields(text)
    except ValueError as e:
        raise ValueError(f"'{label}' has a broken {{placeholder}} ({e})") from None
    extra = sorted(used - allowed)
    if extra:
        raise ValueError(f"'{label}' uses the placeholder {{{extra[0]}}}, which is never filled")


async def write_prompt(root: Path, name: str, text: str) -> None:
    path = resolve(root, name)
    if path.suffix == ".yaml":
        new = parse_yaml(name, text)
        old = await asyncio.to_thread(path.read_text, encoding="utf-8")
        try:
            check_shape(yaml.safe_load(old), new)
        except ValueError as e:
            raise PromptError(f"'{name}' was not saved: {e}", 422) from None
        await check_plan(root, name, text)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


async def check_plan(root: Path, name: str, text: str) -> None:
    """Build the interview plans from a copy of prompts/ with the edit (prompt_check.py, in a
    child process killed after PLAN_CHECK_TIMEOUT_S); PromptError 422 naming the problem."""
    with tempfile.TemporaryDirectory(prefix="prompt-check-") as tmp:
        copy = Path(tmp) / "prompts"
        await asyncio.to_thread(shutil.copytree, root, copy)
        (copy / name).write_text(text, encoding="utf-8")
        try:
            answer = await run_child(
                "web.prompt_check",
                timeout_s=PLAN_CHECK_TIMEOUT_S,
                env={"INTERVIEW_PROMPTS_DIR": str(copy)},
            )
        except ChildTimedOut:
            raise PromptError(
                f"'{name}' was not saved: the interview plan did not build within "
                f"{PLAN_CHECK_TIMEOUT_S:g} s",
                422,
            ) from None
        except ChildStopped:
            raise PromptError(f"'{name}' was not saved: the plan check stopped", 422) from None
    if answer.get("error"):
        raise PromptError(f"'{name}' was not saved: {answer['error']}", 422)
