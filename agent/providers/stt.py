"""Speech-to-text: offline faster-whisper (weights shipped on PyPI) and cloud Deepgram Nova-3.

WhisperSTT is a non-streaming `stt.STT`; the session wraps it in a VAD-driven StreamAdapter, so
each utterance is transcribed once, right after the VAD sees its end.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import APIConnectOptions, LanguageCode, stt, utils
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from livekit.agents.utils import AudioBuffer

from .log import logger
from .models import DEFAULT_DEEPGRAM_MODEL, WhisperModel
from .whisper_model import whisper_model_dir

WHISPER_SAMPLE_RATE = 16000


@dataclass(frozen=True)
class WhisperOptions:
    model: WhisperModel = "whisper-base"
    language: str = "ko"
    beam_size: int = 1
    cpu_threads: int = 2
    compute_type: str = "int8"


class WhisperSTT(stt.STT):
    """faster-whisper on CPU; the model loads lazily in a thread (or eagerly via `prewarm`)."""

    def __init__(self, opts: WhisperOptions) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self._opts = opts
        self._model: Any = None
        self._sync_lock = threading.Lock()
        self._prewarm_thread: threading.Thread | None = None
        # recognitions in flight and when the last one ended: lets the turn detector wait for
        # the transcript of the segment that just ended, however slow the CPU is
        self.active = 0
        self.last_done = 0.0

    @property
    def model(self) -> str:
        return self._opts.model

    @property
    def provider(self) -> str:
        return "faster-whisper"

    def prewarm(self) -> None:
        """Called by the session at start: load the model in the background, ahead of use."""
        if self._model is None and self._prewarm_thread is None:
            self._prewarm_thread = threading.Thread(
                target=self.load_sync, name="whisper-prewarm", daemon=True
            )
            self._prewarm_thread.start()

    def load_sync(self) -> Any:
        with self._sync_lock:
            return self._load_locked()

    def _load_locked(self) -> Any:
        if self._model is None:
            from faster_whisper import WhisperModel as _FW

            path = whisper_model_dir(self._opts.model)
            t0 = time.perf_counter()
            self._model = _FW(
                str(path),
                device="cpu",
                compute_type=self._opts.compute_type,
                cpu_threads=self._opts.cpu_threads,
                num_workers=1,
            )
            logger.info(
                "whisper model loaded",
                extra={"model": self._opts.model, "load_s": round(time.perf_counter() - t0, 2)},
            )
        return self._model

    def transcribe_sync(self, pcm16k: np.ndarray, language: str) -> str:
        model = self.load_sync()
        # the encoder's cost follows the window: a window just longer than the utterance is
        # much cheaper than whisper's default 30 s, with the same text on short answers
        window = int(min(30, max(6, math.ceil(pcm16k.size / WHISPER_SAMPLE_RATE) + 1)))
        segments, _info = model.transcribe(
            pcm16k,
            language=None if self._opts.model.endswith(".en") else language,
            beam_size=self._opts.beam_size,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
            temperature=0.0,
            # espeak-like or noisy audio can send whisper into a loop of one phrase
            no_repeat_ngram_size=3,
            max_new_tokens=160,
            chunk_length=window,
        )
        return " ".join(s.text.strip() for s in segments).strip()

    def settled_since(self, t: float) -> bool:
        """No recognition in flight, and one finished after `t` (wall clock)."""
        return self.active == 0 and self.last_done >= t

    async def _recognize_impl(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        lang = language if isinstance(language, str) and language else self._opts.language
        pcm = to_pcm16k(buffer)
        self.active += 1
        try:
            text = await asyncio.to_thread(self.transcribe_sync, pcm, lang)
        finally:
            self.active -= 1
            self.last_done = time.time()
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            request_id=utils.shortuuid("whisper_"),
            alternatives=[stt.SpeechData(language=LanguageCode(lang), text=text, confidence=1.0)],
        )


def to_pcm16k(buffer: AudioBuffer) -> np.ndarray:
    """Mono float32 at 16 kHz, what Whisper expects, from any livekit audio buffer."""
    frame = rtc.combine_audio_frames(buffer) if isinstance(buffer, list) else buffer
    data = np.frombuffer(bytes(frame.data), dtype=np.int16)
    if frame.num_channels > 1:
        data = data.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)
    if frame.sample_rate != WHISPER_SAMPLE_RATE:
        resampler = rtc.AudioResampler(
            input_rate=frame.sample_rate, output_rate=WHISPER_SAMPLE_RATE, num_channels=1
        )
        mono = rtc.AudioFrame(
            data=data.tobytes(),
            sample_rate=frame.sample_rate,
            num_channels=1,
            samples_per_channel=len(data),
        )
        out = [*resampler.push(mono), *resampler.flush()]
        data = np.concatenate([np.frombuffer(bytes(f.data), dtype=np.int16) for f in out])
    return data.astype(np.float32) / 32768.0


def deepgram_stt(language: str, api_key: str) -> stt.STT:
    """Deepgram Nova-3 streaming STT (cloud); built only when DEEPGRAM_API_KEY is set."""
    from livekit.plugins import deepgram

    return deepgram.STT(model=DEFAULT_DEEPGRAM_MODEL, language=language, api_key=api_key)
