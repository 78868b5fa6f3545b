"""espeak-ng speech with phoneme timings, via the project's shared tool, for training and eval.

The tool is the file named by AVATAR_ESPEAK_TOOL, else shared/tools/espeak_phonemes.py beside the
repository (the project's reference copy), else the copy in tools/; a missing tool is a clear
EspeakToolError.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS_DIR = REPO_ROOT / "models" / "lipsync"


class EspeakToolError(RuntimeError):
    """The phoneme-timing tool or libespeak-ng is missing or failed."""


@dataclass(frozen=True)
class Utterance:
    voice: str
    text: str
    sample_rate: int
    audio: np.ndarray  # int16 mono
    phonemes: list[tuple[str, float, float]]  # (mnemonic, start s, end s)


def tool_path() -> Path:
    env = os.environ.get("AVATAR_ESPEAK_TOOL")
    if env:
        return Path(env)
    shared = REPO_ROOT.parent / "shared" / "tools" / "espeak_phonemes.py"
    return shared if shared.is_file() else REPO_ROOT / "tools" / "espeak_phonemes.py"


def check_tool() -> Path:
    path = tool_path()
    if not path.is_file():
        raise EspeakToolError(
            f"espeak phoneme tool not found at {path}; set AVATAR_ESPEAK_TOOL to espeak_phonemes.py"
        )
    return path


def synthesize(text: str, voice: str, rate: int = 160) -> Utterance:
    """One utterance; the tool runs in its own process because libespeak-ng keeps global state
    that breaks when one process switches voices and languages many times."""
    tool = check_tool()
    with tempfile.TemporaryDirectory(prefix="espeak-") as tmp:
        wav_path, json_path = Path(tmp) / "a.wav", Path(tmp) / "a.json"
        cmd = [sys.executable, str(tool), "--voice", voice, "--text", text, "--rate", str(rate)]
        cmd += ["--wav", str(wav_path), "--json", str(json_path)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0 or not json_path.is_file():
            reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise EspeakToolError(f"espeak-ng failed for voice {voice}: {reason}")
        with wave.open(str(wav_path), "rb") as wav:
            sample_rate = wav.getframerate()
            pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).copy()
        data = json.loads(json_path.read_text(encoding="utf-8"))
    marks = [(p["phoneme"], float(p["start"]), float(p["end"])) for p in data["phonemes"]]
    return Utterance(voice, text, sample_rate, pcm, marks)


def synthesize_many(jobs: list[tuple[str, str, int]], workers: int = 2) -> list[Utterance]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: synthesize(*job), jobs))


def corpus(language: str) -> list[str]:
    path = CORPUS_DIR / f"corpus_{language}.txt"
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# Sentences from index EVAL_START on are never used for training.
EVAL_START = 30
TRAIN_VOICES = {
    "en": ["en-us", "en", "en-us+f2", "en-us+m3", "en-gb-x-rp+f4", "en-us+klatt"],
    "ko": ["ko", "ko+f2", "ko+m3", "ko+f4", "ko+m5", "ko+klatt"],
}
EVAL_VOICES = {"en": ["en-us", "en-us+f5", "en-GB-scotland+m7"], "ko": ["ko", "ko+f5", "ko+m7"]}
TRAIN_RATES = (130, 165, 200)
EVAL_RATES = (150, 185)
