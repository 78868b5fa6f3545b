// Setup page: who the candidate is, what interview, which interviewer face, consent.
import { type FormEvent, useEffect, useRef, useState } from "react";
import {
  ApiError,
  type AvatarInfo,
  type AvatarUploaded,
  api,
  type InterviewConfig,
  saveSession,
} from "../api";
import { navigate } from "../App";
import { AvatarImage } from "../components/AvatarImage";
import { Brand } from "../components/Brand";
import { FileIcon } from "../components/Icons";
import { type Lang, strings } from "../i18n";

const DURATIONS = [5, 10, 15, 20, 30];

function initialLang(): Lang {
  const saved = localStorage.getItem("ui-lang");
  // Korean first, like the config's default language; the choice is remembered
  return saved === "en" ? "en" : "ko";
}

export function SetupPage() {
  const [lang, setLang] = useState<Lang>(initialLang);
  const t = strings(lang);
  const [name, setName] = useState("");
  const [role, setRole] = useState("");
  const [type, setType] = useState<InterviewConfig["interview_type"]>("mixed");
  const [seniority, setSeniority] = useState<InterviewConfig["seniority"]>("junior");
  const [difficulty, setDifficulty] = useState<InterviewConfig["difficulty"]>("normal");
  const [duration, setDuration] = useState(15);
  const [avatar, setAvatar] = useState("woman");
  const [avatars, setAvatars] = useState<AvatarInfo[]>([
    { avatar_id: "woman", kind: "character", image_url: "/api/avatars/woman/image" },
    { avatar_id: "man", kind: "character", image_url: "/api/avatars/man/image" },
  ]);
  // the portrait uploaded here, with its upload key (kept in this page only)
  const [custom, setCustom] = useState<AvatarUploaded | null>(null);
  const [avatarBusy, setAvatarBusy] = useState(false);
  const [avatarError, setAvatarError] = useState("");
  const [resume, setResume] = useState<{ text: string; name: string; chars: number } | null>(null);
  const [resumeBusy, setResumeBusy] = useState(false);
  const [resumeError, setResumeError] = useState("");
  const [consent, setConsent] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const photoInput = useRef<HTMLInputElement>(null);

  useEffect(() => {
    document.documentElement.lang = lang;
    localStorage.setItem("ui-lang", lang);
  }, [lang]);

  useEffect(() => {
    api
      .avatars()
      .then((list) => setAvatars(list.filter((a) => a.kind === "character")))
      .catch(() => undefined); // the built-in pair above is shown either way
  }, []);

  const describe = (e: unknown) =>
    e instanceof ApiError && e.status === 0 ? t.serverUnreachable : String((e as Error).message);

  async function onPhoto(file: File | undefined) {
    if (!file) return;
    setAvatarBusy(true);
    setAvatarError("");
    try {
      const info = await api.uploadAvatar(file);
      setCustom(info);
      setAvatar(info.avatar_id);
    } catch (e) {
      setAvatarError(describe(e));
    } finally {
      setAvatarBusy(false);
      if (photoInput.current) photoInput.current.value = "";
    }
  }

  async function onResume(file: File | undefined) {
    if (!file) return;
    setResumeBusy(true);
    setResumeError("");
    try {
      const r = await api.uploadResume(file);
      setResume({ text: r.resume_text, name: file.name, chars: r.chars });
    } catch (e) {
      setResumeError(describe(e));
    } finally {
      setResumeBusy(false);
    }
  }

  async function onSubmit(ev: FormEvent) {
    ev.preventDefault();
    setError("");
    if (!name.trim()) return setError(t.required(t.name));
    if (!role.trim()) return setError(t.required(t.role));
    if (!consent) return setError(t.consentRequired);
    const config: InterviewConfig = {
      candidate_name: name.trim(),
      role: role.trim(),
      language: lang,
      interview_type: type,
      seniority,
      difficulty,
      duration_minutes: duration,
      avatar,
      ...(resume ? { resume_text: resume.text } : {}),
    };
    setBusy(true);
    try {
      const uploadKey = custom && avatar === custom.avatar_id ? custom.upload_key : undefined;
      const session = await api.createSession(config, uploadKey);
      saveSession(session);
      navigate(`/interview/${session.session_id}`);
    } catch (e) {
      setError(describe(e));
      setBusy(false);
    }
  }

  const choices = custom ? [...avatars, custom] : avatars;
  const label = (id: string) =>
    id === "woman" ? t.avatarWoman : id === "man" ? t.avatarMan : t.avatarCustom;

  return (
    <div className="page setup">
      <header className="topbar">
        <Brand title={t.appTitle} />
        <button
          type="button"
          className="link-button"
          onClick={() => setLang(lang === "ko" ? "en" : "ko")}
          data-testid="ui-language"
        >
          {t.uiLanguage}
        </button>
      </header>
      <main className="setup-main">
        <section className="intro">
          <h1>{t.setupTitle}</h1>
          <p className="muted">{t.appSubtitle}</p>
        </section>
        <form className="card form" onSubmit={onSubmit} noValidate>
          <div className="grid two">
            <label className="field">
              <span>{t.name}</span>
              <input
                name="candidate_name"
                value={name}
                maxLength={80}
                placeholder={t.namePlaceholder}
                autoComplete="name"
                onChange={(e) => setName(e.target.value)}
              />
            </label>
            <label className="field">
              <span>{t.role}</span>
              <input
                name="role"
                value={role}
                maxLength={120}
                placeholder={t.rolePlaceholder}
                onChange={(e) => setRole(e.target.value)}
              />
            </label>
          </div>

          <fieldset className="field">
            <legend>{t.language}</legend>
            <Segmented
              name="language"
              value={lang}
              onChange={(v) => setLang(v as Lang)}
              options={[
                ["ko", t.langKo],
                ["en", t.langEn],
              ]}
            />
          </fieldset>

          <div className="grid two">
            <fieldset className="field">
              <legend>{t.type}</legend>
              <Segmented
                name="interview_type"
                value={type}
                onChange={(v) => setType(v as InterviewConfig["interview_type"])}
                options={[
                  ["behavioral", t.typeBehavioral],
                  ["technical", t.typeTechnical],
                  ["mixed", t.typeMixed],
                ]}
              />
            </fieldset>
            <fieldset className="field">
              <legend>{t.difficulty}</legend>
              <Segmented
                name="difficulty"
                value={difficulty}
                onChange={(v) => setDifficulty(v as InterviewConfig["difficulty"])}
                options={[
                  ["easy", t.diffEasy],
                  ["normal", t.diffNormal],
                  ["hard", t.diffHard],
                ]}
              />
            </fieldset>
          </div>

          <div className="grid two">
            <label className="field">
              <span>{t.seniority}</span>
              <select
                name="seniority"
                value={seniority}
                onChange={(e) => setSeniority(e.target.value as InterviewConfig["seniority"])}
              >
                <option value="intern">{t.seniorityIntern}</option>
                <option value="junior">{t.seniorityJunior}</option>
                <option value="mid">{t.seniorityMid}</option>
                <option value="senior">{t.senioritySenior}</option>
              </select>
            </label>
            <label className="field">
              <span>{t.duration}</span>
              <select
                name="duration_minutes"
                value={duration}
                onChange={(e) => setDuration(Number(e.target.value))}
              >
                {DURATIONS.map((m) => (
                  <option key={m} value={m}>
                    {m} {t.minutes}
                  </option>
                ))}
              </select>
            </label>
          </div>

          <fieldset className="field">
            <legend>{t.avatar}</legend>
            <div className="avatars" role="radiogroup">
              {choices.map((a) => (
                <button
                  type="button"
                  key={a.avatar_id}
                  role="radio"
                  aria-checked={avatar === a.avatar_id}
                  className={`avatar-choice ${avatar === a.avatar_id ? "selected" : ""}`}
                  onClick={() => setAvatar(a.avatar_id)}
                  data-avatar={a.avatar_id}
                >
                  {custom && a.avatar_id === custom.avatar_id ? (
                    <AvatarImage avatarId={custom.avatar_id} imageKey={custom.upload_key} />
                  ) : (
                    a.image_url && <img src={a.image_url} alt="" loading="lazy" />
                  )}
                  <span>{label(a.avatar_id)}</span>
                </button>
              ))}
              <button
                type="button"
                className="avatar-choice upload"
                onClick={() => photoInput.current?.click()}
                disabled={avatarBusy}
              >
                <span className="plus" aria-hidden>
                  {avatarBusy ? "…" : "+"}
                </span>
                <span>{avatarBusy ? t.avatarPreparing : t.avatarUpload}</span>
              </button>
              <input
                ref={photoInput}
                type="file"
                accept="image/jpeg,image/png,image/webp"
                hidden
                data-testid="portrait-input"
                onChange={(e) => onPhoto(e.target.files?.[0])}
              />
            </div>
            <p className="hint">{t.avatarUploadHint}</p>
            {avatarError && <p className="error-text">{avatarError}</p>}
          </fieldset>

          <div className="field">
            <span className="label">{t.resume}</span>
            {resume ? (
              <div className="file-chip">
                <span className="row tight">
                  <FileIcon /> {resume.name}
                </span>
                <span className="muted">{t.resumeLoaded(resume.chars)}</span>
                <button type="button" className="link-button" onClick={() => setResume(null)}>
                  {t.resumeRemove}
                </button>
              </div>
            ) : (
              <input
                type="file"
                accept="application/pdf,text/plain,.pdf,.txt"
                data-testid="resume-input"
                disabled={resumeBusy}
                onChange={(e) => onResume(e.target.files?.[0])}
              />
            )}
            <p className="hint">{resumeBusy ? t.resumeReading : t.resumeHint}</p>
            {resumeError && <p className="error-text">{resumeError}</p>}
          </div>

          <label className="consent">
            <input
              type="checkbox"
              name="consent"
              checked={consent}
              onChange={(e) => setConsent(e.target.checked)}
            />
            <span>{t.consent}</span>
          </label>

          {error && (
            <div className="alert" role="alert">
              {error}
            </div>
          )}
          <button className="primary big" type="submit" disabled={busy}>
            {busy ? t.starting : t.start}
          </button>
          <p className="hint center">{t.tips}</p>
        </form>
      </main>
    </div>
  );
}

function Segmented(props: {
  name: string;
  value: string;
  options: [string, string][];
  onChange: (v: string) => void;
}) {
  return (
    <div className="segmented" role="radiogroup">
      {props.options.map(([v, text]) => (
        <button
          type="button"
          role="radio"
          key={v}
          aria-checked={props.value === v}
          className={props.value === v ? "on" : ""}
          data-name={props.name}
          data-value={v}
          onClick={() => props.onChange(v)}
        >
          {text}
        </button>
      ))}
    </div>
  );
}
