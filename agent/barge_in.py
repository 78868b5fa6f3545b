"""Barge-in by voice activity: the interviewer holds its speech as soon as the candidate talks,
and what the candidate said decides whether it goes on.

livekit-agents 1.8 decides a barge-in by counting words: it pauses (or interrupts) the agent's
speech on voice activity only once the live transcript has `min_words` words
(`AgentActivity._interrupt_by_audio_activity`), and drops a shorter turn said over the agent.
Words are the wrong measure for an interview: "Yeah, yeah." and "네 네" are two words of
listening, "Wait." and "잠깐만요" one word of interruption.

This controller takes the decision, leaving the framework's word rule only as a backstop set
above the longest backchannel (turn_taking.py `MAX_BACKCHANNEL_WORDS` + 1 words), so it never
fires on one. It sees the session's VAD events through `ObservedVAD` (the session's VAD,
wrapped) and the transcripts through `user_input_transcribed`:

- candidate speech lasting `pause_after_s` (the VAD's speech duration, as the framework's own
  `min_duration` check) while the interviewer speaks an interruptible turn pauses the session's
  audio output at once (the agent's own track, or the avatar through its pause extension);
  sooner still, with `first_window_probability` (the session sets the VAD's activation
  threshold), the first VAD window rated speech holds it, and the next window confirms the
  hold (the VAD starts speech) or lets it go on at once (a blip: a ~60 ms hole, nothing lost);
- a transcript of that speech that is not a backchannel interrupts the turn through the speech's
  public `SpeechHandle.interrupt()`: a final one, or an interim (the offline whisper stream
  sends one every 0.8 s of speech) of two words or more whose words before the last, which may
  be cut mid-word, can no longer become a backchannel ("Sorry, can I" interrupts before the
  candidate stops; "아 네 맞아" and "I se" wait for their final). The framework then ends the
  turn as for its own barge-in: the spoken part goes to the chat with `interrupted=True` (the
  transcript store records it, session.py `_on_item`), and the candidate's turn is committed
  and answered;
- a backchannel (only phrases of prompts/*/turn_taking.yaml `backchannels`, at most
  `MAX_BACKCHANNEL_WORDS` words) or an empty transcript resumes the speech as soon as it arrives
  after the candidate stopped; speech that never yields a transcript (a cough, noise) resumes
  `resume_after_s` after it ended (a final that comes later still interrupts if it says
  more). The framework does not commit the backchannel's turn (too few words over a speech
  that was not interrupted) but keeps its words for the next turn, so the controller clears
  them (`AgentSession.clear_user_turn`); agent/flow.py ignores a backchannel turn that still
  ends.

When the interviewer cannot be paused (an output without pause, an avatar service without the
pause extension), the same transcripts still interrupt it, only later: it keeps talking until
the first interim with a settled word that is not listening (in the room test, "Sorry, wait a
second." was interrupted on its first interim, 0.7 s after the pause, i.e. ~0.85 s into the
barge-in) or the final of a short "Wait." (its length + 0.3 s VAD hang-over + transcription),
and a backchannel goes unnoticed. Every audio interview has this controller (session.py
`create_interview`: the worker, the rehearsal and the benchmark alike).

Choosing `pause_after_s` (turn_taking.py `min_interruption_duration`), measured with silero as
configured (0.3 s silence, 0.5 threshold) on espeak-ng speech: the VAD's speech duration passes
0.05 / 0.1 / 0.2 / 0.3 / 0.5 s at 0.11 / 0.14 / 0.24 / 0.33 / 0.52 s after the sound begins
(0.16-0.58 s for a soft "Sorry, ..."), and it keeps growing through the silence hang-over, so a
0.29 s "Yeah." reaches 0.70 s, "네." (0.35 s) 0.74 s, "Mm-hmm." (0.60 s) 0.99 s, "그렇죠." 1.15 s.
Any threshold up to ~0.65 s therefore pauses on every backchannel the VAD hears at all, and only
adds delay to a real barge-in; sparing "yeah" would need ~0.75 s, and "그렇죠" still pauses.
Counting only voiced time (silero's `raw_accumulated_speech`, which restarts after a short
pause) does not help either: the backchannels reach 0.38-0.48 s ("Mm-hmm." 0.67 s), while a
barge-in reaches 0.5 s only 0.61 s ("죄송한데, 잠시만요.") to 1.06 s ("Sorry, wait a second.",
the comma restarts it) after it begins, far past the 300 ms target. So the
threshold is the VAD's own start of speech (0.05 s, two windows above the threshold), and
backchannels are handled by resuming quickly, not by not pausing. `python -m agent bench --vad`
measures it in audio time on ten espeak barge-ins and backchannels: onset to hold median 100 ms
(80-140) with the session's 20 ms input frames, against 175 ms (100-250) with 0.1 s and
livekit-agents' 50 ms frames; none of its seven non-speech sounds (a click, noise bursts of 60
and 300 ms, a knock, typing, a cough-like burst, a breath) starts the VAD at all, so holding at
its start adds no false pauses that a longer threshold would have spared. The first window rated
speech comes 20-40 ms before that start (its probability on those sounds stays under 0.12).
The cost of a backchannel is a hole in the interviewer's speech: its length + 0.3 s VAD
hang-over + the transcript's latency (or `resume_after_s` when the STT finds no words).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from livekit.agents import AgentSession, vad
from livekit.agents.voice import SpeechHandle

from .turn_taking import transcript_words

logger = logging.getLogger("interview.barge_in")


@dataclass(frozen=True)
class BargeInOptions:
    pause_after_s: float = 0.2  # candidate speech (from VAD onset) that holds the interviewer
    resume_after_s: float = 1.0  # silence with no interrupting transcript that lets it go on
    # a single VAD window this likely speech holds at once, a window before the VAD can confirm
    # speech; the next window confirms the hold or lets the interviewer go on (None: off)
    first_window_probability: float | None = None

    @classmethod
    def from_session(
        cls, session: AgentSession, *, first_window_probability: float | None = None
    ) -> BargeInOptions:
        """The session's own interruption settings (agent/turn_taking.py `turn_handling`)."""
        o = session.options.interruption
        timeout = o.get("false_interruption_timeout")
        return cls(
            pause_after_s=float(o.get("min_duration", cls.pause_after_s)),
            resume_after_s=float(timeout) if timeout is not None else cls.resume_after_s,
            first_window_probability=first_window_probability,
        )


class ObservedVAD(vad.VAD):
    """The session's VAD, unchanged, with the events of one of its streams shown to listeners.

    Several consumers open streams over the same audio (the session's turn handling, and the
    offline whisper stream, which cuts utterances with it); listening to all of them would see
    each utterance several times, slightly out of step (a lagging stream's "speaking" right
    after the other's end paused the interviewer again after a backchannel). So only the oldest
    open stream is observed; when it closes (an agent handoff), the next one takes over.
    """

    def __init__(self, inner: vad.VAD) -> None:
        super().__init__(capabilities=inner.capabilities)
        self._inner = inner
        self._listeners: list[Callable[[vad.VADEvent], None]] = []
        self._open: list[_ObservedStream] = []
        inner.on("metrics_collected", lambda m: self.emit("metrics_collected", m))

    @property
    def model(self) -> str:
        return self._inner.model

    @property
    def provider(self) -> str:
        return self._inner.provider

    def listen(self, listener: Callable[[vad.VADEvent], None]) -> None:
        self._listeners.append(listener)

    def stream(self) -> vad.VADStream:
        stream = _ObservedStream(self._inner.stream(), self)
        self._open.append(stream)
        return stream  # type: ignore[return-value]

    def _closed(self, stream: _ObservedStream) -> None:
        if stream in self._open:
            self._open.remove(stream)

    def _notify(self, stream: _ObservedStream, ev: vad.VADEvent) -> None:
        if not self._open or self._open[0] is not stream:
            return
        for listener in self._listeners:
            try:
                listener(ev)
            except Exception:  # an observer never breaks the session's VAD
                logger.exception("VAD listener failed")


class _ObservedStream:
    """A VAD stream passing every event to its `ObservedVAD` on its way to the consumer."""

    def __init__(self, inner: vad.VADStream, observer: ObservedVAD) -> None:
        self._inner = inner
        self._observer = observer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __aiter__(self) -> _ObservedStream:
        return self

    async def __anext__(self) -> vad.VADEvent:
        try:
            ev = await self._inner.__anext__()
        except StopAsyncIteration:
            self._observer._closed(self)
            raise
        self._observer._notify(self, ev)
        return ev

    async def aclose(self) -> None:
        self._observer._closed(self)
        await self._inner.aclose()


class BackchannelCheck(Protocol):
    """turn_taking.py `TranscriptCompleteness.is_backchannel`: is the text only listening (or,
    `partial`, an interim that may still turn out so)?"""

    def __call__(self, text: str, *, partial: bool = False) -> bool: ...


class VoiceActivityPause:
    """Pauses the session's audio on candidate speech; what was said resumes or interrupts it."""

    def __init__(
        self,
        session: AgentSession,
        observed: ObservedVAD,
        options: BargeInOptions | None = None,
        *,
        is_backchannel: BackchannelCheck = lambda _text, partial=False: False,
        log_extra: dict[str, object] | None = None,
    ) -> None:
        self._session = session
        self.options = options or BargeInOptions.from_session(session)
        self._is_backchannel = is_backchannel
        self._log = dict(log_extra or {})
        # the interviewer's speech the candidate talks over, and whether this controller paused it
        self._heard_over: SpeechHandle | None = None
        self._unheard: SpeechHandle | None = None  # resumed with no words: its final may follow
        self._paused = False
        self._held_at = 0.0
        self._resume_timer: asyncio.TimerHandle | None = None
        self._user_speaking = False
        self._first_window_only = False  # held on one window; the VAD has not confirmed speech
        self.pauses = 0
        self.resumes = 0
        self.interrupts = 0
        observed.listen(self._on_vad)
        session.on("agent_state_changed", self._on_agent_state)
        session.on("user_input_transcribed", self._on_transcript)
        session.on("close", lambda _ev: self._cancel_resume())

    @property
    def holding(self) -> bool:
        return self._heard_over is not None and self._paused

    # ---- events --------------------------------------------------------------------------
    def _on_vad(self, ev: vad.VADEvent) -> None:
        if ev.type == vad.VADEventType.END_OF_SPEECH:
            self._user_speaking = False
            if self._heard_over is not None:
                self._arm_resume(self.options.resume_after_s, "no words")
            return
        if ev.type == vad.VADEventType.START_OF_SPEECH:
            self._user_speaking = True
            self._first_window_only = False  # the VAD confirmed the early hold
            self._cancel_resume()
        elif ev.type == vad.VADEventType.INFERENCE_DONE and not ev.speaking:
            self._on_window(ev.probability)
            return
        # START_OF_SPEECH carries the speech that started it (silero's min_speech_duration):
        # with `pause_after_s` at that value the hold comes with the VAD's own decision, one
        # 32 ms window or more before the next inference would report it
        if (
            ev.speaking
            and self._heard_over is None
            and ev.speech_duration >= self.options.pause_after_s
        ):
            self._user_speaking = True
            self._hold()

    def _on_window(self, probability: float) -> None:
        """A VAD window before any speech: one likely enough holds; an unlikely one after such a
        hold, with no start of speech between, was a blip (a click, a breath), and the
        interviewer goes on at once."""
        early = self.options.first_window_probability
        if early is None:
            return
        if probability >= early:
            if self._heard_over is None:
                self._hold()
                self._first_window_only = self._heard_over is not None
        elif self._first_window_only:
            self._resume("one window of sound")

    def _on_transcript(self, ev: Any) -> None:
        speech = self._heard_over
        late = self._unheard
        if ev.is_final:
            self._unheard = None
        if speech is None and late is not None:
            # resumed for want of words, but the transcript was only slow (whisper under
            # load): it still decides, and "Wait." must not be dropped as too short
            speech = late
        if speech is None or not self._still_playing(speech):
            return
        text = ev.transcript or ""
        if ev.is_final:
            if transcript_words(text) and not self._is_backchannel(text):
                self._interrupt(speech, text, "final transcript")
            elif not self._user_speaking:
                # a later segment, still being spoken, decides with its own transcript
                self._arm_resume(0.0, "backchannel" if text.strip() else "empty transcript")
            return
        # an interim's last word may be cut mid-word ("맞아" of "맞아요"): it decides only
        # once the words before it can no longer become a backchannel
        if len(transcript_words(text)) >= 2 and not self._is_backchannel(text, partial=True):
            self._interrupt(speech, text, "interim transcript")

    def _on_agent_state(self, ev: Any) -> None:
        if ev.new_state == "speaking":
            return
        self._unheard = None
        if self._heard_over is not None:
            # the speech ended (interrupted, or the framework took over its pause)
            self._release()

    # ---- actions -------------------------------------------------------------------------
    def _interruptible(self) -> SpeechHandle | None:
        """The speech the interviewer is speaking, if the candidate may interrupt it."""
        s = self._session
        speech = s.current_speech
        if (
            s.agent_state != "speaking"
            or speech is None
            or speech.interrupted
            or not speech.allow_interruptions
            or not s.options.interruption.get("enabled", True)
            # the framework ignores candidate audio while echo cancellation warms up (its first
            # 3 s of speech), and so does this
            or (
                getattr(s, "_aec_warmup_remaining", 0.0) > 0
                and getattr(s, "_aec_warmup_timer", None) is not None
            )
        ):
            return None
        return speech

    def _still_playing(self, speech: SpeechHandle) -> bool:
        return (
            self._session.current_speech is speech and not speech.interrupted and not speech.done()
        )

    def _hold(self) -> None:
        speech = self._interruptible()
        if speech is None:
            return
        self._heard_over, self._held_at = speech, time.perf_counter()
        audio = self._session.output.audio
        if audio is None or not audio.can_pause:
            return  # heard, not paused: its transcript still decides (module docstring)
        audio.pause()
        self._paused = True
        self.pauses += 1
        logger.info("candidate speaking: interviewer paused", extra=self._log)

    def _interrupt(self, speech: SpeechHandle, text: str, reason: str) -> None:
        try:
            speech.interrupt(source="audio_activity")
        except RuntimeError:  # it stopped allowing interruptions meanwhile: it goes on
            self._arm_resume(0.0, "uninterruptible")
            return
        self.interrupts += 1
        if self._paused:
            # as the framework after its own pause: the output plays again once the interrupted
            # speech is done (its audio cleared), never before
            audio = self._session.output.audio
            if audio is not None:
                speech.add_done_callback(lambda _s: audio.resume())
        logger.info(
            "candidate barged in: interviewer interrupted",
            extra={
                **self._log,
                "reason": reason,
                "words": len(transcript_words(text)),
                "paused": self._paused,
                "held_s": round(time.perf_counter() - self._held_at, 2),
            },
        )
        self._release()

    def _arm_resume(self, delay: float, reason: str) -> None:
        self._cancel_resume()
        loop = asyncio.get_running_loop()
        self._resume_timer = loop.call_later(delay, self._resume, reason)

    def _resume(self, reason: str) -> None:
        self._resume_timer = None
        speech = self._heard_over
        if speech is None or self._user_speaking:
            return
        playing = self._still_playing(speech)
        if self._paused and playing:
            audio = self._session.output.audio
            if audio is not None:
                audio.resume()
            self.resumes += 1
            logger.info(
                "interviewer resumed",
                extra={
                    **self._log,
                    "reason": reason,
                    "held_s": round(time.perf_counter() - self._held_at, 2),
                },
            )
        self._release()
        if reason == "backchannel" and playing:  # after the resume: it goes on first
            self._forget_user_turn()
        if reason == "no words":
            self._unheard = speech

    def _forget_user_turn(self) -> None:
        """Drop the backchannel's words from the candidate's turn. livekit-agents does not commit
        a turn of too few words over the interviewer's speech, but keeps its transcript and puts
        it before the next one: the answer would read "Yeah. Hi, I'm Alex..." in the transcript
        and the report."""
        try:
            self._session.clear_user_turn()
        except RuntimeError:  # the session is closing: there is no next turn
            pass

    def _release(self) -> None:
        self._heard_over = None
        self._paused = False
        self._first_window_only = False
        self._cancel_resume()

    def _cancel_resume(self) -> None:
        if self._resume_timer is not None:
            self._resume_timer.cancel()
            self._resume_timer = None
