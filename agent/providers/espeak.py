"""ctypes binding to libespeak-ng: synthesis in chunks delivered as they are produced.

The library is a process-wide singleton and not thread-safe, so every synthesis holds one lock.
The library and its data come from the espeakng-loader wheel, or Debian's libespeak-ng.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .log import logger
from .whisper_model import ModelUnavailableError

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_RATE = 1
_ESPEAK_PITCH = 3
_BUFFER_MS = 60  # callback granularity: small chunks so the first audio leaves quickly

_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """espeak_EVENT of speak_lib.h (unchanged from 1.51 to 1.52)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based, in characters (not UTF-8 bytes)
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms from the start of this espeak_Synth call
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)

VOICES: dict[str, str] = {"ko": "ko", "en": "en-us"}


@dataclass(frozen=True)
class Voice:
    language: str
    rate_wpm: int = 165
    pitch: int = 50  # 0-100
    variant: str | None = None  # e.g. "f3": a different speaker for the simulated candidate


class _Engine:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lib, data_path = _load_library()
        sr = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, data_path, 0)
        if sr <= 0:
            raise ModelUnavailableError("espeak-ng failed to initialise (no voice data found)")
        self.sample_rate = int(sr)
        self._on_chunk: Callable[[np.ndarray], bool] | None = None
        self._on_word: Callable[[int, float], None] | None = None
        self._cb = _SYNTH_CALLBACK(self._callback)
        self.lib.espeak_SetSynthCallback(self._cb)
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]

    def _callback(self, wav: ctypes.Array, n: int, events: ctypes.Array) -> int:
        if self._on_chunk is None:
            return 0
        # the chunk goes first: a word's mark may need the audio just before it
        if n > 0 and wav and not self._on_chunk(np.ctypeslib.as_array(wav, shape=(n,)).copy()):
            return 1
        if self._on_word is not None and events:
            i = 0
            while (ev := events[i]).type != _EVENT_LIST_TERMINATED:
                if ev.type == _EVENT_WORD:
                    self._on_word(ev.text_position - 1, ev.audio_position / 1000.0)
                i += 1
        return 0

    def synthesize(
        self,
        text: str,
        voice: Voice,
        on_chunk: Callable[[np.ndarray], bool],
        on_word: Callable[[int, float], None] | None = None,
    ) -> None:
        """Speak `text`, calling on_chunk(int16 samples) per chunk; on_chunk False aborts.

        on_word(character offset in `text`, seconds into the audio) is called where espeak
        starts a word, after the chunk holding that moment; espeak skips some words.
        """
        name = VOICES.get(voice.language, voice.language)
        if voice.variant:
            name = f"{name}+{voice.variant}"
        data = text.encode("utf-8") + b"\0"
        with self.lock:
            if self.lib.espeak_SetVoiceByName(name.encode()) != 0:
                raise ModelUnavailableError(f"espeak-ng has no voice '{name}'")
            self.lib.espeak_SetParameter(_ESPEAK_RATE, voice.rate_wpm, 0)
            self.lib.espeak_SetParameter(_ESPEAK_PITCH, voice.pitch, 0)
            self._on_chunk, self._on_word = on_chunk, on_word
            try:
                buf = ctypes.create_string_buffer(data)
                self.lib.espeak_Synth(
                    buf, len(data), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None
                )
            finally:
                self._on_chunk, self._on_word = None, None

    def synthesize_all(self, text: str, voice: Voice) -> np.ndarray:
        parts: list[np.ndarray] = []
        self.synthesize(text, voice, lambda c: parts.append(c) is None)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


def _load_library() -> tuple[ctypes.CDLL, bytes | None]:
    try:
        import espeakng_loader

        return ctypes.CDLL(
            espeakng_loader.get_library_path()
        ), espeakng_loader.get_data_path().encode()
    except (ImportError, OSError, RuntimeError) as e:
        logger.info(
            "espeakng-loader unavailable, trying Debian libespeak-ng", extra={"error": str(e)}
        )
    name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
    try:
        return ctypes.CDLL(name), None
    except OSError:
        raise ModelUnavailableError(
            "espeak-ng is not installed (pip install espeakng-loader, or apt install espeak-ng)"
        ) from None


_engine: _Engine | None = None
_engine_lock = threading.Lock()


def engine() -> _Engine:
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = _Engine()
        return _engine
