"""Typed request and response bodies of the interview API (they make the OpenAPI schema at /docs).

The request body of POST /api/sessions is agent.config.InterviewConfig itself, so the API, the
agent and the rehearsal accept exactly the same configs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from agent.config import Language

SessionState = Literal["waiting", "in_progress", "ended", "expired", "erased"]
InterviewerState = Literal["pending", "in_room", "none_available", "lost", "finished"]


class ErrorBody(BaseModel):
    detail: str = Field(description="one sentence saying what is wrong and with which field")


class SessionCreated(BaseModel):
    session_id: str = Field(description="also the LiveKit room name and the interview id")
    session_key: str = Field(
        description="this session's secret: send it as `Authorization: Bearer <session_key>` to "
        "every /api/sessions/{id} endpoint; shown only here (the API keeps a hash)"
    )
    livekit_url: str = Field(description="the LiveKit server the browser connects to")
    token: str = Field(
        description="candidate join token: this room and identity only, microphone only"
    )
    participant_identity: str
    expires_at: str = Field(description="ISO-8601: the token cannot be used to join after this")
    language: Language
    duration_minutes: int
    avatar: str


class SessionToken(BaseModel):
    session_id: str
    livekit_url: str = Field(description="the LiveKit server the browser connects to")
    token: str = Field(
        description="a fresh candidate join token: same room, identity and grants as the first"
    )
    participant_identity: str
    expires_at: str = Field(description="ISO-8601: the token cannot be used to join after this")


class SessionStatus(BaseModel):
    session_id: str
    status: SessionState
    created_at: str
    started_at: str | None = Field(description="when the interviewer began (agent's store)")
    ended_at: str | None
    duration_s: float | None = Field(description="started -> ended (or now, while running)")
    planned_duration_s: int
    turn_count: int
    candidate_turns: int
    language: Language
    report_ready: bool
    interviewer: InterviewerState = Field(
        default="pending",
        description="pending: booked, no interviewer yet; in_room: the interviewer has the "
        "interview; none_available: no interviewer took the booking (the interview is ended); "
        "lost: the interviewer stopped before the end (transcript and report are written from "
        "what was said); finished: the interview ended normally",
    )
    end_reason: str | None = Field(
        default=None,
        description="why it ended: completed, ended_by_request, room_closed, no_interviewer, "
        "interviewer_lost; null while it runs",
    )


class SessionSummary(SessionStatus):
    ended_politely: bool = Field(
        description="the interviewer acknowledged the end request and left on its own"
    )
    report_url: str


class EraseResult(BaseModel):
    session_id: str
    erased: list[str] = Field(description="what was removed: transcript, report, audio, turns…")


class AvatarInfo(BaseModel):
    avatar_id: str = Field(description="the value for the config's 'avatar' field")
    kind: Literal["character", "portrait"]
    image_url: str | None = None


class AvatarUploaded(AvatarInfo):
    upload_key: str = Field(
        description="this portrait's secret: send it as `Authorization: Bearer <upload_key>` to "
        "GET its image_url and with POST /api/sessions when booking with it; shown only here "
        "(the API keeps a hash)"
    )
    expires_at: str = Field(
        description="ISO-8601: the portrait is deleted then (INTERVIEW_PORTRAIT_RETENTION_S), "
        "or earlier when the last interview booked with it is erased"
    )


class ResumeText(BaseModel):
    resume_text: str
    chars: int
    truncated: bool = Field(description="true when the text was cut to the config's 20,000 chars")
    source: Literal["pdf", "text"]


class PromptFile(BaseModel):
    name: str = Field(description="path under prompts/, e.g. 'ko/interviewer.yaml'")
    text: str


class PromptUpdate(BaseModel):
    text: str = Field(max_length=200_000)


class LiveKitHealth(BaseModel):
    url: str
    reachable: bool
    error: str | None = None


class AvatarServiceHealth(BaseModel):
    url: str
    reachable: bool
    capacity: int | None = Field(default=None, description="avatar sessions it can run at once")
    active_sessions: int | None = None
    free_sessions: int | None = Field(default=None, description="sessions it can still take")
    details: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


class GpuInfo(BaseModel):
    available: bool
    names: list[str] = Field(default_factory=list)


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    livekit: LiveKitHealth
    avatar_service: AvatarServiceHealth
    gpu: GpuInfo
