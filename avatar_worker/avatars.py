"""Which avatars exist and the one shared renderer (FrameComposer) per avatar and size.

An avatar is a built-in character ("woman", "man"), the id of a portrait prepared under
INTERVIEW_DATA_DIR/avatars/<id>/, or (for offline commands) a path to a portrait image, which is
prepared on first use and cached there.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from pathlib import Path

from .engine import AvatarArt, FrameComposer
from .stylized import CHARACTERS, StylizedArt

logger = logging.getLogger("avatar_worker.avatars")
_COMPOSERS: dict[tuple[str, int], FrameComposer] = {}
_BUILDING: dict[tuple[str, int], asyncio.Task[FrameComposer]] = {}
AVATAR_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class AvatarError(ValueError):
    """An avatar name, image or prepared portrait that cannot be used (one-sentence message)."""


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


def _load_art(name_or_image: str, size: int) -> AvatarArt:
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


def get_composer(name_or_image: str, size: int = 512, warm: bool = False) -> FrameComposer:
    """The shared renderer of an avatar at a size, built on first use; `warm` also fills every
    cache now (a service at startup) instead of on first use of each pose and sprite."""
    if size < 64 or size > 2048 or size % 4:
        raise AvatarError(f"avatar size {size} must be a multiple of 4 between 64 and 2048")
    key = (name_or_image, size)
    composer = _COMPOSERS.get(key)
    if composer is None:
        composer = FrameComposer(_load_art(name_or_image, size))
        _COMPOSERS[key] = composer
    if warm:
        composer.warm_up()
        logger.info("avatar renderer ready", extra={"avatar": name_or_image, "size": size})
    return composer


async def get_composer_async(name_or_image: str, size: int = 512) -> FrameComposer:
    """get_composer(..., warm=True) off the event loop: drawing an avatar and filling its caches
    takes seconds (a photo portrait also runs the face models), which must not stall the frames
    of sessions already running. Concurrent callers for one avatar share one build."""
    key = (name_or_image, size)
    composer = _COMPOSERS.get(key)
    if composer is not None and composer.warm:
        return composer
    task = _BUILDING.get(key)
    if task is None:
        task = asyncio.create_task(asyncio.to_thread(get_composer, name_or_image, size, True))
        _BUILDING[key] = task
        task.add_done_callback(lambda _: _BUILDING.pop(key, None))
    return await asyncio.shield(task)
