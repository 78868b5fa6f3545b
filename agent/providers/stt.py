"""Speech-to-text: offline faster-whisper (weights shipped on PyPI) and cloud Deepgram Nova-3.

WhisperSTT is a streaming `stt.STT` built on a batch model: its stream (whisper_stream.py) cuts
the candidate's audio into utterances with the session's Silero VAD, transcribes each one as it
ends (speculatively, from the first moments of silence) and, while asked to, sends interim
transcripts of an utterance still being spoken so a barge-in has words early.

Decoding calls CTranslate2 directly with an encoder window just longer than the utterance
(at least `min_window_s`) instead of whisper's fixed 30 s: the encoder's cost follows the window,
so an answer decodes several times faster with the same words on the benchmark answers. An
initial prompt from prompts/<lang>/stt.yaml, written with fillers, keeps Whisper from dropping
"um"/"uh"/"음"/"어", which the report counts.

All decoding of a process runs on one thread (`WhisperRuntime`) that loads each model once. It
can decode below the audio path's CPU priority (INTERVIEW_STT_NICE): each model is then built on
a short-lived thread with a raised niceness, and CTranslate2's compute threads, born from it,
inherit that; the Python thread that feeds them keeps the normal priority (a starved thread
holding Python's GIL would stall the whole agent). It is off by default: with any other busy
process on the host a niced decode gets a small share of the CPU, and an answer's transcript
waited seconds (voice-to-voice 6.4 s against 1.2 s in the room test next to one busy process).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import APIConnectOptions, LanguageCode, stt, utils, vad
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr
from livekit.agents.utils import AudioBuffer

from .log import logger
from .models import DEFAULT_DEEPGRAM_MODEL, WhisperModel
from .whisper_model import whisper_model_dir
from .whisper_stream import WhisperSpeechStream, WhisperStreamOptions

WHISPER_SAMPLE_RATE = 16000
_FRAMES_PER_S = 100  # whisper's mel frames per second of audio
_FULL_WINDOW_S = 30
_TAIL_S = 1.0  # silence the encoder sees after the utterance
# faster-whisper's defaults for dropping a window that holds no speech
_NO_SPEECH_PROB = 0.6
_NO_SPEECH_LOGPROB = -1.0

# shortest encoder window per model, measured with `python -m agent bench --stt --model M
# --window 5 7.5 10 30` on the benchmark answers' espeak speech. tiny.en: same word error rate at
# 10 s as at 30 s, ~4x faster. whisper-base on English (language="en"): word error rate
# 0.12-0.13 at 10 s against 0.15 at 30 s, decode ~0.3 s against ~1.3 s; at 5 s it repeated short
# answers ("Yes, I'm ready. Yes, I'm ready"). On Korean espeak speech (which whisper hardly
# understands, so only looping can be judged) 10 s showed no more repeats or token-cap hits than
# 30 s, while 7.5 s and 5 s repeated words: 10 s is the floor for both models. The short window
# does raise whisper's no-speech probability on that unintelligible audio (one segment 0.50
# against 0.17), so a Korean espeak segment is now and then dropped as no speech below; on
# English speech whisper understands it stays under 0.1 with either window.
MIN_WINDOW_S: dict[str, float] = {"whisper-tiny.en": 10.0, "whisper-base": 10.0}
# most tokens a second of speech can need (English ~4/s spoken fast; Korean syllables take
# several byte-level tokens each): a decode that loops on one phrase stops there instead of
# holding the single decode thread for seconds while the next utterance waits
MAX_TOKENS_PER_S: dict[str, float] = {"whisper-tiny.en": 8.0, "whisper-base": 24.0}
_MAX_NEW_TOKENS = 160
# one CTranslate2 thread per decode: with the 10 s window a decode is too small to share well.
# `agent bench --stt --threads 1 2 --window 10`, interleaved on the 2-core VM: whisper-base on
# Korean 278 ms (1 thread) against 323 ms (2), tiny.en 100 against 139 ms; and interviews at once
# share the cores instead of each asking for both (room_bench, 2026-11-23: two at once 0.92 s
# voice-to-voice against 1.01-1.11 s; three 1.28 s against 1.52-2.42 s; one unchanged, 0.82 s)
DEFAULT_STT_THREADS = 1
MAX_STT_THREADS = 32
# niceness of CTranslate2's compute threads (INTERVIEW_STT_NICE; 0: the audio path's priority)
DEFAULT_STT_NICE = 0


class WhisperRuntime:
    """The process's speech-recognition thread: loads each model once and runs every decode, one
    at a time, in order; the models compute at `nice` below the rest of the process (Linux)."""

    def __init__(self, nice: int) -> None:
        self.nice = nice
        self._thread_id: int | None = None
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="whisper", initializer=self._init_thread
        )
        self._models: dict[tuple[str, str, int], Any] = {}
        self.warmed: set[tuple[str, str, int]] = set()

    def _init_thread(self) -> None:
        self._thread_id = threading.get_ident()

    def _build_below_priority(self, build: Callable[[], Any]) -> Any:
        """`build()` on a thread of its own at `nice`: niceness is per thread on Linux, and the
        threads CTranslate2 starts while building the model (and those they start) inherit it."""
        if not self.nice or not sys.platform.startswith("linux"):
            return build()
        box: dict[str, Any] = {}

        def _run() -> None:
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
            except OSError as e:
                logger.warning("could not lower the STT's CPU priority", extra={"error": str(e)})
            try:
                box["model"] = build()
            except BaseException as e:  # re-raised on the caller's thread
                box["error"] = e

        loader = threading.Thread(target=_run, name="whisper-load")
        loader.start()
        loader.join()
        if "error" in box:
            raise box["error"]
        return box["model"]

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        return self._executor.submit(fn, *args)

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` on the runtime's thread, waiting for it (directly when already there)."""
        if threading.get_ident() == self._thread_id:
            return fn(*args)
        return self.submit(fn, *args).result()

    def model(self, key: tuple[str, str, int]) -> Any:
        """The loaded faster-whisper model (name, compute type, threads); loads it once."""
        return self.run(self._model, key)

    def _model(self, key: tuple[str, str, int]) -> Any:
        model = self._models.get(key)
        if model is None:
            from faster_whisper import WhisperModel as _FW

            name, compute_type, threads = key
            t0 = time.perf_counter()
            model = self._build_below_priority(
                lambda: _FW(
                    str(whisper_model_dir(name)),  # type: ignore[arg-type]
                    device="cpu",
                    compute_type=compute_type,
                    cpu_threads=threads,
                    num_workers=1,
                )
            )
            self._models[key] = model
            logger.info(
                "whisper model loaded",
                extra={"model": name, "load_s": round(time.perf_counter() - t0, 2)},
            )
        return model


_runtime: WhisperRuntime | None = None
_runtime_lock = threading.Lock()


def whisper_runtime(nice: int = DEFAULT_STT_NICE) -> WhisperRuntime:
    """The process's WhisperRuntime; the first call creates it, at that call's `nice`."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = WhisperRuntime(nice)
        return _runtime


@dataclass(frozen=True)
class WhisperOptions:
    model: WhisperModel = "whisper-base"
    language: str = "ko"
    beam_size: int = 1
    cpu_threads: int = DEFAULT_STT_THREADS
    compute_type: str = "int8"
    min_window_s: float | None = None  # None: MIN_WINDOW_S of the model
    initial_prompt: str | None = None  # None: prompts/<language>/stt.yaml; "" for none
    stream: WhisperStreamOptions = field(default_factory=WhisperStreamOptions)


@dataclass
class _Decoder:
    tokenizer: Any
    plain: list[int]  # the decoder prompt without context
    prompted: list[int]  # with the initial prompt before it
    suppress: tuple[int, ...]


@dataclass(frozen=True)
class InitialPrompt:
    text: str = ""
    min_audio_s: float = 0.0  # shorter utterances are decoded without it


def load_initial_prompt(language: str) -> InitialPrompt:
    """The filler-rich initial prompt of prompts/<language>/stt.yaml (empty when there is none)."""
    from ..prompts import PROMPTS_DIR, load_yaml

    if not (PROMPTS_DIR / language / "stt.yaml").is_file():
        return InitialPrompt()
    data = load_yaml(f"{language}/stt.yaml")
    return InitialPrompt(
        text=str(data.get("initial_prompt") or "").strip(),
        min_audio_s=float(data.get("initial_prompt_min_audio_s") or 0.0),
    )


class WhisperSTT(stt.STT):
    """faster-whisper on CPU; the model loads lazily in a thread (or eagerly via `prewarm`)."""

    def __init__(self, opts: WhisperOptions, *, runtime: WhisperRuntime | None = None) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=True))
        self._opts = opts
        self._model: Any = None
        self._prewarm: Future[None] | None = None
        # one decode at a time, in order: a final queued behind an interim waits at most one
        # short decode, and two decodes never fight over the same 2 cores
        self._runtime = runtime or whisper_runtime()
        self._pending: set[Future[Any]] = set()
        self._decoders: dict[str, _Decoder] = {}
        self._vad: vad.VAD | None = None
        self._initial_prompt = (
            InitialPrompt(opts.initial_prompt)
            if opts.initial_prompt is not None
            else load_initial_prompt(opts.language)
        )
        # set by the session: interim transcripts cost a decode each, and they help only to
        # give a barge-in its words, i.e. while the interviewer speaks
        self.interim_gate: Callable[[], bool] = lambda: True
        # utterances whose final transcript is still being decoded, and when the last one
        # turned out empty: lets the turn detector wait for the transcript of the segment that
        # just ended, however slow the CPU is
        self.active = 0
        self.last_done = 0.0

    @property
    def model(self) -> str:
        return self._opts.model

    @property
    def provider(self) -> str:
        return "faster-whisper"

    @property
    def options(self) -> WhisperOptions:
        return self._opts

    def attach_vad(self, vad_model: vad.VAD) -> None:
        """The VAD that cuts the stream into utterances (the session's Silero VAD)."""
        self._vad = vad_model

    @property
    def _key(self) -> tuple[str, str, int]:
        return (self._opts.model, self._opts.compute_type, self._opts.cpu_threads)

    def prewarm(self) -> None:
        """Called by the session at start: load the model and run one decode in the background,
        so the candidate's first answer does not pay for CTranslate2's first-call setup. Nothing
        to do when this process already warmed the model (an earlier STT of the same model)."""
        self.warm_up_in_background()

    def warm_up_in_background(self) -> Future[None] | None:
        """`prewarm`, returning the warm-up's future (None when the model is warm already)."""
        if self._key not in self._runtime.warmed and self._prewarm is None:
            self._prewarm = self._runtime.submit(self._warm_up)
        return self._prewarm

    def _warm_up(self) -> None:
        """Load the model and run one decode, on the runtime's thread, once per process."""
        if self._key in self._runtime.warmed:
            return
        t0 = time.perf_counter()
        self._runtime.run(
            self.transcribe_sync,
            np.zeros(WHISPER_SAMPLE_RATE, dtype=np.float32),
            self._opts.language,
        )
        self._runtime.warmed.add(self._key)
        logger.info(
            "whisper warmed up",
            extra={"model": self._opts.model, "warm_up_s": round(time.perf_counter() - t0, 2)},
        )

    def load_sync(self) -> Any:
        if self._model is None:
            self._model = self._runtime.model(self._key)
        return self._model

    def _decoder(self, model: Any, language: str) -> _Decoder:
        dec = self._decoders.get(language)
        if dec is None:
            from faster_whisper.tokenizer import Tokenizer
            from faster_whisper.transcribe import get_suppressed_tokens

            multilingual = bool(model.model.is_multilingual)
            tok = Tokenizer(
                model.hf_tokenizer,
                multilingual,
                task="transcribe",
                language=language if multilingual else None,
            )
            text = self._initial_prompt.text
            previous = tok.encode(" " + text) if text else []
            dec = _Decoder(
                tokenizer=tok,
                plain=model.get_prompt(tok, [], without_timestamps=True),
                prompted=model.get_prompt(tok, previous, without_timestamps=True),
                suppress=tuple(get_suppressed_tokens(tok, [-1]) or ()),
            )
            self._decoders[language] = dec
        return dec

    def window_frames(self, samples: int) -> int:
        """Mel frames the encoder sees for an utterance of `samples` samples at 16 kHz."""
        min_s = self._opts.min_window_s
        if min_s is None:
            min_s = MIN_WINDOW_S.get(self._opts.model, _FULL_WINDOW_S)
        seconds = max(samples / WHISPER_SAMPLE_RATE + _TAIL_S, min_s)
        frames = int(np.ceil(min(seconds, _FULL_WINDOW_S) * _FRAMES_PER_S))
        return frames + frames % 2  # the encoder's strided convolution wants an even count

    def token_cap(self, audio_s: float) -> int:
        """Most tokens a decode of `audio_s` seconds of speech may write."""
        per_s = MAX_TOKENS_PER_S.get(self._opts.model, 24.0)
        return min(_MAX_NEW_TOKENS, int(8 + per_s * audio_s))

    def token_count(self, text: str, language: str) -> int:
        """Tokens whisper wrote for `text` (the model must be loaded)."""
        return len(self._decoder(self.load_sync(), language).tokenizer.encode(" " + text))

    def transcribe_sync(self, pcm16k: np.ndarray, language: str) -> str:
        model = self.load_sync()
        t0 = time.perf_counter()
        if pcm16k.size / WHISPER_SAMPLE_RATE + _TAIL_S > _FULL_WINDOW_S:
            text = self._transcribe_long(model, pcm16k, language)
        else:
            text = self._transcribe_window(model, pcm16k, language)
        logger.debug(
            "whisper decoded",
            extra={
                "provider": "faster-whisper",
                "audio_s": round(pcm16k.size / WHISPER_SAMPLE_RATE, 2),
                "decode_s": round(time.perf_counter() - t0, 3),
            },
        )
        return text

    def _transcribe_window(self, model: Any, pcm16k: np.ndarray, language: str) -> str:
        dec = self._decoder(model, language)
        feats = model.feature_extractor(pcm16k)
        frames = self.window_frames(pcm16k.size)
        window = np.zeros((feats.shape[0], frames), dtype=np.float32)
        n = min(frames, feats.shape[1])
        window[:, :n] = feats[:, :n]
        audio_s = pcm16k.size / WHISPER_SAMPLE_RATE
        # on a short utterance ("yeah" said over the interviewer) the prompt makes whisper
        # repeat itself ("Yeah. Yeah."): two words, which the session counts as a barge-in
        prompt = dec.prompted if audio_s >= self._initial_prompt.min_audio_s else dec.plain
        max_new = self.token_cap(audio_s)
        result = model.model.generate(
            model.encode(window),
            [prompt],
            beam_size=self._opts.beam_size,
            # espeak-like or noisy audio can send whisper into a loop of one phrase
            no_repeat_ngram_size=3,
            max_length=len(prompt) + max_new,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=list(dec.suppress),
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < dec.tokenizer.eot]
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        if result.no_speech_prob > _NO_SPEECH_PROB and avg_logprob < _NO_SPEECH_LOGPROB:
            return ""  # noise, a cough: whisper would invent "Thank you."
        return str(dec.tokenizer.decode(tokens)).strip()

    def _transcribe_long(self, model: Any, pcm16k: np.ndarray, language: str) -> str:
        # a monologue past 30 s: faster-whisper's own loop over full windows
        segments, _info = model.transcribe(
            pcm16k,
            language=None if self._opts.model.endswith(".en") else language,
            beam_size=self._opts.beam_size,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
            temperature=0.0,
            no_repeat_ngram_size=3,
            max_new_tokens=_MAX_NEW_TOKENS,
            chunk_length=_FULL_WINDOW_S,
            initial_prompt=self._initial_prompt.text or None,
        )
        return " ".join(s.text.strip() for s in segments).strip()

    def submit(self, pcm16k: np.ndarray, language: str | None = None) -> Future[str]:
        """Queue a decode on the process's STT thread (one at a time, in order)."""
        job = self._runtime.submit(self.transcribe_sync, pcm16k, language or self._opts.language)
        self._pending.add(job)
        job.add_done_callback(self._pending.discard)
        return job

    async def transcribe(self, pcm16k: np.ndarray, language: str | None = None) -> str:
        return await asyncio.wrap_future(self.submit(pcm16k, language))

    def settled_since(self, t: float) -> bool:
        """No utterance awaits its transcript, and one that ended after `t` (wall clock) turned
        out to have no words. Utterances with words are signalled by their transcript event."""
        return self.active == 0 and self.last_done >= t

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> WhisperSpeechStream:
        if self._vad is None:
            raise RuntimeError(
                "WhisperSTT.stream needs a VAD to cut utterances: call attach_vad() first"
            )
        lang = language if isinstance(language, str) and language else self._opts.language
        return WhisperSpeechStream(
            self, vad=self._vad, language=lang, opts=self._opts.stream, conn_options=conn_options
        )

    async def _recognize_impl(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        lang = language if isinstance(language, str) and language else self._opts.language
        text = await self.transcribe(to_pcm16k(buffer), lang)
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            request_id=utils.shortuuid("whisper_"),
            alternatives=[stt.SpeechData(language=LanguageCode(lang), text=text, confidence=1.0)],
        )

    async def aclose(self) -> None:
        # the runtime thread serves the whole process; only this STT's queued decodes go
        for job in list(self._pending):
            job.cancel()
        if self._prewarm is not None:
            self._prewarm.cancel()


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
