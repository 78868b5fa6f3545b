"""Builds the interview report (report.json + report.html) from a transcript.

Per answer: an assessment (reused from the live AnswerAssessor when it matches, else made now by
the LLM judge or the heuristic) and delivery metrics; overall: mean score, delivery totals,
strengths and improvements worded from prompts/rubrics/feedback.{ko,en}.yaml, and the
fair-hiring advice.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from livekit.agents import llm as lk_llm

from agent.transcript import Transcript

from . import resources
from .assessor import AnswerAssessor, answer_key, not_scored
from .delivery import DEFAULT_OPTIONS, DeliveryOptions, answer_delivery, overall_delivery
from .exchanges import Exchange, split_exchanges
from .fair_hiring import find_mentions
from .fillers import FillerDetector
from .heuristic import HeuristicAssessor, classify_question
from .html import render_html
from .judge import describe_position
from .models import (
    AnswerAssessment,
    AnswerDelivery,
    Delivery,
    Overall,
    ProtectedMention,
    QuestionReport,
    Report,
)
from .resources import Language

logger = logging.getLogger("interview.evaluation")

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"


def interview_language(transcript: Transcript) -> Language:
    """The config's language; for a config without one, the script the candidate spoke in."""
    lang = transcript.config.get("language")
    if lang in ("ko", "en"):
        return lang
    text = " ".join(t.text for t in transcript.turns)
    hangul = len(re.findall(r"[\uac00-\ud7a3]", text))
    latin = len(re.findall(r"[A-Za-z]", text))
    return "ko" if hangul >= latin / 3 and hangul > 0 else "en" if latin else "ko"


async def generate_report_async(
    transcript: Transcript,
    out_dir: Path,
    *,
    llm: lk_llm.LLM | None = None,
    assessor: AnswerAssessor | None = None,
    reuse: Sequence[AnswerAssessment] = (),
    options: DeliveryOptions = DEFAULT_OPTIONS,
) -> Report:
    """Assess every answer and write the report, reusing the matching assessments made during
    the interview: `assessor`'s background results and/or `reuse`."""
    language = interview_language(transcript)
    interview_type = str(transcript.config.get("interview_type", "mixed"))
    exchanges = split_exchanges(transcript)
    earlier = list(reuse) + (await assessor.results() if assessor is not None else [])
    fresh = AnswerAssessor(
        language,
        llm=llm,
        interview_type=interview_type,
        position=describe_position(transcript.config),
    )
    done = _reusable(earlier, fresh.name)

    async def one(ex: Exchange) -> AnswerAssessment:
        reused = done.get(answer_key(ex.question, ex.answer))
        if reused is not None:
            return reused
        kind = fresh.classify(ex.question, ex.question_meta)
        return await fresh.assess(ex.question, ex.answer, kind)

    assessments = list(await asyncio.gather(*(one(ex) for ex in exchanges)))
    _log_reuse(transcript, exchanges, done)
    report = build_report(transcript, exchanges, assessments, fresh.name, language, options)
    write_report(report, out_dir)
    return report


def _reusable(
    assessments: Iterable[AnswerAssessment], assessor_name: str
) -> dict[tuple[str, str], AnswerAssessment]:
    """Earlier assessments the report may keep: made by the same assessor as the report's (a
    heuristic one is not kept in an LLM-judged report) and not failed."""
    done: dict[tuple[str, str], AnswerAssessment] = {}
    for a in assessments:
        if a.status in ("ok", "not_scored") and a.assessor == assessor_name:
            done.setdefault(answer_key(a.question, a.answer), a)
    return done


def _log_reuse(
    transcript: Transcript,
    exchanges: list[Exchange],
    done: dict[tuple[str, str], AnswerAssessment],
) -> None:
    reused = sum(answer_key(ex.question, ex.answer) in done for ex in exchanges)
    logger.info(
        "answers assessed during the interview reused",
        extra={"interview": transcript.interview_id, "reused": reused, "answers": len(exchanges)},
    )


def generate_report(
    transcript: Transcript,
    out_dir: Path,
    *,
    llm: lk_llm.LLM | None = None,
    reuse: Sequence[AnswerAssessment] = (),
    options: DeliveryOptions = DEFAULT_OPTIONS,
) -> Report:
    """Synchronous form for scripts and the CLI (`reuse`: assessments made during the interview).

    Without an LLM it works anywhere (the heuristic needs no event loop); with one it runs the
    judge in its own event loop, so inside a running loop use generate_report_async instead.
    """
    if llm is not None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(
                generate_report_async(transcript, out_dir, llm=llm, reuse=reuse, options=options)
            )
        raise RuntimeError(
            "generate_report(llm=...) called inside an event loop; await generate_report_async()"
        )
    language = interview_language(transcript)
    heuristic = HeuristicAssessor(language)
    interview_type = str(transcript.config.get("interview_type", "mixed"))
    exchanges = split_exchanges(transcript)
    done = _reusable(reuse, heuristic.name)
    assessments = []
    for ex in exchanges:
        reused = done.get(answer_key(ex.question, ex.answer))
        if reused is not None:
            assessments.append(reused)
            continue
        kind = classify_question(ex.question, language, interview_type, ex.question_meta)
        assessments.append(
            not_scored(ex.question, ex.answer, kind, heuristic.name, language)
            if not heuristic.criteria_for(kind)
            else heuristic.assess(ex.question, ex.answer, kind)
        )
    if reuse:
        _log_reuse(transcript, exchanges, done)
    report = build_report(transcript, exchanges, assessments, heuristic.name, language, options)
    write_report(report, out_dir)
    return report


def write_report(report: Report, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, content in ((REPORT_JSON, report.to_json()), (REPORT_HTML, render_html(report))):
        tmp = out_dir / (name + ".tmp")
        tmp.write_text(content, encoding="utf-8")
        tmp.replace(out_dir / name)
    logger.info(
        "report written",
        extra={
            "interview_id": report.interview_id,
            "out_dir": str(out_dir),
            "assessor": report.assessor,
        },
    )


def build_report(
    transcript: Transcript,
    exchanges: list[Exchange],
    assessments: list[AnswerAssessment],
    assessor_name: str,
    language: Language,
    options: DeliveryOptions = DEFAULT_OPTIONS,
) -> Report:
    detector = FillerDetector(language)
    deliveries = [answer_delivery(ex, language, detector, options) for ex in exchanges]
    delivery = overall_delivery(deliveries, language, options)
    method_key = "delivery_method_words" if delivery.word_timed else "delivery_method"
    delivery.method = resources.feedback(language)[method_key]
    rubric = resources.rubric(language)["criteria"]
    texts = resources.feedback(language)
    labels = {name: spec["label"] for name, spec in rubric.items()}

    questions = [
        _question_report(ex, a, d)
        for ex, a, d in zip(exchanges, assessments, deliveries, strict=True)
    ]
    mentions = [
        ProtectedMention(
            category=m.category,
            label=m.label,
            quote=m.quote,
            question_index=ex.index,
            advice=texts["improvements"]["protected"].format(labels=m.label),
        )
        for ex in exchanges
        for m in find_mentions(ex.answer, language)
    ]
    overall = _overall(assessments, delivery, mentions, labels, texts, assessor_name, language)
    return Report(
        interview_id=transcript.interview_id,
        language=language,
        assessor=assessor_name,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        candidate_name=_str_or_none(transcript.config.get("candidate_name")),
        role=_str_or_none(transcript.config.get("role")),
        overall=overall,
        questions=questions,
        delivery=delivery,
        fair_hiring=mentions,
        criteria_labels=labels,
    )


def _str_or_none(value: Any) -> str | None:
    return str(value) if value else None


def _question_report(ex: Exchange, a: AnswerAssessment, d: AnswerDelivery) -> QuestionReport:
    evidence: list[str] = []
    for c in a.criteria.values():
        evidence.extend(q for q in c.evidence if q not in evidence)
    return QuestionReport(
        index=ex.index,
        question=ex.question,
        answer=ex.answer,
        kind=a.kind,
        status=a.status,
        error=a.error,
        scores={n: c.score for n, c in a.criteria.items()},
        reasons={n: c.reason for n, c in a.criteria.items()},
        feedback=a.feedback,
        evidence=evidence,
        evidence_by_criterion={n: c.evidence for n, c in a.criteria.items()},
        better_answer_outline=a.better_answer_outline,
        delivery=d,
    )


def _overall(
    assessments: list[AnswerAssessment],
    delivery: Delivery,
    mentions: list[ProtectedMention],
    labels: dict[str, str],
    texts: dict[str, Any],
    assessor_name: str,
    language: Language,
) -> Overall:
    ok = [a for a in assessments if a.status == "ok" and a.criteria]
    failed = sum(1 for a in assessments if a.status == "failed")
    ui = texts["ui"]
    unit = ui[f"unit_{delivery.speaking_rate_unit}"]
    per_criterion: dict[str, list[int]] = {}
    for a in ok:
        for name, c in a.criteria.items():
            per_criterion.setdefault(name, []).append(c.score)
    averages = {n: sum(v) / len(v) for n, v in per_criterion.items()}
    ranked = sorted(averages, key=lambda n: -averages[n])
    score = None
    if ok:
        score = round(sum(a.mean_score or 0 for a in ok) / len(ok), 1)

    summary_t = texts["summary"]
    if not assessments:
        summary = summary_t["no_answers"]
    elif not ok and not failed:
        summary = summary_t["nothing_scored"]
    elif not ok:
        summary = summary_t["all_failed"].format(failed=failed)
    else:
        template = summary_t["scored"] if delivery.timed else summary_t["scored_untimed"]
        summary = template.format(
            answered=len(ok),
            score=score,
            assessor=ui["assessor_heuristic_short"]
            if assessor_name == "heuristic"
            else assessor_name,
            best=labels.get(ranked[0], ranked[0]),
            worst=labels.get(ranked[-1], ranked[-1]),
            rate=_fmt(delivery.speaking_rate),
            unit=unit,
            fpm=_fmt(delivery.fillers_per_minute),
            latency=_fmt(delivery.mean_response_latency_s),
        )
        if assessor_name == "heuristic":
            summary += " " + summary_t["heuristic_note"]
        if failed:
            summary += " " + summary_t["failed_note"].format(failed=failed)

    th = texts["thresholds"]
    st, im = texts["strengths"], texts["improvements"]
    strengths: list[str] = []
    improvements: list[str] = []
    for name in ranked:
        if averages[name] >= 4:
            strengths.append(
                st["criterion"].format(label=labels.get(name, name), avg=averages[name])
            )
    for name in reversed(ranked):
        if averages[name] <= 3:
            improvements.append(
                im["criterion"].format(
                    label=labels.get(name, name), avg=averages[name], tip=im["criterion_tips"][name]
                )
            )
    fpm, rate, lat = (
        delivery.fillers_per_minute,
        delivery.speaking_rate,
        delivery.mean_response_latency_s,
    )
    if not delivery.timed:
        # without timings a filler count has no rate, and silence cannot be seen
        fpm = rate = lat = None
    if fpm is not None:
        if fpm >= th["fillers_per_minute_high"]:
            top = ", ".join(f"“{k}” ×{v}" for k, v in list(delivery.filler_counts.items())[:3])
            improvements.append(im["fillers_high"].format(fpm=_fmt(fpm), top=top))
        elif fpm <= th["fillers_per_minute_low"]:
            strengths.append(st["fillers_low"].format(fpm=_fmt(fpm)))
    if rate is not None:
        if rate > th["rate_fast"]:
            improvements.append(im["rate_fast"].format(rate=_fmt(rate), unit=unit))
        elif rate < th["rate_slow"]:
            improvements.append(im["rate_slow"].format(rate=_fmt(rate), unit=unit))
        else:
            strengths.append(st["rate_good"].format(rate=_fmt(rate), unit=unit))
    if delivery.long_pauses:
        improvements.append(
            im["long_pauses"].format(
                n=delivery.long_pauses, threshold=_fmt(delivery.long_pause_threshold_s)
            )
        )
    elif assessments and delivery.timed:
        strengths.append(st["no_long_pauses"])
    if lat is not None:
        if lat >= th["latency_slow_s"]:
            improvements.append(im["latency_slow"].format(latency=_fmt(lat)))
        elif lat <= th["latency_good_s"]:
            strengths.append(st["latency_good"].format(latency=_fmt(lat)))
    if mentions:
        names = list(dict.fromkeys(m.label for m in mentions))
        improvements.append(im["protected"].format(labels=", ".join(names)))
    if ok and not strengths and ranked:
        # there is always something to keep: the best criterion, even if modest
        name = ranked[0]
        strengths.append(
            st["criterion_best"].format(label=labels.get(name, name), avg=averages[name])
        )
    if ok and not improvements and ranked:
        # there is always a next step: the weakest criterion
        name = ranked[-1]
        improvements.append(
            im["criterion"].format(
                label=labels.get(name, name), avg=averages[name], tip=im["criterion_tips"][name]
            )
        )
    return Overall(score=score, summary=summary, strengths=strengths, improvements=improvements)


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if abs(value) < 100 else f"{value:.0f}"
