"""Text-to-speech: offline espeak-ng (streamed in small chunks) and cloud ElevenLabs / OpenAI TTS.

EspeakTTS speaks a reply sentence by sentence, pushing each sentence's audio as espeak produces
it, with word timings (TimedString start/end) from espeak's word events, so the session's
caption synchronizer (use_tts_aligned_transcript) follows the voice word by word in every
language instead of guessing from a speaking rate.
"""

from __future__ import annotations

import asyncio
import threading

import numpy as np
from livekit.agents import APIConnectOptions, tokenize, tts, utils
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS
from livekit.agents.voice.io import TimedString

from .espeak import Voice, engine
from .espeak_words import WordAligner, WordSpan, syllable_pieces
from .models import DEFAULT_ELEVENLABS_MODEL, DEFAULT_OPENAI_TTS_MODEL

_FRAME_MS = 60


class EspeakTTS(tts.TTS):
    def __init__(self, voice: Voice) -> None:
        super().__init__(
            # streaming only in the sense that it splits sentences itself: the framework's
            # StreamAdapter would drop the word timings each sentence carries
            capabilities=tts.TTSCapabilities(streaming=True, aligned_transcript=True),
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
        return _EspeakChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.SynthesizeStream:
        return _EspeakSentenceStream(tts=self, conn_options=conn_options)


async def _speak(
    text: str, voice: Voice, output_emitter: tts.AudioEmitter, offset_s: float
) -> float:
    """Push `text`'s audio and word timings (shifted by `offset_s`) as espeak produces them;
    returns the audio's duration. Each word is pushed once the next one's start is known."""
    eng = engine()
    loop = asyncio.get_running_loop()
    cancelled = threading.Event()
    aligner = WordAligner(text, eng.sample_rate)
    samples = 0

    def push_words(words: list[WordSpan]) -> None:
        if words:
            loop.call_soon_threadsafe(
                output_emitter.push_timed_transcript,
                [
                    TimedString(p.text, start_time=offset_s + p.start, end_time=offset_s + p.end)
                    for w in words
                    for p in syllable_pieces(w)
                ],
            )

    def on_chunk(chunk: np.ndarray) -> bool:
        nonlocal samples
        if cancelled.is_set():
            return False
        aligner.add_audio(chunk)
        samples += len(chunk)
        loop.call_soon_threadsafe(output_emitter.push, chunk.tobytes())
        return True

    def on_word(char_index: int, time_s: float) -> None:
        push_words(aligner.mark(char_index, time_s))

    def run() -> None:
        eng.synthesize(text, voice, on_chunk, on_word)
        if not cancelled.is_set():
            push_words(aligner.finish())

    try:
        await asyncio.to_thread(run)
    finally:
        cancelled.set()
    # the pushes above were scheduled with call_soon_threadsafe; let them run before a flush
    await asyncio.sleep(0)
    return samples / eng.sample_rate


def _initialize(output_emitter: tts.AudioEmitter, *, stream: bool) -> None:
    output_emitter.initialize(
        request_id=utils.shortuuid("espeak_"),
        sample_rate=engine().sample_rate,
        num_channels=1,
        mime_type="audio/pcm",
        frame_size_ms=_FRAME_MS,
        stream=stream,
    )


class _EspeakChunkedStream(tts.ChunkedStream):
    def __init__(self, *, tts: EspeakTTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._voice = tts._voice

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        _initialize(output_emitter, stream=False)
        await _speak(self._input_text, self._voice, output_emitter, 0.0)
        output_emitter.flush()


class _EspeakSentenceStream(tts.SynthesizeStream):
    """Speaks the incoming text sentence by sentence, so the first audio of a reply leaves a few
    milliseconds after its first sentence is complete; word times run on across sentences."""

    def __init__(self, *, tts: EspeakTTS, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, conn_options=conn_options)
        self._voice = tts._voice

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        _initialize(output_emitter, stream=True)
        output_emitter.start_segment(segment_id=utils.shortuuid())
        sentences = tokenize.blingfire.SentenceTokenizer(retain_format=True).stream()

        async def forward_input() -> None:
            async for data in self._input_ch:
                if isinstance(data, self._FlushSentinel):
                    sentences.flush()
                else:
                    sentences.push_text(data)
            sentences.end_input()

        async def synthesize() -> None:
            duration = 0.0
            async for ev in sentences:
                if not ev.token.strip():
                    # keep the spacing between sentences in the transcript
                    output_emitter.push_timed_transcript(
                        TimedString(ev.token, start_time=duration, end_time=duration)
                    )
                    continue
                self._mark_started()
                duration += await _speak(ev.token, self._voice, output_emitter, duration)
                output_emitter.flush()

        tasks = [asyncio.create_task(forward_input()), asyncio.create_task(synthesize())]
        try:
            await asyncio.gather(*tasks)
        finally:
            await sentences.aclose()
            await utils.aio.cancel_and_wait(*tasks)


def elevenlabs_tts(language: str, api_key: str) -> tts.TTS:
    from livekit.plugins import elevenlabs

    return elevenlabs.TTS(model=DEFAULT_ELEVENLABS_MODEL, language=language, api_key=api_key)


def openai_tts(api_key: str) -> tts.TTS:
    from livekit.plugins import openai

    return openai.TTS(model=DEFAULT_OPENAI_TTS_MODEL, voice="alloy", api_key=api_key)
