"""GET /health: version, LiveKit reachability, avatar service capacity, GPUs."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tomllib
from importlib import metadata

import httpx

from .livekit_ops import LiveKitRooms
from .models import AvatarServiceHealth, GpuInfo, Health, LiveKitHealth
from .settings import REPO_ROOT


def version() -> str:
    try:
        return metadata.version("interview-avatar")
    except metadata.PackageNotFoundError:  # run from a checkout that was not pip-installed
        try:
            with open(REPO_ROOT / "pyproject.toml", "rb") as f:
                return str(tomllib.load(f)["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


async def avatar_service(client: httpx.AsyncClient, url: str) -> AvatarServiceHealth:
    try:
        res = await client.get(url.rstrip("/") + "/health", timeout=2.0)
        res.raise_for_status()
        body = res.json()
    except (httpx.HTTPError, ValueError) as e:
        return AvatarServiceHealth(url=url, reachable=False, error=str(e) or type(e).__name__)
    if not isinstance(body, dict):
        body = {"body": body}

    def count(key: str) -> int | None:
        value = body.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    # avatar_worker/service.py reports its total capacity and the sessions running or starting
    capacity, running, starting = count("capacity"), count("sessions"), count("starting")
    free = None if capacity is None else max(0, capacity - (running or 0) - (starting or 0))
    return AvatarServiceHealth(
        url=url,
        reachable=True,
        capacity=capacity,
        active_sessions=running,
        free_sessions=free,
        details=body,
    )


def _gpus() -> GpuInfo:
    # nvidia-smi rather than importing torch: /health must stay fast and light
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return GpuInfo(available=False)
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=3,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return GpuInfo(available=False)
    names = [line.strip() for line in out.splitlines() if line.strip()]
    return GpuInfo(available=bool(names), names=names)


_gpu_cache: GpuInfo | None = None


async def health(rooms: LiveKitRooms, client: httpx.AsyncClient, avatar_url: str) -> Health:
    global _gpu_cache
    lk_error, avatar = await asyncio.gather(rooms.check(), avatar_service(client, avatar_url))
    if _gpu_cache is None:
        _gpu_cache = await asyncio.to_thread(_gpus)
    livekit = LiveKitHealth(
        url=rooms.settings.livekit_url, reachable=lk_error is None, error=lk_error
    )
    return Health(
        status="ok" if livekit.reachable and avatar.reachable else "degraded",
        version=version(),
        livekit=livekit,
        avatar_service=avatar,
        gpu=_gpu_cache,
    )
