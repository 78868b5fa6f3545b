"""Offline rendering through the live pipeline: audio file -> frames (+ MP4 and parameters).

The same LipSyncVideoGenerator a room session uses is driven without a room, so an offline
render shows exactly what a candidate would see.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from livekit import rtc
from livekit.agents.voice.avatar import AudioSegmentEnd

from .engine import FrameComposer
from .generator import GeneratorOptions, LipSyncVideoGenerator
from .lipsync import AnalyzerKind, get_predictor

SUPPORTED_RATES = (16000, 22050, 24000, 32000, 44100, 48000)
MAX_AUDIO_S = 3600.0


class AudioInputError(ValueError):
    """An audio file that cannot be used (one-sentence message)."""


@dataclass(frozen=True, slots=True)
class FrameParams:
    t: float
    mouth_open: float
    viseme: str
    mouth_width: float = 0.0  # -1 rounded .. +1 spread (an extension of the contract)

    def as_json(self) -> str:
        return json.dumps(
            {
                "t": self.t,
                "mouth_open": self.mouth_open,
                "viseme": self.viseme,
                "mouth_width": self.mouth_width,
            }
        )


def read_audio(path: Path, fps: float = 25.0) -> tuple[np.ndarray, int]:
    """Mono int16 samples and rate of any audio file PyAV reads; odd rates go to 24 or 48 kHz."""
    if not path.is_file():
        raise AudioInputError(f"audio file {path} does not exist")
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioInputError(f"{path} has no audio stream")
            stream = container.streams.audio[0]
            rate = stream.rate or stream.codec_context.sample_rate
            if rate not in SUPPORTED_RATES or abs(rate / fps - round(rate / fps)) > 1e-6:
                rate = 24000 if abs(24000 / fps - round(24000 / fps)) < 1e-6 else 48000
            resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
            chunks = []
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except AudioInputError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise AudioInputError(
            f"{path} is not a readable audio file ({exc.__class__.__name__})"
        ) from None
    pcm = np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)
    if pcm.size == 0:
        raise AudioInputError(f"{path} contains no audio samples")
    if pcm.size / rate > MAX_AUDIO_S:
        raise AudioInputError(f"{path} is longer than {MAX_AUDIO_S:.0f} s")
    return pcm, rate


Rendered = tuple[rtc.VideoFrame, rtc.AudioFrame, FrameParams]


def iter_frames(
    composer: FrameComposer,
    pcm: np.ndarray,
    rate: int,
    fps: float = 25.0,
    analyzer: AnalyzerKind = "model",
    seed: int = 7,
) -> Iterator[Rendered]:
    """Every video frame with its audio chunk and parameters, streamed (constant memory for long
    files) and deterministic for a seed."""
    options = GeneratorOptions(fps=fps, sample_rate=rate, num_channels=1)
    gen = LipSyncVideoGenerator(composer, options, predictor=get_predictor(analyzer), seed=seed)
    block = max(1, rate // 5)
    pushes = itertools.chain(
        (
            rtc.AudioFrame(pcm[i : i + block].tobytes(), rate, 1, pcm[i : i + block].size)
            for i in range(0, pcm.size, block)
        ),
        [AudioSegmentEnd()],
    )
    loop = asyncio.new_event_loop()
    stream = gen.__aiter__()
    index = 0
    try:
        for item in pushes:
            loop.run_until_complete(gen.push_audio(item))
            while gen.queued_frames:
                audio = loop.run_until_complete(anext(stream))
                video = loop.run_until_complete(anext(stream))
                assert isinstance(video, rtc.VideoFrame) and isinstance(audio, rtc.AudioFrame)
                shape = gen._animator.last_shape
                params = FrameParams(
                    round(index / fps, 4),
                    round(gen.mouth_open, 4),
                    shape.viseme,
                    round(gen.mouth_width, 3),
                )
                index += 1
                yield video, audio, params
    finally:
        loop.run_until_complete(stream.aclose())
        loop.close()


def render_params(
    composer: FrameComposer,
    pcm: np.ndarray,
    rate: int,
    fps: float = 25.0,
    analyzer: AnalyzerKind = "model",
) -> list[FrameParams]:
    return [params for _, _, params in iter_frames(composer, pcm, rate, fps, analyzer)]


def write_mp4(
    path: Path,
    frames: Iterator[tuple[rtc.VideoFrame, rtc.AudioFrame, FrameParams]] | list,
    size: int,
    fps: float,
    rate: int,
) -> None:
    """H.264 (yuv420p) + AAC."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        frame_rate = Fraction(fps).limit_denominator(1000)
        vstream = container.add_stream("libx264", rate=frame_rate)
        vstream.width = vstream.height = size
        vstream.pix_fmt = "yuv420p"
        vstream.options = {"crf": "20", "preset": "veryfast"}
        astream = container.add_stream("aac", rate=rate)
        astream.layout = "mono"
        samples = 0
        for index, (video, audio, _params) in enumerate(frames):
            vf = av.VideoFrame(size, size, "yuv420p")
            data = np.frombuffer(video.data, dtype=np.uint8)
            q = size * size
            for plane, part, width in (
                (vf.planes[0], data[:q], size),
                (vf.planes[1], data[q : q + q // 4], size // 2),
                (vf.planes[2], data[q + q // 4 :], size // 2),
            ):
                rows = part.reshape(-1, width)
                padded = np.zeros((rows.shape[0], plane.line_size), dtype=np.uint8)
                padded[:, :width] = rows
                plane.update(padded.tobytes())
            vf.pts = index
            vf.time_base = 1 / frame_rate
            container.mux(vstream.encode(vf))
            pcm = np.frombuffer(audio.data, dtype=np.int16).reshape(1, -1)
            af = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            af.sample_rate = rate
            af.pts = samples
            samples += pcm.shape[1]
            container.mux(astream.encode(af))
        container.mux(vstream.encode(None))
        container.mux(astream.encode(None))


def write_params(path: Path, params: list[FrameParams]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(p.as_json() + "\n" for p in params), encoding="utf-8")
