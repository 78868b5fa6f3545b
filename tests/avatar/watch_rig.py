"""Test rig: the real avatar service app in a process of its own, holding one session.

`python tests/avatar/watch_rig.py PORT SECRET` serves AvatarService's HTTP API on 127.0.0.1:PORT
with a session "s1" that never joins a room (no LiveKit server needed), prints "ready" and runs
until killed. Tests kill or stop this process to see what an agent watching "s1" notices.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

from avatar_worker.avatars import get_composer
from avatar_worker.service import AvatarService, ServiceOptions
from avatar_worker.session import RoomSession, SessionOptions


async def main(port: int, secret: str) -> None:
    service = AvatarService(ServiceOptions(secret=secret, capacity=2, preload=()))
    options = SessionOptions("ws://127.0.0.1:1", "unused", avatar="woman", size=64)
    session = RoomSession("s1", options, get_composer("woman", 64), on_closed=service._forget)
    service.sessions["s1"] = session
    runner = web.AppRunner(service.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
