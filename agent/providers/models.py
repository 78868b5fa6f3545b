"""Provider and model names the interviewer understands, as Literal types (one place to extend)."""

from __future__ import annotations

from typing import Literal, get_args

STTProvider = Literal["whisper", "deepgram"]
LLMProvider = Literal["scripted", "openai"]
TTSProvider = Literal["espeak", "elevenlabs", "openai"]

WhisperModel = Literal["whisper-base", "whisper-tiny.en"]
DeepgramModel = Literal["nova-3"]
ElevenLabsModel = Literal["eleven_multilingual_v2", "eleven_turbo_v2_5", "eleven_flash_v2_5"]
OpenAITTSModel = Literal["gpt-4o-mini-tts", "tts-1", "tts-1-hd"]

DEFAULT_OPENAI_LLM_MODEL = "gpt-4o-mini"
DEFAULT_DEEPGRAM_MODEL: DeepgramModel = "nova-3"
DEFAULT_ELEVENLABS_MODEL: ElevenLabsModel = "eleven_multilingual_v2"
DEFAULT_OPENAI_TTS_MODEL: OpenAITTSModel = "gpt-4o-mini-tts"

STT_PROVIDERS: tuple[str, ...] = get_args(STTProvider)
LLM_PROVIDERS: tuple[str, ...] = get_args(LLMProvider)
TTS_PROVIDERS: tuple[str, ...] = get_args(TTSProvider)
WHISPER_MODELS: tuple[str, ...] = get_args(WhisperModel)
