"""Pydantic models of the evaluation: per-answer assessments and report.json.

report.json follows the DESIGN.md contract (interview_id, language, assessor, overall,
questions[].{question, answer, scores, feedback, evidence}, delivery.{…}); every other field
here is an extension that the contract allows.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

# greeting (small talk) and closing ("Do you have any questions for us?"): nothing to score.
QuestionKind = Literal["behavioral", "technical", "general", "greeting", "closing"]
AssessmentStatus = Literal["ok", "failed", "not_scored"]
RateUnit = Literal["syllables_per_second", "words_per_minute"]


class CriterionResult(BaseModel):
    score: int = Field(ge=1, le=5)
    reason: str
    evidence: list[str] = Field(default_factory=list)


class AnswerAssessment(BaseModel):
    """What one assessor concluded about one answer (never invented: failed means no scores)."""

    question: str
    answer: str
    kind: QuestionKind
    assessor: str
    status: AssessmentStatus = "ok"
    error: str | None = None
    criteria: dict[str, CriterionResult] = Field(default_factory=dict)
    feedback: str = ""
    better_answer_outline: list[str] = Field(default_factory=list)

    @property
    def mean_score(self) -> float | None:
        if not self.criteria:
            return None
        return sum(c.score for c in self.criteria.values()) / len(self.criteria)


class AnswerDelivery(BaseModel):
    start: float
    end: float
    duration_s: float
    speech_s: float = Field(description="answer span minus the measured pauses")
    response_latency_s: float | None
    units: int = Field(description="Hangul syllables (ko) or words (en)")
    speaking_rate: float | None
    articulation_rate: float | None
    fillers: dict[str, int] = Field(default_factory=dict)
    filler_total: int = 0
    fillers_per_minute: float | None = None
    long_pauses: int = 0
    pauses_s: list[float] = Field(default_factory=list)
    word_timed: bool = Field(
        default=False, description="pauses inside segments measured from word timings"
    )


class Delivery(BaseModel):
    timed: bool = Field(
        default=True,
        description="false when the transcript has no speech timings (a text rehearsal): then "
        "rates, pauses and latency are not measured",
    )
    word_timed: bool = Field(
        default=False,
        description="every answer had word timings, so pauses inside segments were measured",
    )
    speaking_rate: float | None
    speaking_rate_unit: RateUnit
    articulation_rate: float | None = None
    fillers_per_minute: float | None
    filler_counts: dict[str, int]
    long_pauses: int
    long_pause_threshold_s: float
    mean_response_latency_s: float | None
    answer_durations_s: list[float]
    total_answer_time_s: float
    total_speech_s: float
    method: str = Field(description="how rates and pauses were measured from the transcript")


class ProtectedMention(BaseModel):
    category: str
    label: str
    quote: str
    question_index: int
    advice: str


class QuestionReport(BaseModel):
    index: int
    question: str
    answer: str
    kind: QuestionKind
    status: AssessmentStatus
    error: str | None = None
    scores: dict[str, int]
    reasons: dict[str, str]
    feedback: str
    evidence: list[str]
    evidence_by_criterion: dict[str, list[str]]
    better_answer_outline: list[str]
    delivery: AnswerDelivery


class Overall(BaseModel):
    score: float | None = Field(description="1-5, mean over assessed answers; null if none")
    summary: str
    strengths: list[str]
    improvements: list[str]


class Report(BaseModel):
    interview_id: str
    language: Literal["ko", "en"]
    assessor: str
    generated_at: str
    candidate_name: str | None = None
    role: str | None = None
    overall: Overall
    questions: list[QuestionReport]
    delivery: Delivery
    fair_hiring: list[ProtectedMention] = Field(default_factory=list)
    criteria_labels: dict[str, str] = Field(default_factory=dict)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)
