"""The simulated candidate's script: one answer per line of answers.txt.

Markers inside a line: `[pause]` or `[pause 2.5]` is a thinking pause (seconds, default 2.0)
inside the answer; `[bc 네]` is a backchannel the candidate says while the interviewer is
speaking the question before this answer. Lines starting with '#' are comments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_MARKER = re.compile(r"\[(pause|bc)(?:\s+([^\]]*))?\]")
DEFAULT_PAUSE_S = 2.0


class AnswersError(ValueError):
    """An answers file that cannot be used; one sentence naming the file."""


@dataclass(frozen=True)
class Answer:
    segments: tuple[str, ...]
    pauses: tuple[float, ...]  # pauses[i] follows segments[i]; one fewer than segments
    backchannels: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return " ".join(self.segments)


def parse_answer(line: str) -> Answer:
    segments: list[str] = []
    pauses: list[float] = []
    backchannels: list[str] = []
    pos = 0
    current = ""
    for m in _MARKER.finditer(line):
        current += line[pos : m.start()]
        pos = m.end()
        kind, arg = m.group(1), (m.group(2) or "").strip()
        if kind == "bc":
            if arg:
                backchannels.append(arg)
            continue
        try:
            seconds = float(arg) if arg else DEFAULT_PAUSE_S
        except ValueError:
            raise AnswersError(f"bad pause length '{arg}' in answer: {line[:60]}") from None
        if current.strip():
            segments.append(current.strip())
            pauses.append(seconds)
        current = ""
    current += line[pos:]
    if current.strip():
        segments.append(current.strip())
    elif pauses:
        pauses.pop()
    return Answer(tuple(segments), tuple(pauses), tuple(backchannels))


def load_answers(path: str | Path) -> list[Answer]:
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise AnswersError(f"cannot read answers file {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise AnswersError(f"answers file {path} is not UTF-8 text") from None
    answers = [parse_answer(s) for s in lines if s.strip() and not s.lstrip().startswith("#")]
    answers = [a for a in answers if a.segments]
    if not answers:
        raise AnswersError(f"answers file {path} has no answers (one answer per line)")
    return answers
