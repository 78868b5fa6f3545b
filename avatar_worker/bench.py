"""Avatar benchmark: `python -m avatar_worker bench --json`.

Figures (single thread, so "per core"; CPU time where the machine is shared and noisy):
- render_fps_per_core, frame_ms_p50/p99: composing a 512x512 I420 frame and wrapping it in an
  rtc.VideoFrame, over a realistic mix of head poses, mouth shapes and blinks, frame cache off;
- pipeline_fps_per_core, sessions_per_core_25fps: a whole session frame (audio conversion,
  lip-sync analysis, animation, frame, paired rtc.AudioFrame) through LipSyncVideoGenerator;
- added_latency_ms (p50, also p90/max): audio pushed in real time as 10 ms frames -> the video
  frame that shows it yielded, measured from the push of the chunk holding the frame's last
  sample (includes the analysis lookahead);
- rss_per_session_mb: resident memory per additional session on a shared renderer;
- av_offset_ms_*: the generator driven as the avatar session does, through its PairedSynchronizer
  with its AudioSource/VideoSource (no room): when each speech video frame is captured minus
  when its audio starts playing (estimated from the audio source's queue); negative = video first.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time

import numpy as np
from livekit import rtc
from livekit.agents.voice.avatar import AudioSegmentEnd

from .avatars import get_composer
from .engine import FrameComposer
from .generator import GeneratorOptions, LipSyncVideoGenerator
from .lipsync import get_predictor
from .sync import PairedSynchronizer

SAMPLE_RATE = 24000


def speech_like(seconds: float, rate: int = SAMPLE_RATE, seed: int = 3) -> np.ndarray:
    """Deterministic voiced/unvoiced syllables (pulse train through moving resonances)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    f0 = 150 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = np.cumsum(f0 / rate)
    source = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float32)
    syll = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t)
    out = np.zeros(n, dtype=np.float32)
    for formant, bw in ((700, 120), (1200, 150), (2500, 250)):
        centre = formant * (1 + 0.3 * np.sin(2 * np.pi * 3.1 * t + formant))
        r = np.exp(-np.pi * bw / rate)
        y1 = y2 = 0.0
        theta = 2 * np.pi * centre / rate
        coef = 2 * r * np.cos(theta)
        for i in range(n):  # tiny IIR resonator, once per bench
            y = source[i] + coef[i] * y1 - r * r * y2
            out[i] += y
            y2, y1 = y1, y
    out += 0.02 * rng.standard_normal(n).astype(np.float32) * (syll < 0.2)
    out *= syll**2
    out /= np.abs(out).max() + 1e-9
    return (out * 0.5 * 32767).astype(np.int16)


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def bench_render(composer: FrameComposer, frames: int, fps: float) -> dict[str, float]:
    from .animation import AnimationOptions, FaceAnimator
    from .lipsync import MouthShape

    rng = np.random.default_rng(1)
    animator = FaceAnimator(AnimationOptions(fps=fps), seed=1)
    states = []
    for i in range(frames):
        speaking = (i // 50) % 3 != 2
        shape = (
            MouthShape(float(rng.random()), float(rng.uniform(-1, 1)), "AA") if speaking else None
        )
        states.append(animator.next_state(shape))
    for state in states[:200]:  # caches warm, as in a running service
        composer.compose(state)
    times = np.empty(frames)
    cpu0 = time.process_time()
    for i, state in enumerate(states):
        t0 = time.perf_counter()
        rtc.VideoFrame(
            composer.size, composer.size, rtc.VideoBufferType.I420, composer.compose(state)
        )
        times[i] = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    return {
        "render_fps_per_core": round(frames / max(cpu, 1e-9), 1),
        "render_fps_wall": round(frames / times.sum(), 1),
        "frame_ms_p50": round(float(np.percentile(times, 50)) * 1e3, 4),
        "frame_ms_p99": round(float(np.percentile(times, 99)) * 1e3, 4),
    }


async def _pipeline(composer: FrameComposer, pcm: np.ndarray, fps: float) -> dict[str, float]:
    gen = LipSyncVideoGenerator(
        composer, GeneratorOptions(fps=fps, sample_rate=SAMPLE_RATE), seed=2
    )
    stream = gen.__aiter__()
    step = SAMPLE_RATE // 100
    frames = 0
    cpu0 = time.process_time()
    for start in range(0, pcm.size, step):
        chunk = pcm[start : start + step]
        await gen.push_audio(rtc.AudioFrame(chunk.tobytes(), SAMPLE_RATE, 1, chunk.size))
        while gen.queued_frames:
            await anext(stream)
            await anext(stream)
            frames += 1
    cpu = time.process_time() - cpu0
    fps_core = frames / max(cpu, 1e-9)
    return {
        "pipeline_fps_per_core": round(fps_core, 1),
        "pipeline_ms_per_frame": round(1e3 / fps_core, 4),
        "sessions_per_core_25fps": int(fps_core // 25),
    }


async def _latency(composer: FrameComposer, pcm: np.ndarray, fps: float) -> dict[str, float]:
    gen = LipSyncVideoGenerator(
        composer, GeneratorOptions(fps=fps, sample_rate=SAMPLE_RATE), seed=3
    )
    step = SAMPLE_RATE // 100
    spf = round(SAMPLE_RATE / fps)
    push_times: list[float] = []
    yields: list[float] = []

    async def producer() -> None:
        start = time.perf_counter()
        for i, offset in enumerate(range(0, pcm.size, step)):
            await asyncio.sleep(max(0.0, start + i * 0.01 - time.perf_counter()))
            chunk = pcm[offset : offset + step]
            push_times.append(time.perf_counter())
            await gen.push_audio(rtc.AudioFrame(chunk.tobytes(), SAMPLE_RATE, 1, chunk.size))
        await gen.push_audio(AudioSegmentEnd())

    async def consumer() -> None:
        async for item in gen:
            if isinstance(item, AudioSegmentEnd):
                return
            if isinstance(item, rtc.AudioFrame):
                yields.append(time.perf_counter())

    await asyncio.gather(producer(), consumer())
    lat = []
    for k, t_yield in enumerate(yields):
        last_sample = (k + 1) * spf - 1
        chunk = last_sample // step
        if chunk < len(push_times) - 1:  # the final frames wait for the segment end instead
            lat.append(t_yield - push_times[chunk])
    arr = np.array(lat) * 1e3
    return {
        "added_latency_ms": round(float(np.percentile(arr, 50)), 2),
        "added_latency_ms_p90": round(float(np.percentile(arr, 90)), 2),
        "added_latency_ms_max": round(float(arr.max()), 2),
        "analysis_lookahead_ms": round(gen._analyzer.lookahead_s * 1e3, 1),
    }


async def _memory(composer: FrameComposer, pcm: np.ndarray, fps: float, sessions: int) -> float:
    gens: list[LipSyncVideoGenerator] = []
    streams = []
    chunk = pcm[: SAMPLE_RATE * 2]
    frame = rtc.AudioFrame(chunk.tobytes(), SAMPLE_RATE, 1, chunk.size)

    async def warm(gen: LipSyncVideoGenerator, stream) -> None:  # type: ignore[no-untyped-def]
        await gen.push_audio(frame)
        while gen.queued_frames:
            await anext(stream)
            await anext(stream)

    # one session first, so shared caches (model, sprites, frames) are not counted per session
    first = LipSyncVideoGenerator(composer, GeneratorOptions(fps=fps, sample_rate=SAMPLE_RATE))
    await warm(first, first.__aiter__())
    gc.collect()
    before = _rss_mb()
    for i in range(sessions):
        gen = LipSyncVideoGenerator(
            composer, GeneratorOptions(fps=fps, sample_rate=SAMPLE_RATE), seed=i
        )
        stream = gen.__aiter__()
        gens.append(gen)
        streams.append(stream)
        await warm(gen, stream)
    gc.collect()
    return (_rss_mb() - before) / sessions


async def _av_offset(composer: FrameComposer, pcm: np.ndarray, fps: float) -> dict[str, float]:
    gen = LipSyncVideoGenerator(
        composer, GeneratorOptions(fps=fps, sample_rate=SAMPLE_RATE), seed=4
    )
    audio_source = rtc.AudioSource(SAMPLE_RATE, 1, queue_size_ms=100)
    video_source = rtc.VideoSource(composer.size, composer.size)
    sync = PairedSynchronizer(audio_source=audio_source, video_source=video_source, video_fps=fps)
    captured: list[float] = []
    capture = video_source.capture_frame

    def timed_capture(frame: rtc.VideoFrame, **kwargs) -> None:  # type: ignore[no-untyped-def]
        captured.append(time.perf_counter())
        capture(frame, **kwargs)

    video_source.capture_frame = timed_capture  # type: ignore[method-assign]
    speech_video: list[int] = []  # index among pushed video frames
    audio_start: list[float] = []
    pushed = 0

    async def forward() -> None:
        nonlocal pushed
        speech_before = 0
        async for item in gen:
            if isinstance(item, AudioSegmentEnd):
                return
            if isinstance(item, rtc.VideoFrame):
                if gen.frames_out > speech_before:
                    speech_before = gen.frames_out
                    speech_video.append(pushed)
                pushed += 1
            await sync.push(item)
            if isinstance(item, rtc.AudioFrame):
                audio_start.append(
                    time.perf_counter() + audio_source.queued_duration - item.duration
                )

    async def feed() -> None:
        await asyncio.sleep(0.3)  # idle first, as in a room
        step = SAMPLE_RATE // 100
        for offset in range(0, pcm.size, step):
            chunk = pcm[offset : offset + step]
            await gen.push_audio(rtc.AudioFrame(chunk.tobytes(), SAMPLE_RATE, 1, chunk.size))
        await gen.push_audio(AudioSegmentEnd())

    try:
        await asyncio.gather(forward(), feed())
        await sync.wait_for_playout()
    finally:
        await sync.aclose()
        await audio_source.aclose()
        await video_source.aclose()
    offsets = np.array([captured[v] - a for v, a in zip(speech_video, audio_start, strict=False)])
    offsets *= 1e3
    return {
        "av_offset_ms_median": round(float(np.median(offsets)), 1),
        "av_offset_ms_p10": round(float(np.percentile(offsets, 10)), 1),
        "av_offset_ms_p90": round(float(np.percentile(offsets, 90)), 1),
    }


def run_bench(
    avatar: str = "woman", size: int = 512, fps: float = 25.0, quick: bool = False
) -> dict:
    t0 = time.perf_counter()
    composer = get_composer(avatar, size, warm=True)
    get_predictor()
    warm_s = time.perf_counter() - t0
    pcm = speech_like(4.0 if quick else 8.0)
    result: dict[str, object] = {"avatar": avatar, "size": size, "fps": fps, "frame_format": "I420"}
    result.update(bench_render(composer, 2000 if quick else 8000, fps))
    result.update(asyncio.run(_pipeline(composer, pcm, fps)))
    result.update(asyncio.run(_latency(composer, pcm[: SAMPLE_RATE * (2 if quick else 4)], fps)))
    result.update(asyncio.run(_av_offset(composer, pcm[: SAMPLE_RATE * 2], fps)))
    result["rss_per_session_mb"] = round(
        asyncio.run(_memory(composer, pcm, fps, 10 if quick else 30)), 3
    )
    result["renderer_warmup_s"] = round(warm_s, 2)
    result["renderer_cache_mb"] = round(
        (
            sum(len(b) for b in composer._bases.values())
            + sum(s.y.nbytes + s.u.nbytes + s.v.nbytes for s in composer._sprites.values())
        )
        / 1e6,
        1,
    )
    result["rss_mb"] = round(_rss_mb(), 1)
    result["note"] = "single thread; CPU-time based on a shared 2-core machine, expect noise"
    return result
