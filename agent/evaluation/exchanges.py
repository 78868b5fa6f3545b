"""Splits a transcript into question/answer exchanges.

The question is the block of consecutive interviewer turns before the candidate speaks; the
answer is every candidate turn up to the next interviewer turn (speech recognition often splits
one answer into several segments at pauses, so an answer has a list of timed segments).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.transcript import Transcript, Turn


@dataclass(slots=True)
class Segment:
    text: str
    start: float
    end: float
    # word timings (start, end) in interview seconds, when the speech recogniser gave them
    words: list[tuple[float, float]] | None = None


@dataclass(slots=True)
class Exchange:
    index: int
    question: str
    question_end: float | None  # end of the interviewer's last turn before the answer
    segments: list[Segment] = field(default_factory=list)
    # whatever the interview plan stored on the question turn (e.g. "kind": "technical")
    question_meta: dict[str, object] = field(default_factory=dict)

    @property
    def answer(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    @property
    def start(self) -> float:
        return self.segments[0].start

    @property
    def end(self) -> float:
        return max(s.end for s in self.segments)


def _extras(turn: Turn) -> dict[str, object]:
    return dict(turn.model_extra or {})


def word_times(turn: Turn) -> list[tuple[float, float]] | None:
    """The turn's optional "words": [{"text", "start", "end"}, …] as sorted (start, end) pairs.

    Anything malformed means no word timings for this turn (segment timings are used instead).
    """
    raw = (turn.model_extra or {}).get("words")
    if not isinstance(raw, list) or not raw:
        return None
    times = []
    for w in raw:
        if not isinstance(w, dict):
            return None
        start, end = w.get("start"), w.get("end")
        if not isinstance(start, int | float) or not isinstance(end, int | float) or end < start:
            return None
        times.append((float(start), float(end)))
    return sorted(times)


def split_exchanges(transcript: Transcript) -> list[Exchange]:
    exchanges: list[Exchange] = []
    question_turns: list[Turn] = []
    current: Exchange | None = None
    for turn in transcript.turns:
        if turn.speaker == "interviewer":
            if current is not None:
                exchanges.append(current)
                current = None
                question_turns = []
            question_turns.append(turn)
            continue
        if not turn.text.strip():
            continue
        if current is None:
            meta: dict[str, object] = {}
            for qt in question_turns:
                meta.update(_extras(qt))
            current = Exchange(
                index=len(exchanges),
                question=" ".join(t.text.strip() for t in question_turns if t.text.strip()),
                question_end=max((t.end for t in question_turns), default=None),
                question_meta=meta,
            )
        current.segments.append(
            Segment(turn.text, turn.start, max(turn.end, turn.start), word_times(turn))
        )
    if current is not None:
        exchanges.append(current)
    return exchanges
