"""`python -m agent rehearse`: a whole interview offline through the real AgentSession.

Audio mode: a simulated candidate speaks each answer (espeak-ng, another voice) into the
session's audio input about a second after each interviewer turn ends; the interviewer's audio
is played out in real time and recorded. Text mode (`--text`) sends the answers as text.
Writes transcript.json, interviewer.wav (+ conversation.wav), latency.json and the report.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .answers import Answer
from .config import InterviewConfig
from .evaluation import AnswerAssessment
from .providers.espeak import Voice, engine
from .session import Interview, create_interview
from .sim_io import (
    INPUT_SAMPLE_RATE,
    OUTPUT_SAMPLE_RATE,
    CaptureAudioOutput,
    SimulatedCandidateInput,
    Timeline,
    resample,
    write_wav,
)
from .transcript import Transcript
from .turn_taking import TurnTakingOptions

logger = logging.getLogger("interview.rehearsal")

REPLY_GAP_S = 1.0  # the candidate starts answering this long after the interviewer stops
BACKCHANNEL_AT_S = 1.2  # a backchannel comes this far into the interviewer's turn
CANDIDATE_VARIANT = "m3"


@dataclass
class TurnLatency:
    answer_index: int
    candidate_end_s: float  # seconds from the start, true end of the candidate's speech
    first_audio_s: float  # first interviewer audio after it
    voice_to_voice_s: float


@dataclass
class RehearsalResult:
    transcript: Transcript
    out_dir: Path
    latencies: list[TurnLatency] = field(default_factory=list)
    cut_ins: int = 0
    pauses: int = 0
    backchannels: int = 0
    interviewer_interrupted: int = 0
    finished: bool = False
    metrics: list[dict[str, Any]] = field(default_factory=list)
    # answers assessed during the interview, for the report to reuse
    assessments: list[AnswerAssessment] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        v2v = [t.voice_to_voice_s for t in self.latencies]
        cand = [m for m in self.metrics if m["speaker"] == "candidate"]
        intr = [m for m in self.metrics if m["speaker"] == "interviewer"]
        return {
            "turns_measured": len(v2v),
            "voice_to_voice_median_s": _q(v2v, 0.5),
            "voice_to_voice_p90_s": _q(v2v, 0.9),
            "end_of_turn_delay_median_s": _q(
                [m["end_of_turn_delay"] for m in cand if "end_of_turn_delay" in m], 0.5
            ),
            "stt_delay_median_s": _q(
                [m["transcription_delay"] for m in cand if "transcription_delay" in m], 0.5
            ),
            "llm_ttft_median_s": _q(
                [m["llm_node_ttft"] for m in intr if "llm_node_ttft" in m], 0.5
            ),
            "tts_ttfb_median_s": _q(
                [m["tts_node_ttfb"] for m in intr if "tts_node_ttfb" in m], 0.5
            ),
            "thinking_pauses": self.pauses,
            "cut_ins": self.cut_ins,
            "backchannels": self.backchannels,
            "interviewer_turns_interrupted": self.interviewer_interrupted,
            "finished": self.finished,
        }


def _q(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 3)
    s = sorted(values)
    return (
        round(float(np.quantile(np.array(s), q)), 3) if q != 0.5 else round(statistics.median(s), 3)
    )


def _speech(text: str, language: str) -> np.ndarray:
    eng = engine()
    pcm = eng.synthesize_all(
        text, Voice(language=language, rate_wpm=160, variant=CANDIDATE_VARIANT)
    )
    return resample(pcm, eng.sample_rate, INPUT_SAMPLE_RATE)


class _AudioRun:
    def __init__(self, iv: Interview, answers: list[Answer], result: RehearsalResult) -> None:
        self.iv = iv
        self.answers = answers
        self.result = result
        self.lang = iv.config.language
        self.t0 = iv.t0
        self.mic_tl = Timeline(self.t0, INPUT_SAMPLE_RATE)
        self.spk_tl = Timeline(self.t0, OUTPUT_SAMPLE_RATE)
        self.mic = SimulatedCandidateInput(self.mic_tl)
        self.spk = CaptureAudioOutput(self.spk_tl)
        self.mic.on_drained = self._answer_spoken
        self.spk.on_first_audio = self._interviewer_started
        self.spk.on("playback_finished", self._interviewer_finished)
        self.next_answer = 0
        self.said_no_more = False
        self.awaiting_reply_since: float | None = None
        self.awaiting_index = -1
        self.answering = False  # an answer is queued and its end not yet reached
        self.done = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.last_activity = time.monotonic()
        # synthesize everything up front, so the candidate speaks with no delay
        self.audio: list[list[np.ndarray]] = [self._render(a) for a in answers]
        no_more = iv.plan.prompts["rehearsal_no_more_answers"]
        self.no_more_audio = [_speech(no_more, self.lang)]
        self.no_more_text = no_more

    def _render(self, a: Answer) -> list[np.ndarray]:
        pieces: list[np.ndarray] = []
        for i, seg in enumerate(a.segments):
            pieces.append(_speech(seg, self.lang))
            if i < len(a.pauses):
                pieces.append(np.zeros(int(a.pauses[i] * INPUT_SAMPLE_RATE), dtype=np.int16))
        return pieces

    def _interviewer_started(self, wall: float) -> None:
        self.last_activity = time.monotonic()
        if self.mic.busy:
            self.result.cut_ins += 1
            logger.warning(
                "interviewer cut in while the candidate was answering",
                extra={"answer": self.next_answer - 1},
            )
            self.awaiting_reply_since = None
        elif self.awaiting_reply_since is not None:
            self.result.latencies.append(
                TurnLatency(
                    answer_index=self.awaiting_index,
                    candidate_end_s=round(self.awaiting_reply_since - self.t0, 3),
                    first_audio_s=round(wall - self.t0, 3),
                    voice_to_voice_s=round(wall - self.awaiting_reply_since, 3),
                )
            )
            self.awaiting_reply_since = None
        if self.next_answer < len(self.answers):
            for k, bc in enumerate(self.answers[self.next_answer].backchannels):
                self.loop.call_later(BACKCHANNEL_AT_S + 1.5 * k, self._backchannel, bc)

    def _backchannel(self, text: str) -> None:
        if self.iv.session.agent_state == "speaking" and not self.mic.busy:
            self.result.backchannels += 1
            self.mic.say([_speech(text, self.lang)])

    def _interviewer_finished(self, ev: Any) -> None:
        self.last_activity = time.monotonic()
        delay = REPLY_GAP_S if not ev.interrupted else REPLY_GAP_S + 2.0
        self.loop.call_later(delay, self._maybe_answer)

    def _answer_spoken(self, wall: float) -> None:
        self.last_activity = time.monotonic()
        if self.awaiting_index >= 0 and self.awaiting_reply_since is None and self.answering:
            self.awaiting_reply_since = wall
            self.answering = False

    def _maybe_answer(self) -> None:
        if self.done.is_set() or self.iv.state.finished:
            return
        if self.iv.session.agent_state in ("speaking", "thinking") or self.mic.busy:
            return
        if self.next_answer < len(self.answers):
            a = self.answers[self.next_answer]
            self.result.pauses += len(a.pauses)
            self.awaiting_index = self.next_answer
            self.next_answer += 1
            self.answering = True
            self.mic.say(list(self.audio[self.awaiting_index]))
        elif not self.said_no_more:
            self.said_no_more = True
            self.awaiting_index = len(self.answers)
            self.answering = True
            self.mic.say(list(self.no_more_audio))
        else:
            logger.warning("answers ran out before the interview ended")
            self.done.set()

    async def watchdog(self, limit_s: float) -> None:
        start = time.monotonic()
        while not self.done.is_set():
            await asyncio.sleep(1.0)
            if self.iv.state.finished and self.iv.session.agent_state != "speaking":
                self.done.set()
            elif time.monotonic() - start > limit_s:
                logger.warning("rehearsal time limit reached", extra={"limit_s": limit_s})
                self.done.set()
            elif time.monotonic() - self.last_activity > 25.0:
                self.last_activity = time.monotonic()
                self._maybe_answer()

    def write_audio(self, out_dir: Path) -> None:
        spk = self.spk_tl.samples()
        mic = resample(self.mic_tl.samples(), INPUT_SAMPLE_RATE, OUTPUT_SAMPLE_RATE)
        n = max(spk.size, mic.size)
        spk = np.pad(spk, (0, n - spk.size))
        mic = np.pad(mic, (0, n - mic.size))
        write_wav(out_dir / "interviewer.wav", spk, OUTPUT_SAMPLE_RATE)
        mixed = np.clip(spk.astype(np.int32) + mic.astype(np.int32), -32768, 32767)
        write_wav(out_dir / "conversation.wav", mixed.astype(np.int16), OUTPUT_SAMPLE_RATE)


async def run_rehearsal(
    config: InterviewConfig,
    answers: list[Answer],
    out_dir: Path,
    *,
    text: bool = False,
    turn_opts: TurnTakingOptions | None = None,
) -> RehearsalResult:
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    iv = create_interview(
        config, text_only=text, turn_opts=turn_opts, log_extra={"room": "rehearsal"}
    )
    result = RehearsalResult(transcript=iv.transcript(), out_dir=out_dir)
    closed = asyncio.Event()
    iv.session.on("close", lambda _ev: closed.set())
    limit_s = config.duration_minutes * 60 * 1.5 + 120
    if text:
        await _run_text(iv, answers, closed)
    else:
        run = _AudioRun(iv, answers, result)
        iv.session.input.audio = run.mic
        iv.session.output.audio = run.spk
        await iv.session.start(iv.first_agent(), record=False)
        await run.watchdog(limit_s)
        run.mic.close()
        run.write_audio(out_dir)
    result.finished = iv.state.finished
    if not closed.is_set():
        await iv.session.aclose()
    result.metrics = iv.turn_metrics
    result.transcript = iv.finish()
    if iv.assessment is not None:
        result.assessments = await iv.assessment.results()
        await iv.assessment.aclose()
    result.interviewer_interrupted = sum(
        1 for t in result.transcript.turns if t.speaker == "interviewer" and t.interrupted
    )
    result.transcript.write(out_dir / "transcript.json")
    (out_dir / "latency.json").write_text(
        json.dumps(
            {
                "summary": result.summary(),
                "turns": [asdict(t) for t in result.latencies],
                "metrics": result.metrics,
            },
            ensure_ascii=False,
            indent=2,
        ),
        encoding="utf-8",
    )
    return result


async def _run_text(iv: Interview, answers: list[Answer], closed: asyncio.Event) -> None:
    await iv.session.start(iv.first_agent(), record=False)
    texts = [a.text for a in answers] + [iv.plan.prompts["rehearsal_no_more_answers"]]
    # the greeting comes from the first stage's on_enter; wait for it before answering
    for _ in range(100):
        if any(m["speaker"] == "interviewer" for m in iv.turn_metrics):
            break
        await asyncio.sleep(0.05)
    for answer in texts:
        if iv.state.finished:
            break
        await iv.session.run(user_input=answer)
    try:
        await asyncio.wait_for(closed.wait(), timeout=5)
    except TimeoutError:
        pass
