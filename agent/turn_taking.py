"""Turn-taking tuned for interviews: VAD, the local end-of-turn model, endpointing, barge-in.

- Silero VAD (model inside the livekit-plugins-silero wheel) marks speech; a short silence
  window ends a VAD segment so whisper can start transcribing early.
- LiveKit's turn detector runs the audio end-of-turn model compiled into livekit-local-inference
  (`turn-detector-v1-mini`, no download): at a pause it predicts whether the answer is over.
  Likely over: reply after `min_delay`. Unlikely (a thinking pause): wait up to `max_delay`,
  longer than a 1.5-3 s pause, so the interviewer does not jump in.
- While the interviewer speaks, `min_interruption_duration` of candidate speech pauses its
  audio (agent/barge_in.py; the agent's own track or the avatar, both can pause). What was said
  decides: a backchannel (only listed listening signals, at most `MAX_BACKCHANNEL_WORDS` words:
  "네 네", "I see", "yeah, yeah") resumes it as soon as its transcript arrives, wordless sound
  after `false_interruption_timeout`, anything else ("Wait.", "잠깐만요") interrupts the turn.
  The framework's own word rule (`min_interruption_words`) stays above the longest backchannel,
  as a backstop that never fires on one.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from livekit.agents import APIConnectOptions, TurnHandlingOptions, vad
from livekit.agents.tokenize.basic import split_words
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS
from livekit.agents.voice.room_io import AudioInputOptions, RoomOptions

# the longest utterance that can be only listening ("yeah, yeah, yeah", "아 네 맞아요"); longer
# ones say something, whatever their words
MAX_BACKCHANNEL_WORDS = 3


def transcript_words(text: str) -> list[str]:
    """Lower-case words as livekit-agents counts them for interruptions (`min_words`)."""
    return [w.lower() for w, _start, _end in split_words(text, split_character=True)]


@dataclass(frozen=True)
class TurnTakingOptions:
    min_endpointing_delay: float = 0.5
    max_endpointing_delay: float = 3.6
    vad_min_silence: float = 0.3
    vad_activation_threshold: float = 0.5
    # speech the VAD needs before it says the candidate started (two 32 ms windows above the
    # threshold: silero's default)
    vad_min_speech: float = 0.05
    # candidate speech (silero's speech duration) that pauses the interviewer: the VAD's own
    # start of speech, because anything that starts the VAD runs on through its 0.3 s silence
    # hang-over, so longer values only add delay without sparing a single "네" (figures in
    # agent/barge_in.py, `python -m agent bench --vad`)
    min_interruption_duration: float = 0.05
    # the candidate's audio reaches the VAD in frames this long (livekit-agents reads 50 ms);
    # a window's decision waits for the frame that completes it: 20 ms, one Opus packet, makes
    # the pause 10-30 ms sooner (agent bench --vad)
    input_frame_ms: int = 20
    # the rate the candidate's audio reaches the session: the one silero, the end-of-turn model
    # and Whisper all run at, so none of them resamples each frame again (livekit-agents reads
    # 24 kHz, and three resamplers then ran per frame); the rehearsal's microphone uses it too
    input_sample_rate: int = 16000
    # the framework interrupts by itself only on this many words: one more than the longest
    # backchannel, so it never cuts the interviewer off for "네 네" or "I see"; shorter barge-ins
    # ("Wait.") are interrupted by agent/barge_in.py, which reads what was said
    min_interruption_words: int = MAX_BACKCHANNEL_WORDS + 1
    false_interruption_timeout: float = 1.0
    unlikely_threshold: float | None = None  # None: the model's calibrated per-language value

    @classmethod
    def from_env(cls) -> TurnTakingOptions:
        def f(name: str, default: float) -> float:
            raw = os.environ.get(name)
            return float(raw) if raw else default

        d = cls()
        return cls(
            min_endpointing_delay=f("INTERVIEW_MIN_ENDPOINTING_DELAY", d.min_endpointing_delay),
            max_endpointing_delay=f("INTERVIEW_MAX_ENDPOINTING_DELAY", d.max_endpointing_delay),
            unlikely_threshold=(
                float(os.environ["INTERVIEW_EOT_UNLIKELY_THRESHOLD"])
                if os.environ.get("INTERVIEW_EOT_UNLIKELY_THRESHOLD")
                else None
            ),
        )


def load_vad(opts: TurnTakingOptions) -> vad.VAD:
    from livekit.plugins import silero

    return silero.VAD.load(
        min_silence_duration=opts.vad_min_silence,
        min_speech_duration=opts.vad_min_speech,
        activation_threshold=opts.vad_activation_threshold,
        prefix_padding_duration=0.3,
    )


def room_options(opts: TurnTakingOptions) -> RoomOptions:
    """How the session reads the room: the candidate's audio in `input_frame_ms` frames.

    A candidate who leaves does not end the interview at once (livekit-agents' default): the
    browser client rejoins the same room after a page reload, and the interviewer is still there
    for it. A candidate gone for good ends it when the room closes, the room's departure timeout
    (20 s by default) after the last candidate left; the transcript and report are saved then."""
    return RoomOptions(
        audio_input=AudioInputOptions(
            sample_rate=opts.input_sample_rate, frame_size_ms=opts.input_frame_ms
        ),
        close_on_disconnect=False,
    )


def turn_detector(opts: TurnTakingOptions, language: str) -> TranscriptAwareTurnDetector:
    """The local audio end-of-turn model (never the cloud one), refined by the transcript."""
    from livekit.agents.inference import TurnDetector

    if opts.unlikely_threshold is not None:
        inner = TurnDetector(version="v1-mini", unlikely_threshold=opts.unlikely_threshold)
    else:
        inner = TurnDetector(version="v1-mini")
    return TranscriptAwareTurnDetector(inner, TranscriptCompleteness(language))


def turn_handling(opts: TurnTakingOptions, *, detector: object | None) -> TurnHandlingOptions:
    handling: TurnHandlingOptions = {
        "endpointing": {
            "mode": "fixed",
            "min_delay": opts.min_endpointing_delay,
            "max_delay": opts.max_endpointing_delay,
        },
        "interruption": {
            "enabled": True,
            "mode": "vad",
            "min_duration": opts.min_interruption_duration,
            "min_words": opts.min_interruption_words,
            "resume_false_interruption": True,
            "false_interruption_timeout": opts.false_interruption_timeout,
        },
        # the scripted LLM is instant and a cloud LLM's draft would be wasted on thinking pauses
        "preemptive_generation": {"enabled": False},
    }
    if detector is not None:
        handling["turn_detection"] = detector  # type: ignore[typeddict-item]
    return handling


class TranscriptCompleteness:
    """Scores how finished a transcript sounds: 1.0 complete, 0.0 mid-sentence, 0.5 unknown."""

    def __init__(self, language: str) -> None:
        from .prompts import load_yaml

        data = load_yaml(f"{language}/turn_taking.yaml")
        self._language = language
        self._complete = tuple(data.get("complete_endings") or ())
        self._incomplete = tuple(data.get("incomplete_endings") or ())
        self._incomplete_words = {w.lower() for w in data.get("incomplete_words") or ()}
        # phrases as word tuples ("i see" -> ("i", "see")), spelled as transcripts are split
        self._backchannels = {
            words for b in data.get("backchannels") or () if (words := tuple(transcript_words(b)))
        }
        self._min_words = int(data.get("min_open_answer_words") or 0)
        self._min_chars = int(data.get("min_open_answer_chars") or 0)

    def is_backchannel(self, text: str, *, partial: bool = False) -> bool:
        """Only listening signals ("네", "yeah, yeah", "I see"), nothing that answers or
        interrupts: the words are listed backchannel phrases, one after another.

        `partial`: the text is an interim transcript of speech still going on, its last word
        maybe cut off ("맞아" of "맞아요"); True if it may still turn out a backchannel, i.e.
        the words before the last are listed phrases and maybe the beginning of one ("I")."""
        words = tuple(transcript_words(text))
        if partial:
            settled = words[:-1]
            return len(settled) < MAX_BACKCHANNEL_WORDS and self._only_backchannels(
                settled, open_end=True
            )
        return 0 < len(words) <= MAX_BACKCHANNEL_WORDS and self._only_backchannels(words)

    def _only_backchannels(self, words: tuple[str, ...], *, open_end: bool = False) -> bool:
        if not words:
            return True
        for p in self._backchannels:
            if words[: len(p)] == p and self._only_backchannels(words[len(p) :], open_end=open_end):
                return True
            if open_end and len(words) < len(p) and p[: len(words)] == words:
                return True  # the beginning of a phrase ("i" of "i see")
        return False

    def too_short_for_open_question(self, text: str) -> bool:
        if self._min_words and len(text.split()) < self._min_words:
            return True
        return bool(self._min_chars) and len(text.replace(" ", "")) < self._min_chars

    def score(self, text: str, *, open_question: bool = False) -> float:
        t = text.strip()
        if not t:
            return 0.5
        if open_question and self.too_short_for_open_question(t):
            return 0.2
        if t.endswith((",", "...", "…", "-", ":")):
            return 0.0
        last = t.rstrip(".!?。 ").split()[-1].lower().strip(",\"'") if t.rstrip(".!?。 ") else ""
        if last in self._incomplete_words:
            return 0.0
        sentence_end = t.endswith((".", "!", "?", "。"))
        if self._language == "en":
            return 1.0 if sentence_end else 0.5
        if last.endswith(self._complete):
            return 1.0
        if last.endswith(self._incomplete):
            return 0.0
        return 0.8 if sentence_end else 0.5


class TranscriptAwareTurnDetector:
    """LiveKit's local audio end-of-turn model, refined by how the transcript ends.

    The audio model (turn-detector-v1-mini) hears prosody; the transcript says whether the
    sentence is grammatically finished ("…줄였습니다." vs "…설계했고,"). The prediction the
    session sees is a weighted mix, computed once the segment's transcript has arrived.
    """

    def __init__(
        self, inner: Any, completeness: TranscriptCompleteness, *, audio_weight: float = 0.2
    ) -> None:
        self._inner = inner
        # set by the session: True while the interviewer waits for an answer to an open question
        self.expects_long_answer: Callable[[], bool] = lambda: False
        # set by the session for the offline STT: True once no utterance awaits its transcript
        # and one that ended after the given wall time had no words (a transcript with words
        # arrives through on_transcript), i.e. the transcript of the segment is known
        self.stt_settled_since: Callable[[float], bool] | None = None
        self._completeness = completeness
        self._audio_weight = audio_weight
        self._turn_text = ""
        self._transcript_seq = 0

    @property
    def completeness(self) -> TranscriptCompleteness:
        return self._completeness

    @property
    def model(self) -> str:
        return f"{self._inner.model}+transcript"

    @property
    def provider(self) -> str:
        return self._inner.provider

    def on_transcript(self, text: str) -> None:
        """A final transcript of the current user turn (from `user_input_transcribed`)."""
        if text.strip():
            self._turn_text = f"{self._turn_text} {text.strip()}".strip()
        self._transcript_seq += 1

    def _reset_turn(self) -> None:
        self._turn_text = ""

    def combine(self, audio_probability: float) -> float:
        text_score = self._completeness.score(
            self._turn_text, open_question=self.expects_long_answer()
        )
        return self._audio_weight * audio_probability + (1 - self._audio_weight) * text_score

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> _TranscriptAwareStream:
        return _TranscriptAwareStream(self, self._inner.stream(conn_options=conn_options))


# longest wait for a segment's transcript (a slow CPU makes whisper take seconds)
TRANSCRIPT_WAIT_S = 6.0


class _TranscriptAwareStream:
    def __init__(self, detector: TranscriptAwareTurnDetector, inner: Any) -> None:
        self._detector = detector
        self._inner = inner

    @property
    def model(self) -> str:
        return self._detector.model

    @property
    def provider(self) -> str:
        return self._inner.provider

    @property
    def is_fallback(self) -> bool:
        return bool(self._inner.is_fallback)

    @property
    def prediction_timeout(self) -> float:
        return float(self._inner.prediction_timeout) + TRANSCRIPT_WAIT_S

    async def unlikely_threshold(self, language: Any) -> float | None:
        return await self._inner.unlikely_threshold(language)

    async def backchannel_threshold(self, language: Any) -> float | None:
        return await self._inner.backchannel_threshold(language)

    async def supports_language(self, language: Any) -> bool:
        return True  # the transcript part works for any language we ship prompts for

    def predict(self) -> asyncio.Future[Any]:
        inner_fut = self._inner.predict()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        det = self._detector
        seq, asked_at = det._transcript_seq, time.time()

        async def _transcript_known() -> None:
            # the segment's transcript arrived, or the STT finished it (maybe with no words)
            while time.time() - asked_at < TRANSCRIPT_WAIT_S:
                if det._transcript_seq != seq:
                    return
                settled = det.stt_settled_since
                if settled is not None and settled(asked_at):
                    return
                await asyncio.sleep(0.03)

        async def _resolve() -> None:
            try:
                ev = await inner_fut
                await _transcript_known()
                p = det.combine(ev.end_of_turn_probability)
                if not fut.done():
                    fut.set_result(replace(ev, end_of_turn_probability=p))
            except asyncio.CancelledError:
                if not fut.done():
                    fut.cancel()
            except Exception as e:
                if not fut.done():
                    fut.set_exception(e)

        task = asyncio.ensure_future(_resolve())
        fut.add_done_callback(lambda f: task.cancel() if f.cancelled() else None)
        return fut

    def cancel_inference(self, *, timed_out: bool = False) -> None:
        self._inner.cancel_inference(timed_out=timed_out)

    def flush(self, reason: str | None = None) -> None:
        if reason == "turn committed":
            self._detector._reset_turn()
        self._inner.flush(reason)

    def push_audio(self, frame: Any) -> None:
        self._inner.push_audio(frame)

    def end_input(self) -> None:
        self._inner.end_input()

    async def aclose(self) -> None:
        await self._inner.aclose()
