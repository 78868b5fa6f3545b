"""Pause and resume without a room: the avatar generator's hold/rewind, and the agent's
voice-activity controller against a stand-in session (events as livekit-agents emits them)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from livekit import rtc
from livekit.agents.voice.avatar import AudioSegmentEnd

from agent.barge_in import BargeInOptions, VoiceActivityPause
from avatar_worker.avatars import get_composer
from avatar_worker.generator import GeneratorOptions, LipSyncVideoGenerator
from avatar_worker.room_probe import espeak

RATE = 24000


async def _speech(text: str, tmp_path: Path) -> list[rtc.AudioFrame]:
    pcm = await espeak(text, "en", tmp_path / "speech.wav")
    step = RATE // 100
    return [
        rtc.AudioFrame(pcm[i : i + step].tobytes(), RATE, 1, step)
        for i in range(0, pcm.size - step + 1, step)
    ]


async def _pairs(stream, n: int) -> list[bytes]:
    """The audio of the next n video+audio pairs (idle video frames skipped)."""
    out: list[bytes] = []
    while len(out) < n:
        item = await asyncio.wait_for(anext(stream), 5)
        if isinstance(item, rtc.AudioFrame):
            out.append(bytes(item.data))
    return out


async def test_a_paused_avatar_rests_its_mouth_and_resumes_where_the_room_stopped_hearing(
    tmp_path,
):
    gen = LipSyncVideoGenerator(
        get_composer("woman", 512),
        GeneratorOptions(sample_rate=RATE, pace_idle=False, idle_wait_s=0.0),
        seed=1,
    )
    for frame in await _speech("Welcome, and thank you for joining us today.", tmp_path):
        await gen.push_audio(frame)
    await gen.push_audio(AudioSegmentEnd())
    stream = gen.__aiter__()
    heard = await _pairs(stream, 10)
    assert max(gen.mouth_open, gen.mouth_width) > 0.0
    queued = gen.queued_frames

    gen.pause()
    # the room's queue held the last 3 pairs unplayed: they go back in front
    assert gen.rewind(0.12) == 0.12
    assert gen.queued_frames == queued + 3
    held = [await asyncio.wait_for(anext(stream), 5) for _ in range(6)]
    assert all(isinstance(i, rtc.VideoFrame) for i in held), "audio came out while paused"
    assert gen.mouth_open == 0.0  # closed within the six frames and resting

    gen.resume()
    again = await _pairs(stream, 4)
    # the last pair was still being handed to the room (the runner had not asked for the next
    # item): it plays out and is not repeated; the three before it were dropped and come again
    assert again[:3] == heard[-4:-1], "the resume does not start where the room stopped"
    assert again[3] not in heard


async def test_clear_buffer_ends_a_pause_and_drops_what_was_held(tmp_path):
    gen = LipSyncVideoGenerator(
        get_composer("woman", 512),
        GeneratorOptions(sample_rate=RATE, pace_idle=False, idle_wait_s=0.0),
        seed=1,
    )
    for frame in await _speech("Thank you for joining.", tmp_path):
        await gen.push_audio(frame)
    stream = gen.__aiter__()
    await _pairs(stream, 3)
    gen.pause()
    gen.clear_buffer()
    assert not gen.paused and gen.queued_frames == 0
    for frame in (await _speech("Next.", tmp_path))[:20]:  # the next turn plays at once
        await gen.push_audio(frame)
    assert len(await _pairs(stream, 2)) == 2


# ---- the agent's controller ----------------------------------------------------------------


class _Output:
    can_pause = True

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")


@dataclass
class _Speech:
    interrupted: bool = False
    allow_interruptions: bool = True

    def done(self) -> bool:
        return self.interrupted


@dataclass
class _Session(rtc.EventEmitter):
    """What VoiceActivityPause reads of an AgentSession, and the events it listens to."""

    agent_state: str = "speaking"
    current_speech: _Speech | None = field(default_factory=_Speech)
    output: SimpleNamespace = field(default_factory=lambda: SimpleNamespace(audio=_Output()))
    options: SimpleNamespace = field(
        default_factory=lambda: SimpleNamespace(
            interruption={"min_duration": 0.05, "false_interruption_timeout": 0.2, "min_words": 2}
        )
    )

    def __post_init__(self) -> None:
        super().__init__()

    def user(self, state: str) -> None:
        self.emit("user_state_changed", SimpleNamespace(new_state=state))

    def final(self, text: str) -> None:
        self.emit("user_input_transcribed", SimpleNamespace(is_final=True, transcript=text))


def _controller(session: _Session) -> VoiceActivityPause:
    backchannels = {"yeah", "uh-huh", "네"}
    return VoiceActivityPause(
        session,  # type: ignore[arg-type]
        is_backchannel=lambda t: t.strip(".,!? ").lower() in backchannels,
    )


async def test_candidate_speech_pauses_the_interviewer_and_a_backchannel_resumes_it():
    session = _Session()
    ctl = _controller(session)
    assert ctl.options == BargeInOptions(pause_after_s=0.05, resume_after_s=0.2, min_words=2)
    session.user("speaking")
    await asyncio.sleep(0.08)
    assert session.output.audio.calls == ["pause"]
    session.user("listening")
    session.final("Uh-huh.")  # the transcript, not the 0.2 s timeout, lets it go on
    await asyncio.sleep(0.02)
    assert session.output.audio.calls == ["pause", "resume"]
    assert ctl.pauses == 1 and ctl.resumes == 1


async def test_a_click_shorter_than_min_duration_does_not_pause():
    session = _Session()
    _controller(session)
    session.user("speaking")
    await asyncio.sleep(0.02)
    session.user("listening")
    await asyncio.sleep(0.1)
    assert session.output.audio.calls == []


async def test_wordless_sound_resumes_after_the_timeout_and_a_barge_in_is_left_to_interrupt():
    session = _Session()
    _controller(session)
    session.user("speaking")
    await asyncio.sleep(0.08)
    session.user("listening")
    await asyncio.sleep(0.1)
    assert session.output.audio.calls == ["pause"]  # still holding within the timeout
    await asyncio.sleep(0.15)
    assert session.output.audio.calls == ["pause", "resume"]

    # a real barge-in: the transcript has enough words, the framework interrupts the speech
    session.user("speaking")
    await asyncio.sleep(0.08)
    session.user("listening")
    session.final("Sorry, wait a second.")
    session.current_speech.interrupted = True
    session.agent_state = "listening"
    session.emit("agent_state_changed", SimpleNamespace(new_state="listening"))
    await asyncio.sleep(0.3)
    assert session.output.audio.calls == ["pause", "resume", "pause"]


async def test_uninterruptible_speech_is_never_paused():
    session = _Session(current_speech=_Speech(allow_interruptions=False))
    _controller(session)
    session.user("speaking")
    await asyncio.sleep(0.08)
    assert session.output.audio.calls == []
