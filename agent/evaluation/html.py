"""Renders report.html: one self-contained page (inline CSS, inline SVG charts, no scripts, no
network), in the interview's language with UI strings from prompts/rubrics/feedback.{ko,en}.yaml.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from . import resources
from .models import QuestionReport, Report

_CSS = """
:root{--ink:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--card:#fff;--accent:#2563eb;
--good:#15803d;--mid:#b45309;--bad:#b91c1c;--goodbg:#dcfce7;--midbg:#fef3c7;--badbg:#fee2e2}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.6 system-ui,-apple-system,
"Segoe UI","Noto Sans CJK KR","Noto Sans KR","Apple SD Gothic Neo","Malgun Gothic",sans-serif;
word-break:keep-all;overflow-wrap:anywhere}
main{max-width:980px;margin:0 auto;padding:28px 20px 48px}
header{display:flex;justify-content:space-between;align-items:flex-end;gap:16px;flex-wrap:wrap;
margin-bottom:18px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:0 0 12px}h3{font-size:16px;margin:0}
.meta{color:var(--muted);font-size:13px}.meta b{color:var(--ink);font-weight:600}
.badge{display:inline-block;padding:2px 10px;border-radius:999px;background:#e0e7ff;color:#3730a3;
font-size:12px;font-weight:600}
section{background:var(--card);border:1px solid var(--line);border-radius:14px;padding:20px 22px;
margin:16px 0}
.overall{display:flex;gap:24px;align-items:center}
.overall p{margin:0 0 6px}.overall svg{flex:none}.note{color:var(--muted);font-size:13px}
.two{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.two section{margin:0}
ul.plain{margin:0;padding-left:20px}ul.plain li{margin:4px 0}
#strengths h2{color:var(--good)}#improvements h2{color:var(--mid)}
.warn{background:#fffbeb;border-color:#fcd34d}
.warnline{background:#fffbeb;border:1px solid #fcd34d;border-radius:8px;padding:8px 12px}
.tiles{display:grid;grid-template-columns:repeat(5,1fr);gap:10px;margin-bottom:14px}
.tile{border:1px solid var(--line);border-radius:10px;padding:10px 12px}
.tile .v{font-size:22px;font-weight:700}.tile .u{font-size:12px;color:var(--muted)}
.tile .k{font-size:12px;color:var(--muted)}
.charts{display:grid;grid-template-columns:repeat(3,1fr);gap:12px}
.chart{border:1px solid var(--line);border-radius:10px;padding:8px 10px}
.chart h3{font-size:13px;color:var(--muted);font-weight:600;margin-bottom:4px;line-height:1.4}
.chart .band{font-weight:400;font-size:11px;color:var(--good)}
.chips{display:flex;flex-wrap:wrap;gap:6px;margin:8px 0}
.chip{padding:2px 10px;border-radius:999px;background:var(--bg);border:1px solid var(--line);
font-size:13px}
.q{border-top:1px solid var(--line);padding-top:16px;margin-top:16px}
.q:first-of-type{border-top:0;margin-top:0;padding-top:0}
.qhead{display:flex;justify-content:space-between;gap:12px;align-items:baseline}
.qtext{font-weight:600;margin:6px 0}
.kind{font-size:12px;color:var(--muted);border:1px solid var(--line);border-radius:6px;
padding:0 6px;margin-left:6px;font-weight:500}
.scores{display:flex;flex-wrap:wrap;gap:6px;margin:8px 0}
.score{display:inline-flex;gap:6px;align-items:center;border-radius:8px;padding:3px 10px;
font-size:13px;font-weight:600;cursor:help}
.s1,.s2{background:var(--badbg);color:var(--bad)}.s3{background:var(--midbg);color:var(--mid)}
.s4,.s5{background:var(--goodbg);color:var(--good)}
.failed{background:#f3f4f6;color:var(--muted)}
details{margin:6px 0}summary{cursor:pointer;color:var(--accent);font-size:14px}
.answer{white-space:pre-wrap;background:var(--bg);border-radius:8px;padding:10px 12px;margin:6px 0;
font-size:14px}
blockquote{margin:6px 0;padding:4px 12px;border-left:3px solid var(--accent);color:#334155;
background:#f8fafc;font-size:14px}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:14px;margin-top:8px}
.label{font-size:12px;font-weight:700;color:var(--muted);text-transform:uppercase;
letter-spacing:.04em;margin:8px 0 2px}
ol.outline{margin:0;padding-left:20px;font-size:14px}ol.outline li{margin:2px 0}
table.reasons{border-collapse:collapse;font-size:13px;width:100%}
table.reasons td{border-top:1px solid var(--line);padding:4px 6px;vertical-align:top}
table.reasons td:first-child{white-space:nowrap;font-weight:600;width:1%}
.qdeliv{font-size:12px;color:var(--muted);margin-top:8px}
#rubric h3{margin-top:14px}table.anchors td:first-child{text-align:center;width:2.5em}
svg text{font-family:inherit}
@media (max-width:760px){.two,.grid2,.charts{grid-template-columns:1fr}
.tiles{grid-template-columns:repeat(2,1fr)}.overall{flex-direction:column;align-items:flex-start}}
@media print{body{background:#fff}section{break-inside:avoid}}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp


def _chart(
    values: list[float | None],
    labels: list[str],
    *,
    color: str,
    kind: str = "bar",
    band: tuple[float, float] | None = None,
    digits: int = 1,
    aria: str = "",
) -> str:
    """A small inline SVG chart; `band` shades a comfortable range; digits=0 gives whole ticks."""
    w, h, left, bottom, top = 300, 170, 34, 22, 14
    plot_w, plot_h = w - left - 8, h - bottom - top
    present = [v for v in values if v is not None]
    top_value = max([*present, band[1] if band else 0, 0.0001]) * 1.1
    # gridlines at a "nice" step (1, 2, 2.5, 5 x 10^k); counts get whole-number steps
    tick = float(max(1, math.ceil(top_value / 4))) if digits == 0 else _nice_max(top_value / 4)
    ticks = max(1, math.ceil(top_value / tick))
    vmax = tick * ticks
    n = max(1, len(values))
    step = plot_w / n

    def y(v: float) -> float:
        return top + plot_h - (v / vmax) * plot_h

    parts = [f'<svg viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="{_e(aria)}">']
    if band:
        parts.append(
            f'<rect x="{left}" y="{y(band[1]):.1f}" width="{plot_w}" '
            f'height="{y(band[0]) - y(band[1]):.1f}" fill="#dcfce7" opacity="0.7"/>'
        )
    for i in range(ticks + 1):
        gv = tick * i
        gy = y(gv)
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{gy:.1f}" y2="{gy:.1f}" '
            f'stroke="#e4e7eb" stroke-width="1"/>'
            f'<text x="{left - 4}" y="{gy + 3:.1f}" font-size="9" fill="#616e7c" '
            f'text-anchor="end">{_num(gv, 0 if gv == int(gv) else 1)}</text>'
        )
    points = []
    for i, (v, label) in enumerate(zip(values, labels, strict=True)):
        cx = left + step * (i + 0.5)
        parts.append(
            f'<text x="{cx:.1f}" y="{h - 6}" font-size="10" fill="#616e7c" '
            f'text-anchor="middle">{_e(label)}</text>'
        )
        if v is None:
            continue
        if kind == "bar":
            bw = min(34.0, step * 0.6)
            parts.append(
                f'<rect x="{cx - bw / 2:.1f}" y="{y(v):.1f}" width="{bw:.1f}" '
                f'height="{max(0.0, y(0) - y(v)):.1f}" rx="3" fill="{color}"/>'
            )
        else:
            points.append((cx, y(v)))
        parts.append(
            f'<text x="{cx:.1f}" y="{y(v) - 4:.1f}" font-size="10" font-weight="600" '
            f'fill="#1f2933" text-anchor="middle">{_num(v, digits)}</text>'
        )
    if points:
        path = " ".join(f"{x:.1f},{yy:.1f}" for x, yy in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts.extend(
            f'<circle cx="{x:.1f}" cy="{yy:.1f}" r="3.5" fill="{color}"/>' for x, yy in points
        )
    parts.append(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#9aa5b1"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _ring(score: float | None) -> str:
    r, c = 46, 2 * math.pi * 46
    frac = 0.0 if score is None else max(0.0, min(1.0, score / 5))
    color = (
        "#9aa5b1"
        if score is None
        else "#15803d"
        if score >= 4
        else ("#b45309" if score >= 3 else "#b91c1c")
    )
    return (
        f'<svg viewBox="0 0 110 110" width="120" height="120" role="img" aria-label="score">'
        f'<circle cx="55" cy="55" r="{r}" fill="none" stroke="#e4e7eb" stroke-width="10"/>'
        f'<circle cx="55" cy="55" r="{r}" fill="none" stroke="{color}" stroke-width="10" '
        f'stroke-linecap="round" stroke-dasharray="{c * frac:.1f} {c:.1f}" '
        f'transform="rotate(-90 55 55)"/>'
        f'<text x="55" y="60" font-size="26" font-weight="700" text-anchor="middle" '
        f'fill="#1f2933">{_num(score)}</text>'
        f'<text x="55" y="78" font-size="11" text-anchor="middle" fill="#616e7c">/ 5</text></svg>'
    )


def _list(items: list[str]) -> str:
    return '<ul class="plain">' + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>"


def _question(q: QuestionReport, report: Report, ui: dict[str, Any]) -> str:
    unit = ui[f"unit_{report.delivery.speaking_rate_unit}"]
    out = [f'<article class="q" id="q{q.index + 1}">']
    out.append(
        f'<div class="qhead"><h3>{_e(ui["question"])} {q.index + 1}'
        f'<span class="kind">{_e(ui["kind"][q.kind])}</span></h3></div>'
    )
    out.append(f'<p class="qtext">{_e(q.question) or "–"}</p>')
    out.append('<div class="scores">')
    if q.status == "failed":
        out.append(
            f'<span class="score failed" title="{_e(q.error or "")}">{_e(ui["failed"])}</span>'
        )
    for name, score in q.scores.items():
        label = report.criteria_labels.get(name, name)
        out.append(
            f'<span class="score s{score}" title="{_e(q.reasons.get(name, ""))}">'
            f"{_e(label)} {score}</span>"
        )
    out.append("</div>")
    out.append(
        f"<details><summary>{_e(ui['answer'])}</summary>"
        f'<div class="answer">{_e(q.answer)}</div></details>'
    )
    if q.status == "failed":
        out.append(f'<p class="note">{_e(q.error or "")}</p>')
    if q.feedback:
        out.append(
            f'<div class="label">{_e(ui["feedback"])}</div><p style="margin:0">{_e(q.feedback)}</p>'
        )
    if q.reasons:
        rows = "".join(
            f"<tr><td>{_e(report.criteria_labels.get(n, n))} {q.scores[n]}</td>"
            f"<td>{_e(r)}</td></tr>"
            for n, r in q.reasons.items()
        )
        out.append(f'<table class="reasons">{rows}</table>')
    left = ""
    if q.evidence:
        left = f'<div class="label">{_e(ui["evidence"])}</div>' + "".join(
            f"<blockquote>“{_e(ev)}”</blockquote>" for ev in q.evidence[:4]
        )
    right = ""
    if q.better_answer_outline:
        right = (
            f'<div class="label">{_e(ui["outline"])}</div><ol class="outline">'
            + "".join(f"<li>{_e(line)}</li>" for line in q.better_answer_outline)
            + "</ol>"
        )
    if left or right:
        out.append(f'<div class="grid2"><div>{left}</div><div>{right}</div></div>')
    d = q.delivery
    fillers = ", ".join(f"{k} ×{v}" for k, v in d.fillers.items()) or ui["no_fillers"]
    parts = []
    if report.delivery.timed:
        parts = [
            f"{ui['duration']} {_num(d.duration_s)}{ui['seconds']}",
            f"{ui['latency']} {_num(d.response_latency_s)}{ui['seconds']}",
            f"{ui['speaking_rate']} {_num(d.speaking_rate)} {unit}",
        ]
        if d.long_pauses:
            longest = max(d.pauses_s)
            parts.append(ui["q_long_pauses"].format(n=d.long_pauses, longest=_num(longest)))
    parts.append(f"{ui['filler_counts']}: {fillers}")
    out.append(f'<div class="qdeliv">{_e(" · ".join(parts))}</div>')
    out.append("</article>")
    return "".join(out)


def _rubric(report: Report, ui: dict[str, Any]) -> str:
    """The behaviourally anchored scales the scores refer to, from prompts/rubrics/."""
    criteria = resources.rubric(report.language)["criteria"]
    rows = []
    for spec in criteria.values():
        anchors = "".join(
            f'<tr><td class="s{n}">{n}</td><td>{_e(text)}</td></tr>'
            for n, text in sorted(spec["anchors"].items(), reverse=True)
        )
        rows.append(
            f'<h3>{_e(spec["label"])}</h3><p class="note">{_e(spec["description"])}</p>'
            f'<table class="reasons anchors">{anchors}</table>'
        )
    return (
        f'<section id="rubric"><details><summary>{_e(ui["rubric"])}</summary>'
        f"{''.join(rows)}</details></section>"
    )


def render_html(report: Report) -> str:
    texts = resources.feedback(report.language)
    ui: dict[str, Any] = texts["ui"]
    th = texts["thresholds"]
    d = report.delivery
    unit = ui[f"unit_{d.speaking_rate_unit}"]
    assessor = ui["assessor_heuristic"] if report.assessor == "heuristic" else report.assessor
    meta = []
    if report.candidate_name:
        meta.append(f"{_e(ui['candidate'])} <b>{_e(report.candidate_name)}</b>")
    if report.role:
        meta.append(f"{_e(ui['role'])} <b>{_e(report.role)}</b>")
    meta.append(f"{_e(ui['interview'])} <b>{_e(report.interview_id)}</b>")
    generated = report.generated_at.replace("T", " ").replace("+00:00", " UTC")
    meta.append(f"{_e(ui['generated'])} {_e(generated)}")

    labels = [f"{ui['answer_short']}{q.index + 1}" for q in report.questions]
    rates = [q.delivery.speaking_rate for q in report.questions]
    fillers = [float(q.delivery.filler_total) for q in report.questions]
    latencies = [
        None if q.delivery.response_latency_s is None else max(0.0, q.delivery.response_latency_s)
        for q in report.questions
    ]
    digits = 1 if d.speaking_rate_unit == "syllables_per_second" else 0
    charts = (
        f'<div class="chart"><h3>{_e(ui["chart_rate"])} ({_e(unit)})'
        f'<br><span class="band">{_e(ui["band_rate"])}</span></h3>'
        + _chart(
            rates,
            labels,
            color="#2563eb",
            kind="line",
            band=(th["rate_slow"], th["rate_fast"]),
            digits=digits,
            aria=ui["chart_rate"],
        )
        + f'</div><div class="chart"><h3>{_e(ui["chart_fillers"])}</h3>'
        + _chart(fillers, labels, color="#d97706", digits=0, aria=ui["chart_fillers"])
        + f'</div><div class="chart"><h3>{_e(ui["chart_latency"])}'
        f'<br><span class="band">{_e(ui["band_latency"])}</span></h3>'
        + _chart(
            latencies,
            labels,
            color="#7c3aed",
            band=(0, th["latency_good_s"]),
            aria=ui["chart_latency"],
        )
        + "</div>"
    )
    tiles = [
        (ui["speaking_rate"], _num(d.speaking_rate, digits), unit),
        (ui["articulation_rate"], _num(d.articulation_rate, digits), unit),
        (ui["fillers_per_minute"], _num(d.fillers_per_minute), ""),
        (
            ui["long_pauses"].format(threshold=_num(d.long_pause_threshold_s)),
            str(d.long_pauses),
            "",
        ),
        (ui["mean_latency"], _num(d.mean_response_latency_s), ui["seconds"]),
    ]
    tile_html = "".join(
        f'<div class="tile"><div class="k">{_e(k)}</div><div class="v">{_e(v)}'
        f'<span class="u"> {_e(u)}</span></div></div>'
        for k, v, u in tiles
    )
    filler_chips = (
        "".join(f'<span class="chip">{_e(k)} ×{v}</span>' for k, v in d.filler_counts.items())
        or f'<span class="chip">{_e(ui["no_fillers"])}</span>'
    )

    charts_html = (
        f'<div class="charts">{charts}</div>'
        if d.timed
        else f'<p class="warnline">{_e(ui["untimed_note"])}</p>'
    )
    fair = ""
    if report.fair_hiring:
        texts_imp = texts["improvements"]["protected"]
        labels_all = ", ".join(dict.fromkeys(m.label for m in report.fair_hiring))
        by_quote: dict[tuple[int, str], list[str]] = {}
        for m in report.fair_hiring:
            by_quote.setdefault((m.question_index, m.quote), []).append(m.label)
        quotes = "".join(
            f"<blockquote>{_e(ui['answer_short'])}{qi + 1}: “{_e(quote)}” "
            f'<span class="note">— {_e(", ".join(labels))}</span></blockquote>'
            for (qi, quote), labels in by_quote.items()
        )
        fair = (
            f'<section id="fair-hiring" class="warn"><h2>{_e(ui["fair_hiring"])}</h2>'
            f"<p>{_e(texts_imp.format(labels=labels_all))}</p>{quotes}</section>"
        )

    body = f"""<main>
<header><div><h1>{_e(ui["title"])}</h1><div class="meta">{" · ".join(meta)}</div></div>
<span class="badge" title="{_e(ui["assessor"])}">{_e(assessor)}</span></header>
<section id="overall"><h2>{_e(ui["overall"])}</h2><div class="overall">{_ring(report.overall.score)}
<div><p>{_e(report.overall.summary)}</p><p class="note">{_e(ui["scale_note"])}</p></div></div>
</section>
<div class="two"><section id="strengths"><h2>{_e(ui["strengths"])}</h2>
{_list(report.overall.strengths)}</section>
<section id="improvements"><h2>{_e(ui["improvements"])}</h2>
{_list(report.overall.improvements)}</section></div>
{fair}
<section id="delivery"><h2>{_e(ui["delivery"])}</h2><div class="tiles">{tile_html}</div>
<div class="label">{_e(ui["filler_counts"])}</div><div class="chips">{filler_chips}</div>
{charts_html}
<p class="note">{_e(ui["method"])}: {_e(d.method)}</p></section>
<section id="questions"><h2>{_e(ui["questions"])}</h2>
{"".join(_question(q, report, ui) for q in report.questions)}</section>
{_rubric(report, ui)}
</main>"""
    return (
        f'<!doctype html>\n<html lang="{report.language}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(ui['title'])} · {_e(report.interview_id)}</title>"
        f"<style>{_CSS}</style></head><body>{body}</body></html>\n"
    )
