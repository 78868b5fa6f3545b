"""Pause and resume without a room: the avatar generator's hold/rewind, the agent's
voice-activity controller against a stand-in session (events as livekit-agents emits them), and
the agent's avatar output speaking the pause extension to a stand-in participant."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
from livekit import rtc
from livekit.agents import vad
from livekit.agents.voice.avatar import AudioSegmentEnd

from agent.avatar import ReplayableAvatarOutput
from agent.barge_in import BargeInOptions, ObservedVAD, VoiceActivityPause
from agent.turn_taking import TranscriptCompleteness, TurnTakingOptions, transcript_words
from avatar_worker.avatars import get_composer
from avatar_worker.generator import GeneratorOptions, LipSyncVideoGenerator
from avatar_worker.protocol import RPC_PAUSE, RPC_RESUME
from avatar_worker.room_probe import espeak

RATE = 24000


async def _speech(text: str, tmp_path: Path) -> list[rtc.AudioFrame]:
    pcm = await espeak(text, "en", tmp_path / "speech.wav")
    step = RATE // 100
    return [
        rtc.AudioFrame(pcm[i : i + step].tobytes(), RATE, 1, step)
        for i in range(0, pcm.size - step + 1, step)
    ]


def _generator() -> LipSyncVideoGenerator:
    """An unpaced generator: items come as fast as the test asks for them."""
    return LipSyncVideoGenerator(
        get_composer("woman", 512),
        GeneratorOptions(sample_rate=RATE, pace_idle=False, idle_wait_s=0.0),
        seed=1,
    )


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
    gen = _generator()
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
    gen = _generator()
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
    def __init__(self, can_pause: bool = True) -> None:
        self.can_pause = can_pause
        self.calls: list[str] = []

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")


@dataclass
class _Speech:
    """A SpeechHandle as the controller uses it: interrupting it ends it (the framework clears
    its audio) once `finish()` says the speech task is over."""

    allow_interruptions: bool = True
    interrupted_by: str | None = None
    finished: bool = False
    on_done: list = field(default_factory=list)

    @property
    def interrupted(self) -> bool:
        return self.interrupted_by is not None

    def done(self) -> bool:
        return self.finished

    def interrupt(self, *, source: str = "programmatic") -> _Speech:
        if not self.allow_interruptions:
            raise RuntimeError("This generation handle does not allow interruptions")
        self.interrupted_by = self.interrupted_by or source
        return self

    def add_done_callback(self, callback) -> None:
        self.on_done.append(callback)

    def finish(self) -> None:
        self.finished = True
        for callback in self.on_done:
            callback(self)


@dataclass
class _Session(rtc.EventEmitter):
    """What VoiceActivityPause reads of an AgentSession, and the events it listens to."""

    agent_state: str = "speaking"
    current_speech: _Speech | None = field(default_factory=_Speech)
    output: SimpleNamespace = field(default_factory=lambda: SimpleNamespace(audio=_Output()))
    options: SimpleNamespace = field(
        default_factory=lambda: SimpleNamespace(
            interruption={"min_duration": 0.2, "false_interruption_timeout": 0.2, "min_words": 4}
        )
    )

    def __post_init__(self) -> None:
        super().__init__()

    cleared_turns: int = 0

    def clear_user_turn(self) -> None:
        self.cleared_turns += 1

    def final(self, text: str) -> None:
        self.emit("user_input_transcribed", SimpleNamespace(is_final=True, transcript=text))

    def interim(self, text: str) -> None:
        self.emit("user_input_transcribed", SimpleNamespace(is_final=False, transcript=text))


class _VAD(vad.VAD):
    """A VAD whose stream replays scripted events (the session reads them as from silero)."""

    def __init__(self) -> None:
        super().__init__(capabilities=vad.VADCapabilities(update_interval=0.032))
        self.streams: list[_Stream] = []

    def stream(self) -> vad.VADStream:
        self.streams.append(_Stream())
        return self.streams[-1]  # type: ignore[return-value]


class _Stream:
    def __init__(self) -> None:
        self.events: asyncio.Queue[vad.VADEvent] = asyncio.Queue()

    def __aiter__(self):
        return self

    async def __anext__(self) -> vad.VADEvent:
        return await self.events.get()

    async def aclose(self) -> None:
        pass


def _ev(kind: vad.VADEventType, speech_s: float = 0.0) -> vad.VADEvent:
    return vad.VADEvent(
        type=kind,
        samples_index=0,
        timestamp=0.0,
        speech_duration=speech_s,
        silence_duration=0.0,
        speaking=kind != vad.VADEventType.END_OF_SPEECH,
    )


def _window(probability: float) -> vad.VADEvent:
    """A VAD window before speech started (silero sends it before deciding on START)."""
    return vad.VADEvent(
        type=vad.VADEventType.INFERENCE_DONE,
        samples_index=0,
        timestamp=0.0,
        speech_duration=0.0,
        silence_duration=0.032,
        speaking=False,
        probability=probability,
    )


_EN, _KO = TranscriptCompleteness("en"), TranscriptCompleteness("ko")


class _Rig:
    """A session, its observed VAD and the controller, fed VAD events as the session reads
    them (through the observed stream); backchannels are the shipped en and ko lists."""

    def __init__(
        self, session: _Session | None = None, options: BargeInOptions | None = None
    ) -> None:
        self.session = session or _Session()
        self.inner = _VAD()
        observed = ObservedVAD(self.inner)
        self.controller = VoiceActivityPause(
            self.session,  # type: ignore[arg-type]
            observed,
            options,
            is_backchannel=lambda t, partial=False: (
                _EN.is_backchannel(t, partial=partial) or _KO.is_backchannel(t, partial=partial)
            ),
        )
        self.stream = observed.stream()
        self._t = 0.0

    async def speech(self, seconds: float) -> None:
        """Candidate speech of that length, then its end (VAD events every 32 ms)."""
        await self.speaking(seconds)
        await self.stops()

    async def speaking(self, seconds: float) -> None:
        """Candidate speech that has lasted that long and goes on."""
        await self._feed(_ev(vad.VADEventType.START_OF_SPEECH, 0.05))
        self._t = 0.05
        while self._t < seconds:
            self._t += 0.032
            await self._feed(_ev(vad.VADEventType.INFERENCE_DONE, self._t))

    async def stops(self) -> None:
        await self._feed(_ev(vad.VADEventType.END_OF_SPEECH, self._t))

    async def _feed(self, ev: vad.VADEvent) -> None:
        self.inner.streams[0].events.put_nowait(ev)
        assert await anext(self.stream) is ev  # the session still gets every event

    @property
    def calls(self) -> list[str]:
        return self.session.output.audio.calls

    @property
    def speech_handle(self) -> _Speech:
        assert self.session.current_speech is not None
        return self.session.current_speech


async def test_candidate_speech_pauses_the_interviewer_and_a_backchannel_resumes_it():
    rig = _Rig()
    assert rig.controller.options == BargeInOptions(0.2, 0.2)
    await rig.speech(0.35)
    assert rig.calls == ["pause"]
    rig.session.final("Uh-huh.")  # the transcript, not the 0.2 s timeout, lets it go on
    await asyncio.sleep(0.01)
    assert rig.calls == ["pause", "resume"]
    assert rig.controller.pauses == 1 and rig.controller.resumes == 1
    # and its words do not become the start of the candidate's next answer
    assert rig.session.cleared_turns == 1


async def test_the_vads_start_of_speech_holds_the_interviewer_when_the_threshold_is_its_own():
    session = _Session()
    session.options.interruption["min_duration"] = TurnTakingOptions().min_interruption_duration
    rig = _Rig(session)
    await rig._feed(_ev(vad.VADEventType.START_OF_SPEECH, 0.064))  # two 32 ms windows
    assert rig.calls == ["pause"]  # with the VAD's decision, not a window later


async def test_one_window_rated_speech_holds_and_the_vads_start_confirms_it():
    rig = _Rig(options=BargeInOptions(0.05, 1.0, first_window_probability=0.5))
    await rig._feed(_window(0.3))
    assert rig.calls == []
    await rig._feed(_window(0.7))  # a window before the VAD can start speech
    assert rig.calls == ["pause"]
    await rig._feed(_window(0.9))
    await rig._feed(_ev(vad.VADEventType.START_OF_SPEECH, 0.064))
    await rig._feed(_ev(vad.VADEventType.INFERENCE_DONE, 0.096))
    assert rig.calls == ["pause"] and rig.controller.holding
    rig.session.final("Wait, one question.")
    assert rig.speech_handle.interrupted_by == "audio_activity"


async def test_a_one_window_blip_lets_the_interviewer_go_on_at_once():
    rig = _Rig(options=BargeInOptions(0.05, 1.0, first_window_probability=0.5))
    await rig._feed(_window(0.6))
    await rig._feed(_window(0.2))  # no start of speech: a click or a breath
    assert rig.calls == ["pause", "resume"]
    assert not rig.controller.holding and rig.controller.resumes == 1
    await rig._feed(_window(0.1))
    assert rig.calls == ["pause", "resume"]
    # without the option, single windows are left to the VAD
    off = _Rig(options=BargeInOptions(0.05, 1.0))
    await off._feed(_window(0.99))
    assert off.calls == []


async def test_a_start_of_speech_shorter_than_the_threshold_waits_for_more():
    rig = _Rig()  # 0.2 s
    await rig._feed(_ev(vad.VADEventType.START_OF_SPEECH, 0.064))
    assert rig.calls == []
    await rig.speaking(0.25)
    assert rig.calls == ["pause"]


@pytest.mark.parametrize(
    "words", ["Yeah, yeah.", "I see.", "Oh, I see.", "네 네", "아 네 맞아요", "Mm-hmm.", ""]
)
async def test_backchannels_of_several_words_and_empty_transcripts_resume_at_once(words):
    rig = _Rig()
    await rig.speaking(0.6)
    rig.session.interim(words)  # whisper's interim while it is said: not yet a decision
    await rig.stops()
    rig.session.final(words)
    await asyncio.sleep(0.01)
    assert rig.calls == ["pause", "resume"]
    assert not rig.speech_handle.interrupted and rig.controller.interrupts == 0
    # the framework's own word rule never fires on a backchannel either
    assert len(transcript_words(words)) < rig.session.options.interruption["min_words"]


@pytest.mark.parametrize("words", ["Wait.", "잠깐만요", "Sorry, 잠깐만요", "Hold on."])
async def test_a_short_barge_in_interrupts_the_held_interviewer(words):
    rig = _Rig()
    await rig.speech(0.5)
    rig.session.final(words)
    speech = rig.speech_handle
    assert speech.interrupted_by == "audio_activity"
    assert rig.controller.interrupts == 1 and rig.controller.resumes == 0
    await asyncio.sleep(0.3)  # past the no-words timeout: nothing else happens
    assert rig.calls == ["pause"], "the output played again before the speech was cleared"
    speech.finish()  # the framework cleared the interrupted speech's audio
    assert rig.calls == ["pause", "resume"]
    assert rig.session.cleared_turns == 0  # what interrupts is the candidate's turn: kept


async def test_an_interim_with_settled_words_interrupts_before_the_candidate_stops():
    rig = _Rig()
    await rig.speaking(0.9)
    rig.session.interim("Sorry")  # one word, maybe cut off: wait
    rig.session.interim("아 네 맞아")  # listening so far, the last word unfinished: wait
    assert not rig.speech_handle.interrupted
    rig.session.interim("Sorry, can I")
    assert rig.speech_handle.interrupted_by == "audio_activity"
    assert rig.calls == ["pause"]


async def test_a_cough_resumes_after_the_timeout_and_a_later_backchannel_segment_waits():
    rig = _Rig()
    await rig.speech(0.3)  # a cough: the STT finds no words, no transcript comes
    await asyncio.sleep(0.1)
    assert rig.calls == ["pause"]  # still holding within the timeout
    await asyncio.sleep(0.15)
    assert rig.calls == ["pause", "resume"]
    assert not rig.speech_handle.interrupted

    # a transcript slower than the timeout still decides: "Wait." is not lost
    rig.session.final("Wait.")
    assert rig.speech_handle.interrupted_by == "audio_activity"
    rig.session.current_speech = _Speech()  # the interviewer's next turn

    # "네." then more speech: the first segment's transcript arrives while the candidate still
    # talks, so the decision waits for what follows
    await rig.speech(0.4)
    await rig.speaking(0.4)
    rig.session.final("네.")
    await asyncio.sleep(0.01)
    assert rig.calls == ["pause", "resume", "pause"]
    rig.session.final("질문이 하나 있습니다")
    assert rig.speech_handle.interrupted


async def test_a_late_transcript_after_the_timeout_resumes_nothing_twice():
    rig = _Rig()
    await rig.speech(0.3)
    await asyncio.sleep(0.3)
    assert rig.calls == ["pause", "resume"]
    rig.session.final("Yeah.")  # a late backchannel: it goes on as it is
    rig.session.final("Wait.")  # a second final belongs to nothing heard over the interviewer
    await asyncio.sleep(0.01)
    assert rig.calls == ["pause", "resume"] and not rig.speech_handle.interrupted


async def test_an_interviewer_that_cannot_pause_is_still_interrupted_by_what_was_said():
    rig = _Rig(_Session(output=SimpleNamespace(audio=_Output(can_pause=False))))
    await rig.speech(0.5)
    rig.session.final("Yeah, yeah.")
    assert not rig.speech_handle.interrupted
    await rig.speech(0.5)
    rig.session.final("Wait.")
    assert rig.speech_handle.interrupted_by == "audio_activity"
    rig.speech_handle.finish()
    assert rig.calls == []  # never paused, so never resumed either


async def test_only_one_vad_stream_is_observed_though_every_consumer_gets_its_events():
    """The session and the offline STT each open a stream over the same audio; seeing both
    would hear each utterance twice, out of step."""
    inner = _VAD()
    observed = ObservedVAD(inner)
    seen: list[vad.VADEvent] = []
    observed.listen(seen.append)
    first, second = observed.stream(), observed.stream()
    a, b = _ev(vad.VADEventType.START_OF_SPEECH), _ev(vad.VADEventType.END_OF_SPEECH)
    inner.streams[1].events.put_nowait(a)
    assert await anext(second) is a and seen == []  # its consumer got it, listeners did not
    inner.streams[0].events.put_nowait(b)
    assert await anext(first) is b and seen == [b]
    await first.aclose()  # e.g. an agent handoff: the other stream takes over
    inner.streams[1].events.put_nowait(a)
    assert await anext(second) is a and seen == [b, a]


async def test_speech_shorter_than_min_duration_does_not_pause():
    rig = _Rig()
    await rig.speech(0.15)
    rig.session.final("Wait.")  # nothing was heard over the interviewer: not ours to decide
    await asyncio.sleep(0.05)
    assert rig.calls == [] and not rig.speech_handle.interrupted


async def test_uninterruptible_or_silent_interviewer_is_never_paused():
    for session in (
        _Session(current_speech=_Speech(allow_interruptions=False)),
        _Session(agent_state="listening"),
    ):
        rig = _Rig(session)
        await rig.speech(0.5)
        rig.session.final("Wait.")
        assert rig.calls == [] and not rig.speech_handle.interrupted


# ---- the agent's avatar output ---------------------------------------------------------------


class _Participant:
    def __init__(self, unsupported: bool = False) -> None:
        self.calls: list[str] = []
        self._unsupported = unsupported

    async def perform_rpc(self, *, destination_identity: str, method: str, payload: str) -> str:
        await asyncio.sleep(0.01)  # in flight for a moment: order must still hold
        self.calls.append(method)
        if self._unsupported and method.startswith("interview."):
            raise rtc.RpcError(rtc.RpcError.ErrorCode.UNSUPPORTED_METHOD, "no such method")
        return "ok"


class _Room(rtc.EventEmitter):
    """What DataStreamAudioOutput touches of a room before it is connected."""

    def __init__(self, participant: _Participant) -> None:
        super().__init__()
        self.local_participant = participant

    def isconnected(self) -> bool:
        return False


def _output(pausable: bool, participant: _Participant) -> ReplayableAvatarOutput:
    return ReplayableAvatarOutput(
        _Room(participant),  # type: ignore[arg-type]
        destination_identity="avatar-agent-1",
        sample_rate=24000,
        pausable=pausable,
    )


async def test_an_avatar_without_the_extension_is_not_paused():
    participant = _Participant()
    out = _output(False, participant)
    assert not out.can_pause
    out.pause()
    await asyncio.sleep(0.05)
    assert participant.calls == [] and not out.paused


async def test_pause_and_resume_reach_the_avatar_in_order():
    participant = _Participant()
    out = _output(True, participant)
    assert out.can_pause
    out.pause()
    out.pause()  # once is enough
    out.resume()
    out.pause()
    await asyncio.sleep(0.1)
    assert participant.calls == [RPC_PAUSE, RPC_RESUME, RPC_PAUSE]
    out.clear_buffer()  # nothing playing: the avatar is told to resume rather than left held
    await asyncio.sleep(0.05)
    assert participant.calls[-1] == RPC_RESUME and not out.paused


async def test_an_avatar_that_does_not_know_the_rpcs_ends_pausing():
    participant = _Participant(unsupported=True)
    out = _output(True, participant)
    out.pause()
    await asyncio.sleep(0.05)
    assert not out.can_pause  # LiveKit's plain behaviour from now on
