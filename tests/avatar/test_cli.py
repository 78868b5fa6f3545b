"""`python -m avatar_worker` commands, including bad input (exit 2, one line, no traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from .conftest import vowel

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "avatar_worker", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        check=False,
    )


def write_wav(path: Path, samples: np.ndarray, rate: int, channels: int = 1) -> Path:
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
    if channels == 2:
        pcm = np.repeat(pcm, 2)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path


def assert_one_line_error(done, *fragments: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_render_writes_h264_aac_mp4_and_frame_parameters(tmp_path):
    rate = 11025  # an odd rate, converted on the way in
    signal = np.concatenate([np.zeros(rate // 4), vowel(0.6, rate), np.zeros(rate // 4)])
    wav = write_wav(tmp_path / "in.wav", signal, rate, channels=2)
    out, params = tmp_path / "out.mp4", tmp_path / "p.jsonl"
    done = run("render", "--audio", str(wav), "--avatar", "man", "--out", str(out),
               "--params-out", str(params), "--size", "256")  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in params.read_text().splitlines()]
    assert len(rows) == 28  # 1.1 s at 25 fps
    assert rows[1]["t"] == pytest.approx(0.04)
    assert max(r["mouth_open"] for r in rows[8:20]) > 0.4  # the vowel
    assert max(r["mouth_open"] for r in rows[:3]) < 0.1  # leading silence
    with av.open(str(out)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264" and audio.codec_context.name == "aac"
        assert (video.codec_context.width, video.codec_context.height) == (256, 256)
        assert sum(1 for _ in container.decode(video=0)) == 28


def test_render_of_silence_and_of_a_very_short_file(tmp_path):
    for seconds in (0.5, 0.01):
        wav = write_wav(tmp_path / "quiet.wav", np.zeros(int(16000 * seconds)), 16000)
        params = tmp_path / "p.jsonl"
        out = str(tmp_path / "q.mp4")
        done = run("render", "--audio", str(wav), "--avatar", "woman", "--out", out,
                   "--params-out", str(params), "--size", "128")  # fmt: skip
        assert done.returncode == 0, done.stderr
        rows = [json.loads(line) for line in params.read_text().splitlines()]
        assert rows and all(r["mouth_open"] == 0.0 for r in rows)


def test_unknown_avatar_lists_the_available_ones(tmp_path):
    wav = write_wav(tmp_path / "in.wav", np.zeros(1600), 16000)
    done = run("render", "--audio", str(wav), "--avatar", "robot", "--out", str(tmp_path / "o.mp4"))
    assert_one_line_error(done, "unknown avatar 'robot'", "woman, man")


@pytest.mark.parametrize("kind", ["missing", "not-audio"])
def test_bad_audio_files_get_one_clear_line(tmp_path, kind):
    path = tmp_path / "in.wav"
    if kind == "not-audio":
        path.write_text("hello")
    done = run(
        "render", "--audio", str(path), "--avatar", "woman", "--out", str(tmp_path / "o.mp4")
    )
    assert_one_line_error(done, str(path))


def test_bad_size_is_rejected_by_the_parser(tmp_path):
    done = run(
        "render", "--audio", "x.wav", "--avatar", "woman", "--out", "o.mp4", "--size", "100000"
    )
    assert done.returncode == 2 and "--size" in done.stderr and "Traceback" not in done.stderr


def test_lipsync_eval_without_the_phoneme_tool_fails_clearly(tmp_path):
    done = run("lipsync-eval", env={"AVATAR_ESPEAK_TOOL": str(tmp_path / "nope.py")})
    assert_one_line_error(done, "espeak phoneme tool not found", "AVATAR_ESPEAK_TOOL")


@pytest.mark.integration
def test_bench_prints_the_contract_keys():
    done = run("bench", "--json", "--quick", timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for key in ("render_fps_per_core", "frame_ms_p50", "frame_ms_p99", "added_latency_ms",
                "rss_per_session_mb", "sessions_per_core_25fps"):  # fmt: skip
        assert isinstance(result[key], int | float) and result[key] > 0


@pytest.mark.integration
def test_lipsync_eval_on_one_sentence_per_language():
    done = run("lipsync-eval", "--json", "--sentences", "1", timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for language in ("ko", "en"):
        assert result[language]["openness_correlation"] > 0.5


def test_prepare_caches_a_portrait_under_the_data_dir(tmp_path):
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image

    image = tmp_path / "face.png"
    Image.fromarray(skimage_data.astronaut()).save(image)
    data = tmp_path / "data"
    done = run("prepare", str(image), "--id", "astro", env={"INTERVIEW_DATA_DIR": str(data)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["id"] == "astro"
    meta = json.loads((data / "avatars" / "astro" / "portrait.json").read_text())
    assert len(meta["landmarks"]) == 468


def test_prepare_of_a_photo_without_a_face_is_one_line(tmp_path):
    from PIL import Image

    image = tmp_path / "wall.png"
    Image.new("RGB", (320, 320), (120, 130, 140)).save(image)
    done = run("prepare", str(image), env={"INTERVIEW_DATA_DIR": str(tmp_path / "data")})
    assert_one_line_error(done, "no usable face", str(image))
