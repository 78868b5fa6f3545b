"""A room's periodic job (active speakers, connection quality): started with the room's first
participant, stopped when the room closes; a failing round is logged and the next one runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devserver.rooms import Room

logger = logging.getLogger("devserver.rooms")


class RoomTicker(ABC):
    """Calls `tick()` every `interval_s` seconds while started."""

    interval_s: float = 1.0

    def __init__(self, room: Room) -> None:
        self._room = room
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @abstractmethod
    async def tick(self) -> None:
        """One round of the job."""

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.tick()
            except Exception:  # one bad round must not end the job for the room
                logger.exception("%s failed", type(self).__name__, extra={"room": self._room.name})
