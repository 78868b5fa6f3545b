"""The avatar service: `python -m avatar_worker serve`, one per host, many rooms at once.

Each avatar's renderer is loaded once and shared by all its sessions. A small HTTP control API
(aiohttp) lets the co-located agent workers start and stop sessions:

  POST   /sessions        {"livekit_url", "token", "avatar", "size"?, "fps"?,
                           "video_delay_ms"?} -> 201 session
  GET    /sessions        the running sessions
  DELETE /sessions/{id}   stop one
  GET    /sessions/{id}/watch  the session's heartbeat: one JSON line every 250 ms while it
                          lives, a last `{"state": "closed", "reason": ...}` line when it ends
  GET    /health          status, sessions, capacity, load, built-in avatars (no secret
                          needed: no room names, no portrait ids)

`avatar` is a built-in character or the id of a portrait prepared under
INTERVIEW_DATA_DIR/avatars/ (by the web API's upload or `python -m avatar_worker prepare`),
never a path; `size` is a multiple of 4 from 64 to MAX_SESSION_SIZE (768) px. No route serves
a portrait's image. An avatar not built yet is built in a process of its own (avatars.py), so
the sessions running keep their frames meanwhile; a start waiting for it counts against the
capacity, and a portrait's renderer is let go when its last session ends.

Requests other than /health carry `Authorization: Bearer <AVATAR_SERVICE_SECRET>` when a secret
is set; without one the service only listens on a loopback address. At capacity a new session is
refused with 503 and a reason instead of degrading every running interview.

The watch is how the agent learns at once that its avatar is gone: a killed service closes the
stream (the agent sees the connection drop), a hung one stops beating. The LiveKit server cannot
tell it that soon: livekit-server keeps a participant whose connection dropped for ~20 s.

The default capacity is one session per CPU core the service may use: each session stands for a
whole interview on the host (the interviewer's job next to it), and on two cores the targets held
for two offline interviews at once, while three kept their frames but not their latency (README,
"Measured figures").
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import ipaddress
import json
import logging
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from agent.ports import listen_refusal

from .avatars import (
    AvatarBuildError,
    AvatarError,
    check_avatar_id,
    get_composer,
    get_composer_async,
    release_composer,
    trim_heap,
)
from .session import RoomSession, SessionError, SessionOptions
from .stylized import CHARACTERS

logger = logging.getLogger("avatar_worker.service")

SECRET_ENV = "AVATAR_SERVICE_SECRET"
CAPACITY_ENV = "AVATAR_SERVICE_CAPACITY"
VIDEO_DELAY_ENV = "AVATAR_VIDEO_DELAY_MS"
# video handed to the room this long after its audio starts playing: browsers (livekit-client in
# Chromium) buffer the audio path more than the video path, so the mouth would lead the voice;
# measured with `python -m avatar_worker.browser_av_bench` (README, "A/V offset")
DEFAULT_VIDEO_DELAY_MS = 70
MAX_VIDEO_DELAY_MS = 200
CGROUP_ROOT = Path("/sys/fs/cgroup")
CORES_PER_SESSION = 1
PRELOAD = ("woman", "man")
# the largest frame a session may ask for: a renderer caches 105 head poses and the sprites at
# that size, ~70 MB at 512 px (the default), ~135 MB at 768, ~280 MB at 1024 (2048 px grew the
# service by 1.1 GB), and a session's frames cost the CPU in proportion (the capacity assumes 512)
MAX_SESSION_SIZE = 768
# the watch's heartbeat period; the agent gives up on a service silent for three of them
WATCH_INTERVAL_S = 0.25
# a watcher that takes no data for this long (its process hung, its host gone) is let go
WATCH_WRITE_TIMEOUT_S = 10.0


class ServiceConfigError(ValueError):
    """A setting the service cannot start with (one sentence)."""


def cgroup_cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """Cores allowed by the cgroup's CPU quota (a container's CPU limit); None when unlimited
    or unknown. cgroup v2 `cpu.max`, else v1 `cpu/cpu.cfs_quota_us`."""
    try:
        v2 = root / "cpu.max"
        if v2.exists():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        v1 = root / "cpu" / "cpu.cfs_quota_us"
        if v1.exists():
            quota_us = int(v1.read_text())
            period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
            return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None
    return None


def default_capacity(root: Path = CGROUP_ROOT) -> int:
    """One session per CORES_PER_SESSION CPU cores this process may use (its affinity, and a
    container's quota), at least one.

    Measured on a 2-core host with the offline stack (room_bench; the candidates' clients and
    the dev server on the same cores, 2026-11-23): two interviews at once replied in 0.83-1.0 s
    (ordinary turns), stopped for a barge-in in 0.25-0.31 s and lost no frame; three lost at
    most one frame an interview in five runs of eight, but replied in 0.9-1.7 s. An interview
    takes ~0.3 core on average (interviewer job 0.16, avatar 0.10, dev server 0.03), but its
    bursts (Whisper decoding an answer, a reply's speech) need the rest."""
    return max(1, usable_cores(root) // CORES_PER_SESSION)


def usable_cores(root: Path = CGROUP_ROOT) -> int:
    """Whole CPU cores this process may use: its affinity, lowered by a container's quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota(root)
    if quota is not None:
        cores = min(cores, int(quota))
    return max(1, cores)


@dataclass(frozen=True)
class ServiceOptions:
    host: str = "127.0.0.1"
    port: int = 8089
    secret: str = ""
    capacity: int = field(default_factory=default_capacity)
    size: int = 512
    fps: float = 25.0
    preload: tuple[str, ...] = PRELOAD
    video_delay_ms: int = DEFAULT_VIDEO_DELAY_MS

    @classmethod
    def from_env(cls, host: str, port: int, capacity: int | None = None) -> ServiceOptions:
        secret = os.environ.get(SECRET_ENV, "")
        if capacity is None:
            raw = os.environ.get(CAPACITY_ENV) or str(default_capacity())
            try:
                capacity = int(raw)
            except ValueError:
                raise ServiceConfigError(
                    f"{CAPACITY_ENV} must be an integer, not {raw!r}"
                ) from None
        if capacity < 1:
            raise ServiceConfigError("the avatar service capacity must be at least 1")
        video_delay_ms = parse_video_delay_ms(
            os.environ.get(VIDEO_DELAY_ENV, str(DEFAULT_VIDEO_DELAY_MS)), VIDEO_DELAY_ENV
        )
        if not secret and not is_loopback(host):
            raise ServiceConfigError(
                f"refusing to listen on {host} without {SECRET_ENV}: set a shared secret or "
                "listen on 127.0.0.1"
            )
        return cls(
            host=host, port=port, secret=secret, capacity=capacity, video_delay_ms=video_delay_ms
        )


def parse_video_delay_ms(raw: object, name: str) -> int:
    """A video delay in whole milliseconds, 0 to MAX_VIDEO_DELAY_MS (`name` for the error)."""
    try:
        value = int(raw) if isinstance(raw, int | str) and not isinstance(raw, bool) else None
    except ValueError:
        value = None
    if value is None or not 0 <= value <= MAX_VIDEO_DELAY_MS:
        raise ServiceConfigError(
            f"{name} must be a whole number of milliseconds from 0 to {MAX_VIDEO_DELAY_MS}, "
            f"not {raw!r}"
        )
    return value


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class AvatarService:
    options: ServiceOptions
    sessions: dict[str, RoomSession] = field(default_factory=dict)
    pending: int = 0  # sessions being started (they count against capacity)
    warmed: set[tuple[str, int]] = field(default_factory=set)
    started_at: float = field(default_factory=time.time)
    watchers: int = 0  # open watch streams
    # (avatar, size) of each session being started (its renderer must stay)
    starting: list[tuple[str, int]] = field(default_factory=list)
    _background: set[asyncio.Task[None]] = field(default_factory=set)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    # ---- lifecycle -----------------------------------------------------------------------
    def preload(self) -> None:
        """Draw every preloaded avatar now, side by side: most of the drawing releases the GIL,
        so two avatars on two cores take little longer than one."""
        size = self.options.size
        workers = max(1, min(len(self.options.preload), usable_cores()))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for name, _ in zip(
                self.options.preload,
                pool.map(lambda n: get_composer(n, size, warm=True), self.options.preload),
                strict=True,
            ):
                self.warmed.add((name, size))

    async def stop_all(self, reason: str = "service stopping") -> None:
        self.stopping.set()  # watch streams end even if a session is slow to close
        await asyncio.gather(
            *(s.aclose(reason) for s in list(self.sessions.values())), return_exceptions=True
        )

    def _forget(self, session: RoomSession) -> None:
        self.sessions.pop(session.session_id, None)
        self._release_unused(session.options.avatar, session.options.size)

    def _release_unused(self, avatar: str, size: int) -> None:
        """Let an avatar's renderer go when no session (running or starting) uses it and it is
        not preloaded: every interview may bring its own portrait, and each renderer holds
        tens of MB."""
        key = (avatar, size)
        if key in self.starting or (avatar in self.options.preload and size == self.options.size):
            return
        if any((s.options.avatar, s.options.size) == key for s in self.sessions.values()):
            return
        if release_composer(avatar, size):
            self.warmed.discard(key)
            logger.info("avatar renderer released", extra={"avatar": avatar, "size": size})
            task = asyncio.get_running_loop().create_task(asyncio.to_thread(trim_heap))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    # ---- figures -------------------------------------------------------------------------
    @property
    def load(self) -> float:
        return min(1.0, (len(self.sessions) + self.pending) / self.options.capacity)

    def health(self) -> dict[str, object]:
        busy = len(self.sessions) + self.pending
        return {
            "status": "full" if busy >= self.options.capacity else "ok",
            "sessions": len(self.sessions),
            "starting": self.pending,
            "watchers": self.watchers,
            "capacity": self.options.capacity,
            "load": round(self.load, 3),
            "avatars": list(CHARACTERS),  # not the portraits: their ids are their uploaders'
            "uptime_s": round(time.time() - self.started_at, 1),
        }

    # ---- HTTP ----------------------------------------------------------------------------
    def _authorized(self, request: web.Request) -> bool:
        if not self.options.secret:
            return True
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip()
        return hmac.compare_digest(token.encode(), self.options.secret.encode())

    @web.middleware
    async def _auth(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        if request.path != "/health" and not self._authorized(request):
            return _error(401, "missing or wrong Authorization bearer secret")
        return await handler(request)

    async def handle_health(self, _request: web.Request) -> web.Response:
        return web.json_response(self.health())

    async def handle_list(self, _request: web.Request) -> web.Response:
        reports = await asyncio.gather(*(s.report() for s in list(self.sessions.values())))
        return web.json_response({"sessions": list(reports)})

    async def handle_start(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the request body must be a JSON object")
        if not isinstance(body, dict):
            return _error(400, "the request body must be a JSON object")
        try:
            options = self._session_options(body)
        except ValueError as e:
            return _error(400, str(e))
        if len(self.sessions) + self.pending >= self.options.capacity:
            logger.warning("refusing a session: at capacity", extra=self.health())
            return _error(
                503,
                f"at capacity: {len(self.sessions)} of {self.options.capacity} sessions running",
                reason="capacity",
            )
        key = (options.avatar, options.size)
        # counted from here: a start waiting seconds for its avatar holds its place
        self.pending += 1
        self.starting.append(key)
        session_id = ""
        try:
            # each avatar (and size) is built and warmed once, then shared by its sessions; a
            # new one is built in a process of its own (avatars.py), which keeps the running
            # sessions' frames and watch heartbeats on time
            composer = await get_composer_async(*key)
            self.warmed.add(key)
            if request.transport is None or request.transport.is_closing():
                # the agent gave up waiting (it runs audio-only now): an avatar joining its
                # room anyway would be a face nobody speaks through
                logger.warning(
                    "session start abandoned: the requester left while its avatar was built",
                    extra={"avatar": options.avatar},
                )
                return _error(408, "the requester went away while the avatar was built")
            session_id = uuid.uuid4().hex[:12]
            session = RoomSession(session_id, options, composer, on_closed=self._forget)
            await session.connect()
            self.sessions[session_id] = session
        except AvatarError as e:
            return _error(400, str(e))
        except AvatarBuildError as e:
            return _error(503, str(e), reason="avatar_build")
        except SessionError as e:
            logger.warning("session refused", extra={"session": session_id, "error": str(e)})
            return _error(502, str(e), reason="livekit")
        finally:
            self.pending -= 1
            self.starting.remove(key)
            if session_id not in self.sessions:  # refused, or the request went away
                self._release_unused(*key)
        return web.json_response(session.info(), status=201)

    async def handle_stop(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["session_id"])
        if session is None:
            return _error(404, f"no session {request.match_info['session_id']}")
        await session.aclose("stopped by request")
        return web.json_response(session.info())

    async def handle_watch(self, request: web.Request) -> web.StreamResponse:
        """`GET /sessions/{id}/watch`: newline-delimited JSON, `{"state": ..., "beat": n}` every
        WATCH_INTERVAL_S while the session lives, then `{"state": "closed", "reason": ...}` and
        the end of the stream. Costs one sleeping coroutine per watcher; writes wait for a slow
        reader without holding up anything else, and give up on a stuck one."""
        session_id = request.match_info["session_id"]
        session = self.sessions.get(session_id)
        if session is None:
            return _error(404, f"no session {session_id}")
        response = web.StreamResponse(
            headers={"Content-Type": "application/x-ndjson", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        self.watchers += 1
        # the service's log format drops `extra`: the room (the interview's id) is in the words
        logger.info(
            "session %s watched, room %s", session_id, session.room_name, extra=session.log_extra
        )
        ended = asyncio.ensure_future(session.closed.wait())
        stopping = asyncio.ensure_future(self.stopping.wait())
        beat = 0
        try:
            while not ended.done() and not stopping.done():
                await _write_line(response, {"state": session.state, "beat": beat})
                beat += 1
                await asyncio.wait(
                    (ended, stopping), timeout=WATCH_INTERVAL_S, return_when=asyncio.FIRST_COMPLETED
                )
            reason = session.close_reason if ended.done() else "service stopping"
            await _write_line(response, {"state": "closed", "reason": reason})
            await response.write_eof()
        except (ConnectionError, TimeoutError) as e:
            # the watcher went away or stopped reading: nobody left to tell
            logger.info(
                "session %s watch ended by the watcher (%s), room %s",
                session_id,
                e.__class__.__name__,
                session.room_name,
                extra=session.log_extra,
            )
        finally:
            self.watchers -= 1
            for waiter in (ended, stopping):
                waiter.cancel()
        return response

    def _session_options(self, body: dict[str, object]) -> SessionOptions:
        allowed = {"livekit_url", "token", "avatar", "size", "fps", "video_delay_ms"}
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}")
        url, token = body.get("livekit_url"), body.get("token")
        if not isinstance(url, str) or not url.startswith(("ws://", "wss://", "http", "https")):
            raise ValueError("livekit_url must be a ws://, wss://, http:// or https:// URL")
        if not isinstance(token, str) or not token:
            raise ValueError("token must be a non-empty string")
        avatar = body.get("avatar", "woman")
        if not isinstance(avatar, str) or not avatar:
            raise ValueError("avatar must be a non-empty string")
        check_avatar_id(avatar)  # an id, never a path (AvatarError is a ValueError)
        size = body.get("size", self.options.size)
        if (
            not isinstance(size, int)
            or isinstance(size, bool)
            or not 64 <= size <= MAX_SESSION_SIZE
            or size % 4
        ):
            raise ValueError(f"size must be a multiple of 4 between 64 and {MAX_SESSION_SIZE}")
        fps = body.get("fps", self.options.fps)
        if not isinstance(fps, int | float) or not 5 <= fps <= 60:
            raise ValueError("fps must be between 5 and 60")
        # per session (benchmarks compare delays in one run); the service's setting otherwise
        delay_ms = parse_video_delay_ms(
            body.get("video_delay_ms", self.options.video_delay_ms), "video_delay_ms"
        )
        return SessionOptions(url, token, avatar, size, float(fps), video_delay_s=delay_ms / 1000)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/health", self.handle_health)
        app.router.add_get("/sessions", self.handle_list)
        app.router.add_post("/sessions", self.handle_start)
        app.router.add_delete("/sessions/{session_id}", self.handle_stop)
        app.router.add_get("/sessions/{session_id}/watch", self.handle_watch)

        async def _cleanup(_app: web.Application) -> None:
            await self.stop_all()

        app.on_shutdown.append(_cleanup)
        return app


async def _write_line(response: web.StreamResponse, message: dict[str, object]) -> None:
    """One JSON line of a watch stream, bounded in time: a watcher whose process hung stops
    reading, and its socket buffer filling up must not keep this coroutine forever."""
    async with asyncio.timeout(WATCH_WRITE_TIMEOUT_S):
        await response.write(json.dumps(message).encode() + b"\n")


def _error(status: int, message: str, reason: str = "") -> web.Response:
    body: dict[str, str] = {"error": message}
    if reason:
        body["reason"] = reason
    return web.json_response(body, status=status)


async def serve(options: ServiceOptions) -> None:
    """Run until cancelled (Ctrl-C): preload avatars, listen, stop every session on exit."""
    service = AvatarService(options)
    service.preload()
    runner = web.AppRunner(service.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, options.host, options.port)
    await site.start()
    logger.info(
        "avatar service listening",
        extra={
            "host": options.host,
            "port": options.port,
            "capacity": options.capacity,
            "video_delay_ms": options.video_delay_ms,
        },
    )
    print(
        f"avatar service on http://{options.host}:{options.port} "
        f"(capacity {options.capacity}, video delay {options.video_delay_ms} ms, "
        f"avatars {', '.join(CHARACTERS)} and prepared portraits)",
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def cmd_serve(args: argparse.Namespace) -> int:
    """`python -m avatar_worker serve`: bad settings or a taken port give one line, exit 2."""
    logging.getLogger().setLevel(logging.INFO)
    try:
        options = ServiceOptions.from_env(args.host, args.port, args.capacity)
    except ServiceConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if reason := listen_refusal(options.host, options.port):
        print(f"error: cannot listen on {options.host}:{options.port} ({reason})", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(options))
    except KeyboardInterrupt:
        pass
    return 0


def add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="the avatar service for LiveKit rooms (HTTP control API)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8089)
    p.add_argument(
        "--capacity",
        type=int,
        help=f"most sessions at once (default ${CAPACITY_ENV}, else one per CPU core)",
    )
    p.epilog = (
        f"settings: ${SECRET_ENV} (shared secret, required off loopback), ${CAPACITY_ENV} "
        f"(default: one per CPU core, {default_capacity()} here), ${VIDEO_DELAY_ENV} "
        "(video after its audio, "
        f"0-{MAX_VIDEO_DELAY_MS} ms, default {DEFAULT_VIDEO_DELAY_MS}: centres the A/V offset "
        "in Chromium)"
    )
    p.set_defaults(func=cmd_serve)
