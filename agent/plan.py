"""Builds the interview plan: the stages and the questions of one interview, from prompts/.

The plan is tailored by the config (role, seniority, difficulty, persona, interview type,
duration, resume, job description) and is the same whichever LLM runs the interview: an OpenAI
model phrases its questions, the offline scripted interviewer reads them as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from .config import InterviewConfig
from .prompts import interviewer_prompts, question_bank

StageName = Literal[
    "greeting", "introduction", "experience", "role", "candidate_questions", "closing"
]
STAGE_ORDER: tuple[StageName, ...] = (
    "greeting",
    "introduction",
    "experience",
    "role",
    "candidate_questions",
    "closing",
)
QuestionKind = Literal[
    "consent", "introduction", "experience", "technical", "behavioral", "candidate_questions"
]

# Seconds kept free at the end for the candidate's questions and the closing.
WRAP_UP_RESERVE_S = 75.0


@dataclass(frozen=True)
class Question:
    id: str
    kind: QuestionKind
    text: str
    alt: str | None = None


@dataclass(frozen=True)
class StagePlan:
    name: StageName
    title: str
    instructions: str
    intro_line: str
    questions: tuple[Question, ...]


@dataclass(frozen=True)
class InterviewPlan:
    config: InterviewConfig
    stages: tuple[StagePlan, ...]
    system_prompt: str
    prompts: dict[str, Any] = field(repr=False)

    @property
    def language(self) -> str:
        return self.config.language

    def stage(self, name: StageName) -> StagePlan:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    def next_stage(self, name: StageName) -> StageName | None:
        names = [s.name for s in self.stages]
        i = names.index(name)
        return names[i + 1] if i + 1 < len(names) else None

    def all_questions(self) -> list[Question]:
        return [q for s in self.stages for q in s.questions]

    def line(self, key: str, **extra: str) -> str:
        return _fill(self.prompts["lines"][key], self.config, **extra)

    def directive(self, key: str, question: str = "") -> str:
        return self.prompts["directives"][key].format(question=question)


def _fill(template: str, config: InterviewConfig, **extra: str) -> str:
    return template.format(candidate_name=config.candidate_name, role=config.role, **extra)


def _role_groups(role: str, bank: dict[str, Any]) -> set[str]:
    lowered = role.lower()
    return {
        g for g, words in bank["role_groups"].items() if any(w.lower() in lowered for w in words)
    }


def _fits(q: dict[str, Any], config: InterviewConfig, *, strict: bool) -> bool:
    if "level" in q and config.seniority not in q["level"]:
        return False
    return not (strict and "difficulty" in q and config.difficulty not in q["difficulty"])


def _pick(
    items: list[dict[str, Any]], config: InterviewConfig, groups: set[str], n: int
) -> list[dict[str, Any]]:
    """Role-specific questions first, then general ones; relax difficulty if short."""
    if n <= 0:
        return []
    chosen: list[dict[str, Any]] = []

    def rank(q: dict[str, Any]) -> int:
        # questions written for this role, or aimed at this seniority, come first
        role_match = bool(set(q.get("roles", [])) & groups)
        targeted = config.seniority in q.get("level", []) and len(q["level"]) <= 2
        return -(2 * role_match + targeted)

    ordered = sorted((q for q in items if not q.get("roles") or set(q["roles"]) & groups), key=rank)
    for strict in (True, False):
        for q in ordered:
            if q not in chosen and _fits(q, config, strict=strict):
                chosen.append(q)
            if len(chosen) == n:
                return chosen
    return chosen


_SENTENCE_SPLIT = re.compile(r"[\n.!?。•·]+|\s-\s")


def resume_snippet(resume: str) -> str | None:
    """A short, quotable phrase from the resume to build an experience question on."""
    for raw in _SENTENCE_SPLIT.split(resume):
        s = raw.strip(" -*,")
        if len(s) >= 8:
            if len(s) > 50:
                s = s[:50].rsplit(" ", 1)[0]
            return s
    return None


# capitalised words that start job-description sentences but are not skills
_STOP = {
    "we",
    "you",
    "the",
    "our",
    "and",
    "for",
    "with",
    "this",
    "are",
    "will",
    "a",
    "an",
    "as",
    "in",
    "join",
    "experience",
    "responsibilities",
    "requirements",
    "qualifications",
    "preferred",
    "must",
    "nice",
    "strong",
    "ability",
    "knowledge",
    "familiarity",
    "what",
    "who",
    "about",
    "team",
    "role",
    "work",
    "build",
    "help",
    "bonus",
    "plus",
    "required",
    "good",
    "excellent",
}
_TECH_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9+#.]*[A-Za-z0-9+#]")


def jd_keyword(job_description: str) -> str | None:
    """The first technical-looking term in a job description: a capitalised Latin word
    (Django, PostgreSQL) before a plain acronym (APIs, SQL)."""
    names: list[str] = []
    acronyms: list[str] = []
    for sentence in _SENTENCE_SPLIT.split(job_description):
        for tok in _TECH_TOKEN.findall(sentence):
            if tok.lower() in _STOP or not any(c.isupper() for c in tok):
                continue
            upper = sum(c.isupper() for c in tok)
            (acronyms if upper >= len(tok) - 1 else names).append(tok)
    return (names or acronyms or [None])[0]


def _counts(config: InterviewConfig) -> tuple[int, int]:
    """(experience questions, role questions) that fit the duration."""
    d = config.duration_minutes
    experience = 1 if d < 10 else 2 if d < 30 else 3
    role = max(1, min(10, int((d - 4) / 1.6)))
    return experience, role


def build_plan(config: InterviewConfig) -> InterviewPlan:
    prompts = interviewer_prompts(config.language)
    bank = question_bank(config.language)
    groups = _role_groups(config.role, bank)
    n_exp, n_role = _counts(config)

    experience: list[Question] = []
    if config.resume_text and (snippet := resume_snippet(config.resume_text)):
        experience.append(
            Question(
                "experience-resume",
                "experience",
                bank["experience"]["resume"].format(snippet=snippet),
            )
        )
    if config.job_description and (kw := jd_keyword(config.job_description)):
        experience.append(
            Question(
                "experience-jd",
                "experience",
                bank["experience"]["job_description"].format(keyword=kw),
            )
        )
    for i, q in enumerate(bank["experience"]["generic"]):
        if len(experience) >= n_exp:
            break
        experience.append(Question(f"experience-{i}", "experience", q["text"], q.get("alt")))
    experience = experience[: max(n_exp, min(len(experience), n_exp + 1))]

    if config.interview_type == "technical":
        n_tech, n_beh = n_role, 0
    elif config.interview_type == "behavioral":
        n_tech, n_beh = 0, n_role
    else:
        n_tech = (n_role + 1) // 2
        n_beh = n_role - n_tech
    technical = _pick(bank["technical"], config, groups, n_tech)
    behavioral = _pick(bank["behavioral"], config, groups, n_beh)
    role_questions: list[Question] = []
    # mixed interviews alternate, so a short interview still gets both kinds
    for i in range(max(len(technical), len(behavioral))):
        if i < len(technical):
            t = technical[i]
            role_questions.append(Question(f"technical-{i}", "technical", t["text"], t.get("alt")))
        if i < len(behavioral):
            b = behavioral[i]
            role_questions.append(
                Question(f"behavioral-{i}", "behavioral", b["text"], b.get("alt"))
            )

    stage_prompts = prompts["stages"]
    intro_lines = prompts["lines"]["stage_intro"]

    def stage(name: StageName, questions: list[Question]) -> StagePlan:
        return StagePlan(
            name=name,
            title=stage_prompts[name]["title"],
            instructions=stage_prompts[name]["instructions"],
            intro_line=intro_lines.get(name, ""),
            questions=tuple(questions),
        )

    intro = bank["introduction"][0]
    cq = bank["candidate_questions"][0]
    stages = (
        stage(
            "greeting",
            [Question("consent", "consent", _fill(prompts["lines"]["greeting"], config))],
        ),
        stage(
            "introduction",
            [Question("introduction", "introduction", intro["text"], intro.get("alt"))],
        ),
        stage("experience", experience),
        stage("role", role_questions),
        stage(
            "candidate_questions",
            [Question("candidate-questions", "candidate_questions", cq["text"])],
        ),
        stage("closing", []),
    )
    return InterviewPlan(
        config=config, stages=stages, system_prompt=_system_prompt(config, prompts), prompts=prompts
    )


def _system_prompt(config: InterviewConfig, prompts: dict[str, Any]) -> str:
    resume_hint = (
        prompts["resume_hint"].format(resume=config.resume_text[:2000])
        if config.resume_text
        else ""
    )
    jd_hint = (
        prompts["jd_hint"].format(job_description=config.job_description[:2000])
        if config.job_description
        else ""
    )
    return (
        prompts["system"]
        .format(
            company_hint="",
            role=config.role,
            candidate_name=config.candidate_name,
            seniority=config.seniority,
            difficulty=config.difficulty,
            persona_style=prompts["persona"][config.persona]["style"],
            resume_hint=resume_hint,
            jd_hint=jd_hint,
        )
        .strip()
    )
