"""Barge-in by voice activity: the interviewer holds its speech as soon as the candidate talks.

livekit-agents 1.8 pauses the agent's speech on voice activity only once the live transcript
has `min_words` words (`AgentActivity._interrupt_by_audio_activity`), and a final transcript of
any length interrupts a speech it has paused. With an STT that yields words only after the
candidate stops (offline Whisper), that means either a barge-in heard seconds late
(`min_words` > 0) or every "네"/"yeah" cutting the interviewer off (`min_words` = 0).

This controller adds the missing first step without touching the framework's decisions. It sees
the session's VAD events through `ObservedVAD` (the session's VAD, wrapped):

- candidate speech lasting `pause_after_s` (the VAD's speech duration, as the framework's own
  `min_duration` check) while the interviewer speaks an interruptible turn pauses the session's
  audio output (the agent's own track, or the avatar through its pause extension);
- a real barge-in then goes on as before: once the transcript has `min_words` words the
  framework interrupts the (already silent) speech;
- a backchannel (fewer words, or only words of prompts/*/turn_taking.yaml `backchannels`)
  resumes the speech as soon as its transcript arrives after the candidate stopped, and speech
  that never yields words (a cough, noise) resumes `resume_after_s` after it ended.

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
the comma restarts it) after it begins, far past the 300 ms target. So
the threshold is small (0.1 s: paused ~0.15 s after the candidate starts, plus transport), and
backchannels are handled by resuming quickly, not by not pausing. The cost of a backchannel is a
hole in the interviewer's speech: its length + 0.3 s VAD hang-over + the transcript's latency
(or `resume_after_s` when the STT finds no words).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from livekit.agents import AgentSession, vad
from livekit.agents.tokenize.basic import split_words
from livekit.agents.voice import SpeechHandle

logger = logging.getLogger("interview.barge_in")


@dataclass(frozen=True)
class BargeInOptions:
    pause_after_s: float = 0.2  # candidate speech (from VAD onset) that holds the interviewer
    resume_after_s: float = 1.0  # silence with no interrupting transcript that lets it go on
    min_words: int = 2  # words that make it an interruption (the framework's own threshold)

    @classmethod
    def from_session(cls, session: AgentSession) -> BargeInOptions:
        """The session's own interruption settings (agent/turn_taking.py `turn_handling`)."""
        o = session.options.interruption
        timeout = o.get("false_interruption_timeout")
        return cls(
            pause_after_s=float(o.get("min_duration", cls.pause_after_s)),
            resume_after_s=float(timeout) if timeout is not None else cls.resume_after_s,
            min_words=int(o.get("min_words", cls.min_words)),
        )


class ObservedVAD(vad.VAD):
    """The session's VAD, unchanged, with its events also shown to listeners."""

    def __init__(self, inner: vad.VAD) -> None:
        super().__init__(capabilities=inner.capabilities)
        self._inner = inner
        self._listeners: list[Callable[[vad.VADEvent], None]] = []
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
        return _ObservedStream(self._inner.stream(), self._notify)  # type: ignore[return-value]

    def _notify(self, ev: vad.VADEvent) -> None:
        for listener in self._listeners:
            try:
                listener(ev)
            except Exception:  # an observer never breaks the session's VAD
                logger.exception("VAD listener failed")


class _ObservedStream:
    """A VAD stream passing every event to `notify` on its way to the session."""

    def __init__(self, inner: vad.VADStream, notify: Callable[[vad.VADEvent], None]) -> None:
        self._inner = inner
        self._notify = notify

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __aiter__(self) -> _ObservedStream:
        return self

    async def __anext__(self) -> vad.VADEvent:
        ev = await self._inner.__anext__()
        self._notify(ev)
        return ev


class VoiceActivityPause:
    """Pauses the session's audio on candidate speech; resumes it after a backchannel."""

    def __init__(
        self,
        session: AgentSession,
        observed: ObservedVAD,
        options: BargeInOptions | None = None,
        *,
        is_backchannel: Callable[[str], bool] = lambda _text: False,
        log_extra: dict[str, object] | None = None,
    ) -> None:
        self._session = session
        self.options = options or BargeInOptions.from_session(session)
        self._is_backchannel = is_backchannel
        self._log = dict(log_extra or {})
        self._held: SpeechHandle | None = None  # the speech this controller paused
        self._held_at = 0.0
        self._resume_timer: asyncio.TimerHandle | None = None
        self._user_speaking = False
        self.pauses = 0
        self.resumes = 0
        observed.listen(self._on_vad)
        session.on("agent_state_changed", self._on_agent_state)
        session.on("user_input_transcribed", self._on_transcript)
        session.on("close", lambda _ev: self._cancel_resume())

    @property
    def holding(self) -> bool:
        return self._held is not None

    # ---- events --------------------------------------------------------------------------
    def _on_vad(self, ev: vad.VADEvent) -> None:
        if ev.type == vad.VADEventType.START_OF_SPEECH:
            self._user_speaking = True
            self._cancel_resume()
        elif ev.type == vad.VADEventType.END_OF_SPEECH:
            self._user_speaking = False
            if self._held is not None:
                self._arm_resume(self.options.resume_after_s, "no words")
        elif (
            ev.speaking and self._held is None and ev.speech_duration >= self.options.pause_after_s
        ):
            self._user_speaking = True
            self._pause()

    def _on_transcript(self, ev: Any) -> None:
        if not ev.is_final or self._held is None or self._user_speaking:
            return
        text = ev.transcript or ""
        words = len(split_words(text, split_character=True))
        if words < self.options.min_words or self._is_backchannel(text):
            self._arm_resume(0.0, "backchannel")
        # otherwise the framework interrupts the held speech on this transcript

    def _on_agent_state(self, ev: Any) -> None:
        if ev.new_state != "speaking" and self._held is not None:
            # the held speech ended (interrupted, or the framework took over its pause)
            self._release()

    # ---- actions -------------------------------------------------------------------------
    def _pausable(self) -> SpeechHandle | None:
        """The speech to hold, if the interviewer is speaking one that may be interrupted."""
        s = self._session
        speech = s.current_speech
        audio = s.output.audio
        if (
            s.agent_state != "speaking"
            or speech is None
            or speech.interrupted
            or not speech.allow_interruptions
            or audio is None
            or not audio.can_pause
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

    def _pause(self) -> None:
        speech = self._pausable()
        if speech is None:
            return
        audio = self._session.output.audio
        assert audio is not None
        audio.pause()
        self._held, self._held_at = speech, time.perf_counter()
        self.pauses += 1
        logger.info("candidate speaking: interviewer paused", extra=self._log)

    def _arm_resume(self, delay: float, reason: str) -> None:
        self._cancel_resume()
        loop = asyncio.get_running_loop()
        self._resume_timer = loop.call_later(delay, self._resume, reason)

    def _resume(self, reason: str) -> None:
        self._resume_timer = None
        held = self._held
        if held is None or self._user_speaking:
            return
        if self._session.current_speech is held and not held.interrupted and not held.done():
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
        self._held = None

    def _release(self) -> None:
        self._held = None
        self._cancel_resume()

    def _cancel_resume(self) -> None:
        if self._resume_timer is not None:
            self._resume_timer.cancel()
            self._resume_timer = None
