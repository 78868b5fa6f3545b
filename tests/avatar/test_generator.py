"""LipSyncVideoGenerator with real rtc.AudioFrame / rtc.VideoFrame objects."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from livekit import rtc
from livekit.agents.voice.avatar import AudioSegmentEnd, VideoGenerator

from avatar_worker.avatars import get_composer
from avatar_worker.generator import GeneratorOptions, LipSyncVideoGenerator

from .conftest import vowel

RATE = 24000
SPF = RATE // 25


def _gen(**kw) -> LipSyncVideoGenerator:
    return LipSyncVideoGenerator(
        get_composer("woman", 512), GeneratorOptions(sample_rate=RATE, **kw), seed=1
    )


def _frames_of(signal: np.ndarray, rate: int, channels: int = 1, step_s: float = 0.01):
    pcm = (np.clip(signal, -1, 1) * 32767).astype(np.int16)
    if channels == 2:
        pcm = np.repeat(pcm, 2)
    step = int(rate * step_s) * channels
    for start in range(0, pcm.size, step):
        chunk = pcm[start : start + step]
        yield rtc.AudioFrame(chunk.tobytes(), rate, channels, chunk.size // channels)


async def _collect(gen, until_end: bool = True, limit: int = 500):
    items = []
    async for item in gen:
        items.append(item)
        if (until_end and isinstance(item, AudioSegmentEnd)) or len(items) >= limit:
            break
    return items


async def test_speech_comes_out_as_paired_frames_then_segment_end():
    gen = _gen()
    assert isinstance(gen, VideoGenerator)
    signal = vowel(0.5, RATE)
    for frame in _frames_of(signal, RATE):
        await gen.push_audio(frame)
    await gen.push_audio(AudioSegmentEnd())
    items = await asyncio.wait_for(_collect(gen), 10)
    assert isinstance(items[-1], AudioSegmentEnd)
    body = items[:-1]
    audios, videos = body[0::2], body[1::2]  # each frame's audio, then its video
    assert all(isinstance(v, rtc.VideoFrame) for v in videos)
    assert all(isinstance(a, rtc.AudioFrame) for a in audios)
    assert len(videos) == len(audios) == int(np.ceil(signal.size / SPF))
    assert all(a.samples_per_channel == SPF and a.sample_rate == RATE for a in audios)
    sent = np.concatenate([np.frombuffer(a.data, np.int16) for a in audios])
    expected = (np.clip(signal, -1, 1) * 32767).astype(np.int16)
    assert np.array_equal(sent[: expected.size], expected)  # audio passes through unchanged
    assert not sent[expected.size :].any()  # the last frame is padded with silence


async def test_idle_frames_follow_the_wall_clock():
    gen = _gen()
    start = time.perf_counter()
    items = await _collect(gen, until_end=False, limit=6)
    elapsed = time.perf_counter() - start
    assert len(items) == 6 and elapsed >= 5 * 0.04 * 0.9  # not faster than real time


async def test_idle_frames_flow_without_audio_and_the_mouth_stays_closed():
    gen = _gen(pace_idle=False, idle_wait_s=0.0)
    items = await _collect(gen, until_end=False, limit=30)
    assert all(isinstance(i, rtc.VideoFrame) for i in items)
    assert gen.mouth_open == 0.0 and gen.idle_frames_out == 30


async def test_clear_buffer_drops_queued_audio_and_closes_the_mouth_in_two_frames():
    gen = _gen(pace_idle=False, idle_wait_s=0.0)
    for frame in _frames_of(vowel(1.0, RATE), RATE):
        await gen.push_audio(frame)
    stream = gen.__aiter__()
    for _ in range(10):  # speaking: audio + video pairs
        await anext(stream)
    assert gen.mouth_open > 0.2
    gen.clear_buffer()
    assert gen.queued_frames == 0
    first, second = await anext(stream), await anext(stream)
    assert isinstance(first, rtc.VideoFrame) and isinstance(second, rtc.VideoFrame)
    assert gen.mouth_open == 0.0
    await gen.push_audio(AudioSegmentEnd())  # a late segment end is still echoed
    assert isinstance(await anext(stream), AudioSegmentEnd)


async def test_other_rates_and_stereo_are_converted_to_the_output_format():
    gen = _gen()
    signal = vowel(0.4, 48000)
    for frame in _frames_of(signal, 48000, channels=2):
        await gen.push_audio(frame)
    await gen.push_audio(AudioSegmentEnd())
    items = await asyncio.wait_for(_collect(gen), 10)
    audios = [i for i in items if isinstance(i, rtc.AudioFrame)]
    total = sum(a.samples_per_channel for a in audios)
    assert all(a.sample_rate == RATE and a.num_channels == 1 for a in audios)
    assert abs(total - 0.4 * RATE) <= SPF + 200  # resampler delay and padding
    assert gen.frames_out == len(audios)


async def test_a_broken_frame_is_dropped_without_ending_the_session(caplog):
    gen = _gen(pace_idle=False, idle_wait_s=0.0)
    broken = rtc.AudioFrame(b"\x00" * 4, RATE, 1, 2)
    broken._data = bytearray(b"\x00" * 3)  # an odd byte count cannot be int16 audio
    await gen.push_audio(broken)
    assert "dropping an audio frame" in caplog.text
    items = await _collect(gen, until_end=False, limit=3)
    assert len(items) == 3


def test_a_sample_rate_without_whole_samples_per_frame_is_refused():
    with pytest.raises(ValueError, match="whole number"):
        LipSyncVideoGenerator(
            get_composer("woman", 512), GeneratorOptions(sample_rate=22050, fps=30.0 + 1e-3)
        )
