"""Chooses and builds the STT, LLM and TTS of one interview: cloud when keys are set, else offline.

`choose_providers` only decides (no model is loaded, nothing touches the network), so the choice
can be logged, tested and reported before anything heavy happens; `build_*` construct them.
A provider named explicitly (INTERVIEW_STT / INTERVIEW_LLM / INTERVIEW_TTS) that cannot run is a
ProviderError, never a silent fallback.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass

from livekit.agents import llm, stt, tts

from ..env import whole_number
from ..plan import InterviewPlan
from .espeak import Voice
from .log import logger
from .models import LLM_PROVIDERS, STT_PROVIDERS, TTS_PROVIDERS, WHISPER_MODELS
from .whisper_model import ModelUnavailableError, check_available


class ProviderError(RuntimeError):
    """A provider that was asked for cannot run; one sentence naming the setting."""


def offline_stt_threads(env: Mapping[str, str]) -> int:
    """CTranslate2 threads per offline Whisper decode (INTERVIEW_STT_THREADS)."""
    from .stt import DEFAULT_STT_THREADS, MAX_STT_THREADS

    return whole_number(
        env, "INTERVIEW_STT_THREADS", DEFAULT_STT_THREADS, 1, MAX_STT_THREADS, ProviderError
    )


@dataclass(frozen=True)
class Choice:
    provider: str
    model: str
    reason: str


@dataclass(frozen=True)
class ProviderChoices:
    stt: Choice
    llm: Choice
    tts: Choice

    def log(self, **extra: object) -> None:
        for part, c in (("stt", self.stt), ("llm", self.llm), ("tts", self.tts)):
            logger.info(
                f"{part}: {c.provider} ({c.model}) - {c.reason}",
                extra={"part": part, "provider": c.provider, "model": c.model, **extra},
            )


def _explicit(env: Mapping[str, str], var: str, allowed: tuple[str, ...]) -> str | None:
    value = (env.get(var) or "").strip().lower()
    if not value:
        return None
    if value not in allowed:
        raise ProviderError(f"{var}={value!r} is not one of {', '.join(allowed)}")
    return value


def _choose_stt(language: str, env: Mapping[str, str]) -> Choice:
    explicit = _explicit(env, "INTERVIEW_STT", STT_PROVIDERS)
    key = env.get("DEEPGRAM_API_KEY")
    if explicit == "deepgram" or (explicit is None and key):
        if not key:
            raise ProviderError("INTERVIEW_STT=deepgram needs DEEPGRAM_API_KEY")
        why = "INTERVIEW_STT=deepgram" if explicit else "DEEPGRAM_API_KEY is set"
        return Choice("deepgram", f"nova-3:{language}", why)
    # English defaults to tiny.en: several times faster than base on CPU, as accurate on English
    default = "whisper-tiny.en" if language == "en" else "whisper-base"
    model = (env.get("INTERVIEW_WHISPER_MODEL") or default).strip()
    if model not in WHISPER_MODELS:
        raise ProviderError(
            f"INTERVIEW_WHISPER_MODEL={model!r} is not one of {', '.join(WHISPER_MODELS)}"
        )
    if model.endswith(".en") and language != "en":
        raise ProviderError(
            f"INTERVIEW_WHISPER_MODEL={model} is English-only but the interview is in {language}"
        )
    try:
        check_available(model)  # type: ignore[arg-type]
    except ModelUnavailableError as e:
        raise ProviderError(f"offline STT unavailable: {e}") from None
    why = "INTERVIEW_STT=whisper" if explicit else "no DEEPGRAM_API_KEY: offline default"
    return Choice("whisper", model, why)


def _choose_llm(env: Mapping[str, str]) -> Choice:
    explicit = _explicit(env, "INTERVIEW_LLM", LLM_PROVIDERS)
    key, base = env.get("OPENAI_API_KEY"), env.get("OPENAI_BASE_URL")
    model = env.get("INTERVIEW_LLM_MODEL") or "gpt-4o-mini"
    if explicit == "openai" or (explicit is None and (key or base)):
        if not key and not base:
            raise ProviderError("INTERVIEW_LLM=openai needs OPENAI_API_KEY or OPENAI_BASE_URL")
        where = base or "api.openai.com"
        why = (
            "INTERVIEW_LLM=openai"
            if explicit
            else ("OPENAI_API_KEY is set" if key else "OPENAI_BASE_URL is set")
        )
        return Choice("openai", f"{model}@{where}", why)
    why = (
        "INTERVIEW_LLM=scripted"
        if explicit
        else "no OPENAI_API_KEY/OPENAI_BASE_URL: offline default"
    )
    return Choice("scripted", "scripted-interviewer", why)


def _choose_tts(language: str, env: Mapping[str, str]) -> Choice:
    explicit = _explicit(env, "INTERVIEW_TTS", TTS_PROVIDERS)
    if explicit == "elevenlabs" or (explicit is None and env.get("ELEVENLABS_API_KEY")):
        if not env.get("ELEVENLABS_API_KEY"):
            raise ProviderError("INTERVIEW_TTS=elevenlabs needs ELEVENLABS_API_KEY")
        return Choice(
            "elevenlabs",
            "eleven_multilingual_v2",
            (explicit and "INTERVIEW_TTS=elevenlabs") or "ELEVENLABS_API_KEY is set",
        )
    openai_ok = bool(env.get("OPENAI_API_KEY")) and not env.get("OPENAI_BASE_URL")
    if explicit == "openai" or (explicit is None and openai_ok):
        if not env.get("OPENAI_API_KEY"):
            raise ProviderError("INTERVIEW_TTS=openai needs OPENAI_API_KEY")
        return Choice(
            "openai",
            "gpt-4o-mini-tts",
            (explicit and "INTERVIEW_TTS=openai") or "OPENAI_API_KEY is set",
        )
    try:
        from .espeak import engine

        engine()
    except ModelUnavailableError as e:
        raise ProviderError(f"offline TTS unavailable: {e}") from None
    why = (
        "INTERVIEW_TTS=espeak"
        if explicit
        else "no ELEVENLABS_API_KEY/OPENAI_API_KEY: offline default"
    )
    return Choice("espeak", f"espeak-ng:{language}", why)


def choose_providers(language: str, env: Mapping[str, str] | None = None) -> ProviderChoices:
    env = os.environ if env is None else env
    return ProviderChoices(
        stt=_choose_stt(language, env), llm=_choose_llm(env), tts=_choose_tts(language, env)
    )


def build_stt(choice: Choice, language: str, env: Mapping[str, str] | None = None) -> stt.STT:
    env = os.environ if env is None else env
    if choice.provider == "deepgram":
        from .stt import deepgram_stt

        return deepgram_stt(language, env["DEEPGRAM_API_KEY"])
    from .stt import DEFAULT_STT_NICE, WhisperOptions, WhisperSTT, whisper_runtime

    threads = offline_stt_threads(env)
    nice = whole_number(env, "INTERVIEW_STT_NICE", DEFAULT_STT_NICE, 0, 19, ProviderError)
    return WhisperSTT(
        WhisperOptions(model=choice.model, language=language, cpu_threads=threads),  # type: ignore[arg-type]
        runtime=whisper_runtime(nice),
    )


def warm_offline_stt(languages: Iterable[str], env: Mapping[str, str] | None = None) -> list[str]:
    """Load the offline Whisper model the interviews in each of `languages` would use, and run
    one decode with it, so an interview given this process finds it ready instead of loading it
    while its greeting plays (seconds of CPU when several interviews start together). Returns
    the models warmed; nothing for a cloud STT. ProviderError when a model cannot be loaded."""
    env = os.environ if env is None else env
    warming: dict[str, Future[None] | None] = {}
    for language in languages:
        choice = _choose_stt(language, env)
        if choice.provider == "whisper" and choice.model not in warming:
            whisper = build_stt(choice, language, env)
            warming[choice.model] = whisper.warm_up_in_background()  # type: ignore[attr-defined]
    for model, future in warming.items():
        if future is None:
            continue
        try:
            future.result()
        except Exception as e:
            raise ProviderError(f"the offline STT model {model} could not be loaded: {e}") from None
    return list(warming)


def build_llm(choice: Choice, plan: InterviewPlan, env: Mapping[str, str] | None = None) -> llm.LLM:
    env = os.environ if env is None else env
    if choice.provider == "openai":
        from .llm import openai_llm

        return openai_llm(
            env.get("INTERVIEW_LLM_MODEL"), env.get("OPENAI_BASE_URL"), env.get("OPENAI_API_KEY")
        )
    from .llm import ScriptedInterviewerLLM

    return ScriptedInterviewerLLM(plan.prompts, persona=plan.config.persona, language=plan.language)


def build_tts(choice: Choice, language: str, env: Mapping[str, str] | None = None) -> tts.TTS:
    env = os.environ if env is None else env
    if choice.provider == "elevenlabs":
        from .tts import elevenlabs_tts

        return elevenlabs_tts(language, env["ELEVENLABS_API_KEY"])
    if choice.provider == "openai":
        from .tts import openai_tts

        return openai_tts(env["OPENAI_API_KEY"])
    from .tts import EspeakTTS

    return EspeakTTS(Voice(language=language))


__all__ = [
    "Choice",
    "ProviderChoices",
    "ProviderError",
    "build_llm",
    "build_stt",
    "build_tts",
    "choose_providers",
]
