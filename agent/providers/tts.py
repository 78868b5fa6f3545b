"""Text-to-speech: offline espeak-ng (streamed in small chunks) and cloud ElevenLabs / OpenAI TTS.

EspeakTTS is a non-streaming `tts.TTS`: the session's StreamAdapter hands it one sentence at a
time, and each sentence's audio is pushed as espeak produces it, so the first audio of a reply
leaves a few milliseconds after its first sentence is complete.
"""

from __future__ import annotations

import asyncio
import threading

import numpy as np
from livekit.agents import APIConnectOptions, tts, utils
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS

from .espeak import Voice, engine
from .models import DEFAULT_ELEVENLABS_MODEL, DEFAULT_OPENAI_TTS_MODEL


class EspeakTTS(tts.TTS):
    def __init__(self, voice: Voice) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=engine().sample_rate,
            num_channels=1,
        )
        self._voice = voice

    @property
    def model(self) -> str:
        return f"espeak-ng:{self._voice.language}"

    @property
    def provider(self) -> str:
        return "espeak-ng"

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return _EspeakStream(tts=self, input_text=text, conn_options=conn_options)


class _EspeakStream(tts.ChunkedStream):
    def __init__(self, *, tts: EspeakTTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._voice = tts._voice

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        eng = engine()
        output_emitter.initialize(
            request_id=utils.shortuuid("espeak_"),
            sample_rate=eng.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
            frame_size_ms=60,
        )
        loop = asyncio.get_running_loop()
        cancelled = threading.Event()

        def on_chunk(chunk: np.ndarray) -> bool:
            if cancelled.is_set():
                return False
            loop.call_soon_threadsafe(output_emitter.push, chunk.tobytes())
            return True

        try:
            await asyncio.to_thread(eng.synthesize, self._input_text, self._voice, on_chunk)
        finally:
            cancelled.set()
        # the pushes above were scheduled with call_soon_threadsafe; let them run before flush
        await asyncio.sleep(0)
        output_emitter.flush()


def elevenlabs_tts(language: str, api_key: str) -> tts.TTS:
    from livekit.plugins import elevenlabs

    return elevenlabs.TTS(model=DEFAULT_ELEVENLABS_MODEL, language=language, api_key=api_key)


def openai_tts(api_key: str) -> tts.TTS:
    from livekit.plugins import openai

    return openai.TTS(model=DEFAULT_OPENAI_TTS_MODEL, voice="alloy", api_key=api_key)
