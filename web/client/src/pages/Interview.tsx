// Interview page: the interviewer's face large, state, live captions of both sides, mic with
// level, elapsed vs planned time, connection quality, end button; problems said in words.
// Every join and rejoin (a reload, a late join, a lost network) starts with a fresh token from
// the API for this tab's own booking; an interview that has ended says so, with its report.
import {
  LiveKitRoom,
  RoomAudioRenderer,
  useAudioPlayback,
  useConnectionQualityIndicator,
  useConnectionState,
  useLocalParticipant,
  useRoomContext,
  useTrackVolume,
  useTranscriptions,
  useVoiceAssistant,
  VideoTrack,
} from "@livekit/components-react";
import {
  ConnectionError,
  ConnectionErrorReason,
  ConnectionQuality,
  ConnectionState,
  DisconnectReason,
  type LocalAudioTrack,
  MediaDeviceFailure,
  ParticipantKind,
  type RemoteParticipant,
  RoomEvent,
} from "livekit-client";
import { type ReactNode, useCallback, useEffect, useMemo, useRef, useState } from "react";
import {
  type ApiError,
  api,
  loadSession,
  reportPath,
  type SessionStatus,
  type SessionToken,
  type StoredSession,
} from "../api";
import { navigate } from "../App";
import { AvatarImage } from "../components/AvatarImage";
import { Brand } from "../components/Brand";
import { EndIcon, MicIcon, MicOffIcon, SpeakerIcon } from "../components/Icons";
import { type Strings, strings } from "../i18n";

const AVATAR_WAIT_MS = 10_000; // an interviewer this long without video: audio only
const AGENT_WAIT_MS = 25_000; // a room this long without an interviewer: say so
// the interviewer hears the candidate this late (its receive buffer, agent/hearing.py): say so,
// or the candidate takes a slow connection or a busy server for a slow interviewer
const HEARING_LATE_MS = 800;
const STATUS_POLL_MS = 3000; // the API's view of the interviewer (none free, lost)
// after livekit-client gives up on a connection, the page rejoins by itself at most this often
const AUTO_REJOIN_GAP_MS = 15_000;
const ROOM_OPTIONS = { adaptiveStream: true, dynacast: true };

type Speaker = "interviewer" | "candidate";
interface Caption {
  id: string;
  speaker: Speaker;
  text: string;
  final: boolean;
  at: number;
}

// What the page shows: joining (a fresh token first), the live room, or why there is none.
type Phase =
  | { kind: "joining" }
  | { kind: "live"; join: SessionToken }
  | { kind: "ended" } // the interview is over, or its room is gone: the way to the report
  | { kind: "no_interviewer" } // no interviewer took the booking
  | { kind: "lost" } // the interviewer stopped before the end; what was said is saved
  | { kind: "elsewhere" } // the same booking joined from another tab or window
  | { kind: "missing" } // this tab holds no key for the session (or a wrong one)
  | { kind: "problem"; message: string }; // the API cannot be reached: try again

export function InterviewPage({ sessionId }: { sessionId: string }) {
  const session = useMemo(() => loadSession(sessionId), [sessionId]);
  const key = session?.session_key ?? "";
  const [phase, setPhase] = useState<Phase>(session ? { kind: "joining" } : { kind: "missing" });
  // each join and rejoin (a reload, a lost network, "continue here") asks for a fresh token:
  // the booking's expires after INTERVIEW_TOKEN_TTL_S, long before a 90-minute interview ends
  const [attempt, setAttempt] = useState(0);
  const [status, setStatus] = useState<{ at: number; value: SessionStatus } | null>(null);
  const [fatal, setFatal] = useState("");
  const [micProblem, setMicProblem] = useState("");
  const ending = useRef(false);
  const connected = useRef(false);
  const lastAutoRejoin = useRef(0);
  const t = strings(session?.language ?? "ko");

  useEffect(() => {
    document.documentElement.lang = session?.language ?? "ko";
  }, [session]);

  const rejoin = useCallback(() => setAttempt((a) => a + 1), []);

  const finish = useCallback(async () => {
    if (ending.current) return;
    ending.current = true;
    try {
      await api.endSession(sessionId, key);
    } catch {
      /* the report page says what is known about the session */
    }
    navigate(reportPath(sessionId, key));
  }, [sessionId, key]);

  // No room to join, or the room closed: the session's status says which words fit.
  const settle = useCallback(
    async (otherwise: "ended" | "report") => {
      let s: SessionStatus | null = null;
      try {
        s = await api.session(sessionId, key);
      } catch {
        /* the interview is over either way */
      }
      if (s?.interviewer === "none_available") setPhase({ kind: "no_interviewer" });
      else if (s?.interviewer === "lost") setPhase({ kind: "lost" });
      else if (otherwise === "report") void finish();
      else setPhase({ kind: "ended" });
    },
    [sessionId, key, finish],
  );

  useEffect(() => {
    if (!session) return;
    let stop = false;
    connected.current = false;
    setFatal("");
    setPhase({ kind: "joining" });
    api.token(sessionId, key).then(
      (join) => {
        if (!stop) setPhase({ kind: "live", join });
      },
      (e: ApiError) => {
        if (stop) return;
        if (e.status === 410) void settle("ended");
        else if (e.status === 401 || e.status === 404) setPhase({ kind: "missing" });
        else setPhase({ kind: "problem", message: e.status === 0 ? t.serverUnreachable : e.message });
      },
    );
    return () => {
      stop = true;
    };
  }, [session, sessionId, key, attempt, settle, t]);

  // the interviewer's side, from the API: none free, or stopped before the end
  const live = phase.kind === "live";
  useEffect(() => {
    if (!live) return;
    let stop = false;
    async function poll() {
      try {
        const value = await api.session(sessionId, key);
        if (stop) return;
        setStatus({ at: Date.now(), value });
        if (value.interviewer === "none_available") setPhase({ kind: "no_interviewer" });
        else if (value.interviewer === "lost") setPhase({ kind: "lost" });
      } catch {
        /* the next poll asks again; the room itself shows what matters meanwhile */
      }
    }
    void poll();
    const id = window.setInterval(() => void poll(), STATUS_POLL_MS);
    return () => {
      stop = true;
      window.clearInterval(id);
    };
  }, [live, sessionId, key]);

  // LiveKitRoom's handlers stay the same functions across renders: it connects again whenever
  // its onError changes (components-react), and the status poll renders every few seconds
  const onConnected = useCallback(() => {
    connected.current = true;
  }, []);
  const onError = useCallback(
    (e: Error) => {
      // only a failed join is for here: a microphone problem also arrives, and is shown by
      // onMediaDeviceFailure (MediaDeviceFailure.getFailure names any error "Other", so it
      // cannot tell them apart); a join cancelled by a newer one is no problem
      if (ending.current || !(e instanceof ConnectionError)) return;
      if (e.reason === ConnectionErrorReason.Cancelled) return;
      // the room is gone: livekit-server (auto_create off) refuses the join with 404
      if (e.status === 404) {
        void settle("ended");
        return;
      }
      // the API knows whether the interview still goes on; only then blame the network
      api.token(sessionId, key).then(
        () => setFatal(`${t.livekitUnreachable} (${e.message})`),
        (err: ApiError) =>
          err.status === 410
            ? void settle("ended")
            : setFatal(`${t.livekitUnreachable} (${e.message})`),
      );
    },
    [settle, sessionId, key, t],
  );
  const onMediaDeviceFailure = useCallback(
    (failure?: MediaDeviceFailure) =>
      setMicProblem(
        failure === MediaDeviceFailure.PermissionDenied
          ? t.micDenied
          : failure === MediaDeviceFailure.NotFound
            ? t.micMissing
            : t.micError,
      ),
    [t],
  );
  const onDisconnected = useCallback(
    (reason?: DisconnectReason) => {
      if (ending.current || !connected.current) return;
      connected.current = false;
      if (reason === DisconnectReason.ROOM_DELETED || reason === DisconnectReason.ROOM_CLOSED) {
        // the room removed (by the API, the agent or the server): the interview is over
        void settle("report");
      } else if (reason === DisconnectReason.DUPLICATE_IDENTITY) {
        setPhase({ kind: "elsewhere" });
      } else if (reason !== DisconnectReason.CLIENT_INITIATED) {
        // livekit-client gave up resuming (a long network loss): join again with a fresh
        // token while the room waits (INTERVIEW_REJOIN_WINDOW_S), once; then the button
        if (Date.now() - lastAutoRejoin.current > AUTO_REJOIN_GAP_MS) {
          lastAutoRejoin.current = Date.now();
          rejoin();
        } else setFatal(t.disconnected);
      }
    },
    [settle, rejoin, t],
  );
  const onInterviewerLeft = useCallback(() => settle("report"), [settle]);

  if (phase.kind !== "live") {
    return <NoRoom phase={phase} t={t} sessionId={sessionId} sessionKey={key} onRetry={rejoin} />;
  }
  return (
    <LiveKitRoom
      key={attempt}
      className="page interview"
      serverUrl={phase.join.livekit_url}
      token={phase.join.token}
      connect={true}
      audio={true}
      video={false}
      options={ROOM_OPTIONS}
      onConnected={onConnected}
      onError={onError}
      onMediaDeviceFailure={onMediaDeviceFailure}
      onDisconnected={onDisconnected}
    >
      <Stage
        session={session!}
        status={status}
        t={t}
        fatal={fatal}
        micProblem={micProblem}
        onEnd={finish}
        onInterviewerLeft={onInterviewerLeft}
        onRejoin={rejoin}
      />
      <RoomAudioRenderer />
    </LiveKitRoom>
  );
}

// The page when there is no room to be in, each case in words with the way on.
function NoRoom(props: {
  phase: Exclude<Phase, { kind: "live" }>;
  t: Strings;
  sessionId: string;
  sessionKey: string;
  onRetry: () => void;
}) {
  const { phase, t } = props;
  const report = props.sessionKey ? reportPath(props.sessionId, props.sessionKey) : "";
  const toReport = (
    <button className="primary" onClick={() => navigate(report)} data-testid="to-report">
      {t.seeReport}
    </button>
  );
  const newInterview = (
    <a className="secondary" href="/">
      {t.newInterview}
    </a>
  );
  const retry = (label: string, testId?: string) => (
    <button className="primary" onClick={props.onRetry} data-testid={testId}>
      {label}
    </button>
  );
  // each case: what is said, and the ways on
  const said: Record<Exclude<Phase, { kind: "live" }>["kind"], [ReactNode, ReactNode]> = {
    joining: [
      <div className="waiting" key="joining">
        <div className="spinner" aria-hidden />
        <p>{t.joining}</p>
      </div>,
      null,
    ],
    ended: [
      <>
        <h1>{t.interviewEnded}</h1>
        <p className="muted">{t.interviewEndedHint}</p>
      </>,
      <>
        {toReport}
        {newInterview}
      </>,
    ],
    no_interviewer: [
      <p>{t.noInterviewer}</p>,
      <a className="primary" href="/" data-testid="to-setup">
        {t.backToSetup}
      </a>,
    ],
    lost: [
      <p>{t.interviewerLost}</p>,
      <>
        {toReport}
        {newInterview}
      </>,
    ],
    elsewhere: [<p>{t.openedElsewhere}</p>, retry(t.continueHere, "rejoin")],
    missing: [<p>{t.sessionMissing}</p>, newInterview],
    problem: [<p role="alert">{phase.kind === "problem" ? phase.message : ""}</p>, retry(t.tryAgain)],
  };
  const [message, actions] = said[phase.kind];
  const body = (
    <>
      {message}
      {actions && <div className="row center-row">{actions}</div>}
    </>
  );
  return (
    <div className="page center-page">
      <div className="card narrow" data-testid="no-room" data-phase={phase.kind}>
        <Brand title={t.appTitle} />
        {body}
      </div>
    </div>
  );
}

function Stage(props: {
  session: StoredSession;
  status: { at: number; value: SessionStatus } | null;
  t: Strings;
  fatal: string;
  micProblem: string;
  onEnd: () => Promise<void>;
  onInterviewerLeft: () => Promise<void>;
  onRejoin: () => void;
}) {
  const { session, t } = props;
  const { onInterviewerLeft } = props;
  const room = useRoomContext();
  const connection = useConnectionState();
  const { state, videoTrack, agent, agentAttributes } = useVoiceAssistant();
  const { localParticipant, isMicrophoneEnabled, microphoneTrack } = useLocalParticipant();
  const micLevel = useTrackVolume(microphoneTrack?.track as LocalAudioTrack | undefined);
  const { quality } = useConnectionQualityIndicator({ participant: localParticipant });
  const { canPlayAudio, startAudio } = useAudioPlayback();
  const captions = useCaptions(localParticipant.identity, microphoneTrack?.trackSid);
  const [agentSince, setAgentSince] = useState<number | null>(null);
  const [connectedAt, setConnectedAt] = useState<number | null>(null);
  const [now, setNow] = useState(Date.now());
  const [confirming, setConfirming] = useState(false);
  const [endingNow, setEndingNow] = useState(false);
  const [agentLeft, setAgentLeft] = useState(false);
  const hadAgent = useRef(false);

  useEffect(() => {
    const id = window.setInterval(() => setNow(Date.now()), 500);
    return () => window.clearInterval(id);
  }, []);
  useEffect(() => {
    if (connection === ConnectionState.Connected && connectedAt === null) setConnectedAt(Date.now());
  }, [connection, connectedAt]);
  useEffect(() => {
    if (agent && agentSince === null) setAgentSince(Date.now());
    if (agent) hadAgent.current = true;
  }, [agent, agentSince]);
  useEffect(() => {
    // the interviewer (not its avatar, which may leave for audio-only) closed the interview
    // itself after its goodbye: go to the report
    const onLeft = (p: RemoteParticipant) => {
      if (p.kind !== ParticipantKind.AGENT || p.attributes["lk.publish_on_behalf"]) return;
      setAgentLeft(true);
      window.setTimeout(() => void onInterviewerLeft(), 1500);
    };
    room.on(RoomEvent.ParticipantDisconnected, onLeft);
    return () => {
      room.off(RoomEvent.ParticipantDisconnected, onLeft);
    };
  }, [room, onInterviewerLeft]);

  const agentError = agentAttributes?.["interview.error"];
  // the interview's own clock (the API's, from when the interviewer began) once known, so a
  // page reloaded at minute 80 does not start again from zero
  const known = props.status?.value.duration_s;
  const elapsed =
    known != null && props.status
      ? known + Math.max(0, (now - props.status.at) / 1000)
      : agentSince
        ? Math.max(0, (now - agentSince) / 1000)
        : 0;
  const planned = session.duration_minutes * 60;
  // the agent says "on", or why the interview is audio-only (agent/avatar.py)
  const avatarAttr = agentAttributes?.["interview.avatar"];
  const avatarMissing =
    !!agent &&
    !videoTrack &&
    ((!!avatarAttr && avatarAttr !== "on") ||
      (agentSince !== null && now - agentSince > AVATAR_WAIT_MS));
  const hearingMs = Number(agentAttributes?.["interview.hearing_ms"] ?? 0);
  const hearingLate = !!agent && !agentLeft && hearingMs >= HEARING_LATE_MS;
  const agentMissing =
    !agent && !hadAgent.current && connectedAt !== null && now - connectedAt > AGENT_WAIT_MS;

  const problems = [
    props.micProblem,
    agentError ? t.agentError(agentError) : "",
    agentMissing ? t.agentMissing : "",
  ].filter(Boolean);

  const stateLabel: Record<string, string> = {
    listening: t.stateListening,
    thinking: t.stateThinking,
    speaking: t.stateSpeaking,
  };
  const shownState = agent ? (stateLabel[state] ?? t.stateIdle) : t.waitingInterviewer;

  async function end() {
    setConfirming(false);
    setEndingNow(true);
    await props.onEnd();
  }

  return (
    <div className="interview-layout">
      <header className="topbar dark">
        <Brand title={t.appTitle} />
        <div className="meta">
          <span className="timer" data-testid="timer" title={t.elapsed}>
            {clock(elapsed)} <span className="muted">/ {clock(planned)}</span>
          </span>
          <Quality quality={quality} t={t} />
        </div>
      </header>

      {(problems.length > 0 || props.fatal) && (
        <div className="alerts">
          {props.fatal && (
            <div className="alert row" role="alert">
              <span>{props.fatal}</span>
              <button className="secondary" onClick={props.onRejoin} data-testid="rejoin">
                {t.rejoin}
              </button>
            </div>
          )}
          {problems.map((p) => (
            <div className="alert" role="alert" key={p}>
              {p}
            </div>
          ))}
        </div>
      )}

      <main className="stage-grid">
        <section className={`stage state-${agent ? state : "waiting"}`} data-testid="stage">
          {videoTrack ? (
            <VideoTrack trackRef={videoTrack} className="avatar-video" data-testid="avatar-video" />
          ) : (
            <div className="avatar-fallback">
              <AvatarImage avatarId={session.avatar} imageKey={session.session_key} />
            </div>
          )}
          <div className="state-pill" data-testid="agent-state" data-state={agent ? state : "waiting"}>
            <span className="dot" />
            {connection === ConnectionState.Connected ? shownState : t.connecting}
          </div>
          <div className="notices">
            {hearingLate && (
              <div className="notice" data-testid="hearing-late">
                {t.hearingLate((hearingMs / 1000).toFixed(1))}
              </div>
            )}
            {avatarMissing && <div className="notice">{t.avatarUnavailable}</div>}
            {agentLeft && <div className="notice">{t.finished}</div>}
          </div>
          {!canPlayAudio && (
            <button className="primary overlay-button" onClick={() => void startAudio()}>
              <SpeakerIcon /> {t.enableAudio}
            </button>
          )}
        </section>

        <section className="captions card" aria-live="polite">
          <h2>{t.captions}</h2>
          <CaptionList captions={captions} t={t} live={!!agent && state === "speaking"} />
        </section>
      </main>

      <footer className="controls">
        <button
          className={`mic ${isMicrophoneEnabled ? "on" : "off"}`}
          onClick={() => void localParticipant.setMicrophoneEnabled(!isMicrophoneEnabled)}
          data-testid="mic-toggle"
          aria-pressed={isMicrophoneEnabled}
        >
          {isMicrophoneEnabled ? <MicIcon /> : <MicOffIcon />}
          <span className="mic-label">{isMicrophoneEnabled ? t.micOn : t.micOff}</span>
          <span className="level" aria-hidden>
            <span style={{ width: `${Math.min(100, Math.round((isMicrophoneEnabled ? micLevel : 0) * 250))}%` }} />
          </span>
        </button>
        <button
          className="danger"
          onClick={() => setConfirming(true)}
          disabled={endingNow}
          data-testid="end-button"
        >
          <EndIcon /> {endingNow ? t.ending : t.end}
        </button>
      </footer>

      {confirming && (
        <div className="modal-backdrop" role="dialog" aria-modal>
          <div className="card modal">
            <p>{t.endConfirm}</p>
            <div className="row">
              <button className="secondary" onClick={() => setConfirming(false)}>
                ✕
              </button>
              <button className="danger" onClick={() => void end()} data-testid="end-confirm">
                {t.end}
              </button>
            </div>
          </div>
        </div>
      )}
    </div>
  );
}

// Caption segments from the `lk.transcription` text streams; a segment's later streams replace
// its earlier text. The candidate's own words arrive from the agent on the candidate's behalf.
function useCaptions(localIdentity: string, micSid: string | undefined): Caption[] {
  const streams = useTranscriptions();
  return useMemo(() => {
    const bySegment = new Map<string, Caption>();
    for (const s of streams) {
      const attrs = s.streamInfo.attributes ?? {};
      const id = attrs["lk.segment_id"] || s.streamInfo.id;
      const candidate =
        s.participantInfo.identity === localIdentity ||
        (!!micSid && attrs["lk.transcribed_track_id"] === micSid);
      const prev = bySegment.get(id);
      bySegment.set(id, {
        id,
        speaker: candidate ? "candidate" : "interviewer",
        text: s.text,
        final: attrs["lk.transcription_final"] === "true",
        at: prev?.at ?? s.streamInfo.timestamp,
      });
    }
    return [...bySegment.values()].filter((c) => c.text.trim()).sort((a, b) => a.at - b.at).slice(-60);
  }, [streams, localIdentity, micSid]);
}

// While the interviewer speaks, its newest caption is still growing word by word with the
// audio (the agent paces the words to the avatar's playback): a caret marks it as live.
function CaptionList(props: { captions: Caption[]; t: Strings; live: boolean }) {
  const { captions, t, live } = props;
  const list = useRef<HTMLDivElement>(null);
  useEffect(() => {
    // scroll the caption box only, never the page (phones)
    const el = list.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [captions]);
  if (!captions.length) return <p className="muted empty">{t.captionsEmpty}</p>;
  const last = captions[captions.length - 1];
  const liveId = live && last.speaker === "interviewer" ? last.id : "";
  return (
    <div className="caption-list" data-testid="captions" ref={list}>
      {captions.map((c) => (
        <div
          key={c.id}
          className={`caption ${c.speaker}${c.id === liveId ? " live" : ""}`}
          data-speaker={c.speaker}
          data-segment={c.id}
        >
          <span className="who">{c.speaker === "candidate" ? t.you : t.interviewer}</span>
          <p>{c.text}</p>
        </div>
      ))}
    </div>
  );
}

function Quality({ quality, t }: { quality: ConnectionQuality; t: Strings }) {
  const map: Record<string, [string, number]> = {
    [ConnectionQuality.Excellent]: [t.qualityExcellent, 3],
    [ConnectionQuality.Good]: [t.qualityGood, 2],
    [ConnectionQuality.Poor]: [t.qualityPoor, 1],
    [ConnectionQuality.Lost]: [t.qualityLost, 0],
  };
  const [label, bars] = map[quality] ?? [t.qualityUnknown, 0];
  return (
    <span className={`quality q${bars}`} title={t.quality} data-testid="quality">
      <span className="bars" aria-hidden>
        {[1, 2, 3].map((b) => (
          <i key={b} className={b <= bars ? "lit" : ""} />
        ))}
      </span>
      {label}
    </span>
  );
}

function clock(seconds: number): string {
  const s = Math.floor(seconds);
  return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}
