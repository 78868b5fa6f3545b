// Calls to the interview API (python -m web), typed after its pydantic models.
import type { Lang } from "./i18n";

export interface InterviewConfig {
  candidate_name: string;
  role: string;
  language: Lang;
  interview_type: "behavioral" | "technical" | "mixed";
  seniority: "intern" | "junior" | "mid" | "senior";
  difficulty: "easy" | "normal" | "hard";
  duration_minutes: number;
  avatar: string;
  resume_text?: string;
}

export interface SessionCreated {
  session_id: string;
  // this session's secret: sent as `Authorization: Bearer` on every per-session call
  session_key: string;
  livekit_url: string;
  token: string;
  participant_identity: string;
  expires_at: string;
  language: Lang;
  duration_minutes: number;
  avatar: string;
}

// What the interview page keeps of its booking, in this tab only (sessionStorage survives a
// reload of the tab, not another tab): never the join token, which it asks for afresh.
export interface StoredSession {
  session_id: string;
  session_key: string;
  language: Lang;
  duration_minutes: number;
  avatar: string;
}

export interface SessionToken {
  session_id: string;
  livekit_url: string;
  token: string;
  participant_identity: string;
  expires_at: string;
}

export interface SessionStatus {
  session_id: string;
  status: "waiting" | "in_progress" | "ended" | "expired" | "erased";
  started_at: string | null;
  ended_at: string | null;
  duration_s: number | null;
  planned_duration_s: number;
  turn_count: number;
  candidate_turns: number;
  language: Lang;
  report_ready: boolean;
  interviewer: "pending" | "in_room" | "none_available" | "lost" | "finished";
  end_reason: string | null;
}

export interface AvatarInfo {
  avatar_id: string;
  kind: "character" | "portrait";
  image_url: string | null;
}

// An uploaded portrait is its uploader's: its image, and a booking with it, need its key.
export interface AvatarUploaded extends AvatarInfo {
  upload_key: string;
  expires_at: string;
}

export interface ResumeText {
  resume_text: string;
  chars: number;
  truncated: boolean;
}

export interface QuestionReport {
  question: string;
  answer: string;
  kind?: string;
  status?: string;
  scores: Record<string, number>;
  feedback: string;
  evidence: string[];
  mean_score?: number | null;
  delivery?: { duration_s?: number; speaking_rate?: number | null } | null;
}

export interface Report {
  interview_id: string;
  language: Lang;
  assessor: string;
  overall: { score: number | null; summary: string; strengths: string[]; improvements: string[] };
  questions: QuestionReport[];
  delivery: {
    timed?: boolean;
    speaking_rate: number | null;
    speaking_rate_unit: "syllables_per_second" | "words_per_minute";
    fillers_per_minute: number | null;
    filler_counts: Record<string, number>;
    long_pauses: number;
    mean_response_latency_s: number | null;
    answer_durations_s?: number[];
  };
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

async function request(path: string, init?: RequestInit, key?: string): Promise<Response> {
  let res: Response;
  const headers = new Headers(init?.headers);
  if (key) headers.set("Authorization", `Bearer ${key}`);
  try {
    res = await fetch(path, { ...init, headers });
  } catch {
    throw new ApiError("network", 0);
  }
  if (!res.ok) {
    let detail = `${res.status} ${res.statusText}`;
    try {
      const body = await res.json();
      if (typeof body.detail === "string") detail = body.detail;
    } catch {
      /* not JSON: keep the status line */
    }
    throw new ApiError(detail, res.status);
  }
  return res;
}

async function call<T>(path: string, init?: RequestInit, key?: string): Promise<T> {
  return (await (await request(path, init, key)).json()) as T;
}

const json = (method: string, body: unknown): RequestInit => ({
  method,
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify(body),
});

function upload(file: File): RequestInit {
  const form = new FormData();
  form.append("file", file);
  return { method: "POST", body: form };
}

const sessionPath = (id: string, tail = "") => `/api/sessions/${encodeURIComponent(id)}${tail}`;

export const api = {
  // `uploadKey`: the key of the uploaded portrait the config names as its avatar
  createSession: (config: InterviewConfig, uploadKey?: string) =>
    call<SessionCreated>("/api/sessions", json("POST", config), uploadKey),
  // per-session calls: each needs the session's key (the booking's, or the report link's)
  session: (id: string, key: string) => call<SessionStatus>(sessionPath(id), undefined, key),
  token: (id: string, key: string) =>
    call<SessionToken>(sessionPath(id, "/token"), { method: "POST" }, key),
  endSession: (id: string, key: string) =>
    call<SessionStatus>(sessionPath(id), { method: "DELETE" }, key),
  report: (id: string, key: string) => call<Report>(sessionPath(id, "/report"), undefined, key),
  reportHtml: async (id: string, key: string) =>
    (await request(sessionPath(id, "/report?format=html"), undefined, key)).text(),
  eraseData: (id: string, key: string) =>
    call<{ erased: string[] }>(sessionPath(id, "/data"), { method: "DELETE" }, key),
  avatars: () => call<AvatarInfo[]>("/api/avatars"),
  uploadAvatar: (file: File) => call<AvatarUploaded>("/api/avatars", upload(file)),
  // an avatar's picture as an object URL: a portrait's needs a key (its upload key, or the key
  // of a booking made with it), which an <img src> cannot send; revoke the URL when done
  avatarImage: async (id: string, key: string) =>
    URL.createObjectURL(
      await (await request(`/api/avatars/${encodeURIComponent(id)}/image`, undefined, key)).blob(),
    ),
  uploadResume: (file: File) => call<ResumeText>("/api/resume", upload(file)),
};

export function saveSession(s: SessionCreated): void {
  const kept: StoredSession = {
    session_id: s.session_id,
    session_key: s.session_key,
    language: s.language,
    duration_minutes: s.duration_minutes,
    avatar: s.avatar,
  };
  sessionStorage.setItem(`session:${s.session_id}`, JSON.stringify(kept));
}

export function loadSession(id: string): StoredSession | null {
  const raw = sessionStorage.getItem(`session:${id}`);
  if (!raw) return null;
  try {
    const s = JSON.parse(raw) as StoredSession;
    return s.session_key ? s : null;
  } catch {
    return null;
  }
}

// The report page's link carries the key in the URL fragment, which browsers never send to a
// server (nor in Referer): it works for whoever holds the link, and no access log sees the key.
export function reportPath(id: string, key: string): string {
  return `/report/${encodeURIComponent(id)}#key=${encodeURIComponent(key)}`;
}

export function keyFromFragment(): string | null {
  const key = new URLSearchParams(window.location.hash.slice(1)).get("key");
  return key || null;
}
