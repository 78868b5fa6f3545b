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
  livekit_url: string;
  token: string;
  participant_identity: string;
  expires_at: string;
  language: Lang;
  duration_minutes: number;
  avatar: string;
}

export interface SessionStatus {
  session_id: string;
  status: "waiting" | "in_progress" | "ended" | "expired" | "erased";
  started_at: string | null;
  ended_at: string | null;
  duration_s: number | null;
  planned_duration_s: number;
  turn_count: number;
  language: Lang;
  report_ready: boolean;
}

export interface AvatarInfo {
  avatar_id: string;
  kind: "character" | "portrait";
  image_url: string | null;
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

async function call<T>(path: string, init?: RequestInit): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, init);
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
  return (await res.json()) as T;
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

export const api = {
  createSession: (config: InterviewConfig) =>
    call<SessionCreated>("/api/sessions", json("POST", config)),
  session: (id: string) => call<SessionStatus>(`/api/sessions/${encodeURIComponent(id)}`),
  endSession: (id: string) =>
    call<SessionStatus>(`/api/sessions/${encodeURIComponent(id)}`, { method: "DELETE" }),
  report: (id: string) => call<Report>(`/api/sessions/${encodeURIComponent(id)}/report`),
  eraseData: (id: string) =>
    call<{ erased: string[] }>(`/api/sessions/${encodeURIComponent(id)}/data`, {
      method: "DELETE",
    }),
  avatars: () => call<AvatarInfo[]>("/api/avatars"),
  uploadAvatar: (file: File) => call<AvatarInfo>("/api/avatars", upload(file)),
  uploadResume: (file: File) => call<ResumeText>("/api/resume", upload(file)),
};

// What the interview page needs from the POST response; kept for this tab only.
export function saveSession(s: SessionCreated): void {
  sessionStorage.setItem(`session:${s.session_id}`, JSON.stringify(s));
}

export function loadSession(id: string): SessionCreated | null {
  const raw = sessionStorage.getItem(`session:${id}`);
  return raw ? (JSON.parse(raw) as SessionCreated) : null;
}
