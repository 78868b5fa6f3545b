"""The interviewer's face: asks the co-located avatar service to join, else speaks audio-only.

`ServiceAvatar` is a livekit-agents `AvatarSession` for this project's avatar service
(`python -m avatar_worker serve`). Started before `session.start()`, it mints the avatar's token
(kind agent, its own identity, `lk.publish_on_behalf` = the agent), asks the service to join and
points the session's audio tail at the avatar (`DataStreamAudioOutput`, which waits for the
avatar's video track). When the service is unreachable or full, nothing is replaced and the
session publishes its own audio as usual. When the avatar does not show up in time or leaves
mid-interview, the audio tail is switched to the agent's own published track within a second and
the interview goes on audio-only; both are logged. That track is published (silent) when the
avatar is requested, so the switch needs no publication round trip.

A killed or hung avatar service is noticed from the service's own heartbeat, not from the room:
the agent keeps the session's watch stream open (`GET /sessions/{id}/watch`, service.py), and the
stream breaking (a killed process closes its sockets at once), ending, or going silent for
WATCH_SILENCE_S is the avatar lost. livekit-server keeps a participant whose connection dropped
for ~20 s before telling the room; the dev server tells at once, and leaving the room remains a
reason too. After such a loss the avatar is removed from the room through the server API, so the
candidate's client stops showing its frozen video; that is another identity than the job's, so
the server does not end the interviewer's job for it (livekit-server pkg/rtc/room.go: only a
job's own participant leaving sends TerminateJob).

When the service announces the pause extension (avatar_worker/protocol.py), the avatar tail can
pause and resume like the agent's own audio track, so a candidate who starts talking holds the
interviewer at once and a backchannel lets it go on (agent/barge_in.py); an older service keeps
LiveKit's plain behaviour (no pause, interruptions only).

`avatar_service_load` reads the avatar service's load (`GET /health`) for the worker's reported
load (capacity.py), so LiveKit sends new interviews to hosts with room for another avatar.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import urllib.request
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from livekit import api, rtc
from livekit.agents import AgentSession, JobContext, get_job_context
from livekit.agents.types import ATTRIBUTE_PUBLISH_ON_BEHALF
from livekit.agents.voice.avatar import AvatarSession, DataStreamAudioOutput
from livekit.agents.voice.io import AudioOutputCapabilities

from avatar_worker.protocol import EXTENSION_PAUSE, EXTENSION_WATCH, RPC_PAUSE, RPC_RESUME

logger = logging.getLogger("interview.avatar")

DEFAULT_SERVICE_URL = "http://127.0.0.1:8089"
AVATAR_SAMPLE_RATE = 24000  # the avatar's own output rate: no resampling on its side
AVATAR_ATTRIBUTE = "interview.avatar"  # on the agent: "on", or why the interview is audio-only
# the service beats every 0.25 s: three beats missed is a hung service (a killed one is noticed
# at once, from its connection); the watchdog looks every WATCH_TICK_S
WATCH_SILENCE_S = 0.75
WATCH_TICK_S = 0.1


@dataclass(frozen=True)
class AvatarServiceSettings:
    """Where the avatar service and the LiveKit server are (DESIGN.md, Environment)."""

    service_url: str = DEFAULT_SERVICE_URL
    secret: str = ""
    livekit_url: str = "ws://127.0.0.1:7880"
    api_key: str = "devkey"
    api_secret: str = "secret"
    request_timeout_s: float = 3.0
    # starting a session may first build its avatar: a 512 px portrait the service has not
    # drawn yet takes ~4 s on an idle 2-core host, ~18 s with both cores busy with other work
    # (avatar_worker/build_bench.py); given up sooner, the interview went audio-only for good
    start_timeout_s: float = 30.0
    join_timeout_s: float = 15.0  # from the request until the avatar's video track is seen
    watch_silence_s: float = WATCH_SILENCE_S  # a silent watch stream: the service is hung

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AvatarServiceSettings:
        env = os.environ if env is None else env
        d = cls()
        return cls(
            service_url=env.get("AVATAR_SERVICE_URL") or d.service_url,
            secret=env.get("AVATAR_SERVICE_SECRET", ""),
            livekit_url=env.get("LIVEKIT_URL") or d.livekit_url,
            api_key=env.get("LIVEKIT_API_KEY") or d.api_key,
            api_secret=env.get("LIVEKIT_API_SECRET") or d.api_secret,
        )

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"} if self.secret else {}


class ReplayableAvatarOutput(DataStreamAudioOutput):
    """DataStreamAudioOutput that can pause the avatar and replay what it lost.

    Pause: with `pausable` (the service announced the extension) the output declares
    `pause=True` and sends `interview.avatar.pause` / `interview.avatar.resume`; these and
    `lk.clear_buffer` go out in the order they were asked for, so a clear never overtakes a
    pause. An avatar that turns out not to know the RPCs ends pausing for the interview.

    Replay: the segment in flight is kept until the avatar reports it played, so a segment the
    avatar took with it (service killed mid-sentence) can be replayed on the agent's own track
    from about where the candidate stopped hearing it.

    Pacing: audio goes out at most `lead_s` ahead of where the avatar plays. The audio stream
    and the RPCs share the room's reliable, ordered data channel, so a whole TTS answer sent at
    once (espeak-ng makes seconds of speech in milliseconds) put every pause or clear behind
    hundreds of kilobytes; on a loaded dev server a pause took 7 s to arrive."""

    def __init__(
        self, *args: Any, pausable: bool = False, lead_s: float = 1.0, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._capabilities = AudioOutputCapabilities(pause=pausable)
        self._lead_s = lead_s
        self._sent_s = 0.0  # audio of this segment sent so far
        self._clock_from: float | None = None  # the avatar's play clock: start of the segment
        self._held_s = 0.0  # paused time within the segment
        self._paused_at: float | None = None
        self._paused = False
        self._control: asyncio.Task[None] | None = None  # the last pause/resume RPC
        self._segment: list[rtc.AudioFrame] = []
        self._segment_open = False
        self._segment_started_at: float | None = None
        self._lost = False

    def mark_lost(self) -> None:
        """The avatar is gone: a clear asks nobody and ends what it held at once. (An RPC to a
        hung avatar would wait for its timeout, holding the replay on the agent's own track.)"""
        self._lost = True

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        if not self.can_pause:
            super().pause()  # LiveKit's warning: this avatar cannot pause
            return
        if not self._paused:
            self._paused = True
            self._paused_at = time.monotonic()
            self._send_control(RPC_PAUSE)

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self._end_hold()
            self._send_control(RPC_RESUME)

    def _end_hold(self) -> None:
        if self._paused_at is not None:
            self._held_s += time.monotonic() - self._paused_at
            self._paused_at = None

    def clear_buffer(self) -> None:
        if self._paused:
            # the avatar's clear ends its pause; with nothing to clear, resume it explicitly
            self._paused = False
            self._end_hold()
            if not (self._started and self._pending_playback_count):
                self._send_control(RPC_RESUME)
        super().clear_buffer()

    def _send_control(self, method: str) -> None:
        self._control = asyncio.create_task(self._control_rpc(self._control, method))
        self._tasks.add(self._control)
        self._control.add_done_callback(self._tasks.discard)

    async def _control_rpc(self, previous: asyncio.Task[None] | None, method: str) -> None:
        await _after(previous)
        try:
            await self._room.local_participant.perform_rpc(
                destination_identity=self._destination_identity, method=method, payload=""
            )
        except rtc.RpcError as e:
            if e.code == rtc.RpcError.ErrorCode.UNSUPPORTED_METHOD:
                self._capabilities = AudioOutputCapabilities(pause=False)
                logger.warning(
                    "the avatar does not support pause; interruptions only from now on",
                    extra={"identity": self._destination_identity},
                )
            else:
                logger.warning(
                    "avatar playback control failed",
                    extra={"method": method, "error": e.message},
                )

    async def _clear_buffer_task(self, pushed_duration: float, captured_segments: int) -> None:
        if self._lost:
            finished = self.captured_playout_segments - self._pending_playback_count
            for _ in range(captured_segments - finished):
                self.on_playback_finished(playback_position=pushed_duration, interrupted=True)
            return
        await _after(self._control)  # a pause sent before this clear arrives before it
        await super()._clear_buffer_task(pushed_duration, captured_segments)

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        if not self._segment_open:
            self._segment, self._segment_open, self._segment_started_at = [], True, None
            self._sent_s, self._clock_from, self._held_s = 0.0, None, 0.0
        self._segment.append(frame)
        await super().capture_frame(frame)
        await self._pace(frame.duration)

    async def _pace(self, duration: float) -> None:
        """Wait while the audio sent is more than `lead_s` ahead of the avatar's playback
        (estimated from the segment's first frame; a pause stops that clock)."""
        now = time.monotonic()
        if self._clock_from is None:
            self._clock_from = now
        self._sent_s += duration
        held = self._held_s + (now - self._paused_at if self._paused_at is not None else 0.0)
        ahead = self._sent_s - (now - self._clock_from - held)
        if ahead > self._lead_s:
            await asyncio.sleep(ahead - self._lead_s)

    def flush(self) -> None:
        super().flush()
        self._segment_open = False

    def on_playback_started(self, *, created_at: float) -> None:
        self._segment_started_at = created_at
        super().on_playback_started(created_at=created_at)

    def on_playback_finished(self, **kwargs: Any) -> None:
        self._segment = []  # played or interrupted: nothing to replay
        super().on_playback_finished(**kwargs)

    def unplayed(self, now: float, back_s: float = 0.4) -> list[rtc.AudioFrame]:
        """The segment's frames from `back_s` before the avatar's estimated play position (what
        was in flight to the candidate is heard again rather than lost)."""
        played = 0.0
        if self._segment_started_at is not None:
            played = max(0.0, now - self._segment_started_at - back_s)
        out, at = [], 0.0
        for frame in self._segment:
            if at + frame.duration > played:
                out.append(frame)
            at += frame.duration
        return out


# RPC requests travel in order on the room's reliable data channel, so a control request only has
# to be sent before the next one; its answer can be slow on a busy server and is not waited for
# longer than this
CONTROL_ORDER_WAIT_S = 0.3


async def _after(previous: asyncio.Task[None] | None) -> None:
    """Let an earlier control RPC go out first (bounded: see CONTROL_ORDER_WAIT_S)."""
    if previous is None or previous.done():
        return
    try:
        await asyncio.wait_for(asyncio.shield(previous), CONTROL_ORDER_WAIT_S)
    except Exception:  # timed out, or failed: the task logs its own failure
        pass


class AvatarUnavailable(Exception):
    """The avatar service cannot serve this interview (unreachable, full, refused)."""


class ServiceAvatar(AvatarSession):
    """One interview's avatar through the co-located avatar service, with audio-only fallback."""

    def __init__(self, avatar: str, settings: AvatarServiceSettings | None = None) -> None:
        super().__init__()
        self.avatar = avatar
        self.settings = settings or AvatarServiceSettings.from_env()
        self.active = False  # the audio tail goes to the avatar
        self.fallback_reason = ""
        self.fallback_at: float | None = None
        self._identity = ""
        self._agent_identity = ""
        self._service_session = ""
        self._session: AgentSession | None = None
        self._room: rtc.Room | None = None
        self._fallback_task: asyncio.Task[None] | None = None
        self._join_watch: asyncio.Task[None] | None = None
        self._service_watch: asyncio.Task[None] | None = None
        self.service_lost = ""  # why the service was given up on (its watch broke or went silent)
        self._own_output: Any = None
        self._tail: ReplayableAvatarOutput | None = None
        self._closing = False
        self._log: dict[str, str] = {}

    @property
    def avatar_identity(self) -> str:
        return self._identity

    @property
    def provider(self) -> str:
        return "interview-avatar-service"

    # ---- start ---------------------------------------------------------------------------
    async def start(self, agent_session: AgentSession, room: rtc.Room) -> None:  # type: ignore[override]
        """Ask the service to join; on success the audio tail goes to the avatar. Never raises
        for an unavailable service: the interview then runs audio-only."""
        job = get_job_context(required=False)
        self._agent_identity = (
            job.local_participant_identity if job else room.local_participant.identity
        )
        self._identity = f"avatar-{self._agent_identity}"
        self._session, self._room = agent_session, room
        interview = room.name or (job.job.id if job else "")  # as agent/worker.py names it
        self._log = {
            "room": room.name,
            "interview": interview,
            "avatar": self.avatar,
            "identity": self._identity,
        }
        await super().start(agent_session, room)
        try:
            info = await self._request_session(room.name)
        except AvatarUnavailable as e:
            self._note_audio_only(str(e))
            return
        self._service_session = str(info.get("id", ""))
        extensions = info.get("extensions") or ()
        pausable = EXTENSION_PAUSE in extensions
        self._tail = ReplayableAvatarOutput(
            room,
            destination_identity=self._identity,
            sample_rate=AVATAR_SAMPLE_RATE,
            wait_remote_track=rtc.TrackKind.KIND_VIDEO,
            wait_playback_start=True,
            pausable=pausable,
        )
        agent_session.output.replace_audio_tail(self._tail)
        self.active = True
        # the fallback track is published now, silent, so that losing the avatar mid-sentence
        # costs a sink swap rather than a publication and subscription round trip
        self._own_output = self._own_audio_output(room)
        self._fallback_task = asyncio.create_task(self._own_output.start())
        room.on("participant_disconnected", self._on_participant_disconnected)
        room.on("reconnected", self._on_reconnected)
        self._join_watch = asyncio.create_task(self._watch_join())
        self._log["session"] = self._service_session
        watched = EXTENSION_WATCH in extensions and bool(self._service_session)
        if watched:
            self._service_watch = asyncio.create_task(self._watch_service())
        logger.info("avatar requested", extra={**self._log, "pausable": pausable, "watch": watched})

    def _token(self, room_name: str) -> str:
        s = self.settings
        return (
            api.AccessToken(s.api_key, s.api_secret)
            .with_kind("agent")
            .with_identity(self._identity)
            .with_name("Interviewer")
            .with_grants(
                api.VideoGrants(
                    room_join=True,
                    room=room_name,
                    can_publish=True,
                    can_subscribe=False,  # audio arrives as data streams
                    can_publish_data=True,
                )
            )
            .with_attributes({ATTRIBUTE_PUBLISH_ON_BEHALF: self._agent_identity})
            .to_jwt()
        )

    async def _request_session(self, room_name: str) -> dict[str, Any]:
        s = self.settings
        body = {
            "livekit_url": s.livekit_url,
            "token": self._token(room_name),
            "avatar": self.avatar,
        }
        url = f"{s.service_url.rstrip('/')}/sessions"
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.post(
                    url,
                    json=body,
                    headers=s.headers(),
                    timeout=aiohttp.ClientTimeout(
                        total=s.start_timeout_s, connect=s.request_timeout_s
                    ),
                ) as resp,
            ):
                text = await resp.text()
                if resp.status != 201:
                    try:
                        reason = json.loads(text).get("error", text)
                    except ValueError:
                        reason = text[:200]
                    raise AvatarUnavailable(f"avatar service refused ({resp.status}): {reason}")
                return json.loads(text)  # type: ignore[no-any-return]
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise AvatarUnavailable(
                f"avatar service at {s.service_url} unreachable ({e.__class__.__name__})"
            ) from None

    # ---- fallback ------------------------------------------------------------------------
    async def _watch_join(self) -> None:
        try:
            await self.wait_for_join(timeout=self.settings.join_timeout_s)
        except TimeoutError:
            self.fall_back(f"the avatar did not join within {self.settings.join_timeout_s:.0f} s")
            return
        logger.info("avatar joined the room", extra=self._log)
        self._set_attribute("on")

    def _on_participant_disconnected(self, participant: rtc.RemoteParticipant) -> None:
        # while the agent's own connection is rebuilt from scratch the SDK reports everyone
        # gone and back again; whether the avatar really left is known once it is reconnected
        rejoining = (
            self._room is not None
            and self._room.connection_state == rtc.ConnectionState.CONN_RECONNECTING
        )
        if participant.identity == self._identity and not self._closing and not rejoining:
            self.fall_back("the avatar left the room")

    def _on_reconnected(self) -> None:
        if self._room is None or self._join_watch is None or not self._join_watch.done():
            return  # still joining: the join watch decides
        if self._identity not in self._room.remote_participants:
            self.fall_back("the avatar was gone when the agent's connection came back")

    # ---- the service's heartbeat -----------------------------------------------------------
    async def _watch_service(self) -> None:
        """Follow the service's watch stream for this session until it ends; then, unless the
        agent is closing, the avatar is lost: fall back and take the avatar out of the room."""
        reason = await self._follow_watch()
        if self._closing:
            return
        self.service_lost = reason
        logger.warning("avatar service lost: %s", reason, extra=self._log)
        self.fall_back(reason)
        await self._remove_from_room()

    async def _follow_watch(self) -> str:
        """Read the watch stream; returns why it ended (the service's words when it closed the
        session, else what broke)."""
        s = self.settings
        url = f"{s.service_url.rstrip('/')}/sessions/{self._service_session}/watch"
        timeout = aiohttp.ClientTimeout(total=None, connect=s.request_timeout_s)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.get(url, headers=s.headers()) as resp,
            ):
                if resp.status != 200:
                    text = (await resp.text())[:200]
                    try:
                        text = str(json.loads(text).get("error", text))
                    except (ValueError, AttributeError):
                        pass
                    return f"the avatar service lost the session ({resp.status}: {text})"
                return await self._read_beats(resp)
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            return f"the avatar service's connection broke ({e.__class__.__name__})"

    async def _read_beats(self, resp: aiohttp.ClientResponse) -> str:
        """Wait on the stream's lines beside a watchdog; the reader is never cancelled mid-line
        except when the service is given up on."""
        closed: list[str] = []
        last_beat = time.monotonic()

        async def read() -> str:
            nonlocal last_beat
            async for line in resp.content:
                last_beat = time.monotonic()
                try:
                    message = json.loads(line)
                except ValueError:
                    continue  # not ours to judge: any line is a sign of life
                if isinstance(message, dict) and message.get("state") == "closed":
                    closed.append(str(message.get("reason", "")))
            if closed:
                return f"the avatar service ended the session ({closed[-1] or 'no reason'})"
            return "the avatar service's connection closed"

        reader = asyncio.create_task(read())
        limit = self.settings.watch_silence_s
        try:
            while True:
                done, _ = await asyncio.wait((reader,), timeout=WATCH_TICK_S)
                if done:
                    return reader.result()  # a ClientError is the broken connection
                if time.monotonic() - last_beat <= limit:
                    continue
                # after a stall of this process beats may wait unread in the socket: the reader
                # takes them within a few turns of the loop, before the service is blamed
                for _ in range(3):
                    await asyncio.sleep(0)
                silent = time.monotonic() - last_beat
                if silent > limit and not reader.done():
                    return f"no heartbeat from the avatar service for {silent:.2f} s"
        finally:
            if not reader.done():
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)

    async def _remove_from_room(self) -> None:
        """Take the lost avatar out of the room now (the server would keep its frozen video in
        every client for ~20 s). It is not the job's participant, so the job goes on."""
        room = self._room
        if room is None or not room.isconnected() or self._identity not in room.remote_participants:
            return  # it already left
        s = self.settings
        try:
            async with api.LiveKitAPI(s.livekit_url, s.api_key, s.api_secret) as lk:
                await asyncio.wait_for(
                    lk.room.remove_participant(
                        api.RoomParticipantIdentity(room=room.name, identity=self._identity)
                    ),
                    s.request_timeout_s,
                )
        except (api.TwirpError, aiohttp.ClientError, OSError, TimeoutError) as e:
            # it left meanwhile (not found), or the server is busy: the server removes it later
            logger.info(
                "the lost avatar was not removed from the room",
                extra={**self._log, "error": f"{e.__class__.__name__}: {e}"},
            )
            return
        logger.info("removed the lost avatar from the room", extra=self._log)

    # ---- fallback (cont.) -----------------------------------------------------------------
    def fall_back(self, reason: str) -> None:
        """Publish the agent's own audio from now on; the interview goes on audio-only."""
        if not self.active or self._closing or self._session is None or self._room is None:
            return
        self.active = False
        self.fallback_at = time.time()
        lost: list[rtc.AudioFrame] = []
        if self._tail is not None:
            self._tail.mark_lost()
            lost = self._tail.unplayed(self.fallback_at)
        # swaps only the tail: transcript sync and recording stay attached, and speech still
        # being synthesized continues on the agent's own (already published) track
        self._session.output.replace_audio_tail(self._own_output)
        self._note_audio_only(reason)
        if lost:  # what the avatar held when it died is said again, not silently dropped
            self._session.say("", audio=_frames(lost), add_to_chat_ctx=False)
            logger.info(
                "replaying the avatar's unplayed audio",
                extra={**self._log, "seconds": round(sum(f.duration for f in lost), 2)},
            )

    @staticmethod
    def _own_audio_output(room: rtc.Room) -> Any:
        """The agent's own published audio, as RoomIO would create it (a private class in
        livekit-agents 1.8, hence imported here and typed loosely)."""
        from livekit.agents.voice.room_io._output import _ParticipantAudioOutput

        return _ParticipantAudioOutput(
            room,
            sample_rate=AVATAR_SAMPLE_RATE,
            num_channels=1,
            track_publish_options=rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
        )

    def _note_audio_only(self, reason: str) -> None:
        self.fallback_reason = reason
        logger.warning("interview continues audio-only: %s", reason, extra=self._log)
        self._set_attribute(f"off: {reason}")

    def _set_attribute(self, value: str) -> None:
        room = self._room
        if room is None or not room.isconnected():
            return

        async def _set() -> None:
            try:
                await room.local_participant.set_attributes({AVATAR_ATTRIBUTE: value})
            except Exception as e:  # informational only
                logger.debug("could not set the avatar attribute", extra={"error": str(e)})

        asyncio.get_running_loop().create_task(_set())

    # ---- close ---------------------------------------------------------------------------
    async def aclose(self) -> None:
        self._closing = True
        if self._room is not None:
            self._room.off("participant_disconnected", self._on_participant_disconnected)
            self._room.off("reconnected", self._on_reconnected)
        for task in (self._join_watch, self._fallback_task, self._service_watch):
            if task is not None and not task.done():
                task.cancel()
        if self._own_output is not None:
            await self._own_output.aclose()
        if not self.service_lost:  # a dead or hung service would only make the job wait
            await self._stop_service_session()
        await super().aclose()

    async def _stop_service_session(self) -> None:
        """Tell the service the interview is over (it also notices the agent leaving)."""
        if not self._service_session:
            return
        s = self.settings
        url = f"{s.service_url.rstrip('/')}/sessions/{self._service_session}"
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.delete(url, headers=s.headers(), timeout=aiohttp.ClientTimeout(total=2.0)),
            ):
                pass
        except (aiohttp.ClientError, TimeoutError, OSError):
            pass


async def _frames(frames: list[rtc.AudioFrame]) -> AsyncIterator[rtc.AudioFrame]:
    for frame in frames:
        yield frame


async def start_avatar(ctx: JobContext, session: AgentSession, avatar: str) -> ServiceAvatar | None:
    """The worker's hook, called before `session.start()`. Console jobs (no LiveKit room) speak
    through the terminal and get no avatar."""
    if ctx.is_fake_job():
        return None
    service_avatar = ServiceAvatar(avatar)
    await service_avatar.start(session, ctx.room)
    return service_avatar


# ---- load-aware dispatch -----------------------------------------------------------------


@dataclass
class _HealthCache:
    load: float = 0.0
    at: float = 0.0
    warned: bool = False


_HEALTH = _HealthCache()


def avatar_service_load(
    settings: AvatarServiceSettings | None = None, max_age_s: float = 2.0
) -> float:
    """The avatar service's load 0..1 (1 when full); 0 when it is unreachable, since interviews
    then still run audio-only. Blocking (the worker calls its load function in a thread)."""
    now = time.monotonic()
    if now - _HEALTH.at < max_age_s:
        return _HEALTH.load
    settings = settings or AvatarServiceSettings.from_env()
    url = f"{settings.service_url.rstrip('/')}/health"
    try:
        with urllib.request.urlopen(url, timeout=0.5) as resp:
            health = json.loads(resp.read())
        load = 1.0 if health.get("status") == "full" else float(health.get("load", 0.0))
        _HEALTH.warned = False
    except (OSError, ValueError) as e:
        if not _HEALTH.warned:
            logger.warning("avatar service health unavailable", extra={"error": str(e)})
            _HEALTH.warned = True
        load = 0.0
    _HEALTH.load, _HEALTH.at = load, now
    return load
