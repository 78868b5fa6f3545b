"""How far the interviewer's captions run behind (or ahead of) its voice, as a candidate gets them.

`python3 tests/web/caption_timing.py [--language en ko] [--json]` starts the local stack (dev
server, avatar service, interviewer worker: `agent.stack`), dispatches one interview per language
and joins as a candidate that says nothing. It records, for the interviewer's greeting, when each
word arrives on the `lk.transcription` text stream and the avatar's audio energy in 10 ms steps,
then prints per language: the lag of every word's caption behind the moment that word has been
spoken (median, p90, max; positive = caption late), the lead of the first word over the first
audio, and how late the whole sentence is complete after the audio ends.

Where a word ends in the received audio comes from espeak-ng itself: each prefix of the text is
synthesized with the interviewer's voice, and the end of its speech is that word's end; the
synthesized timeline is stretched to the received speech span (the stretch is printed: near 1
means the alignment is sound). Timings on this shared 2-core machine are noisy.

The analysis functions are also used by tests/web/test_caption_timing.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LOUD = 300.0  # int16 RMS over 10 ms: speech, not codec noise
END_QUIET_S = 1.5  # this much quiet after speech ends the interviewer's turn
SPEECH_LEVEL = 200  # int16 amplitude: a synthesized sample that is speech


@dataclass
class CaptionStream:
    """One `lk.transcription` text stream: arrival time of each chunk and the text so far."""

    sender: str
    segment_id: str
    attributes: dict[str, str]
    events: list[tuple[float, str]] = field(default_factory=list)
    closed_at: float | None = None

    @property
    def text(self) -> str:
        return self.events[-1][1] if self.events else ""


def word_ends(text: str) -> list[int]:
    """Character offsets just after each whitespace-separated word of `text`."""
    ends, in_word = [], False
    for i, ch in enumerate(text):
        if ch.isspace():
            if in_word:
                ends.append(i)
            in_word = False
        else:
            in_word = True
    if in_word:
        ends.append(len(text))
    return ends


def spoken_word_ends(text: str, language: str) -> tuple[list[float], float]:
    """(end of each word's speech, start of speech) in seconds of espeak-ng's rendering of
    `text` with the interviewer's voice (agent/providers: Voice(language))."""
    from agent.providers.espeak import Voice, engine

    eng, voice = engine(), Voice(language=language)
    rate = eng.sample_rate

    def speech_end(s: str) -> float:
        pcm = eng.synthesize_all(s, voice)
        loud = np.nonzero(np.abs(pcm.astype(np.int32)) > SPEECH_LEVEL)[0]
        return float(loud[-1] + 1) / rate if loud.size else 0.0

    full = eng.synthesize_all(text, voice)
    loud = np.nonzero(np.abs(full.astype(np.int32)) > SPEECH_LEVEL)[0]
    start = float(loud[0]) / rate if loud.size else 0.0
    return [speech_end(text[:end]) for end in word_ends(text)], start


def shown_at(events: list[tuple[float, str]], n_chars: int) -> float | None:
    """When the caption first held at least `n_chars` characters."""
    for t, text in events:
        if len(text) >= n_chars:
            return t
    return None


def speech_span(audio_t: np.ndarray, audio_rms: np.ndarray, after: float) -> tuple[float, float]:
    """(onset, end) of the first stretch of speech after `after` that ends with END_QUIET_S of
    quiet (or with the recording)."""
    loud = audio_t[(audio_rms > LOUD) & (audio_t >= after)]
    if not loud.size:
        raise ValueError("no interviewer speech was received")
    gaps = np.nonzero(np.diff(loud) > END_QUIET_S)[0]
    end = loud[gaps[0]] if gaps.size else loud[-1]
    return float(loud[0]), float(end + 0.01)


@dataclass
class CaptionTiming:
    words: int
    word_lag_s: list[float]  # per word: caption time - end of that word in the audio
    first_word_lead_s: float  # audio onset - first caption word (positive: caption early)
    complete_after_end_s: float  # whole text shown - audio end (positive: caption late)
    stretch: float  # received speech span / synthesized speech span

    def summary(self) -> dict[str, float | int]:
        lags = np.asarray(self.word_lag_s)
        return {
            "words": self.words,
            "word_lag_median_s": round(float(np.median(lags)), 3),
            "word_lag_p90_s": round(float(np.percentile(lags, 90)), 3),
            "word_lag_max_s": round(float(lags.max()), 3),
            "word_lead_max_s": round(float(-lags.min()), 3),
            "first_word_lead_s": round(self.first_word_lead_s, 3),
            "complete_after_audio_end_s": round(self.complete_after_end_s, 3),
            "stretch": round(self.stretch, 3),
        }


def caption_timing(
    stream: CaptionStream,
    audio_t: np.ndarray,
    audio_rms: np.ndarray,
    spoken_ends: list[float],
    spoken_start: float,
) -> CaptionTiming:
    """Lags of one caption stream against the audio it captions (see the module docstring)."""
    onset, end = speech_span(audio_t, audio_rms, stream.events[0][0] - 10.0)
    ends = word_ends(stream.text)
    if len(ends) != len(spoken_ends):
        raise ValueError("the spoken word list does not match the caption's words")
    span = spoken_ends[-1] - spoken_start
    stretch = (end - onset) / span if span > 0 else 1.0
    lags = []
    for n_chars, spoken in zip(ends, spoken_ends, strict=True):
        t = shown_at(stream.events, n_chars)
        assert t is not None
        lags.append(t - (onset + (spoken - spoken_start) * stretch))
    complete = shown_at(stream.events, len(stream.text.rstrip()))
    assert complete is not None
    return CaptionTiming(
        words=len(ends),
        word_lag_s=lags,
        first_word_lead_s=onset - stream.events[0][0],
        complete_after_end_s=complete - end,
        stretch=stretch,
    )


# ---- the measurement in a real room ------------------------------------------------------


class CaptionProbe:
    """A silent candidate recording the interviewer's audio energy and caption streams."""

    def __init__(self) -> None:
        from avatar_worker.room_probe import RoomProbe

        self.probe = RoomProbe()
        self.streams: list[CaptionStream] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.probe.room.register_text_stream_handler("lk.transcription", self._on_stream)

    def _on_stream(self, reader: Any, sender: str) -> None:  # rtc.TextStreamReader
        attrs = dict(reader.info.attributes or {})
        stream = CaptionStream(sender, attrs.get("lk.segment_id", reader.info.stream_id), attrs)
        self.streams.append(stream)

        async def read() -> None:
            text = ""
            async for chunk in reader:
                text += chunk
                stream.events.append((time.perf_counter(), text))
            stream.closed_at = time.perf_counter()

        task = asyncio.create_task(read())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def interviewer_audio(self) -> tuple[np.ndarray, np.ndarray] | None:
        for rec in self.probe.received.values():
            if rec.attributes.get("lk.publish_on_behalf") and rec.audio_t:
                return np.asarray(rec.audio_t), np.asarray(rec.audio_rms)
        return None

    def agent_streams(self, agent: str) -> list[CaptionStream]:
        return [s for s in self.streams if s.sender == agent and s.text.strip()]


async def measure_greeting(
    url: str, api_key: str, api_secret: str, language: str, timeout_s: float = 90.0
) -> dict[str, object]:
    """Dispatch one interview, hear its greeting, return the caption timing summary."""
    from livekit import api

    from agent.booking import interview_room

    room = f"captions-{uuid.uuid4().hex[:8]}"
    config = {"candidate_name": "Alex Kim" if language == "en" else "김민준",
              "role": "Data engineer" if language == "en" else "백엔드 개발자",
              "language": language, "duration_minutes": 5}  # fmt: skip
    async with api.LiveKitAPI(url, api_key, api_secret) as lk:
        await lk.room.create_room(interview_room(room, json.dumps(config)))
    token = (
        api.AccessToken(api_key, api_secret)
        .with_identity("candidate")
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .to_jwt()
    )
    cp = CaptionProbe()
    await cp.probe.connect(url, token)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            audio = cp.interviewer_audio()
            agent = next(
                (r.attributes["lk.publish_on_behalf"] for r in cp.probe.received.values()
                 if r.attributes.get("lk.publish_on_behalf")), "")  # fmt: skip
            done = [s for s in cp.agent_streams(agent) if s.closed_at is not None]
            if audio is None or not done:
                continue
            _onset, end = speech_span(*audio, done[0].events[0][0] - 10.0)
            if audio[0][-1] - end >= END_QUIET_S:
                break
        else:
            raise TimeoutError(f"no complete greeting with captions within {timeout_s:.0f} s")
        stream = done[0]
        ends, start = spoken_word_ends(stream.text, language)
        timing = caption_timing(stream, *audio, ends, start)
        loud = audio[0][audio[1] > LOUD]
        return {
            "language": language,
            "raw": {
                "wall_minus_perf": time.time() - time.perf_counter(),
                "events": stream.events,
                "loud": [round(float(x), 3) for x in loud],
            },
            "text": stream.text,
            "chunks": len(stream.events),
            **timing.summary(),
            "word_lag_s": [round(x, 2) for x in timing.word_lag_s],
        }
    finally:
        await cp.probe.aclose()


def main(argv: list[str] | None = None) -> int:
    from agent.ports import free_loopback_port as free_port
    from agent.stack import Stack, StackOptions

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--language", nargs="+", default=["en", "ko"], choices=["en", "ko"])
    p.add_argument("--json", action="store_true", help="one JSON object per language")
    p.add_argument("--raw", type=Path, help="also write the raw caption events and audio here")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        opts = StackOptions(
            livekit_port=free_port(),
            avatar_port=free_port(),
            web=False,
            data_dir=Path(tmp),
            startup_timeout_s=240,
        )
        with Stack(opts):
            for language in args.language:
                result = asyncio.run(
                    measure_greeting(opts.url, opts.api_key, opts.api_secret, language)
                )
                if not 0.85 <= float(result["stretch"]) <= 1.15:  # type: ignore[arg-type]
                    print(
                        f"warning: {language}: the received speech lasted {result['stretch']} x "
                        "its synthesized length (the audio stalled: a busy machine?); these "
                        "figures are not about the captions",
                        file=sys.stderr,
                    )
                raw = result.pop("raw")
                if args.raw:
                    args.raw.with_suffix(f".{language}.json").write_text(json.dumps(raw))
                if args.json:
                    print(json.dumps(result, ensure_ascii=False), flush=True)
                else:
                    lags = result.pop("word_lag_s")
                    print(json.dumps(result, ensure_ascii=False, indent=1))
                    print("per-word lag s:", lags, flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
