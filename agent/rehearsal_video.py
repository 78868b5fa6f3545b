"""`rehearse --video`: DIR/interview.mp4, the avatar speaking the interviewer's turns.

The rehearsal's two time-aligned tracks drive it: interviewer.wav moves the avatar's mouth
(through the same LipSyncVideoGenerator a room session uses), and the MP4's sound is
conversation.wav, so the candidate's answers are heard in the gaps while the face listens.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from livekit import rtc

from avatar_worker.avatars import get_composer
from avatar_worker.offline import iter_frames, read_audio, write_mp4

FPS = 25.0


def render_interview_video(out_dir: Path, avatar: str, size: int = 512) -> Path:
    """Write out_dir/interview.mp4 from out_dir/interviewer.wav and conversation.wav."""
    voice, rate = read_audio(out_dir / "interviewer.wav", FPS)
    mixed, mixed_rate = read_audio(out_dir / "conversation.wav", FPS)
    if mixed_rate != rate:
        raise ValueError("interviewer.wav and conversation.wav differ in sample rate")
    mixed = np.pad(mixed, (0, max(0, voice.size - mixed.size)))
    composer = get_composer(avatar, size)

    def frames() -> Iterator[tuple[rtc.VideoFrame, rtc.AudioFrame, object]]:
        at = 0
        for video, audio, params in iter_frames(composer, voice, rate, FPS):
            n = audio.samples_per_channel
            chunk = np.ascontiguousarray(mixed[at : at + n])
            chunk = np.pad(chunk, (0, n - chunk.size))
            at += n
            yield video, rtc.AudioFrame(chunk.tobytes(), rate, 1, n), params

    path = out_dir / "interview.mp4"
    write_mp4(path, frames(), size, FPS, rate)
    return path
