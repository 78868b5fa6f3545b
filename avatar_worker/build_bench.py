"""What building a new avatar costs the sessions already running on the avatar service.

`python -m avatar_worker.build_bench [--runs 3] [--sessions 1] [--size 512] [--busy 0]
[--thread] [--on-loop] [--json]`

Runs `--sessions` avatar sessions in this process as the service runs them (lip-sync generator,
PairedSynchronizer, real AudioSource and VideoSource, speech fed in real time; no room), then
has the service's own build path (`avatars.get_composer_async`, what `POST /sessions` awaits for
an avatar not built yet: a build process) build a new photo-portrait avatar, and counts what
the running sessions lost meanwhile: frame slots skipped and gaps over 100 ms between the
frames handed to the room (the figures `GET /sessions` reports as `video_stalls`), and the
event loop's longest delay. Each build run is followed by a run of the same length without a
build, and a sleeper process measures how late the host itself woke processes (hiccups.py), so
a busy shared host is told apart from a cost of the build. `--thread` adds, in every run, the
same build in a thread of this process (how the service built before), `--on-loop` one build
on the event loop (how it built before that). The process's resident memory is reported before
the builds, after them, and after the renderers were let go (as the service does when their
last session ends). `--busy N` keeps N other processes spinning at normal priority meanwhile,
as the interviewer jobs beside the service do when they decode an answer or speak.

The portrait is skimage's astronaut photo (a dev dependency), prepared once, then copied under
a fresh id for every run so that each build starts from nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from livekit import rtc
from livekit.agents.voice.avatar import AudioSegmentEnd

from .bench import SAMPLE_RATE, _rss_mb, speech_like
from .engine import FrameComposer
from .generator import GeneratorOptions, LipSyncVideoGenerator
from .hiccups import HiccupMeter
from .sync import PairedSynchronizer

LOOP_TICK_S = 0.005
SETTLE_S = 1.5  # sessions run this long before a measurement starts
IDLE_RUN_S = 4.0  # a run without a build when there is no build time to match yet


@dataclass
class RunFigures:
    kind: str  # "process" (the service's), "thread", "idle" (no build) or "on_loop"
    seconds: float
    build_s: float | None
    frames_published: int
    slots_missed: int
    stalls_over_100ms: int
    loop_lag_max_ms: float
    host_late_max_ms: float
    host_lost_share: float


class _Session:
    """One running avatar session without a room: generator -> synchronizer -> sources."""

    def __init__(self, composer: FrameComposer, seed: int) -> None:
        self.gen = LipSyncVideoGenerator(
            composer, GeneratorOptions(sample_rate=SAMPLE_RATE), seed=seed
        )
        self.audio = rtc.AudioSource(SAMPLE_RATE, 1, queue_size_ms=100)
        self.video = rtc.VideoSource(composer.size, composer.size)
        self.sync = PairedSynchronizer(
            audio_source=self.audio, video_source=self.video, video_fps=25.0
        )
        self._tasks = [asyncio.create_task(self._forward()), asyncio.create_task(self._feed())]

    async def _forward(self) -> None:
        async for item in self.gen:
            if not isinstance(item, AudioSegmentEnd):
                await self.sync.push(item)

    async def _feed(self) -> None:
        """Speech in 10 ms frames at real time, phrase after phrase, as the agent streams it."""
        pcm = speech_like(3.0)
        step = SAMPLE_RATE // 100
        while True:
            start = time.perf_counter()
            for i, offset in enumerate(range(0, pcm.size, step)):
                chunk = pcm[offset : offset + step]
                await self.gen.push_audio(
                    rtc.AudioFrame(chunk.tobytes(), SAMPLE_RATE, 1, chunk.size)
                )
                delay = start + (i + 1) * 0.01 - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            await self.gen.push_audio(AudioSegmentEnd())
            await asyncio.sleep(0.3)

    def counts(self) -> tuple[int, int, int]:
        s = self.sync
        return s.frames_published, s.slots_missed, s.stalls

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.sync.aclose()
        await self.audio.aclose()
        await self.video.aclose()


async def _loop_lag(stop: asyncio.Event, out: list[float]) -> None:
    while not stop.is_set():
        t = time.perf_counter()
        await asyncio.sleep(LOOP_TICK_S)
        out.append(time.perf_counter() - t - LOOP_TICK_S)


async def _measure(kind: str, sessions: list[_Session], work) -> RunFigures:  # type: ignore[no-untyped-def]
    stop, lags = asyncio.Event(), []
    with HiccupMeter() as meter:
        ticker = asyncio.create_task(_loop_lag(stop, lags))
        await asyncio.sleep(LOOP_TICK_S)  # the ticker is waiting when the work starts
        before = [s.counts() for s in sessions]
        t0 = time.perf_counter()
        build_s = await work()
        await asyncio.sleep(0.3)  # frames held back by the build leave now: count them too
        seconds = time.perf_counter() - t0
        after = [s.counts() for s in sessions]
        stop.set()
        await ticker
    host = meter.stop()
    return RunFigures(
        kind=kind,
        seconds=round(seconds, 2),
        build_s=None if build_s is None else round(build_s, 2),
        frames_published=sum(a[0] - b[0] for a, b in zip(after, before, strict=True)),
        slots_missed=sum(a[1] - b[1] for a, b in zip(after, before, strict=True)),
        stalls_over_100ms=sum(a[2] - b[2] for a, b in zip(after, before, strict=True)),
        loop_lag_max_ms=round(max(lags, default=0.0) * 1000, 1),
        host_late_max_ms=round(host.max_ms, 1),
        host_lost_share=round(host.lost_share, 4),
    )


def _spinners(n: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def _fresh_portrait(template: Path, n: int) -> str:
    """A copy of the prepared portrait under a new id: built from nothing by the service."""
    avatar_id = f"bench-{os.getpid()}-{n}"
    shutil.copytree(template, template.parent / avatar_id)
    return avatar_id


async def run(
    runs: int, n_sessions: int, size: int, busy: int, thread: bool, on_loop: bool
) -> dict[str, object]:
    from skimage import data as skimage_data

    from .avatars import (
        avatars_dir,
        build_composer,
        get_composer,
        get_composer_async,
        release_composer,
        trim_heap,
    )
    from .portrait import prepare_image

    photo = Path(tempfile.mkdtemp(prefix="build-bench-")) / "astronaut.png"
    from PIL import Image

    Image.fromarray(skimage_data.astronaut()).save(photo)
    template = prepare_image(photo, avatars_dir(), avatar_id="bench-template").directory
    running = get_composer("woman", 512, warm=True)
    sessions = [_Session(running, seed=i) for i in range(n_sessions)]
    spinners = _spinners(busy)
    await asyncio.sleep(SETTLE_S)
    rss_before = _rss_mb()
    results: list[RunFigures] = []
    last_build_s = IDLE_RUN_S

    async def idle():  # type: ignore[no-untyped-def]
        await asyncio.sleep(last_build_s)

    built: list[str] = []
    try:
        for n in range(runs):
            avatar_id = _fresh_portrait(template, n)
            built.append(avatar_id)

            async def in_process(avatar_id: str = avatar_id) -> float:
                t0 = time.perf_counter()
                await get_composer_async(avatar_id, size)
                return time.perf_counter() - t0

            async def in_thread(avatar_id: str = avatar_id) -> float:
                t0 = time.perf_counter()
                await asyncio.to_thread(build_composer, avatar_id, size)
                return time.perf_counter() - t0

            results.append(await _measure("process", sessions, in_process))
            last_build_s = results[-1].build_s or IDLE_RUN_S
            results.append(await _measure("idle", sessions, idle))
            if thread:
                results.append(await _measure("thread", sessions, in_thread))
        rss_after = _rss_mb()
        for avatar_id in built:
            release_composer(avatar_id, size)
        await asyncio.to_thread(trim_heap)
        rss_released = _rss_mb()
        if on_loop:
            avatar_id = _fresh_portrait(template, runs)

            async def build_on_loop() -> float:
                t0 = time.perf_counter()
                get_composer(avatar_id, size, warm=True)
                return time.perf_counter() - t0

            results.append(await _measure("on_loop", sessions, build_on_loop))
    finally:
        for proc in spinners:
            proc.kill()
            proc.wait()
        for s in sessions:
            await s.aclose()

    def total(kind: str, key: str) -> int:
        return sum(getattr(r, key) for r in results if r.kind == kind)

    summary: dict[str, object] = {"size": size, "sessions": n_sessions, "busy": busy}
    for kind in ("process", "thread", "idle", "on_loop"):
        mine = [r for r in results if r.kind == kind]
        if not mine:
            continue
        summary[kind] = {
            "runs": len(mine),
            "build_s_median": round(statistics.median(r.build_s or 0.0 for r in mine), 2),
            "slots_missed": total(kind, "slots_missed"),
            "stalls_over_100ms": total(kind, "stalls_over_100ms"),
            "loop_lag_max_ms": max(r.loop_lag_max_ms for r in mine),
            "host_late_max_ms": max(r.host_late_max_ms for r in mine),
        }
    summary |= {
        "rss_mb_before_builds": round(rss_before, 1),
        "rss_mb_after_builds": round(rss_after, 1),
        "rss_mb_after_release": round(rss_released, 1),
        "runs": [asdict(r) for r in results],
    }
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m avatar_worker.build_bench", description=__doc__
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--busy", type=int, default=0, help="other processes spinning meanwhile")
    parser.add_argument(
        "--thread", action="store_true", help="each run also builds in a thread (as before)"
    )
    parser.add_argument("--on-loop", action="store_true", help="one more build on the event loop")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="build-bench-data-") as data:
        os.environ["INTERVIEW_DATA_DIR"] = data  # the portraits built here go away afterwards
        result = asyncio.run(
            run(args.runs, args.sessions, args.size, args.busy, args.thread, args.on_loop)
        )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for r in result["runs"]:  # type: ignore[union-attr]
        print(
            f"{r['kind']:8} {r['seconds']:5.1f} s  build {r['build_s'] or '-':>5}  "
            f"frames {r['frames_published']:4}  missed {r['slots_missed']:3}  "
            f"stalls {r['stalls_over_100ms']:2}  loop lag max {r['loop_lag_max_ms']:6.1f} ms  "
            f"host late max {r['host_late_max_ms']:6.1f} ms"
        )
    for kind in ("process", "thread", "idle", "on_loop"):
        if kind in result:
            print(f"{kind:8} {result[kind]}")
    print(
        f"RSS {result['rss_mb_before_builds']} MB -> {result['rss_mb_after_builds']} MB after the "
        f"builds -> {result['rss_mb_after_release']} MB once released"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
