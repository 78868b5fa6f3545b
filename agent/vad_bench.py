"""`python -m agent bench --vad`: how soon candidate speech holds the interviewer, and what does.

Feeds the session's silero VAD, configured as turn_taking.py loads it, with espeak-ng barge-ins
and backchannels and with synthetic sounds that are not speech (a click, noise bursts, a knock,
typing, a cough-like burst, a breath), cut into the frames the room delivers, and prints per
sound, for each input frame size and hold rule compared, the time from the sound's onset to the
hold (agent/barge_in.py: the first VAD event whose speech duration reaches a threshold, or the
first window rated speech), and the longest speech the VAD reported.

Times are audio time: a window's decision counts at the end of the input frame that completes
it. The VAD's own compute (about 1 ms a window here) and the room's transport are left out, so
the figures do not depend on the machine's load; the room bench measures the rest.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from livekit import rtc
from livekit.agents import vad

from avatar_worker.room_probe import AUDIO_RATE, espeak, voiced_span_s

from .turn_taking import TurnTakingOptions, load_vad

INPUT_RATE = AUDIO_RATE  # 24 kHz: what the session's room input delivers (AudioInputOptions)
VAD_RATE = 16000  # silero runs on 16 kHz windows
LEAD_S = 0.5  # silence before each sound
TAIL_S = 1.0  # and after it (the VAD's silence hang-over ends inside)

# what a candidate says over the interviewer: interruptions, then listening signals
PHRASES = {
    "en": ["Sorry, wait a second.", "Wait.", "Hold on, can I ask something?", "Yeah.", "Mm-hmm."],
    "ko": ["죄송한데, 잠시만요.", "잠깐만요.", "저 질문이 있는데요.", "네.", "그렇죠."],
}


# how the hold is decided: seconds of speech the VAD reported, or WINDOW: the first window whose
# speech probability reaches the VAD's activation threshold (barge_in.py first_window_probability)
HoldRule = float | Literal["window"]
WINDOW: Literal["window"] = "window"


@dataclass(frozen=True)
class SoundResult:
    name: str
    speech: bool  # spoken words (a hold is wanted) or another sound (a hold is a false pause)
    hold_ms: dict[tuple[int, HoldRule], float | None]  # (frame ms, rule) -> onset to hold, ms
    longest_speech_s: float


def non_speech_sounds() -> dict[str, np.ndarray]:
    """Sounds a candidate's microphone picks up that are not speech (seeded, reproducible)."""
    rng = np.random.default_rng(7)

    def noise(ms: float, level: float) -> np.ndarray:
        return rng.normal(0.0, level, int(INPUT_RATE * ms / 1000))

    t = np.arange(int(INPUT_RATE * 0.08)) / INPUT_RATE
    cough = noise(200, 6000)
    cough *= np.exp(-np.arange(cough.size) / (cough.size / 4))
    typing = np.zeros(int(INPUT_RATE * 1.25))
    for k in range(10):  # 8 keys a second
        at = int(k * INPUT_RATE / 8)
        typing[at : at + 24] = noise(1, 12000)
    breath = np.convolve(noise(400, 1500), np.ones(20) / 20, "same") * np.hanning(
        int(INPUT_RATE * 0.4)
    )
    return {
        "click": noise(2, 12000),
        "noise burst 60 ms": noise(60, 3000),
        "noise burst 300 ms": noise(300, 3000),
        "cough-like burst": cough,
        "knock": 8000 * np.sin(2 * np.pi * 200 * t) * np.exp(-t / 0.015),
        "typing": typing,
        "breath": breath,
    }


async def _events(model: vad.VAD, pcm: np.ndarray, frame_ms: int) -> list[vad.VADEvent]:
    """Every event of one VAD stream over the sound, fed in frames of `frame_ms`."""
    step = INPUT_RATE * frame_ms // 1000
    data = np.concatenate(
        [np.zeros(int(LEAD_S * INPUT_RATE)), pcm, np.zeros(int(TAIL_S * INPUT_RATE))]
    )
    data = np.clip(data, -32768, 32767).astype(np.int16)
    stream = model.stream()
    for i in range(0, data.size - step + 1, step):
        stream.push_frame(rtc.AudioFrame(data[i : i + step].tobytes(), INPUT_RATE, 1, step))
    stream.end_input()
    events = [ev async for ev in stream]
    await stream.aclose()
    return events


def rule_label(rule: HoldRule) -> str:
    return "1st window" if rule == WINDOW else f"{rule} s"


def hold_at_s(
    events: list[vad.VADEvent], rule: HoldRule, frame_ms: int, activation: float = 0.5
) -> float | None:
    """When the hold comes, from the sound's onset: the first event that meets the rule, at the
    end of the input frame that completed its window."""
    for ev in events:
        if rule == WINDOW:
            met = ev.type == vad.VADEventType.INFERENCE_DONE and ev.probability >= activation
        else:
            met = ev.speaking and ev.speech_duration >= rule
        if met:
            window_end = ev.samples_index / VAD_RATE  # in the stream, seconds
            frame_s = frame_ms / 1000
            return math.ceil(round(window_end / frame_s, 6)) * frame_s - LEAD_S
    return None


async def measure(
    languages: list[str],
    frame_sizes_ms: list[int],
    rules: list[HoldRule],
    opts: TurnTakingOptions | None = None,
) -> list[SoundResult]:
    opts = opts or TurnTakingOptions()
    model = load_vad(opts)
    sounds: list[tuple[str, bool, np.ndarray]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for lang in languages:
            for text in PHRASES[lang]:
                pcm = await espeak(text, lang, Path(tmp) / "phrase.wav")
                onset = int(voiced_span_s(pcm)[0] * INPUT_RATE)  # as the room bench times it
                sounds.append((f"{lang} {text}", True, pcm[onset:].astype(np.float32)))
    sounds += [(name, False, pcm) for name, pcm in non_speech_sounds().items()]
    results = []
    for name, speech, pcm in sounds:
        holds: dict[tuple[int, HoldRule], float | None] = {}
        longest = 0.0
        for frame_ms in frame_sizes_ms:
            events = await _events(model, pcm, frame_ms)
            longest = max([longest, *(e.speech_duration for e in events if e.speaking)])
            for rule in rules:
                at = hold_at_s(events, rule, frame_ms, opts.vad_activation_threshold)
                holds[(frame_ms, rule)] = None if at is None else round(at * 1000)
        results.append(SoundResult(name, speech, holds, round(longest, 2)))
    return results


def summary(results: list[SoundResult]) -> dict[str, object]:
    """Per (frame, rule): median onset-to-hold over the spoken phrases, and false holds."""
    keys = list(results[0].hold_ms) if results else []
    out: dict[str, object] = {}
    for key in keys:
        frame_ms, rule = key
        spoken = [r.hold_ms[key] for r in results if r.speech]
        held = [h for h in spoken if h is not None]
        out[f"frame {frame_ms} ms, hold at {rule_label(rule)}"] = {
            "onset_to_hold_ms_median": float(np.median(held)) if held else None,
            "onset_to_hold_ms_max": max(held) if held else None,
            "phrases_held": f"{len(held)}/{len(spoken)}",
            "non_speech_held": [
                r.name for r in results if not r.speech and r.hold_ms[key] is not None
            ],
        }
    return out


def lines(results: list[SoundResult]) -> list[str]:
    keys = list(results[0].hold_ms) if results else []
    head = "".join(f"{f'{f}ms/{rule_label(rule)}':>16}" for f, rule in keys)
    out = [f"onset -> hold, ms (input frame / hold rule){'':8}{head}  longest speech"]
    for r in results:
        cells = "".join(f"{'-' if (h := r.hold_ms[k]) is None else h:>16}" for k in keys)
        out.append(f"  {r.name[:44]:44s}{cells}  {r.longest_speech_s:.2f} s")
    for key, s in summary(results).items():
        out.append(f"{key}: {s}")
    return out
