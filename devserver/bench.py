"""`python -m devserver.bench`: forwarding latency and CPU of the dev server on loopback.

Starts the dev server as a subprocess, has one participant publish audio (20 ms tone bursts every
250 ms, silence between) and a 512x512 25 fps video, and two participants subscribe to both. It
reports
  * audio latency publisher -> subscriber, end to end through both SDKs (burst handed to the
    AudioSource -> burst onset out of the subscriber's AudioStream; includes Opus framing and the
    subscriber's jitter buffer, i.e. what a listener gets),
  * the server's own forwarding time (packet in -> handed to the subscriber's sender), from the
    server's /debug/stats,
  * the server process's CPU while forwarding (percent of one core),
  * then, the audio no longer fed, the packets a silent track still sends: Opus DTX, negotiated
    as livekit-server does, leaves a few a second of the 50 a 20 ms framing would send.
Figures on a shared machine are noisy; run it on an idle one for numbers to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
import numpy as np
from livekit import api, rtc

SAMPLE_RATE = 48000
FRAME = 480  # 10 ms
BURST_EVERY_FRAMES = 25  # 250 ms
BURST_FRAMES = 2  # 20 ms
QUIET, LOUD = 500, 4000  # onset detection thresholds (int16 peak)
SILENT_S = 3.0  # how long the silent track is watched


@dataclass
class BenchResult:
    audio_e2e_p50_ms: float
    audio_e2e_p99_ms: float
    audio_bursts: int
    server_forward_audio_p50_ms: float
    server_forward_audio_p99_ms: float
    server_forward_video_p50_ms: float
    server_forward_video_p99_ms: float
    server_cpu_percent_one_core: float
    video_kbps_forwarded_per_subscriber: float
    video_frames_at_subscriber: int
    silent_audio_packets_per_s: float  # to each subscriber, once nothing more is captured
    seconds: float


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _token(identity: str, room: str) -> str:
    grants = api.VideoGrants(room_join=True, room=room)
    return api.AccessToken("devkey", "secret").with_identity(identity).with_grants(grants).to_jwt()


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError(f"the dev server exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError("the dev server did not start listening within 30 s")


async def _subscribe(room: rtc.Room, kind: int) -> rtc.Track:
    future: asyncio.Future[rtc.Track] = asyncio.get_running_loop().create_future()

    def on_subscribed(track: rtc.Track, *_: object) -> None:
        if track.kind == kind and not future.done():
            future.set_result(track)

    room.on("track_subscribed", on_subscribed)
    return await asyncio.wait_for(future, 20)


def start_server() -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "devserver", "--port", str(port), "--log-level", "WARNING"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, port


async def run(
    proc: subprocess.Popen[bytes], port: int, seconds: float, warmup: float
) -> BenchResult:
    url = f"ws://127.0.0.1:{port}"
    rooms: list[rtc.Room] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        await _wait_listening(port, proc)
        publisher, sub1, sub2 = rtc.Room(), rtc.Room(), rtc.Room()
        rooms = [publisher, sub1, sub2]
        for name, room in zip(("pub", "sub1", "sub2"), rooms, strict=True):
            await room.connect(url, _token(name, "bench"))
        subscriptions = [
            asyncio.ensure_future(_subscribe(room, kind))
            for room in (sub1, sub2)
            for kind in (rtc.TrackKind.KIND_AUDIO, rtc.TrackKind.KIND_VIDEO)
        ]

        audio = rtc.AudioSource(SAMPLE_RATE, 1, queue_size_ms=50)
        video = rtc.VideoSource(512, 512)
        await publisher.local_participant.publish_track(
            rtc.LocalAudioTrack.create_audio_track("bursts", audio),
            rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
        )
        await publisher.local_participant.publish_track(
            rtc.LocalVideoTrack.create_video_track("video", video),
            rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA, simulcast=False),
        )
        sent_at: list[float] = []
        t = np.arange(FRAME)
        tone = (0.5 * 32767 * np.sin(2 * np.pi * 1000 * t / SAMPLE_RATE)).astype(np.int16)
        silence = np.zeros(FRAME, dtype=np.int16)

        async def play_audio() -> None:
            start = time.perf_counter()
            i = 0
            while True:
                delay = start + i * FRAME / SAMPLE_RATE - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                loud = i % BURST_EVERY_FRAMES < BURST_FRAMES
                if loud and i % BURST_EVERY_FRAMES == 0:
                    sent_at.append(time.perf_counter())
                samples = tone if loud else silence
                await audio.capture_frame(rtc.AudioFrame(samples.tobytes(), SAMPLE_RATE, 1, FRAME))
                i += 1

        async def play_video() -> None:
            rng = np.random.default_rng(0)
            base = rng.integers(0, 255, (512, 512, 4), dtype=np.uint8)
            i = 0
            while True:
                frame = np.roll(base, 4 * i, axis=1)  # moving texture: a realistic bitrate
                video.capture_frame(
                    rtc.VideoFrame(512, 512, rtc.VideoBufferType.RGBA, frame.tobytes())
                )
                i += 1
                await asyncio.sleep(0.04)

        playing = asyncio.ensure_future(play_audio())
        tasks += [playing, asyncio.ensure_future(play_video())]
        tracks = await asyncio.gather(*subscriptions)
        arrivals: list[float] = []
        video_frames = [0]

        async def listen(track: rtc.Track) -> None:
            quiet = True
            async for event in rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1):
                peak = int(np.abs(np.frombuffer(event.frame.data, dtype=np.int16)).max(initial=0))
                if quiet and peak > LOUD:
                    arrivals.append(time.perf_counter())
                    quiet = False
                elif peak < QUIET:
                    quiet = True

        async def watch(track: rtc.Track) -> None:
            async for _ in rtc.VideoStream(track):
                video_frames[0] += 1

        tasks += [asyncio.ensure_future(listen(tracks[0]))]  # sub1's audio
        tasks += [asyncio.ensure_future(watch(tracks[1]))]
        await asyncio.sleep(warmup)
        arrivals.clear()
        video_frames[0] = 0
        first_burst = len(sent_at)
        stats_url = f"http://127.0.0.1:{port}/debug/stats"
        stats_token = api.AccessToken("devkey", "secret").with_grants(
            api.VideoGrants(room_list=True)
        )
        stats_auth = {"Authorization": f"Bearer {stats_token.to_jwt()}"}
        async with aiohttp.ClientSession() as http:

            async def server_forwarding() -> dict[str, Any]:
                async with http.get(stats_url, headers=stats_auth) as resp:
                    return (await resp.json())["forwarding"]

            video_bytes0 = (await server_forwarding()).get("video", {}).get("bytes", 0)
            cpu0, wall0 = _cpu_seconds(proc.pid), time.perf_counter()
            await asyncio.sleep(seconds)
            cpu1, wall1 = _cpu_seconds(proc.pid), time.perf_counter()
            forwarding = await server_forwarding()
            playing.cancel()  # the track stays published, silent
            await asyncio.sleep(1.0)
            silent0 = (await server_forwarding())["audio"]["frames"]
            await asyncio.sleep(SILENT_S)
            silent1 = (await server_forwarding())["audio"]["frames"]
    finally:
        for task in tasks:
            task.cancel()
        for room in rooms:
            await room.disconnect()

    bursts = sent_at[first_burst:]
    latencies = []
    for arrival in arrivals:
        earlier = [s for s in bursts if s <= arrival]
        if earlier and arrival - earlier[-1] < BURST_EVERY_FRAMES * FRAME / SAMPLE_RATE:
            latencies.append(1000 * (arrival - earlier[-1]))
    fwd_audio, fwd_video = forwarding.get("audio", {}), forwarding.get("video", {})
    return BenchResult(
        audio_e2e_p50_ms=_percentile(latencies, 50),
        audio_e2e_p99_ms=_percentile(latencies, 99),
        audio_bursts=len(latencies),
        server_forward_audio_p50_ms=fwd_audio.get("p50_ms", float("nan")),
        server_forward_audio_p99_ms=fwd_audio.get("p99_ms", float("nan")),
        server_forward_video_p50_ms=fwd_video.get("p50_ms", float("nan")),
        server_forward_video_p99_ms=fwd_video.get("p99_ms", float("nan")),
        server_cpu_percent_one_core=100 * (cpu1 - cpu0) / (wall1 - wall0),
        video_kbps_forwarded_per_subscriber=(
            8 * (fwd_video.get("bytes", 0) - video_bytes0) / 2 / (wall1 - wall0) / 1000
        ),
        video_frames_at_subscriber=video_frames[0],
        silent_audio_packets_per_s=(silent1 - silent0) / 2 / SILENT_S,
        seconds=seconds,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devserver.bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time (default 10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up time (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0:
        print("devserver.bench: --seconds must be > 0 and --warmup >= 0", file=sys.stderr)
        return 2
    proc, port = start_server()
    try:
        result = asyncio.run(run(proc, port, args.seconds, args.warmup))
    except (RuntimeError, TimeoutError) as e:
        reason = str(e) or "timed out waiting for the room to be set up"
        print(f"devserver.bench: {reason}", file=sys.stderr)
        return 1
    finally:
        proc.terminate()
        proc.wait(10)
    if args.json:
        print(json.dumps(asdict(result)))
        return 0
    r = result
    print(f"audio publisher -> subscriber, end to end (SDK to SDK), {r.audio_bursts} bursts:")
    print(f"  p50 {r.audio_e2e_p50_ms:.1f} ms   p99 {r.audio_e2e_p99_ms:.1f} ms")
    print("time inside the dev server (packet in -> handed to subscriber's sender):")
    for kind in ("audio", "video"):
        p50 = getattr(r, f"server_forward_{kind}_p50_ms")
        p99 = getattr(r, f"server_forward_{kind}_p99_ms")
        print(f"  {kind} p50 {p50:.2f} ms  p99 {p99:.2f} ms")
    print(
        f"server CPU forwarding 512x512 25 fps video + audio to 2 subscribers: "
        f"{r.server_cpu_percent_one_core:.1f} % of one core over {r.seconds:.0f} s"
    )
    print(
        f"video forwarded: {r.video_kbps_forwarded_per_subscriber:.0f} kbit/s per subscriber, "
        f"{r.video_frames_at_subscriber / r.seconds:.1f} frames/s decoded by one subscriber"
    )
    print(
        f"a silent audio track: {r.silent_audio_packets_per_s:.1f} packets/s to each subscriber "
        "(50 without DTX)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
