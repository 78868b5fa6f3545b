"""Lip-sync evaluation on espeak-ng speech with known phoneme timings (ko and en).

For held-out sentences, unseen voice variants and two speaking rates, the audio is rendered
through the same pipeline as a live session and `render --params-out` (LipSyncVideoGenerator on
the "woman" character, speech fade-in included), and the per-frame parameters are scored; each
video frame is labelled with the phoneme espeak-ng produced at the frame's centre. Reported per
language:
- bilabial_closed_share: m/b/p frames with mouth_open <= 0.15 (lips nearly closed),
- open_vowel_open_share: "a"-type vowel frames with mouth_open >= 0.45 (clearly open),
- openness_correlation: Pearson r of mouth_open with the per-phoneme openness reference
  (phonemes.py) over the frames from the first to the last sound of each sentence,
- rounded_share / spread_share: o/u frames drawn rounded (width < 0), i/e frames spread (> 0).
Targets: >= 0.8, >= 0.8, >= 0.7. `--voice-warp 0.85 1.15` adds the scores of the same speech
with pitch and formants shifted by those factors (deeper / higher voices than espeak's).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.signal import resample_poly

from .avatars import get_composer
from .engine import FrameComposer
from .espeak_data import (
    EVAL_RATES,
    EVAL_START,
    EVAL_VOICES,
    Utterance,
    check_tool,
    corpus,
    synthesize_many,
)
from .lipsync import AnalyzerKind
from .offline import render_params
from .phonemes import BILABIALS, OPEN_VOWELS, language_of, lookup

CLOSED_MAX = 0.15
OPEN_MIN = 0.45
TARGETS = {"bilabial_closed_share": 0.8, "open_vowel_open_share": 0.8, "openness_correlation": 0.7}


@dataclass
class _Tally:
    opens: list[float] = field(default_factory=list)
    refs: list[float] = field(default_factory=list)
    bilabial: list[bool] = field(default_factory=list)
    open_vowel: list[bool] = field(default_factory=list)
    rounded: list[bool] = field(default_factory=list)
    spread: list[bool] = field(default_factory=list)
    frames: int = 0


def _score(tally: _Tally) -> dict[str, float | int]:
    def share(values: list[bool]) -> float:
        return round(float(np.mean(values)), 3) if values else float("nan")

    corr = float(np.corrcoef(tally.opens, tally.refs)[0, 1]) if len(tally.opens) > 2 else 0.0
    return {
        "bilabial_closed_share": share(tally.bilabial),
        "open_vowel_open_share": share(tally.open_vowel),
        "openness_correlation": round(corr, 3),
        "rounded_share": share(tally.rounded),
        "spread_share": share(tally.spread),
        "frames": tally.frames,
        "bilabial_frames": len(tally.bilabial),
        "open_vowel_frames": len(tally.open_vowel),
    }


def _warped(utt: Utterance, warp: float) -> tuple[np.ndarray, int, float]:
    """The utterance played `warp` times faster (pitch and formants scaled: another voice),
    resampled to 24 kHz; returns audio, rate and the factor its timings are scaled by."""
    if warp == 1.0:
        return utt.audio, utt.sample_rate, 1.0
    source = round(utt.sample_rate * warp / 10) * 10
    g = np.gcd(24000, source)
    audio = resample_poly(utt.audio.astype(np.float32), 24000 // g, source // g)
    return np.clip(audio, -32768, 32767).astype(np.int16), 24000, utt.sample_rate / source


def _tally_utterance(
    tally: _Tally,
    utt: Utterance,
    kind: AnalyzerKind,
    fps: float,
    composer: FrameComposer,
    warp: float = 1.0,
) -> None:
    language = language_of(utt.voice)
    audio, rate, scale = _warped(utt, warp)
    shapes = render_params(composer, audio, rate, fps, kind)
    labelled = [(lookup(n, language), start * scale, end * scale) for n, start, end in utt.phonemes]
    sounds = [(s, e) for entry, s, e in labelled if entry is not None and entry[0] != "sil"]
    if not sounds:
        return
    first, last = sounds[0][0], sounds[-1][1]
    for k, shape in enumerate(shapes):
        centre = (k + 0.5) / fps
        if not first <= centre < last:
            continue
        entry = next((e for e, s, end in labelled if s <= centre < end), None)
        if entry is None:
            continue
        viseme, ref = entry
        tally.frames += 1
        tally.opens.append(shape.mouth_open)
        tally.refs.append(ref)
        if viseme in BILABIALS:
            tally.bilabial.append(shape.mouth_open <= CLOSED_MAX)
        if viseme in OPEN_VOWELS:
            tally.open_vowel.append(shape.mouth_open >= OPEN_MIN)
        if viseme in ("OO", "UU"):
            tally.rounded.append(shape.mouth_width < 0)
        if viseme in ("EE", "II"):
            tally.spread.append(shape.mouth_width > 0)


def evaluate(
    kind: AnalyzerKind = "model",
    fps: float = 25.0,
    sentences: int | None = None,
    warps: tuple[float, ...] = (),
) -> dict[str, object]:
    """Scores per language plus whether every target is met; with `warps`, also the scores of
    the same speech played faster or slower (higher or deeper voices), reported apart."""
    check_tool()  # fail before any work when the ground-truth tool is missing
    results: dict[str, object] = {"analyzer": kind, "fps": fps}
    composer = get_composer("woman", 512)
    passed = True
    for language, voices in EVAL_VOICES.items():
        tally = _Tally()
        texts = corpus(language)[EVAL_START:]
        jobs = [
            (text, voice, rate)
            for text in (texts[:sentences] if sentences else texts)
            for voice in voices
            for rate in EVAL_RATES
        ]
        utterances = synthesize_many(jobs)
        for utt in utterances:
            _tally_utterance(tally, utt, kind, fps, composer)
        scores = _score(tally)
        passed &= all(float(scores[key]) >= target for key, target in TARGETS.items())
        for warp in warps:
            warped = _Tally()
            for utt in utterances:
                _tally_utterance(warped, utt, kind, fps, composer, warp)
            scores[f"voice_warp_{warp:g}"] = {k: _score(warped)[k] for k in TARGETS}
        results[language] = scores
    results["targets"] = TARGETS
    results["passed"] = passed
    return results
