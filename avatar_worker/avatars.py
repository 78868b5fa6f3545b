"""Which avatars exist and the one shared renderer (FrameComposer) per avatar and size.

An avatar is a built-in character ("woman", "man"), the id of a portrait prepared under
INTERVIEW_DATA_DIR/avatars/<id>/, or (for offline commands only) a path to a portrait image,
which is prepared on first use and cached there. The avatar service takes ids only
(`check_avatar_id`, `get_composer_async`): a name from a request never becomes a file path.

The service builds a renderer it does not have yet in a child process of its own
(build_worker.py), at a lower CPU priority: drawing an avatar and filling its caches takes
seconds of CPU, which a thread would take from the running sessions' event loop (it shares
their GIL) and at their priority. The built renderer comes back pickled with its arrays out of
band, read in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import pickle
import re
import shutil
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

from .engine import AvatarArt, FrameComposer
from .stylized import CHARACTERS, StylizedArt

logger = logging.getLogger("avatar_worker.avatars")
_COMPOSERS: dict[tuple[str, int], FrameComposer] = {}
_BUILDING: dict[tuple[str, int], asyncio.Task[FrameComposer]] = {}
AVATAR_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MIN_SIZE, MAX_SIZE = 64, 2048  # any renderer (offline renders); the service accepts less
# a build that takes longer than this (a broken or hostile image, a starved host) is given up
BUILD_TIMEOUT_S = 180.0
# the build yields some CPU to the running sessions; more would starve it on a busy host: with
# both cores taken by other work a 512 px portrait took 7 s at niceness 0, 18 s at 5, 46 s at 10
# (build_bench --busy 2), past the agent's wait for its avatar (agent/avatar.py)
BUILD_NICE = 5
# the built renderer as it leaves the build process: header, then the pickle, then its buffers
_HEADER = struct.Struct("<QI")
_LENGTH = struct.Struct("<Q")
BUILD_EXIT_AVATAR_ERROR = 3  # the build process's exit status for an AvatarError (on stderr)
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])


class AvatarError(ValueError):
    """An avatar name, image or prepared portrait that cannot be used (one-sentence message)."""


class AvatarBuildError(RuntimeError):
    """Building a renderer failed for a reason other than the avatar itself (the build
    process crashed or timed out): one sentence."""


def data_dir() -> Path:
    return Path(os.environ.get("INTERVIEW_DATA_DIR", "./data"))


def avatars_dir() -> Path:
    return data_dir() / "avatars"


def prepared_ids() -> list[str]:
    root = avatars_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "portrait.json").is_file())


def available() -> list[str]:
    return [*CHARACTERS, *prepared_ids()]


def check_avatar_id(avatar: str) -> None:
    """Raise AvatarError unless `avatar` names a built-in character or a prepared portrait by
    its id. Never reads a path: the name only picks a directory under the avatars folder."""
    if avatar in CHARACTERS:
        return
    if not AVATAR_ID_RE.match(avatar):
        raise AvatarError(
            "avatar must be a built-in avatar or a prepared portrait's id (letters, digits, "
            "'-' or '_'), not a path"
        )
    if not (avatars_dir() / avatar / "portrait.json").is_file():
        raise AvatarError(
            f"unknown avatar {avatar!r}; built-in avatars: {', '.join(CHARACTERS)}, or the id "
            "of a prepared portrait"
        )


def _load_art(name_or_image: str, size: int, ids_only: bool = False) -> AvatarArt:
    if ids_only:
        check_avatar_id(name_or_image)
    if name_or_image in CHARACTERS:
        return StylizedArt(CHARACTERS[name_or_image], size)
    from .portrait import PortraitArt, load_prepared, prepare_image

    prepared = avatars_dir() / name_or_image
    if AVATAR_ID_RE.match(name_or_image) and (prepared / "portrait.json").is_file():
        return PortraitArt(load_prepared(prepared), size)
    path = Path(name_or_image)
    if path.is_file():
        prepared = prepare_image(path, avatars_dir())
        return PortraitArt(prepared, size)
    if path.suffix and not path.exists():
        raise AvatarError(f"avatar image {name_or_image} does not exist")
    raise AvatarError(
        f"unknown avatar {name_or_image!r}; available: {', '.join(available())}, "
        "or the path of a portrait image"
    )


def check_size(size: int) -> None:
    if size < MIN_SIZE or size > MAX_SIZE or size % 4:
        raise AvatarError(
            f"avatar size {size} must be a multiple of 4 between {MIN_SIZE} and {MAX_SIZE}"
        )


def get_composer(name_or_image: str, size: int = 512, warm: bool = False) -> FrameComposer:
    """The shared renderer of an avatar at a size, built here on first use; `warm` also fills
    every cache now (a service at startup) instead of on first use of each pose and sprite.
    Takes image paths too: for offline commands, never for names from a request."""
    check_size(size)
    key = (name_or_image, size)
    composer = _COMPOSERS.get(key)
    if composer is None:
        composer = FrameComposer(_load_art(name_or_image, size))
        _COMPOSERS[key] = composer
    if warm:
        composer.warm_up()
        logger.info("avatar renderer ready", extra={"avatar": name_or_image, "size": size})
    return composer


def build_composer(avatar_id: str, size: int) -> FrameComposer:
    """A new warm renderer of an avatar given by id (what the build process runs)."""
    check_size(size)
    composer = FrameComposer(_load_art(avatar_id, size, ids_only=True))
    composer.warm_up()
    return composer


async def get_composer_async(avatar_id: str, size: int = 512) -> FrameComposer:
    """The shared warm renderer of an avatar given by id (a built-in character or a prepared
    portrait, never a path), built in a child process when this process has none yet, so the
    sessions running on this event loop keep their frames. Concurrent callers for one avatar
    share one build. Raises AvatarError for an unknown or unusable avatar, AvatarBuildError
    when the build process fails or times out."""
    check_size(size)
    check_avatar_id(avatar_id)
    key = (avatar_id, size)
    composer = _COMPOSERS.get(key)
    if composer is not None and composer.warm:
        return composer
    task = _BUILDING.get(key)
    if task is None:
        task = asyncio.create_task(_build_elsewhere(avatar_id, size), name=f"build-{avatar_id}")
        _BUILDING[key] = task
        task.add_done_callback(lambda _: _BUILDING.pop(key, None))
    return await asyncio.shield(task)


async def _build_elsewhere(avatar_id: str, size: int) -> FrameComposer:
    workdir = Path(tempfile.mkdtemp(prefix="avatar-build-"))  # private (0700)
    out = workdir / "composer.bin"
    env = {**os.environ}
    # the build process imports this package wherever the service found it
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (_PACKAGE_ROOT, env.get("PYTHONPATH"))))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "avatar_worker.build_worker",
        avatar_id,
        str(size),
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        try:
            async with asyncio.timeout(BUILD_TIMEOUT_S):
                _, err = await proc.communicate()
        except TimeoutError:
            raise AvatarBuildError(
                f"building avatar {avatar_id!r} took longer than {BUILD_TIMEOUT_S:.0f} s"
            ) from None
        if proc.returncode == BUILD_EXIT_AVATAR_ERROR:
            raise AvatarError(_last_line(err) or f"avatar {avatar_id!r} cannot be used")
        if proc.returncode != 0:
            logger.error(
                "avatar build process failed",
                extra={
                    "avatar": avatar_id,
                    "exit": proc.returncode,
                    "stderr": err.decode()[-2000:],
                },
            )
            raise AvatarBuildError(
                f"building avatar {avatar_id!r} failed (build process exit {proc.returncode})"
            )
        composer = await asyncio.to_thread(read_composer, out)
    finally:
        if proc.returncode is None:  # timed out, or the service is stopping
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    existing = _COMPOSERS.get((avatar_id, size))
    if existing is not None and existing.warm:  # built here meanwhile (get_composer)
        return existing
    _COMPOSERS[(avatar_id, size)] = composer
    logger.info("avatar renderer ready", extra={"avatar": avatar_id, "size": size})
    return composer


def _last_line(err: bytes) -> str:
    lines = err.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else ""


def write_composer(composer: FrameComposer, path: Path) -> None:
    """The build process's result: pickle protocol 5, every array's bytes out of band."""
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(composer, protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    with open(path, "wb") as f:
        f.write(_HEADER.pack(len(head), len(raws)))
        for raw in raws:
            f.write(_LENGTH.pack(raw.nbytes))
        f.write(head)
        for raw in raws:
            f.write(raw)


def read_composer(path: Path) -> FrameComposer:
    """The build process's result, read into one buffer per array: the reads release the GIL,
    and the arrays are made on those buffers without another copy."""
    with open(path, "rb") as f:
        head_len, count = _HEADER.unpack(f.read(_HEADER.size))
        lengths = [_LENGTH.unpack(f.read(_LENGTH.size))[0] for _ in range(count)]
        head = f.read(head_len)
        buffers = []
        for n in lengths:
            buf = np.empty(n, dtype=np.uint8)
            if f.readinto(memoryview(buf)) != n:
                raise AvatarBuildError("the avatar build process wrote a truncated renderer")
            buffers.append(buf)
    composer = pickle.loads(head, buffers=buffers)
    if not isinstance(composer, FrameComposer):
        raise AvatarBuildError("the avatar build process wrote something else than a renderer")
    return composer


def release_composer(avatar: str, size: int) -> bool:
    """Forget a renderer no session uses any more (its memory is freed once the last session
    holding it ends); True when there was one. `trim_heap` then hands the memory back."""
    return _COMPOSERS.pop((avatar, size), None) is not None


def trim_heap() -> None:
    """Hand freed heap memory back to the system now (glibc keeps it for reuse otherwise); a
    foreign call without the GIL, run it in a thread."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
