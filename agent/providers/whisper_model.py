"""Locates the Whisper weights shipped on PyPI and assembles them into a faster-whisper model dir.

Whisper base comes split over two wheels (model.bin.part1 / part2); the parts are joined once into
the cache directory and the result is checked against the sha256 recorded in models/whisper.json.
Nothing is ever downloaded: a missing wheel is a clear error naming the package to install.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .log import logger
from .models import WhisperModel

MANIFEST_PATH = Path(__file__).resolve().parents[2] / "models" / "whisper.json"


class ModelUnavailableError(RuntimeError):
    """The weights of an offline model are missing or corrupt; one sentence for the user."""


@dataclass(frozen=True)
class _Source:
    package: str
    path: str


@dataclass(frozen=True)
class WhisperManifestEntry:
    name: str
    sources: tuple[_Source, ...]
    extra_package: str
    extra_dir: str
    extra_files: tuple[str, ...]
    size: int
    sha256: str


def load_manifest(path: Path | None = None) -> dict[str, WhisperManifestEntry]:
    path = path or MANIFEST_PATH
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ModelUnavailableError(f"cannot read the model manifest {path}: {e}") from None
    entries: dict[str, WhisperManifestEntry] = {}
    for m in raw["models"]:
        extra = m["extra_files"]
        entries[m["name"]] = WhisperManifestEntry(
            name=m["name"],
            sources=tuple(_Source(s["package"], s["path"]) for s in m["sources"]),
            extra_package=extra["package"],
            extra_dir=extra["dir"],
            extra_files=tuple(extra["files"]),
            size=int(m["model_bin_size"]),
            sha256=m["model_bin_sha256"],
        )
    return entries


def _site_file(package: str, rel_path: str) -> Path:
    top = rel_path.split("/", 1)[0]
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            f"the Python package {package} is not installed (pip install '{package}')"
        )
    base = Path(next(iter(spec.submodule_search_locations))).parent
    file = base / rel_path
    if not file.is_file():
        raise ModelUnavailableError(f"{file} is missing; reinstall {package}")
    return file


def cache_root() -> Path:
    env = os.environ.get("INTERVIEW_MODEL_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "interview-avatar" / "models"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def check_available(name: WhisperModel) -> None:
    """Raise ModelUnavailableError unless every shipped file of `name` is installed."""
    entry = load_manifest()[name]
    for src in entry.sources:
        _site_file(src.package, src.path)
    for f in entry.extra_files:
        _site_file(entry.extra_package, f"{entry.extra_dir}/{f}")


def whisper_model_dir(name: WhisperModel) -> Path:
    """Return a directory faster-whisper can load for `name`, assembling it on first use."""
    entry = load_manifest()[name]
    parts = [_site_file(s.package, s.path) for s in entry.sources]
    extras = [_site_file(entry.extra_package, f"{entry.extra_dir}/{f}") for f in entry.extra_files]

    if len(parts) == 1 and parts[0].stat().st_size == entry.size:
        # a single shipped file is used in place; it is verified once per cache stamp
        target_dir = parts[0].parent
        stamp = cache_root() / f"{name}.verified"
        if not stamp.is_file() or stamp.read_text().strip() != entry.sha256:
            digest = _sha256(parts[0])
            if digest != entry.sha256:
                raise ModelUnavailableError(
                    f"{parts[0]} has sha256 {digest}, expected {entry.sha256}; reinstall "
                    f"{entry.sources[0].package}"
                )
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.write_text(entry.sha256)
        return target_dir

    target_dir = cache_root() / name
    model_bin = target_dir / "model.bin"
    if model_bin.is_file() and model_bin.stat().st_size == entry.size:
        return target_dir

    logger.info(
        "assembling whisper model from shipped parts",
        extra={"model": name, "target": str(target_dir), "parts": [str(p) for p in parts]},
    )
    target_dir.mkdir(parents=True, exist_ok=True)
    tmp = target_dir / f"model.bin.{os.getpid()}.tmp"
    h = hashlib.sha256()
    with tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as f:
                while chunk := f.read(1 << 22):
                    h.update(chunk)
                    out.write(chunk)
    digest = h.hexdigest()
    if digest != entry.sha256:
        tmp.unlink(missing_ok=True)
        raise ModelUnavailableError(
            f"assembled {name} model.bin has sha256 {digest}, expected {entry.sha256} "
            f"(models/whisper.json); reinstall {', '.join(s.package for s in entry.sources)}"
        )
    for extra in extras:
        shutil.copyfile(extra, target_dir / extra.name)
    tmp.replace(model_bin)
    return target_dir
