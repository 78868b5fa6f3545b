"""transcript.json (DESIGN.md contract): the timed record of one interview, both speakers.

These models are the one definition of the format; the live store, the rehearsal command and the
report all read and write through them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Speaker = Literal["interviewer", "candidate"]


class TranscriptError(ValueError):
    """A transcript file that is missing or breaks the contract; one sentence for the user."""


class Turn(BaseModel):
    model_config = ConfigDict(extra="allow")

    speaker: Speaker
    text: str
    start: float = Field(ge=0, description="seconds from the start of the interview")
    end: float = Field(ge=0, description="seconds from the start of the interview")
    interrupted: bool = False


class Transcript(BaseModel):
    model_config = ConfigDict(extra="allow")

    interview_id: str = Field(min_length=1)
    config: dict[str, Any]
    started_at: str
    ended_at: str | None = None
    turns: list[Turn] = Field(default_factory=list)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        tmp.replace(path)


def load_transcript(path: str | Path) -> Transcript:
    """Read and validate transcript.json; raise TranscriptError naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise TranscriptError(f"transcript file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TranscriptError(f"transcript {path} is not valid JSON: {e}") from None
    try:
        return Transcript.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "transcript"
        raise TranscriptError(f"transcript {path}: field '{where}': {err['msg']}") from None
