// Interview page: the interviewer's face large, state, live captions of both sides, mic with
// level, elapsed vs planned time, connection quality, end button; problems said in words.
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
  ConnectionQuality,
  ConnectionState,
  DisconnectReason,
  type LocalAudioTrack,
  MediaDeviceFailure,
  ParticipantKind,
  type RemoteParticipant,
  RoomEvent,
} from "livekit-client";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { api, loadSession, type SessionCreated } from "../api";
import { navigate } from "../App";
import { Brand } from "../components/Brand";
import { EndIcon, MicIcon, MicOffIcon, SpeakerIcon } from "../components/Icons";
import { type Strings, strings } from "../i18n";

const AVATAR_WAIT_MS = 10_000; // an interviewer this long without video: audio only
const AGENT_WAIT_MS = 25_000; // a room this long without an interviewer: say so
// the interviewer hears the candidate this late (its receive buffer, agent/hearing.py): say so,
// or the candidate takes a slow connection or a busy server for a slow interviewer
const HEARING_LATE_MS = 800;

type Speaker = "interviewer" | "candidate";
interface Caption {
  id: string;
  speaker: Speaker;
  text: string;
  final: boolean;
  at: number;
}

export function InterviewPage({ sessionId }: { sessionId: string }) {
  const session = useMemo(() => loadSession(sessionId), [sessionId]);
  const [fatal, setFatal] = useState("");
  const [micProblem, setMicProblem] = useState("");
  const ending = useRef(false);
  const t = strings(session?.language ?? "ko");

  useEffect(() => {
    document.documentElement.lang = session?.language ?? "ko";
  }, [session]);

  const finish = useCallback(async () => {
    if (ending.current) return;
    ending.current = true;
    try {
      await api.endSession(sessionId);
    } catch {
      /* the report page says what is known about the session */
    }
    navigate(`/report/${sessionId}`);
  }, [sessionId]);

  if (!session) {
    return (
      <div className="page center-page">
        <div className="card narrow">
          <p>{t.sessionMissing}</p>
          <a className="primary" href="/">
            {t.newInterview}
          </a>
        </div>
      </div>
    );
  }
  return (
    <LiveKitRoom
      className="page interview"
      serverUrl={session.livekit_url}
      token={session.token}
      connect={true}
      audio={true}
      video={false}
      options={{ adaptiveStream: true, dynacast: true }}
      onError={(e) => {
        // a microphone problem also arrives here; it is shown by onMediaDeviceFailure
        if (ending.current || MediaDeviceFailure.getFailure(e) !== undefined) return;
        setFatal(`${t.livekitUnreachable} (${e.message})`);
      }}
      onMediaDeviceFailure={(failure) =>
        setMicProblem(
          failure === MediaDeviceFailure.PermissionDenied
            ? t.micDenied
            : failure === MediaDeviceFailure.NotFound
              ? t.micMissing
              : t.micError,
        )
      }
      onDisconnected={(reason) => {
        if (ending.current) return;
        // the room removed by the server: the interview was ended (by the API or the agent)
        if (reason === DisconnectReason.ROOM_DELETED) void finish();
        else if (reason !== DisconnectReason.CLIENT_INITIATED) setFatal(t.disconnected);
      }}
    >
      <Stage session={session} t={t} fatal={fatal} micProblem={micProblem} onEnd={finish} />
      <RoomAudioRenderer />
    </LiveKitRoom>
  );
}

function Stage(props: {
  session: SessionCreated;
  t: Strings;
  fatal: string;
  micProblem: string;
  onEnd: () => Promise<void>;
}) {
  const { session, t } = props;
  const { onEnd } = props;
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
      window.setTimeout(() => void onEnd(), 1500);
    };
    room.on(RoomEvent.ParticipantDisconnected, onLeft);
    return () => {
      room.off(RoomEvent.ParticipantDisconnected, onLeft);
    };
  }, [room, onEnd]);

  const agentError = agentAttributes?.["interview.error"];
  const elapsed = agentSince ? Math.max(0, (now - agentSince) / 1000) : 0;
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
    props.fatal,
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

      {problems.length > 0 && (
        <div className="alerts">
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
              <img src={`/api/avatars/${session.avatar}/image`} alt="" />
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
