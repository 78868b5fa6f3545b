"""A scripted interview in a real room, measured from the candidate's seat.

Drives what a candidate does — join, listen, answer (espeak-ng speech), barge in, say "yeah"
over a question (a backchannel: the interviewer pauses and goes on), poke at the avatar with a
candidate token, lose the avatar service — against a running stack (LiveKit
server, avatar service, interviewer worker), and returns what the candidate saw and heard with
the timestamps the room tests assert on and the room benchmark prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from livekit import api, rtc

from agent.booking import interview_room
from agent.hearing import HEARING_ATTRIBUTE

from .hiccups import Hiccups
from .room_probe import AUDIO_RATE, LOUD, STEP_S, Received, RoomProbe, espeak

TURN_GAP_S = 1.3  # this much quiet ends an interviewer turn (espeak pauses are shorter)

# a barge-in: a few words, a breath (so the speech-to-text has words to interrupt on), then the
# candidate keeps talking, so the interviewer must stay quiet until it ends
BARGE_IN = {
    "en": ("Sorry, wait a second.", "I would like to ask something before we start, if that "
           "is okay with you, because I am not sure how long the interview takes and whether "
           "I may take notes while we talk."),
    "ko": ("죄송한데, 잠시만요.", "시작하기 전에 한 가지 여쭤봐도 될까요? 면접이 얼마나 걸리는지, "
           "그리고 이야기하면서 메모를 해도 되는지 궁금합니다."),
}  # fmt: skip
# said over the interviewer's question: a listening signal (prompts/*/turn_taking.yaml)
BACKCHANNEL = {"en": "Yeah.", "ko": "네."}
GAP_S = 0.4  # a hole this long in the interviewer's speech, starting while the candidate
# speaks (or just after), is a pause; espeak's own pauses are shorter or elsewhere
ANSWERS = {
    "en": [
        "Yes, I'm ready.",
        "Hi, I'm Alex. I have been a backend engineer for two years, working mostly on a "
        "payments API in Python, and before that I studied computer science.",
        "I redesigned the slowest queries and added a cache, which cut the latency by forty "
        "percent.",
    ],
    "ko": [
        "네, 준비됐습니다.",
        "안녕하세요, 저는 이 년 차 백엔드 개발자이고 주로 결제 시스템을 파이썬으로 개발했습니다.",
        "느린 쿼리를 다시 설계하고 캐시를 추가해서 지연 시간을 사십 퍼센트 줄였습니다.",
    ],
}


@dataclass
class Turn:
    start: float
    end: float


@dataclass
class ScenarioResult:
    room: str
    agent_identity: str = ""
    avatar_identity: str = ""
    avatar_kind: int = 0
    avatar_attributes: dict[str, str] = field(default_factory=dict)
    turns: list[Turn] = field(default_factory=list)  # interviewer turns heard (avatar)
    voice_to_voice_s: list[float] = field(default_factory=list)
    answers: list[Turn] = field(default_factory=list)
    rpc_by_candidate: str = ""  # what lk.clear_buffer from the candidate returned
    pause_rpc_by_candidate: str = ""  # what interview.avatar.pause from the candidate returned
    fed_audio_at: float = 0.0  # the candidate pushed audio at the avatar (should be ignored)
    barge_in: Turn | None = None
    barge_silence_at: float | None = None  # interviewer audio went quiet after the barge-in
    barge_words_s: float = 0.0  # length of its first phrase, before the breath
    barge_wall: float = 0.0  # its voice's onset, wall clock (to line up with the services')
    # from the avatar service (when its URL is given): the avatar's stops (pause,
    # clear_buffer) after the barge-in began, as it reports them (wall clock, ms to silence)
    avatar_stops: list[dict[str, float | str]] = field(default_factory=list)
    # its info at the end (before the kill, in the fallback scenario)
    avatar_session: dict[str, object] = field(default_factory=dict)
    # at the same moment, from the dev server: the track sids each participant publishes and
    # subscribes to, by identity ({} against another server)
    room_tracks: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # and the candidate's WebRTC counts for the avatar's video (RoomProbe.video_receiver)
    video_receiver: dict[str, object] = field(default_factory=dict)
    # the same barge-in again later, 1 s into the interviewer's third turn (when asked for):
    # its receive buffer has settled by then, while the first comes in the interview's first
    # seconds (agent/hearing.py)
    late_barge_in: Turn | None = None
    late_barge_silence_at: float | None = None
    late_barge_wall: float = 0.0
    late_avatar_stops: list[dict[str, float | str]] = field(default_factory=list)
    backchannel: Turn | None = None  # "yeah" over a question
    backchannel_wall: float = 0.0  # its start, wall clock (to find the turn in the transcript)
    backchannel_paused_at: float | None = None  # the interviewer's audio stopped
    backchannel_resumed_at: float | None = None  # and came back (None: it never did)
    killed_at: float | None = None
    fallback_heard_at: float | None = None
    avatar: Received | None = None
    agent: Received | None = None
    notes: list[str] = field(default_factory=list)
    host: Hiccups | None = None  # how starved the host was meanwhile, when measured

    @property
    def fallback_s(self) -> float | None:
        if self.killed_at is None or self.fallback_heard_at is None:
            return None
        return self.fallback_heard_at - self.killed_at

    def save_recording(self, path: Path) -> None:
        """What the candidate received of the interviewer (audio loudness and mouth opening over
        time) with the turns and barge-ins, as .npz: kept for a look at a failed assertion or an
        outlying figure."""
        if self.avatar is None:
            return
        rec = self.avatar
        np.savez(
            path,
            audio_t=rec.audio_t,
            audio_rms=rec.audio_rms,
            video_t=[v.t for v in rec.video],
            video_timestamp_us=[v.timestamp_us for v in rec.video],
            mouth=[v.mouth for v in rec.video],
            turns=[(t.start, t.end) for t in self.turns],
            answers=[(t.start, t.end) for t in self.answers],
            barge_ins=[(t.start, t.end) for t in (self.barge_in, self.late_barge_in) if t],
        )

    def longest_turn(self) -> Turn:
        """The longest interviewer turn spoken straight through (no backchannel pause in it)."""
        bc = self.backchannel

        def clean(t: Turn) -> bool:
            return bc is None or not (t.start <= bc.end and bc.start <= t.end)

        return max(filter(clean, self.turns), key=lambda t: t.end - t.start)

    @property
    def backchannel_did_not_interrupt(self) -> bool | None:
        """The question went on after the backchannel (None: no backchannel was said)."""
        if self.backchannel is None:
            return None
        return self.backchannel_resumed_at is not None

    @property
    def hearing_ms(self) -> list[float]:
        """How late the interviewer heard the candidate (its receive buffer), as it reported it
        over the interview (agent/hearing.py)."""
        return self.agent.numbers_in(HEARING_ATTRIBUTE) if self.agent is not None else []

    @property
    def barge_in_to_avatar_pause_s(self) -> float | None:
        """Candidate speech onset -> the avatar received the pause (VAD, the agent, the RPC)."""
        return _first_pause_after(self.avatar_stops, self.barge_wall)

    @property
    def late_barge_in_to_avatar_pause_s(self) -> float | None:
        return _first_pause_after(self.late_avatar_stops, self.late_barge_wall)

    @property
    def barge_in_to_silence_s(self) -> float | None:
        if self.barge_in is None or self.barge_silence_at is None:
            return None
        return self.barge_silence_at - self.barge_in.start

    @property
    def late_barge_in_to_silence_s(self) -> float | None:
        if self.late_barge_in is None or self.late_barge_silence_at is None:
            return None
        return self.late_barge_silence_at - self.late_barge_in.start


def _first_pause_after(stops: list[dict[str, float | str]], wall: float) -> float | None:
    """Seconds from `wall` to the first pause among the avatar's reported stops."""
    pauses = [float(x["at"]) for x in stops if x.get("kind") == "pause"]
    return min(pauses) - wall if pauses and wall else None


def _token(key: str, secret: str, identity: str, room: str) -> str:
    return (
        api.AccessToken(key, secret)
        .with_identity(identity)
        .with_name(identity)
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .to_jwt()
    )


async def until(check: Callable[[], bool], within_s: float, what: str) -> None:
    """Wait until `check()` holds; TimeoutError naming `what` after `within_s`."""
    deadline = time.perf_counter() + within_s
    while not check():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out after {within_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.03)


def _first_loud_after(rec: Received, t: float) -> float | None:
    times = rec.loud_times(LOUD)
    after = times[times > t]
    return float(after[0]) if after.size else None


def _first_quiet(rec: Received, t: float, gap: float) -> float | None:
    """The last loud time before the first quiet stretch of `gap` seconds or more (ended or
    still going on) that is under way at t or begins after it. It lies before t when the audio
    had gone quiet just before t, between two words, and stayed quiet."""
    times = rec.loud_times(LOUD)
    times = np.concatenate([times[times <= t][-1:], times[times > t]])
    long = np.flatnonzero(np.diff(times) >= gap)
    if long.size:
        return float(times[int(long[0])])
    now = rec.audio_t[-1] if rec.audio_t else 0.0
    return float(times[-1]) if times.size and now - times[-1] >= gap else None


def _first_gap(rec: Received, t: float, gap: float, starts_by: float) -> tuple[float, float] | None:
    """(last loud before, first loud after) the first quiet stretch of `gap` seconds or more
    that begins between t and `starts_by` and has ended (the audio is loud again)."""
    times = rec.loud_times(LOUD)
    times = times[times >= t]
    long = [i for i in np.flatnonzero(np.diff(times) >= gap) if times[i] <= starts_by]
    if not long:
        return None
    i = int(long[0])
    return float(times[i]), float(times[i + 1])


async def _get_json(url: str, headers: dict[str, str] | None = None) -> Any:
    """The JSON at `url`, None when it cannot be had (a service gone, or another server)."""
    import aiohttp

    try:
        async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
            return await resp.json(content_type=None)  # livekit-server sends no JSON type
    except (aiohttp.ClientError, OSError, ValueError):
        return None


async def _avatar_sessions(service_url: str, room: str) -> list[dict[str, Any]]:
    """The avatar service's sessions in this room (its `GET /sessions`)."""
    listed = await _get_json(f"{service_url.rstrip('/')}/sessions")
    sessions = listed.get("sessions", []) if isinstance(listed, dict) else []
    return [s for s in sessions if s.get("room") == room]


async def _avatar_session(service_url: str, room: str) -> dict[str, Any]:
    """The avatar's session in this room as the service reports it ({} when there is none)."""
    return next(iter(await _avatar_sessions(service_url, room)), {})


async def dev_server_stats(url: str, api_key: str, api_secret: str) -> dict[str, Any]:
    """The dev server's `/debug/stats` (rooms, tracks, forwarding), {} from another server."""
    http_url = url.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
    token = api.AccessToken(api_key, api_secret).with_grants(api.VideoGrants(room_list=True))
    headers = {"Authorization": f"Bearer {token.to_jwt()}"}
    stats = await _get_json(f"{http_url.rstrip('/')}/debug/stats", headers)
    return stats if isinstance(stats, dict) else {}


async def _room_tracks(
    url: str, room: str, api_key: str, api_secret: str
) -> dict[str, dict[str, list[str]]]:
    """Who publishes and subscribes to which tracks in this room: from the dev server's stats,
    else from livekit-server's `/debug/rooms` (served in its development mode, as the tests run
    it: agent/livekit_server.py)."""
    tracks = (await dev_server_stats(url, api_key, api_secret)).get("rooms", {}).get(room, {})
    if tracks:
        return tracks  # type: ignore[no-any-return]
    http_url = url.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
    rooms = await _get_json(f"{http_url.rstrip('/')}/debug/rooms")
    found = [r for r in rooms if r.get("Name") == room] if isinstance(rooms, list) else []
    return livekit_room_tracks(found[0]) if found else {}


def livekit_room_tracks(debug_room: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """One room of livekit-server's `/debug/rooms` as {identity: {"published": [track sids],
    "subscribed": [track sids]}}, the shape of the dev server's stats."""
    people = debug_room.get("Participants") or {}
    identity_of = {info.get("ID"): identity for identity, info in people.items()}
    tracks: dict[str, dict[str, list[str]]] = {
        identity: {"published": [], "subscribed": []} for identity in people
    }
    for identity, info in people.items():
        published = (info.get("UpTrackManager") or {}).get("PublishedTracks") or {}
        for track_sid, track in published.items():
            tracks[identity]["published"].append(track_sid)
            for down in track.get("DownTracks") or []:
                subscriber = identity_of.get(down.get("SubscriberID"))
                if subscriber is not None:
                    tracks[subscriber]["subscribed"].append(track_sid)
    for entry in tracks.values():
        entry["published"].sort()
        entry["subscribed"].sort()
    return tracks


async def _note_the_room(
    r: ScenarioResult, probe: RoomProbe, url: str, keys: tuple[str, str], service_url: str | None
) -> None:
    """The avatar's session as its service reports it, who publishes and subscribes to what,
    and how the avatar's video arrived: at the end of the interview, or just before the avatar
    service is killed."""
    r.video_receiver = await probe.video_receiver(r.avatar_identity)
    if service_url:
        r.avatar_session = await _avatar_session(service_url, r.room)
    r.room_tracks = await _room_tracks(url, r.room, *keys)


async def _avatar_stops(service_url: str, room: str) -> list[dict[str, float | str]]:
    """The avatar's recent stops in this room, as the avatar service reports them."""
    return [x for s in await _avatar_sessions(service_url, room) for x in s.get("stops", [])]


def _speaking(rec: Received, window_s: float = 0.1) -> bool:
    """Most of the last `window_s` of this participant's audio was loud."""
    steps = max(1, round(window_s / STEP_S))
    rms = rec.audio_rms[-steps:]
    return len(rms) == steps and sum(v > LOUD for v in rms) >= 0.75 * steps


def _quiet_since(rec: Received, t: float, gap: float) -> float | None:
    """The time the audio went quiet after t, if it has stayed quiet for `gap` seconds."""
    times = rec.loud_times(LOUD)
    last = times[-1] if times.size else -1.0
    now = rec.audio_t[-1] if rec.audio_t else 0.0
    if last > t and now - last >= gap:
        return float(last)
    return None


async def _barge(
    probe: RoomProbe,
    av: Received,
    barge: np.ndarray,
    turn_s: float,
    service_url: str | None,
    room: str,
) -> tuple[Turn, float | None, float, list[dict[str, float | str]]]:
    """Talk over the interviewer: (what was said, when its audio first went quiet, the voice's
    onset on the wall clock, the avatar's stops since, when the service's URL is given). It
    starts while the interviewer is audibly mid-word (up to 1 s later): one between two
    sentences is quiet already and would count as stopped at once."""
    with contextlib.suppress(TimeoutError):
        await until(lambda: _speaking(av), 1.0, "the interviewer mid-word")
    asked_wall = time.time()
    s, e = await probe.say(barge, silence_after_s=0.2)
    # the voice began after what the microphone still held, not when it was asked for
    wall = time.time() - (time.perf_counter() - s)
    await until(lambda: _first_quiet(av, s, 0.8) is not None, turn_s, "silence after barge-in")
    stops = []
    if service_url:
        stops = [x for x in await _avatar_stops(service_url, room) if x["at"] >= asked_wall]
    # the first time it went quiet (a reply to the first words, said in the candidate's breath
    # and held again at once, does not move this)
    return Turn(s, e), _first_quiet(av, s, 0.8), wall, stops


async def run_scenario(
    url: str,
    api_key: str,
    api_secret: str,
    config: dict[str, object],
    work_dir: Path,
    *,
    avatar_service_pid: int | None = None,
    avatar_service_url: str | None = None,
    barge_in: bool = True,
    late_barge_in: bool = False,
    probe_security: bool = True,
    turn_timeout_s: float = 90.0,
    video_queue_frames: int = 1,
) -> ScenarioResult:
    """One interview: greeting, answers, a barge-in, and (with a pid) the avatar service killed
    while the interviewer speaks; without a pid, `late_barge_in` barges in once more into the
    interviewer's third turn. Returns what the candidate received."""
    language = str(config.get("language", "en"))
    room = f"interview-{uuid.uuid4().hex[:8]}"
    result = ScenarioResult(room=room)
    async with api.LiveKitAPI(url, api_key, api_secret) as lk:
        await lk.room.create_room(interview_room(room, json.dumps(config)))
    backchannel = await espeak(BACKCHANNEL[language], language, work_dir / "backchannel.wav")
    answers = []
    for i, text in enumerate(ANSWERS[language]):
        answers.append(await espeak(text, language, work_dir / f"answer{i}.wav"))
    first, rest = BARGE_IN[language]
    words = await espeak(first, language, work_dir / "barge_in1.wav")
    result.barge_words_s = words.size / AUDIO_RATE
    barge = np.concatenate(
        [
            words,
            np.zeros(int(0.6 * AUDIO_RATE), dtype=np.int16),
            await espeak(rest, language, work_dir / "barge_in2.wav"),
        ]
    )
    probe = RoomProbe(video_queue_frames)
    await probe.connect(url, _token(api_key, api_secret, "candidate", room))
    await probe.start_microphone()
    try:
        await _drive(url, (api_key, api_secret), probe, result, answers, barge, backchannel,
                     avatar_service_pid,
                     avatar_service_url, barge_in, late_barge_in, probe_security,
                     turn_timeout_s)  # fmt: skip
    finally:
        await probe.aclose()
    return result


async def _drive(
    url: str,
    keys: tuple[str, str],
    probe: RoomProbe,
    r: ScenarioResult,
    answers: list[np.ndarray],
    barge: np.ndarray,
    backchannel: np.ndarray,
    service_pid: int | None,
    service_url: str | None,
    barge_in: bool,
    late_barge_in: bool,
    probe_security: bool,
    turn_s: float,
) -> None:
    def avatar_rec() -> Received | None:
        for rec in probe.received.values():
            if rec.attributes.get("lk.publish_on_behalf"):
                return rec
        return None

    await until(lambda: avatar_rec() is not None and bool(avatar_rec().video), 60, "avatar video")
    av = avatar_rec()
    assert av is not None
    r.avatar = av
    r.avatar_identity = av.identity
    r.avatar_kind = av.kind
    r.avatar_attributes = dict(av.attributes)
    r.agent_identity = av.attributes["lk.publish_on_behalf"]
    r.agent = probe.of(r.agent_identity)

    # 1. the greeting: a candidate token cannot clear it, but the candidate can barge in
    await until(lambda: _first_loud_after(av, 0) is not None, turn_s, "the greeting")
    start = _first_loud_after(av, 0) or 0.0
    if probe_security:
        await until(lambda: time.perf_counter() > start + 0.8, 10, "mid-greeting")
        try:
            r.rpc_by_candidate = await probe.room.local_participant.perform_rpc(
                destination_identity=av.identity, method="lk.clear_buffer", payload=""
            )
        except rtc.RpcError as e:
            r.rpc_by_candidate = f"error {e.code}: {e.message}"
        try:  # nor pause it (the project's extension, guarded the same way)
            r.pause_rpc_by_candidate = await probe.room.local_participant.perform_rpc(
                destination_identity=av.identity, method="interview.avatar.pause", payload=""
            )
        except rtc.RpcError as e:
            r.pause_rpc_by_candidate = f"error {e.code}: {e.message}"
    if barge_in:
        # past livekit-agents' 3 s echo-cancellation warm-up, when it ignores candidate audio
        await until(lambda: time.perf_counter() > start + 3.5, 10, "barge-in time")
        if _quiet_since(av, start, 0.8) is not None:
            r.notes.append("the greeting ended before the barge-in")
        r.barge_in, quiet, r.barge_wall, r.avatar_stops = await _barge(
            probe, av, barge, turn_s, service_url, r.room
        )
        s, e = r.barge_in.start, r.barge_in.end
        r.barge_silence_at = quiet
        r.turns.append(Turn(start, quiet or 0.0))
        # the interviewer answers the interruption (a repeat, or going on)
        await until(lambda: _first_loud_after(av, e) is not None, turn_s, "reply to barge-in")
        start = _first_loud_after(av, e) or 0.0
        if quiet is not None and quiet < e:  # it had stopped: its reply is a real turn
            r.voice_to_voice_s.append(start - e)
    await until(lambda: _quiet_since(av, start, TURN_GAP_S) is not None, turn_s, "turn end")
    r.turns.append(Turn(start, _quiet_since(av, start, TURN_GAP_S) or 0.0))

    if probe_security:  # a candidate feeding the avatar audio: must stay unheard
        r.fed_audio_at = time.perf_counter()
        tone = (8000 * np.sin(2 * np.pi * 300 * np.arange(AUDIO_RATE) / AUDIO_RATE)).astype(
            np.int16
        )
        writer = await probe.room.local_participant.stream_bytes(
            "fake-speech",
            topic="lk.audio_stream",
            destination_identities=[av.identity],
            attributes={"sample_rate": str(AUDIO_RATE), "num_channels": "1"},
        )
        await writer.write(tone.tobytes())
        await writer.aclose()
        await asyncio.sleep(1.5)

    # 2. answer, hear the next question (voice-to-voice as the candidate hears it), answer it
    s, e = await probe.say(answers[0], silence_after_s=0.2)
    r.answers.append(Turn(s, e))
    await until(lambda: _first_loud_after(av, e) is not None, turn_s, "the next question")
    q_start = _first_loud_after(av, e) or 0.0
    r.voice_to_voice_s.append(q_start - e)
    # a "yeah" 1 s into the question: the interviewer pauses, then goes on with the question
    await until(lambda: time.perf_counter() > q_start + 1.0, 10, "backchannel time")
    if _quiet_since(av, q_start, 0.6) is None:
        r.backchannel_wall = time.time()
        bs, be = await probe.say(backchannel, silence_after_s=0.0)
        r.backchannel = Turn(bs, be)
        # the first hole in the interviewer's speech after the "yeah" began, once it speaks again
        deadline = be + 8.0
        while time.perf_counter() < deadline:
            hole = _first_gap(av, bs, GAP_S, starts_by=be + 0.5)
            if hole is not None:
                r.backchannel_paused_at, r.backchannel_resumed_at = hole
                break
            await asyncio.sleep(0.05)
        else:
            if _first_loud_after(av, be + 1.0) is not None:  # went on without a pause
                r.backchannel_resumed_at = _first_loud_after(av, be + 1.0)
            else:
                r.notes.append("the interviewer did not go on after the backchannel")
    else:
        r.notes.append("the question ended before the backchannel")
    await until(lambda: _quiet_since(av, q_start, TURN_GAP_S) is not None, turn_s, "question end")
    r.turns.append(Turn(q_start, _quiet_since(av, q_start, TURN_GAP_S) or 0.0))
    s, answer_end = await probe.say(answers[1], silence_after_s=0.2)
    r.answers.append(Turn(s, answer_end))

    # 3. the reply; kill the avatar service while it speaks
    await until(lambda: _first_loud_after(av, answer_end) is not None, turn_s, "the reply")
    reply = _first_loud_after(av, answer_end) or 0.0
    r.voice_to_voice_s.append(reply - answer_end)
    if service_pid is None:
        if late_barge_in:
            await until(lambda: time.perf_counter() > reply + 1.0, 5, "late barge-in time")
            if _quiet_since(av, reply, 0.8) is None:
                late = await _barge(probe, av, barge, turn_s, service_url, r.room)
                r.late_barge_in, quiet, r.late_barge_wall, r.late_avatar_stops = late
                r.late_barge_silence_at = quiet
                r.turns.append(Turn(reply, quiet or 0.0))
                # and the interviewer's answer to it
                e = r.late_barge_in.end
                await until(lambda: _first_loud_after(av, e) is not None, turn_s, "late reply")
                reply = _first_loud_after(av, e) or 0.0
            else:
                r.notes.append("the third turn ended before the late barge-in")
        await until(lambda: _quiet_since(av, reply, TURN_GAP_S) is not None, turn_s, "reply end")
        r.turns.append(Turn(reply, _quiet_since(av, reply, TURN_GAP_S) or 0.0))
        # the avatar's own figures among them
        await _note_the_room(r, probe, url, keys, service_url)
        return
    # mid-sentence: 0.4 s into the reply, while its audio is still arriving
    await until(lambda: time.perf_counter() > reply + 0.4, 5, "kill time")
    await _note_the_room(r, probe, url, keys, service_url)
    r.killed_at = time.perf_counter()
    os.kill(service_pid, signal.SIGKILL)
    agent = r.agent
    assert agent is not None
    try:
        await until(
            lambda: _first_loud_after(agent, r.killed_at or 0.0) is not None, 20, "fallback audio"
        )
        r.fallback_heard_at = _first_loud_after(agent, r.killed_at)
    except TimeoutError:
        # the reply may have ended right at the kill: the next turn then shows the fallback
        s, e = await probe.say(answers[2], silence_after_s=0.2)
        r.answers.append(Turn(s, e))
        await until(lambda: _first_loud_after(agent, e) is not None, turn_s, "fallback turn")
        r.fallback_heard_at = _first_loud_after(agent, e)
        r.notes.append("the reply ended before the fallback; measured on the next turn")
