"""Turn-taking tuned for interviews: VAD, the local end-of-turn model, endpointing, barge-in.

- Silero VAD (model inside the livekit-plugins-silero wheel) marks speech; a short silence
  window ends a VAD segment so whisper can start transcribing early.
- LiveKit's turn detector runs the audio end-of-turn model compiled into livekit-local-inference
  (`turn-detector-v1-mini`, no download): at a pause it predicts whether the answer is over.
  Likely over: reply after `min_delay`. Unlikely (a thinking pause): wait up to `max_delay`,
  longer than a 1.5-3 s pause, so the interviewer does not jump in.
- While the interviewer speaks, candidate speech pauses its audio at once (the sink can pause);
  a backchannel ("네", "음", "yeah") of fewer than `min_words` words resumes it after
  `false_interruption_timeout`, while a real barge-in interrupts the turn.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from livekit.agents import TurnHandlingOptions, vad


@dataclass(frozen=True)
class TurnTakingOptions:
    min_endpointing_delay: float = 0.5
    max_endpointing_delay: float = 3.6
    vad_min_silence: float = 0.3
    vad_activation_threshold: float = 0.5
    min_interruption_duration: float = 0.5
    min_interruption_words: int = 2
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
        activation_threshold=opts.vad_activation_threshold,
        prefix_padding_duration=0.3,
    )


def turn_detector(opts: TurnTakingOptions) -> object:
    """The local audio end-of-turn model; never the cloud one (explicit version)."""
    from livekit.agents.inference import TurnDetector

    if opts.unlikely_threshold is not None:
        return TurnDetector(version="v1-mini", unlikely_threshold=opts.unlikely_threshold)
    return TurnDetector(version="v1-mini")


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
