"""`rehearse --video`: the avatar speaks the interviewer's track, the candidate is heard between."""

from __future__ import annotations

import av
import numpy as np

from agent.rehearsal_video import render_interview_video
from agent.sim_io import write_wav
from avatar_worker.room_probe import DARK_Y

RATE = 24000


def _speech_like(seconds: float) -> np.ndarray:
    """Syllables: a 140 Hz pulse train through an open-vowel resonance, 4 per second."""
    t = np.arange(int(seconds * RATE)) / RATE
    voice = np.sin(2 * np.pi * 140 * t) * np.sin(2 * np.pi * 750 * t)
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None)
    return (12000 * voice * envelope).astype(np.int16)


def _mouth(frame: av.VideoFrame) -> float:
    y = frame.to_ndarray(format="gray")
    return float((y[246:316, 210:302] < DARK_Y).mean())  # the stylized mouth box, with sway


def test_video_follows_the_interviewer_and_carries_the_candidate(tmp_path):
    silence = np.zeros(RATE, dtype=np.int16)
    speech = _speech_like(2.0)
    answer = (6000 * np.sin(2 * np.pi * 220 * np.arange(2 * RATE) / RATE)).astype(np.int16)
    interviewer = np.concatenate([silence, speech, np.zeros(answer.size, np.int16)])
    candidate = np.concatenate([silence, np.zeros(speech.size, np.int16), answer])
    write_wav(tmp_path / "interviewer.wav", interviewer, RATE)
    write_wav(tmp_path / "conversation.wav", interviewer + candidate, RATE)

    path = render_interview_video(tmp_path, "woman")

    with av.open(str(path)) as container:
        mouths = [_mouth(f) for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        pcm = np.concatenate(
            [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
        ).astype(np.float32)
    assert abs(len(mouths) - 5 * 25) <= 2
    assert np.mean([m > 0.01 for m in mouths[30:70]]) > 0.5  # talking
    assert max(mouths[:20]) < 0.005 and max(mouths[85:]) < 0.005  # listening
    rate = pcm.size / 5.0
    gap = pcm[int(3.3 * rate) : int(4.7 * rate)]
    assert np.sqrt(np.mean(gap**2)) > 0.05  # the candidate's answer is in the sound (float AAC)
