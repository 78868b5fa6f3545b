// Report page: overall score, strengths and improvements, delivery figures, charts, and each
// question with its scores, feedback and evidence. Waits while the report is being written.
// Its link carries the session's key in the fragment (/report/<id>#key=...), which the browser
// never sends: the page reads it there (or from this tab's booking) and sends it as a header.
import { useEffect, useMemo, useState } from "react";
import {
  ApiError,
  api,
  keyFromFragment,
  loadSession,
  type QuestionReport,
  type Report,
} from "../api";
import { Brand } from "../components/Brand";
import { BarChart, ScoreRing } from "../components/Charts";
import { type Lang, type Strings, strings } from "../i18n";

const POLL_MS = 2000;
const GIVE_UP_MS = 5 * 60_000;

type ReportWithLabels = Report & { criteria_labels?: Record<string, string>; role?: string; candidate_name?: string };

export function ReportPage({ sessionId }: { sessionId: string }) {
  const key = useMemo(
    () => keyFromFragment() ?? loadSession(sessionId)?.session_key ?? "",
    [sessionId],
  );
  const [report, setReport] = useState<ReportWithLabels | null>(null);
  const [lang, setLang] = useState<Lang>((localStorage.getItem("ui-lang") as Lang) || "ko");
  const [problem, setProblem] = useState("");
  const [erased, setErased] = useState(false);
  const t = strings(report?.language ?? lang);

  useEffect(() => {
    if (!key) {
      setProblem(strings(lang).reportLinkIncomplete);
      return;
    }
    let stop = false;
    const started = Date.now();
    api
      .session(sessionId, key)
      .then((s) => setLang(s.language))
      .catch(() => undefined);
    async function poll() {
      while (!stop) {
        try {
          const r = (await api.report(sessionId, key)) as ReportWithLabels;
          if (!stop) setReport(r);
          return;
        } catch (e) {
          const err = e as ApiError;
          const waiting = err.status === 409 || (err.status === 404 && /not ready/.test(err.message));
          if (!waiting || Date.now() - started > GIVE_UP_MS) {
            if (!stop) setProblem(describe(err, strings(lang)));
            return;
          }
        }
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    }
    void poll();
    return () => {
      stop = true;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [sessionId]);

  useEffect(() => {
    document.documentElement.lang = report?.language ?? lang;
  }, [report, lang]);

  async function erase() {
    if (!window.confirm(t.eraseConfirm)) return;
    try {
      await api.eraseData(sessionId, key);
      setErased(true);
      setReport(null);
    } catch (e) {
      setProblem((e as Error).message);
    }
  }

  return (
    <div className="page report">
      <header className="topbar">
        <Brand title={t.appTitle} />
        <a className="link-button" href="/">
          {t.newInterview}
        </a>
      </header>
      <main className="report-main">
        {erased ? (
          <div className="card narrow">
            <p data-testid="erased">{t.erased}</p>
          </div>
        ) : problem ? (
          <div className="alert" role="alert">
            {problem}
          </div>
        ) : !report ? (
          <div className="card narrow waiting" data-testid="report-waiting">
            <div className="spinner" aria-hidden />
            <p>{t.reportPreparing}</p>
          </div>
        ) : (
          <ReportView
            report={report}
            t={t}
            sessionId={sessionId}
            sessionKey={key}
            onErase={erase}
            onProblem={setProblem}
          />
        )}
      </main>
    </div>
  );
}

function describe(err: ApiError, t: Strings): string {
  if (err.status === 0) return t.serverUnreachable;
  // a wrong key gets the same answer as an unknown session
  if (err.status === 401 || (err.status === 404 && /no interview session/.test(err.message)))
    return t.reportUnknown;
  return err.message;
}

function ReportView(props: {
  report: ReportWithLabels;
  t: Strings;
  sessionId: string;
  sessionKey: string;
  onErase: () => void;
  onProblem: (message: string) => void;
}) {
  const { report, t } = props;
  const [html, setHtml] = useState<string | null>(null);
  const labels = report.criteria_labels ?? {};
  const d = report.delivery;
  const unit = d.speaking_rate_unit === "syllables_per_second" ? t.sylPerSec : t.wpm;
  const fillers = Object.entries(d.filler_counts ?? {})
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5);
  const durations = report.questions.map((q) => q.delivery?.duration_s ?? null);
  const maxDuration = Math.max(30, ...durations.map((x) => x ?? 0));

  return (
    <div className="report-view" data-testid="report">
      <section className="card hero">
        <ScoreRing score={report.overall.score} label={t.overall} />
        <div>
          <h1>{t.reportTitle}</h1>
          {(report.candidate_name || report.role) && (
            <p className="muted">{[report.candidate_name, report.role].filter(Boolean).join(" · ")}</p>
          )}
          <p className="summary">{report.overall.summary}</p>
          <p className="muted small">
            {t.assessor}: {report.assessor}
          </p>
        </div>
      </section>

      <div className="grid two">
        <section className="card">
          <h2 className="good-title">{t.strengths}</h2>
          <ul className="points">
            {report.overall.strengths.map((s) => (
              <li key={s}>{s}</li>
            ))}
          </ul>
        </section>
        <section className="card">
          <h2 className="improve-title">{t.improvements}</h2>
          <ul className="points">
            {report.overall.improvements.map((s) => (
              <li key={s}>{s}</li>
            ))}
          </ul>
        </section>
      </div>

      <section className="card">
        <h2>{t.delivery}</h2>
        <div className="stats">
          <Stat label={t.speakingRate} value={d.speaking_rate} unit={unit} t={t} />
          <Stat label={t.fillers} value={d.fillers_per_minute} unit="" t={t} />
          <Stat label={t.longPauses} value={d.long_pauses} unit={t.times} t={t} />
          <Stat label={t.latency} value={d.mean_response_latency_s} unit={t.seconds} t={t} />
        </div>
        {fillers.length > 0 && (
          <p className="muted small">
            {t.fillerWords}: {fillers.map(([w, n]) => `“${w}” ×${n}`).join(", ")}
          </p>
        )}
      </section>

      <div className="grid two">
        <section className="card">
          <h2>{t.scoresChart}</h2>
          <BarChart
            testId="score-chart"
            max={5}
            bars={report.questions.map((q, i) => ({
              label: `Q${i + 1}`,
              value: meanScore(q),
              title: q.question,
            }))}
          />
        </section>
        <section className="card">
          <h2>{t.durationChart}</h2>
          <BarChart
            max={maxDuration}
            unit={t.seconds}
            bars={durations.map((v, i) => ({ label: `Q${i + 1}`, value: v }))}
          />
        </section>
      </div>

      <section>
        <h2 className="section-title">{t.perQuestion}</h2>
        {report.questions.map((q, i) => (
          <QuestionCard key={i} q={q} index={i} labels={labels} t={t} />
        ))}
      </section>

      <p className="muted small" data-testid="link-hint">
        {t.reportLinkHint}
      </p>
      <div className="row actions">
        <button
          className="secondary"
          data-testid="full-report"
          onClick={() =>
            // fetched with the key header (a plain link could not carry it)
            api.reportHtml(props.sessionId, props.sessionKey).then(setHtml, (e: ApiError) =>
              props.onProblem(describe(e, t)),
            )
          }
        >
          {t.fullReport}
        </button>
        <button className="danger-outline" onClick={props.onErase} data-testid="erase">
          {t.eraseData}
        </button>
      </div>
      {html !== null && (
        <HtmlReport html={html} sessionId={props.sessionId} t={t} onClose={() => setHtml(null)} />
      )}
    </div>
  );
}

// report.html (self-contained, no scripts) in a sandboxed frame: an opaque origin that can
// neither run scripts nor reach this page's storage, whatever the report quotes
function HtmlReport(props: { html: string; sessionId: string; t: Strings; onClose: () => void }) {
  const { t } = props;
  const download = useMemo(
    () => URL.createObjectURL(new Blob([props.html], { type: "text/html" })),
    [props.html],
  );
  useEffect(() => () => URL.revokeObjectURL(download), [download]);
  return (
    <div className="modal-backdrop" role="dialog" aria-modal aria-label={t.fullReport}>
      <div className="card html-report">
        <div className="row html-report-bar">
          <strong>{t.fullReport}</strong>
          <span className="row tight">
            <a className="secondary" href={download} download={`report-${props.sessionId}.html`}>
              {t.download}
            </a>
            <button className="secondary" onClick={props.onClose} data-testid="close-report">
              {t.close}
            </button>
          </span>
        </div>
        <iframe sandbox="" srcDoc={props.html} title={t.fullReport} data-testid="report-html" />
      </div>
    </div>
  );
}

function meanScore(q: QuestionReport): number | null {
  const values = Object.values(q.scores ?? {});
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
}

function QuestionCard(props: { q: QuestionReport; index: number; labels: Record<string, string>; t: Strings }) {
  const { q, t } = props;
  const entries = Object.entries(q.scores ?? {});
  return (
    <article className="card question" data-testid="question">
      <header>
        <span className="qnum">Q{props.index + 1}</span>
        <h3>{q.question}</h3>
      </header>
      <p className="answer">
        <span className="label">{t.answer}</span>
        {q.answer || "—"}
      </p>
      {entries.length > 0 ? (
        <div className="criteria">
          {entries.map(([k, v]) => (
            <div className="criterion" key={k}>
              <span>{props.labels[k] ?? k}</span>
              <span className="pips" aria-label={`${v} / 5`}>
                {[1, 2, 3, 4, 5].map((p) => (
                  <i key={p} className={p <= v ? "lit" : ""} />
                ))}
              </span>
              <b>{v}</b>
            </div>
          ))}
        </div>
      ) : (
        <p className="muted small">{t.notScored}</p>
      )}
      {q.feedback && (
        <p className="feedback">
          <span className="label">{t.feedback}</span>
          {q.feedback}
        </p>
      )}
      {q.evidence?.length > 0 && entries.length > 0 && (
        <details>
          <summary>{t.evidence}</summary>
          <ul>
            {q.evidence.map((e) => (
              <li key={e}>“{e}”</li>
            ))}
          </ul>
        </details>
      )}
    </article>
  );
}

function Stat(props: { label: string; value: number | null; unit: string; t: Strings }) {
  return (
    <div className="stat">
      <span className="stat-label">{props.label}</span>
      <span className="stat-value">
        {props.value == null ? (
          <span className="muted small">{props.t.notMeasured}</span>
        ) : (
          <>
            {Number.isInteger(props.value) ? props.value : props.value.toFixed(1)}
            <small> {props.unit}</small>
          </>
        )}
      </span>
    </div>
  );
}
