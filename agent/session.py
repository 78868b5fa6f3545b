"""Builds one interview: plan, state, providers and the AgentSession, plus live transcript saving.

Used by the LiveKit worker (agent/worker.py), the rehearsal and the benchmark, so all three run
exactly the same interviewer.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from livekit.agents import (
    AgentSession,
    AgentStateChangedEvent,
    ChatMessage,
    ConversationItemAddedEvent,
)

from .barge_in import BargeInOptions, ObservedVAD, VoiceActivityPause
from .config import InterviewConfig
from .evaluation.live import LiveAssessment
from .flow import InterviewState, StageAgent, first_agent
from .log_redaction import keep_conversation_out_of_logs
from .plan import InterviewPlan, build_plan
from .providers import ProviderChoices, build_llm, build_stt, build_tts, choose_providers
from .providers.stt import WhisperSTT
from .store import TranscriptStore
from .transcript import Transcript
from .turn_taking import TurnTakingOptions, load_vad, turn_detector, turn_handling

logger = logging.getLogger("interview.session")

# stages whose questions call for a long answer: an early pause there is probably thinking
OPEN_STAGES = ("introduction", "experience", "role")

_METRIC_KEYS = {
    "candidate": ("transcription_delay", "end_of_turn_delay"),
    "interviewer": ("e2e_latency", "llm_node_ttft", "tts_node_ttfb", "playback_latency"),
}


@dataclass
class Interview:
    interview_id: str
    config: InterviewConfig
    plan: InterviewPlan
    state: InterviewState
    session: AgentSession
    choices: ProviderChoices | None
    store: TranscriptStore
    t0: float = field(default_factory=time.time)
    turn_metrics: list[dict[str, Any]] = field(default_factory=list)
    # answers assessed in the background as the interview goes (None: the report does it all)
    assessment: LiveAssessment | None = None
    barge_in: VoiceActivityPause | None = None  # audio interviews only

    def first_agent(self) -> StageAgent:
        return first_agent(self.state)

    def transcript(self) -> Transcript:
        return self.store.transcript(self.interview_id)

    def finish(self) -> Transcript:
        self.store.finish(self.interview_id)
        return self.transcript()

    def _on_agent_state(self, ev: AgentStateChangedEvent) -> None:
        if ev.new_state == "speaking":
            self.state.agent_speech = (ev.created_at, None)
        elif ev.old_state == "speaking":
            self.state.agent_speech = (self.state.agent_speech[0], ev.created_at)

    def _on_item(self, ev: ConversationItemAddedEvent) -> None:
        item = ev.item
        if not isinstance(item, ChatMessage) or item.role not in ("user", "assistant"):
            return
        text = (item.text_content or "").strip()
        if not text:
            return
        speaker = "candidate" if item.role == "user" else "interviewer"
        m = item.metrics or {}
        start_abs = m.get("started_speaking_at") or item.created_at
        end_abs = m.get("stopped_speaking_at") or max(item.created_at, start_abs)
        extra: dict[str, Any] = {
            k: round(float(m[k]), 4) for k in _METRIC_KEYS[speaker] if m.get(k) is not None
        }
        if speaker == "interviewer":
            extra["stage"] = self.state.stage
            if (q := self.state.current()) is not None:
                # which planned question this turn asks (or follows up on), for the report
                extra["question_id"], extra["kind"] = q.id, q.kind
        self.store.add_turn(
            self.interview_id,
            speaker,  # type: ignore[arg-type]
            text,
            start_abs - self.t0,
            end_abs - self.t0,
            interrupted=item.interrupted,
            extra=extra,
        )
        self.turn_metrics.append({"speaker": speaker, "at": start_abs - self.t0, **extra})


def create_interview(
    config: InterviewConfig,
    *,
    text_only: bool = False,
    interview_id: str | None = None,
    store: TranscriptStore | None = None,
    env: Mapping[str, str] | None = None,
    turn_opts: TurnTakingOptions | None = None,
    llm_override: Any = None,
    vad_model: Any = None,
    log_extra: Mapping[str, object] | None = None,
    judge_llm: Any = None,
) -> Interview:
    """Everything but starting: the caller wires inputs/outputs, then `session.start(...)`."""
    plan = build_plan(config)
    state = InterviewState(plan=plan)
    interview_id = interview_id or uuid.uuid4().hex[:12]
    extra = {"interview": interview_id, **(log_extra or {})}

    choices: ProviderChoices | None = None
    if llm_override is not None:
        llm = llm_override
        logger.info("llm: test double", extra=extra)
    else:
        choices = choose_providers(config.language, env)
        choices.log(**extra)
        llm = build_llm(choices.llm, plan, env)

    barge_in: VoiceActivityPause | None = None
    if text_only:
        session: AgentSession = AgentSession(
            llm=llm, vad=None, userdata=state, turn_handling={"turn_detection": None}
        )
    else:
        assert choices is not None, "audio interviews need real providers"
        opts = turn_opts or TurnTakingOptions.from_env()
        stt = build_stt(choices.stt, config.language, env)
        # the session's VAD, also watched by the barge-in controller below
        vad = ObservedVAD(vad_model or load_vad(opts))
        detector = turn_detector(opts, config.language)
        if isinstance(stt, WhisperSTT):
            detector.stt_settled_since = stt.settled_since
            stt.attach_vad(vad)  # its stream cuts utterances with the session's VAD
        detector.expects_long_answer = lambda: state.stage in OPEN_STAGES
        state.is_backchannel = detector.completeness.is_backchannel
        session = AgentSession(
            stt=stt,
            llm=llm,
            tts=build_tts(choices.tts, config.language, env),
            vad=vad,
            turn_handling=turn_handling(opts, detector=detector),
            userdata=state,
            user_away_timeout=None,
            # captions follow the voice: an avatar output takes audio no faster than it plays,
            # so the caption synchronizer cannot learn the speaking rate from a whole answer's
            # audio up front; the TTS's word timings give it instead (tests/web/caption_timing.py)
            use_tts_aligned_transcript=True,
        )
        # candidate speech holds the interviewer at once, whichever output speaks (the avatar,
        # the agent's own track, the rehearsal's simulated room); what was said decides the rest
        barge_in = VoiceActivityPause(
            session,
            vad,
            BargeInOptions.from_session(
                session, first_window_probability=opts.vad_activation_threshold
            ),
            is_backchannel=state.is_backchannel,
            log_extra=extra,
        )
        if isinstance(stt, WhisperSTT):
            # interim transcripts only give a barge-in its words; decode them only then
            stt.interim_gate = lambda: session.agent_state == "speaking"
        session.on(
            "user_input_transcribed",
            lambda ev: detector.on_transcript(ev.transcript) if ev.is_final else None,
        )
        logger.info(
            "turn-taking: silero vad, turn-detector-v1-mini (livekit-local-inference)"
            " refined by transcript endings",
            extra={
                **extra,
                "min_delay": opts.min_endpointing_delay,
                "max_delay": opts.max_endpointing_delay,
            },
        )

    store = store or TranscriptStore()
    store.begin(interview_id, config)
    interview = Interview(
        interview_id=interview_id,
        config=config,
        plan=plan,
        state=state,
        session=session,
        choices=choices,
        store=store,
    )
    interview.barge_in = barge_in
    session.on("conversation_item_added", interview._on_item)
    session.on("agent_state_changed", interview._on_agent_state)
    # judge_llm None: the LLM judge if OPENAI_API_KEY is set, else the offline heuristic
    interview.assessment = LiveAssessment.start(
        config,
        interview_id,
        session,
        stage=lambda: state.stage,
        llm=judge_llm,
        env=env,
        log_extra=log_extra,
    )
    # what the candidate and the interviewer say never reaches a log, which erasing the
    # interview cannot reach (installed last: the providers' plugins have their loggers now)
    keep_conversation_out_of_logs()
    return interview
