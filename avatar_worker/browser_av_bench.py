"""A/V offset as a candidate's browser sees the avatar: `python -m avatar_worker.browser_av_bench`.

The candidate watches in Chromium (web/client, livekit-client), whose audio path buffers more
than its video path, so the offset it sees differs from the one the Python SDK receiver of
room_bench measures. This starts a LiveKit server (`--server devserver`, this repository's, or
`--server livekit`, the real livekit-server that set-up builds; both with livekit.yaml's room
settings, so each room is created through the server API before anyone joins) and an avatar
service on free loopback ports, and for each video delay in turn (alternating, so load drifts
hit every delay alike) runs one avatar session driven by a stand-in agent (room_bench's helpers)
in a fresh room, watched at once by

- headless Chromium: a page (browser_av/index.html) that joins with livekit-client, plays the
  avatar's tracks as livekit-client attaches them and records audio energy (WebAudio analyser,
  10 ms steps, plus the audio context's output latency) and the mouth opening of each displayed
  frame (requestVideoFrameCallback's expected display time; room_probe's mouth box and
  threshold), and
- room_probe's Python SDK receiver,

then pools the per-phrase-onset lags (room_probe's onset method; positive: video late) of each
receiver per delay and prints median, p10 and p90.

Timings depend on the machine; on a shared 2-core box they are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web
from livekit import api

from agent.livekit_server import (
    LiveKitServerMissing,
    LocalLiveKitServer,
    LocalServerOptions,
    production_room_settings,
)
from agent.ports import free_loopback_port, http_ok, port_in_use
from devserver.__main__ import room_flags

from .headless_chromium import CHROMIUM, CHROMIUM_ARGS
from .room_bench import SPEECH, _token, frame_drops, start_avatar, stream_speech
from .room_probe import (
    _MOUTH_BOX,
    _SWAY,
    AUDIO_RATE,
    DARK_Y,
    Received,
    RoomProbe,
    VideoSample,
    av_onset_lags_s,
    espeak,
)
from .service import ServiceConfigError, parse_video_delay_ms

ROOT = Path(__file__).resolve().parents[1]
PAGE_DIR = Path(__file__).resolve().parent / "browser_av"
# the web client's livekit-client first (what the candidate runs), else the browser test's
LIVEKIT_CLIENT = [
    ROOT / p / "node_modules" / "livekit-client" / "dist" / "livekit-client.umd.js"
    for p in ("web/client", "tests/devserver/browser")
]
# the page must play audio without a user gesture
BENCH_CHROMIUM_ARGS = [*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"]
KEY, SECRET = "devkey", "secret"
SERVER_KINDS = ("devserver", "livekit")


class BenchError(RuntimeError):
    """Something the benchmark needs is missing (one sentence)."""


class Servers:
    """A LiveKit server (`kind`: the dev server or the real livekit-server) and an avatar service
    as child processes, logs in `work`."""

    def __init__(self, work: Path, kind: str = "devserver") -> None:
        self.kind = kind
        self.avatar_port = free_loopback_port()
        self.avatar_url = f"http://127.0.0.1:{self.avatar_port}"
        self.work = work
        self.procs: list[subprocess.Popen[bytes]] = []
        self.livekit: LocalLiveKitServer | None = None
        if kind == "livekit":
            try:
                self.livekit = LocalLiveKitServer(
                    LocalServerOptions(keys={KEY: SECRET}), workdir=work / "livekit-server"
                )
            except LiveKitServerMissing as e:
                raise BenchError(str(e)) from None
            self.url = self.livekit.url
        else:
            self.lk_port = free_loopback_port()
            self.url = f"ws://127.0.0.1:{self.lk_port}"

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()  # what did start
            raise

    def _start(self) -> None:
        py = sys.executable
        if self.livekit is not None:
            try:
                self.livekit.start()
            except RuntimeError as e:
                raise BenchError(f"livekit-server did not start ({e})") from None
            plan = []
        else:
            # livekit.yaml's room settings, as the real server gets them
            plan = [
                ("devserver", [py, "-m", "devserver", "--port", str(self.lk_port),
                               "--keys", f"{KEY}: {SECRET}", "--log-level", "WARNING",
                               *room_flags(production_room_settings())],
                 lambda: port_in_use("127.0.0.1", self.lk_port)),
            ]  # fmt: skip
        plan.append(
            ("avatar-service", [py, "-m", "avatar_worker", "serve",
                                "--port", str(self.avatar_port), "--capacity", "2"],
             lambda: http_ok(f"{self.avatar_url}/health")),
        )  # fmt: skip
        for name, argv, ready in plan:
            log = (self.work / f"{name}.log").open("wb")
            self.procs.append(
                subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
            )
            deadline = time.monotonic() + 90
            while not ready():
                if self.procs[-1].poll() is not None or time.monotonic() > deadline:
                    raise BenchError(f"{name} did not start; see {self.work / name}.log")
                time.sleep(0.2)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.livekit is not None:
            self.livekit.stop()

    def server_api(self) -> api.LiveKitAPI:
        """The server API (rooms are created through it: livekit.yaml's `auto_create: false`
        refuses joins to rooms that do not exist)."""
        return api.LiveKitAPI(self.url.replace("ws", "http", 1), KEY, SECRET)


async def _serve_page() -> tuple[web.AppRunner, str]:
    lib = next((p for p in LIVEKIT_CLIENT if p.is_file()), None)
    if lib is None:
        raise BenchError(
            f"livekit-client is not installed ({LIVEKIT_CLIENT[0]}): run scripts/setup.sh"
        )
    app = web.Application()

    async def livekit_client(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(lib)

    app.router.add_get("/lib/livekit-client.umd.js", livekit_client)
    app.router.add_static("/", PAGE_DIR)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_loopback_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/index.html"


def browser_received(data: dict[str, Any]) -> Received:
    """What the page recorded, as room_probe's Received (seconds on the page's clock)."""
    rec = Received("avatar")
    rec.audio_t, rec.audio_rms = list(data["audio_t"]), list(data["audio_rms"])
    w, h = int(data["width"]), int(data["height"])
    rec.video = [
        VideoSample(float(t), w, h, float(m), 0)
        for t, m in zip(data["video_t"], data["video_mouth"], strict=True)
    ]
    return rec


async def one_session(
    servers: Servers, page: Any, pcm: np.ndarray, delay_ms: int, speeches: int
) -> dict[str, Any]:
    """One avatar session at `delay_ms`, watched by the page and a Python receiver."""
    room = f"avbench-{uuid.uuid4().hex[:6]}"
    async with servers.server_api() as lk:
        await lk.room.create_room(api.CreateRoomRequest(name=room))
    probe = RoomProbe()
    await probe.connect(servers.url, _token(KEY, SECRET, "py-candidate", room))
    box = [*_MOUTH_BOX, _SWAY, DARK_Y]
    await page.evaluate(
        "([u, t, p, b]) => avBench.join(u, t, p, b)",
        [servers.url, _token(KEY, SECRET, "candidate", room), "avatar-", box],
    )
    agent, out, info = await start_avatar(
        servers.url, KEY, SECRET, servers.avatar_url, room, video_delay_ms=delay_ms
    )
    try:
        deadline = time.monotonic() + 30
        while not (await page.evaluate("avBench.rec.video_t.length")) or not any(
            r.video for r in probe.received.values() if r.identity.startswith("avatar-")
        ):
            if time.monotonic() > deadline:
                state = await page.evaluate("avBench.rec.errors")
                raise BenchError(f"the avatar's video did not reach both receivers ({state})")
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        for _ in range(speeches):
            await stream_speech(out, pcm)
            await out.wait_for_playout()
            await asyncio.sleep(0.8)
        data = await page.evaluate("avBench.take()")
        sessions = await _sessions(servers.avatar_url)
    finally:
        await page.evaluate("avBench.leave()")
        await probe.aclose()
        await agent.disconnect()
        async with servers.server_api() as lk:  # else kept for departure_timeout
            await lk.room.delete_room(api.DeleteRoomRequest(room=room))
    py = next(r for r in probe.received.values() if r.identity.startswith("avatar-"))
    published = sessions.get(info["id"], {}).get("av_offset_published_ms", {})
    _fps_in, _missing, stalls = frame_drops(py, py.video[0].t, py.video[-1].t)
    return {
        "python_sdk_stalls_over_100ms": stalls,
        "browser": av_onset_lags_s(browser_received(data)),
        "python": av_onset_lags_s(py),
        "published_median_ms": published.get("median"),
        "browser_output_latency_ms": round(float(data["output_latency_s"]) * 1000, 1),
        "browser_video_fps": _fps(data["video_t"]),
        "errors": data["errors"],
    }


def _fps(times: list[float]) -> float:
    return round((len(times) - 1) / (times[-1] - times[0]), 1) if len(times) > 1 else 0.0


async def _sessions(service_url: str) -> dict[str, dict[str, Any]]:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(f"{service_url}/sessions") as resp:
        return {x["id"]: x for x in (await resp.json())["sessions"]}


def _summary(lags_s: list[float]) -> dict[str, Any]:
    if not lags_s:
        return {"onsets": 0}
    ms = np.asarray(lags_s) * 1000
    return {
        "median": round(float(np.median(ms)), 1),
        "p10": round(float(np.percentile(ms, 10)), 1),
        "p90": round(float(np.percentile(ms, 90)), 1),
        "onsets": int(ms.size),
    }


async def run(
    delays: list[int], rounds: int, speeches: int, server: str = "devserver"
) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    work = Path(tempfile.mkdtemp(prefix="browser-av-"))
    pcm = await espeak(SPEECH, "en", work / "speech.wav")
    assert pcm.size > AUDIO_RATE
    servers = Servers(work, server)
    await asyncio.to_thread(servers.start)
    runner, page_url = await _serve_page()
    runs: dict[int, list[dict[str, Any]]] = {d: [] for d in delays}
    load_before = [round(x, 2) for x in os.getloadavg()]
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=BENCH_CHROMIUM_ARGS)
            page = await browser.new_page()
            await page.goto(page_url)
            for r in range(rounds):
                # rotate the order each round, so no delay always runs first or last
                for delay in delays[r % len(delays) :] + delays[: r % len(delays)]:
                    print(f"round {r + 1}/{rounds}: video delay {delay} ms ...", file=sys.stderr)
                    runs[delay].append(await one_session(servers, page, pcm, delay, speeches))
            await browser.close()
    finally:
        await runner.cleanup()
        await asyncio.to_thread(servers.stop)
    return {
        "note": "positive: video late; shared 2-core machine, figures are noisy",
        "server": server,
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "by_delay_ms": {
            str(d): {
                "chromium_av_offset_ms": _summary([x for s in rs for x in s["browser"]]),
                "python_sdk_av_offset_ms": _summary([x for s in rs for x in s["python"]]),
                "published_median_ms": [s["published_median_ms"] for s in rs],
                "chromium_output_latency_ms": sorted({s["browser_output_latency_ms"] for s in rs}),
                "chromium_video_fps": [s["browser_video_fps"] for s in rs],
                # gaps over 100 ms in the video the Python receiver got, per session
                "python_sdk_stalls_over_100ms": [s["python_sdk_stalls_over_100ms"] for s in rs],
                "page_errors": [e for s in rs for e in s["errors"]],
            }
            for d, rs in runs.items()
        },
    }


def _delay(value: str) -> int:
    try:
        return parse_video_delay_ms(value, "a video delay")
    except ServiceConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m avatar_worker.browser_av_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--delays", type=_delay, nargs="+", default=[0, 40, 80], help="video delays, ms")
    p.add_argument("--rounds", type=int, default=3, help="sessions per delay (alternating)")
    p.add_argument("--speeches", type=int, default=2, help="sentences spoken per session")
    p.add_argument(
        "--server",
        choices=SERVER_KINDS,
        default="devserver",
        help="the LiveKit server started: the dev server or the real livekit-server",
    )
    p.add_argument("--json", action="store_true", help="one JSON object")
    args = p.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"error: Chromium is not installed at {CHROMIUM}", file=sys.stderr)
        return 1
    try:
        result = asyncio.run(run(args.delays, args.rounds, args.speeches, args.server))
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
