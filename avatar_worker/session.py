"""One avatar in one LiveKit room: joins with the agent's token, speaks the agent's audio.

The session follows LiveKit's avatar protocol, so any LiveKit frontend shows it unchanged: it
joins as a participant of kind agent whose token carries `lk.publish_on_behalf` = the agent's
identity, takes audio only from that agent (`DataStreamAudioReceiver` with the sender fixed, so
nobody else can feed it audio or call `lk.clear_buffer`), and an `AvatarRunner` publishes the
lip-synced audio + video, answering `lk.clear_buffer` and sending playback started/finished.
It also answers this project's pause/resume extension (protocol.py), again only for that agent.
On an interruption or a pause the audio already queued for the room is dropped at once, so the
candidate stops hearing the interviewer within the transport delay. It leaves when the agent
leaves (or drops out and is not back within `agent_return_s`), the room ends, or the service
stops it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from typing import Any, Literal

from livekit import rtc
from livekit.agents.types import ATTRIBUTE_PUBLISH_ON_BEHALF
from livekit.agents.voice.avatar import (
    AvatarOptions,
    AvatarRunner,
    DataStreamAudioReceiver,
)
from livekit.agents.voice.avatar._datastream_io import (
    RPC_PLAYBACK_FINISHED,
    RPC_PLAYBACK_STARTED,
)
from livekit.agents.voice.io import PlaybackFinishedEvent

from .engine import FrameComposer
from .generator import GeneratorOptions, LipSyncVideoGenerator
from .protocol import EXTENSIONS, RPC_PAUSE, RPC_RESUME
from .sync import PairedSynchronizer

logger = logging.getLogger("avatar_worker.session")

SessionState = Literal["connecting", "waiting_agent", "running", "closed"]
SAMPLE_RATE = 24000  # what the runner publishes; the agent's TTS rate is converted on the way


class SingleLayerAvatarRunner(AvatarRunner):
    """AvatarRunner publishing one video layer, that can pause, and that silences at once.

    One layer: a generated 512x512 face gains nothing from simulcast, and encoding three layers
    per session would cost the host most of its capacity. (The dev server also cannot negotiate
    simulcast from a Python publisher yet.)

    Silence at once: on `lk.clear_buffer` or a pause the audio already handed to the room's
    AudioSource (up to its 100 ms queue) and the synchronizer's queued video are dropped, not
    played out. A pause puts that unplayed audio back into the generator for the resume.

    In sync: video frames leave when their audio plays (sync.py), not on a separate clock.
    """

    def __init__(
        self,
        *args: object,
        video_gen: LipSyncVideoGenerator,
        video_bitrate: int = 900_000,
        video_delay_s: float = 0.0,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, video_gen=video_gen, **kwargs)  # type: ignore[arg-type]
        # livekit-agents 1.8.9 sets this in start() only, but its aclose() reads it: closing a
        # runner that never started (its agent never came) raised AttributeError there
        self._read_audio_atask: asyncio.Task[None] | None = None
        self._lipsync = video_gen
        self._video_bitrate = video_bitrate
        stock = self._av_sync
        self._av_sync = PairedSynchronizer(  # type: ignore[assignment]
            audio_source=self._audio_source,
            video_source=self._video_source,
            video_fps=self._options.video_fps,
            video_delay_s=video_delay_s,
            on_audio_queued=self._audio_queued,
        )
        self._background(stock.aclose())  # the unused stock one, never pushed to
        # when the audio handed to the room so far has played out (wall clock), and the last
        # interruption: RPC received -> that time (what the room bench reports)
        self._audio_until = 0.0
        self._audio_plays_at = 0.0  # monotonic: when the audio frame pushed last starts playing
        if isinstance(self._audio_recv, PatientAudioReceiver):
            self._audio_recv.audio_plays_at = lambda: self._audio_plays_at
        self._stop_asked_at: float | None = None
        self.stops: deque[dict[str, float | str]] = deque(maxlen=8)  # the last few, newest last

    async def _publish_track(self) -> None:
        async with self._lock:
            if self._video_publication is not None:
                return
            await self._room_connected_fut
            lp = self._room.local_participant
            audio_track = rtc.LocalAudioTrack.create_audio_track("avatar_audio", self._audio_source)
            self._audio_publication = await lp.publish_track(
                audio_track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            )
            # the video follows at once, unlike livekit's AvatarRunner, which waits for the audio
            # to have a subscriber: the interviewer does not subscribe to it (agent/rejoin.py),
            # and the candidate may join long after the interview was booked, past the agent's
            # wait for the avatar's video; the agent greets only once the candidate is in
            video_track = rtc.LocalVideoTrack.create_video_track("avatar_video", self._video_source)
            self._video_publication = await lp.publish_track(
                video_track,
                rtc.TrackPublishOptions(
                    source=rtc.TrackSource.SOURCE_CAMERA,
                    simulcast=False,
                    video_encoding=rtc.VideoEncoding(
                        max_bitrate=self._video_bitrate,
                        max_framerate=self._options.video_fps,
                    ),
                ),
            )

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` as one of the runner's tasks (cancelled with it on close)."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _audio_queued(self, pushed_at: float, plays_at: float) -> None:
        self._audio_plays_at = plays_at
        self._audio_until = time.time() + self._audio_source.queued_duration
        if self._stop_asked_at is not None and pushed_at < self._stop_asked_at:
            self._note_stop()  # the frame in flight when the stop came: it plays

    def _drop_queued(self) -> float:
        """Drop the audio and video queued for the room; returns the audio duration dropped."""
        queued = self._audio_source.queued_duration
        self._audio_source.clear_queue()
        self._audio_until = time.time()
        # the synchronizer's video queue (a frame or two) goes too, in the loop's next turn
        self._background(self._av_sync.clear_queue())
        return queued

    def _start_stop_clock(self, kind: str) -> None:
        self._stop_asked_at = time.time()
        self.stops.append({"kind": kind, "at": self._stop_asked_at})

    def _note_stop(self) -> None:
        """Interrupt-to-silence at the avatar: the request -> the last queued audio played."""
        if self._stop_asked_at is not None and self.stops:
            silent_ms = max(0.0, self._audio_until - self._stop_asked_at) * 1000
            self.stops[-1]["silent_after_ms"] = round(silent_ms, 1)

    def _on_clear_buffer(self) -> None:
        self._start_stop_clock("clear_buffer")
        self._lipsync.clear_buffer()
        self._drop_queued()
        self._note_stop()
        super()._on_clear_buffer()

    def pause(self) -> None:
        """Stop playing now; what the room had queued is put back for the resume."""
        if self._lipsync.paused:
            return
        self._start_stop_clock("pause")
        self._lipsync.pause()
        back = self._lipsync.rewind(self._drop_queued())
        self._note_stop()
        if self._playback_position > 0.0:
            # the rewound audio will be pushed (and counted) again; stay above 0, which would
            # announce a new playback start
            self._playback_position = max(1e-6, self._playback_position - back)

    def resume(self) -> None:
        self._lipsync.resume()

    def av_offset_ms(self) -> dict[str, float]:
        """A/V offset as published over the last speech frames (positive: video late)."""
        return self._av_sync.offset_summary()  # type: ignore[attr-defined]

    def video_stalls(self) -> dict[str, int]:
        """Gaps over 100 ms between the frames published, the frame slots skipped in all gaps,
        and the frames handed to WebRTC (its `source_frames` are those it kept)."""
        sync: PairedSynchronizer = self._av_sync  # type: ignore[assignment]
        return {
            "over_100ms": sync.stalls,
            "frames_skipped": sync.slots_missed,
            "frames_published": sync.frames_published,
        }

    async def video_sender(self) -> dict[str, object]:
        """WebRTC's own counts for the published video: frames the source took, the encoder
        encoded and the sender sent (the frames published and then lost before the network
        are the difference), keyframes, the receivers' keyframe requests, and what, if
        anything, limited the quality; {} before the video is published."""
        publication = self._video_publication
        if publication is None or publication.track is None:
            return {}
        try:
            stats = await publication.track.get_stats()
        except Exception:  # a closing room: nothing to report
            return {}
        out: dict[str, object] = {}
        for entry in stats:
            kind = entry.WhichOneof("stats")
            if kind == "media_source" and entry.media_source.HasField("video"):
                out["source_frames"] = entry.media_source.video.frames
            elif kind == "outbound_rtp":
                sent = entry.outbound_rtp.outbound
                out |= {
                    "frames_encoded": sent.frames_encoded,
                    "frames_sent": sent.frames_sent,
                    "keyframes": sent.key_frames_encoded,
                    "keyframe_requests": sent.pli_count + sent.fir_count,
                    "quality_limitation": sent.quality_limitation_reason,
                }
        return out


class PatientAudioReceiver(DataStreamAudioReceiver):
    """DataStreamAudioReceiver whose playback notifications survive a slow room.

    The stock receiver gives up on a playback notification after three quick RPC attempts and
    then ends itself, taking the avatar out of the interview; on a loaded server an RPC ack can
    simply be late. Here one attempt waits up to `patience_s` for its ack, other failures are
    retried until then, and a failure is logged, never fatal: the avatar keeps serving the
    audio that does arrive (the agent has its own timeouts for a missing notification)."""

    def __init__(self, *args: object, patience_s: float = 12.0, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._patience_s = patience_s
        # when the audio just handed to the room starts playing (monotonic; the runner sets it)
        self.audio_plays_at: Callable[[], float] = time.monotonic
        self._started_timer: asyncio.TimerHandle | None = None

    def notify_playback_started(self) -> None:
        """Sent when the reply's first audio starts playing into the room's track, not when it
        was queued behind the audio still playing: the agent paces its captions from it."""
        delay = self.audio_plays_at() - time.monotonic()
        if delay <= 0.0:
            super().notify_playback_started()
            return
        self._started_timer = asyncio.get_running_loop().call_later(delay, self._send_started)

    def _send_started(self) -> None:
        self._started_timer = None
        super().notify_playback_started()

    def notify_playback_finished(self, playback_position: float, interrupted: bool) -> None:
        if self._started_timer is not None:  # a finish never overtakes its start
            self._started_timer.cancel()
            self._send_started()
        super().notify_playback_finished(playback_position, interrupted)

    async def _send_task(self) -> None:
        async for event in self._rpc_send_ch:
            assert self._remote_participant is not None
            if isinstance(event, PlaybackFinishedEvent):
                method, payload = RPC_PLAYBACK_FINISHED, json.dumps(asdict(event))
            else:
                method, payload = RPC_PLAYBACK_STARTED, ""
            deadline = time.monotonic() + self._patience_s
            while True:
                try:
                    await self._room.local_participant.perform_rpc(
                        destination_identity=self._remote_participant.identity,
                        method=method,
                        payload=payload,
                        # a late ack is not a lost request: one long wait, not quick retries
                        # that could deliver the notification twice
                        max_round_trip_latency=self._patience_s,
                        response_timeout=self._patience_s,
                    )
                    break
                except rtc.RpcError as e:
                    codes = rtc.RpcError.ErrorCode
                    final = e.code in (
                        codes.UNSUPPORTED_METHOD,
                        codes.CONNECTION_TIMEOUT,
                        codes.RESPONSE_TIMEOUT,
                    )
                    if final or time.monotonic() > deadline or not self._room.isconnected():
                        logger.warning(
                            "playback notification not delivered",
                            extra={"method": method, "error": e.message},
                        )
                        break
                    await asyncio.sleep(0.2)


class SessionError(Exception):
    """The session could not start (bad token, unreachable server, no agent): one sentence."""


@dataclass(frozen=True)
class SessionOptions:
    livekit_url: str
    token: str
    avatar: str = "woman"
    size: int = 512
    fps: float = 25.0
    video_delay_s: float = 0.0  # video after its audio (sync.py); the service passes its setting
    connect_timeout_s: float = 10.0
    agent_wait_s: float = 30.0  # the agent must be in the room by then
    # an agent that dropped out without leaving (its connection lost, rebuilt from scratch)
    # has this long to come back before the avatar leaves too
    agent_return_s: float = 10.0


# the agent chose to go, or was sent away: no point waiting for it
_AGENT_LEFT_FOR_GOOD = frozenset(
    {
        rtc.DisconnectReason.CLIENT_INITIATED,
        rtc.DisconnectReason.PARTICIPANT_REMOVED,
        rtc.DisconnectReason.ROOM_DELETED,
        rtc.DisconnectReason.ROOM_CLOSED,
        rtc.DisconnectReason.SERVER_SHUTDOWN,
        rtc.DisconnectReason.USER_REJECTED,
    }
)


class RoomSession:
    """A running avatar: room connection, audio receiver, generator and runner."""

    def __init__(
        self,
        session_id: str,
        options: SessionOptions,
        composer: FrameComposer,
        on_closed: Callable[[RoomSession], None] | None = None,
    ) -> None:
        self.session_id = session_id
        self.options = options
        self.composer = composer
        self.state: SessionState = "connecting"
        self.room = rtc.Room()
        self.identity = ""
        self.agent_identity = ""
        self.room_name = ""
        self.started_at = time.time()
        self.close_reason = ""
        self.generator: LipSyncVideoGenerator | None = None
        self._runner: SingleLayerAvatarRunner | None = None
        self._receiver: DataStreamAudioReceiver | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self._agent_gone: asyncio.TimerHandle | None = None  # waiting for the agent to return
        self._on_closed = on_closed
        self.closed = asyncio.Event()

    @property
    def log_extra(self) -> dict[str, str]:
        return {"session": self.session_id, "room": self.room_name, "avatar": self.options.avatar}

    async def connect(self) -> None:
        """Join the room; the token decides the identity and the agent served. Raises
        SessionError with the reason when the room cannot be joined or the token is unfit."""
        o = self.options
        try:
            await asyncio.wait_for(
                self.room.connect(
                    o.livekit_url,
                    o.token,
                    # audio comes as data streams; no media subscriptions needed
                    rtc.RoomOptions(auto_subscribe=False),
                ),
                o.connect_timeout_s,
            )
        except TimeoutError:
            raise SessionError(
                f"timed out joining {o.livekit_url} after {o.connect_timeout_s:.0f} s"
            ) from None
        except rtc.ConnectError as e:
            raise SessionError(f"could not join the room at {o.livekit_url}: {e}") from None
        lp = self.room.local_participant
        self.identity = lp.identity
        self.room_name = self.room.name
        self.agent_identity = lp.attributes.get(ATTRIBUTE_PUBLISH_ON_BEHALF, "")
        if not self.agent_identity:
            await self.room.disconnect()
            raise SessionError(
                f"the avatar token has no {ATTRIBUTE_PUBLISH_ON_BEHALF} attribute naming the agent"
            )
        if lp.kind != rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            logger.warning("avatar token is not of kind agent", extra=self.log_extra)
        self.room.on("participant_disconnected", self._on_participant_disconnected)
        self.room.on("participant_connected", self._on_participant_connected)
        self.room.on("disconnected", self._on_disconnected)
        lp.register_rpc_method(RPC_PAUSE, self._on_pause_rpc)
        lp.register_rpc_method(RPC_RESUME, self._on_resume_rpc)
        self.state = "waiting_agent"
        self._run_task = asyncio.create_task(self._run(), name=f"avatar-{self.session_id}")
        logger.info(
            "avatar joined",
            extra={**self.log_extra, "identity": self.identity, "agent": self.agent_identity},
        )

    async def _run(self) -> None:
        o = self.options
        generator = LipSyncVideoGenerator(
            self.composer,
            GeneratorOptions(fps=o.fps, sample_rate=SAMPLE_RATE, num_channels=1),
            session_id=self.session_id,
        )
        receiver = PatientAudioReceiver(self.room, sender_identity=self.agent_identity)
        runner = SingleLayerAvatarRunner(
            self.room,
            audio_recv=receiver,
            video_gen=generator,
            options=AvatarOptions(
                video_width=o.size,
                video_height=o.size,
                video_fps=o.fps,
                audio_sample_rate=SAMPLE_RATE,
                audio_channels=1,
            ),
            video_delay_s=o.video_delay_s,
        )
        self.generator, self._receiver, self._runner = generator, receiver, runner
        try:
            # the receiver waits for the agent to be in the room
            await asyncio.wait_for(runner.start(), o.agent_wait_s)
        except TimeoutError:
            self._close_soon(f"agent {self.agent_identity} did not join within {o.agent_wait_s} s")
            return
        self.state = "running"
        logger.info("avatar running", extra=self.log_extra)
        try:
            await runner.wait_for_complete()
        except Exception:
            logger.exception("avatar runner failed", extra=self.log_extra)
        self._close_soon("runner ended")

    def _playback_control(self, data: rtc.RpcInvocationData) -> SingleLayerAvatarRunner:
        """The runner, for the agent this avatar speaks for only (as `lk.clear_buffer`)."""
        if data.caller_identity != self.agent_identity:
            logger.warning(
                "playback control from an unexpected participant refused",
                extra={**self.log_extra, "caller": data.caller_identity, "method": data.method},
            )
            raise rtc.RpcError(
                rtc.RpcError.ErrorCode.APPLICATION_ERROR,
                f"only {self.agent_identity} may call {data.method}",
            )
        if self._runner is None or self.state != "running":
            raise rtc.RpcError(
                rtc.RpcError.ErrorCode.APPLICATION_ERROR, "the avatar is not running yet"
            )
        return self._runner

    def _on_pause_rpc(self, data: rtc.RpcInvocationData) -> str:
        self._playback_control(data).pause()
        logger.info("avatar paused", extra=self.log_extra)
        return "ok"

    def _on_resume_rpc(self, data: rtc.RpcInvocationData) -> str:
        self._playback_control(data).resume()
        logger.info("avatar resumed", extra=self.log_extra)
        return "ok"

    def _on_participant_disconnected(self, participant: rtc.RemoteParticipant) -> None:
        if participant.identity != self.agent_identity:
            return
        reason = participant.disconnect_reason
        if reason in _AGENT_LEFT_FOR_GOOD or self._agent_gone is not None:
            self._close_soon("the agent left")
            return
        # its connection ended without it leaving: it rejoins when it can rebuild it
        logger.warning(
            "the agent dropped out; waiting for it to come back",
            extra={**self.log_extra, "reason": reason, "wait_s": self.options.agent_return_s},
        )
        self._agent_gone = asyncio.get_running_loop().call_later(
            self.options.agent_return_s, self._close_soon, "the agent left and did not come back"
        )

    def _on_participant_connected(self, participant: rtc.RemoteParticipant) -> None:
        if participant.identity == self.agent_identity and self._agent_gone is not None:
            self._agent_gone.cancel()
            self._agent_gone = None
            logger.info("the agent is back", extra=self.log_extra)

    def _on_disconnected(self, reason: object) -> None:
        self._close_soon("the room ended or the connection dropped")

    def _close_soon(self, reason: str) -> None:
        if self._agent_gone is not None:
            self._agent_gone.cancel()
            self._agent_gone = None
        if self._closing is None:
            self._closing = asyncio.create_task(self.aclose(reason))

    async def aclose(self, reason: str = "stopped") -> None:
        if self.state == "closed":
            return
        self.state = "closed"
        self.close_reason = reason
        current = asyncio.current_task()
        sender = await self._runner.video_sender() if self._runner else {}
        try:
            if self._run_task is not None and self._run_task is not current:
                self._run_task.cancel()
                await asyncio.gather(self._run_task, return_exceptions=True)
            if self._runner is not None:
                await self._runner.aclose()
        except Exception:
            logger.exception("error while closing the avatar session", extra=self.log_extra)
        try:
            # the receiver registers its RPC handler per caller on the class: drop ours
            DataStreamAudioReceiver._clear_buffer_handlers.pop(self.agent_identity, None)
            # whatever failed above, the room connection is let go
            await self.room.disconnect()
        except Exception:
            logger.exception("error leaving the avatar's room", extra=self.log_extra)
        finally:
            stalls = self._runner.video_stalls() if self._runner else {}
            logger.info(
                "avatar left",
                extra={**self.log_extra, "reason": reason, **stalls, "video_sender": sender},
            )
            self.closed.set()
            if self._on_closed is not None:
                self._on_closed(self)

    async def report(self) -> dict[str, object]:
        """`info()` and WebRTC's counts for the published video (`video_sender`)."""
        sender = await self._runner.video_sender() if self._runner else {}
        return {**self.info(), "video_sender": sender}

    def info(self) -> dict[str, object]:
        gen = self.generator
        return {
            "id": self.session_id,
            "room": self.room_name,
            "identity": self.identity,
            "agent_identity": self.agent_identity,
            "avatar": self.options.avatar,
            "size": self.options.size,
            "fps": self.options.fps,
            "video_delay_ms": round(self.options.video_delay_s * 1000),
            "state": self.state,
            "uptime_s": round(time.time() - self.started_at, 1),
            "frames": gen.frames_out + gen.idle_frames_out if gen else 0,
            "speech_frames": gen.frames_out if gen else 0,
            "extensions": list(EXTENSIONS),
            # the last interruptions and pauses: when the request came (wall clock) and how
            # long until the last audio given to the room had played (interrupt to silence)
            "stops": list(self._runner.stops) if self._runner else [],
            # video handed to the room minus its audio starting to play, speech frames (ms)
            "av_offset_published_ms": self._runner.av_offset_ms() if self._runner else {},
            # the service's own share of frames a candidate would see as dropped
            "video_stalls": self._runner.video_stalls() if self._runner else {},
        }
