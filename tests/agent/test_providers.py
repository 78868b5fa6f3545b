"""Provider selection with and without keys; nothing here touches the network."""

from __future__ import annotations

import json

import pytest

from agent.config import parse_config
from agent.plan import build_plan
from agent.providers import (
    ProviderError,
    build_llm,
    build_stt,
    build_tts,
    choose_providers,
    warm_offline_stt,
    whisper_model,
)
from agent.providers.llm import ScriptedInterviewerLLM
from agent.providers.stt import DEFAULT_STT_THREADS, WhisperSTT, whisper_runtime
from agent.providers.tts import EspeakTTS


def test_no_keys_means_the_offline_stack():
    c = choose_providers("ko", {})
    assert (c.stt.provider, c.stt.model) == ("whisper", "whisper-base")
    assert choose_providers("en", {}).stt.model == "whisper-tiny.en"
    assert c.llm.provider == "scripted" and c.tts.provider == "espeak"
    assert "offline default" in c.stt.reason
    plan = build_plan(parse_config({"candidate_name": "A", "role": "B"}))
    assert isinstance(build_stt(c.stt, "ko", {}), WhisperSTT)
    assert isinstance(build_llm(c.llm, plan, {}), ScriptedInterviewerLLM)
    assert isinstance(build_tts(c.tts, "ko", {}), EspeakTTS)


def test_each_key_switches_its_part_to_the_cloud():
    env = {"DEEPGRAM_API_KEY": "dg", "OPENAI_API_KEY": "sk", "ELEVENLABS_API_KEY": "el"}
    c = choose_providers("en", env)
    assert (c.stt.provider, c.llm.provider, c.tts.provider) == ("deepgram", "openai", "elevenlabs")
    assert c.stt.reason == "DEEPGRAM_API_KEY is set"
    only_openai = choose_providers("en", {"OPENAI_API_KEY": "sk"})
    assert (only_openai.stt.provider, only_openai.tts.provider) == ("whisper", "openai")
    # building cloud clients constructs objects only; no request is made
    plan = build_plan(parse_config({"candidate_name": "A", "role": "B", "language": "en"}))
    stt = build_stt(c.stt, "en", env)
    llm = build_llm(c.llm, plan, env)
    tts = build_tts(c.tts, "en", env)
    assert (stt.provider, llm.provider, tts.provider) != ("", "", "")


def test_openai_compatible_server_by_base_url_and_model():
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1", "INTERVIEW_LLM_MODEL": "qwen2.5:7b"}
    c = choose_providers("ko", env)
    assert c.llm.provider == "openai" and c.llm.model == "qwen2.5:7b@http://127.0.0.1:11434/v1"
    assert c.tts.provider == "espeak", "a self-hosted LLM server does not imply OpenAI TTS"


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"INTERVIEW_STT": "deepgram"}, "DEEPGRAM_API_KEY"),
        ({"INTERVIEW_LLM": "openai"}, "OPENAI_API_KEY"),
        ({"INTERVIEW_TTS": "elevenlabs"}, "ELEVENLABS_API_KEY"),
        ({"INTERVIEW_TTS": "openai"}, "OPENAI_API_KEY"),
        ({"INTERVIEW_STT": "vosk"}, "INTERVIEW_STT"),
        ({"INTERVIEW_WHISPER_MODEL": "large-v3"}, "INTERVIEW_WHISPER_MODEL"),
        ({"INTERVIEW_WHISPER_MODEL": "whisper-tiny.en"}, "English-only"),
    ],
)
def test_a_named_provider_that_cannot_run_is_an_error(env, needle):
    with pytest.raises(ProviderError, match=needle):
        choose_providers("ko", env)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"INTERVIEW_STT_THREADS": "two"}, "INTERVIEW_STT_THREADS must be a whole number"),
        ({"INTERVIEW_STT_THREADS": "0"}, "INTERVIEW_STT_THREADS .* from 1 to"),
        ({"INTERVIEW_STT_NICE": "1.5"}, "INTERVIEW_STT_NICE must be a whole number"),
        ({"INTERVIEW_STT_NICE": "25"}, "INTERVIEW_STT_NICE .* from 0 to 19, not '25'"),
    ],
)
def test_a_bad_offline_stt_setting_is_one_sentence_naming_it(env, needle):
    with pytest.raises(ProviderError, match=needle):
        build_stt(choose_providers("en", {}).stt, "en", env)


def test_an_idle_process_loads_the_offline_stt_ahead():
    """What the worker's prewarm loads: the model an English interview will use, decoded once,
    so the interview's STT finds it warm; a cloud STT loads nothing; a bad model is an error."""
    assert warm_offline_stt(["en", "en"], {}) == ["whisper-tiny.en"]
    assert ("whisper-tiny.en", "int8", DEFAULT_STT_THREADS) in whisper_runtime().warmed
    stt = build_stt(choose_providers("en", {}).stt, "en", {})
    assert stt.warm_up_in_background() is None  # nothing left to warm
    assert warm_offline_stt(["en", "ko"], {"DEEPGRAM_API_KEY": "k"}) == []
    with pytest.raises(ProviderError, match="INTERVIEW_WHISPER_MODEL"):
        warm_offline_stt(["en"], {"INTERVIEW_WHISPER_MODEL": "whisper-huge"})


def test_explicit_offline_choice_wins_over_keys():
    c = choose_providers("en", {"OPENAI_API_KEY": "sk", "INTERVIEW_LLM": "scripted"})
    assert c.llm.provider == "scripted" and c.llm.reason == "INTERVIEW_LLM=scripted"


def test_whisper_manifest_matches_the_shipped_parts():
    entries = whisper_model.load_manifest()
    base = entries["whisper-base"]
    assert len(base.sources) == 2 and len(base.sha256) == 64
    whisper_model.check_available("whisper-base")
    whisper_model.check_available("whisper-tiny.en")


def test_a_corrupt_model_is_refused(tmp_path, monkeypatch):
    manifest = json.loads(whisper_model.MANIFEST_PATH.read_text())
    for m in manifest["models"]:
        m["model_bin_sha256"] = "0" * 64
    bad = tmp_path / "whisper.json"
    bad.write_text(json.dumps(manifest))
    monkeypatch.setattr(whisper_model, "MANIFEST_PATH", bad)
    monkeypatch.setenv("INTERVIEW_MODEL_CACHE", str(tmp_path / "cache"))
    with pytest.raises(whisper_model.ModelUnavailableError, match="sha256"):
        whisper_model.whisper_model_dir("whisper-tiny.en")
