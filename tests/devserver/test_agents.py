"""Agent workers against the dev server: registration, dispatch, job tokens, load and failures.

Real livekit-agents workers (`AgentServer`, jobs in threads so the test can watch them) take
explicit dispatches (AgentDispatchService and a token's room configuration) and automatic ones,
and join the room as agents. A bare protocol client (`livekit.protocol.agent` over the WebSocket)
checks the parts a well-behaved SDK worker never shows: full workers skipped, rejections passed
on, the minted job token, failures when a worker vanishes, refusals.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import numpy as np
import pytest
from livekit import api, rtc
from livekit.agents import AgentServer, JobContext, JobExecutorType
from livekit.protocol import agent as proto_agent
from livekit.protocol import models

pytestmark = pytest.mark.integration

WAIT_S = 20.0


def _room_name() -> str:
    return f"agents-{uuid.uuid4().hex[:8]}"


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    try:
        async with asyncio.timeout(WAIT_S):
            while True:  # polled: the state lives in the server or the SDK
                if await check():
                    return
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@pytest.fixture
async def lkapi(livekit_server) -> AsyncIterator[api.LiveKitAPI]:
    url, key, secret = livekit_server
    async with api.LiveKitAPI(url, key, secret) as client:
        yield client


# -- real livekit-agents workers ----------------------------------------------------------------


@dataclass
class JobSeen:
    """What a job's entrypoint saw once connected (written from the job's thread)."""

    job_id: str
    room: str
    metadata: str
    identity: str


@dataclass
class SdkWorker:
    server: AgentServer
    jobs: list[JobSeen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seen(self) -> list[JobSeen]:
        with self.lock:
            return list(self.jobs)


@asynccontextmanager
async def sdk_worker(
    livekit_server,
    agent_name: str,
    job: Callable[[JobContext], Awaitable[None]] | None = None,
) -> AsyncIterator[SdkWorker]:
    """A livekit-agents worker registered with the dev server; jobs run in threads and, once
    connected and recorded, run `job` if given."""
    url, key, secret = livekit_server
    server = AgentServer(
        ws_url=url,
        api_key=key,
        api_secret=secret,
        job_executor_type=JobExecutorType.THREAD,
        num_idle_processes=0,
        shutdown_process_timeout=3.0,
        port=0,
        max_retry=1,
    )
    worker = SdkWorker(server)

    @server.rtc_session(agent_name=agent_name)
    async def entrypoint(ctx: JobContext) -> None:
        await ctx.connect()
        with worker.lock:
            worker.jobs.append(
                JobSeen(
                    job_id=ctx.job.id,
                    room=ctx.room.name,
                    metadata=ctx.job.metadata,
                    identity=ctx.room.local_participant.identity,
                )
            )
        if job is not None:
            await job(ctx)

    registered = asyncio.Event()
    server.on("worker_registered", lambda *_: registered.set())
    run = asyncio.create_task(server.run(devmode=True))
    try:
        await asyncio.wait_for(registered.wait(), WAIT_S)
        yield worker
    finally:
        await server.aclose()
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)


async def _agent_in_room(lkapi: api.LiveKitAPI, room: str) -> models.ParticipantInfo | None:
    try:
        listed = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room))
    except api.TwirpError:
        return None
    agents = [p for p in listed.participants if p.kind == models.ParticipantInfo.Kind.AGENT]
    return agents[0] if agents else None


async def test_sdk_worker_takes_api_dispatch_and_joins(
    livekit_server, lkapi: api.LiveKitAPI
) -> None:
    room = _room_name()
    metadata = json.dumps({"candidate_name": "김민수", "role": "백엔드 개발자"})
    async with sdk_worker(livekit_server, "test-agent") as worker:
        await lkapi.room.create_room(api.CreateRoomRequest(name=room))
        dispatch = await lkapi.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name="test-agent", room=room, metadata=metadata)
        )

        async def joined() -> bool:
            return await _agent_in_room(lkapi, room) is not None and bool(worker.seen())

        await _until(joined, "the dispatched agent to join the room")
        (job,) = worker.seen()
        assert (job.room, job.metadata) == (room, metadata)
        agent = await _agent_in_room(lkapi, room)
        assert agent is not None and agent.identity == job.identity == f"agent-{job.job_id}"
        assert agent.attributes["lk.agent.name"] == "test-agent"

        (listed,) = await lkapi.agent_dispatch.list_dispatch(room)
        assert listed.id == dispatch.id
        (state,) = listed.state.jobs
        assert state.id == job.job_id and state.metadata == metadata
        assert state.state.participant_identity == job.identity
        assert state.state.status == proto_agent.JobStatus.JS_RUNNING
        await lkapi.room.delete_room(api.DeleteRoomRequest(room=room))


async def test_sdk_worker_dispatched_by_token_room_config(
    livekit_server, lkapi: api.LiveKitAPI
) -> None:
    url, key, secret = livekit_server
    room = _room_name()
    config = api.RoomConfiguration(
        agents=[api.RoomAgentDispatch(agent_name="test-agent", metadata="from-token")]
    )
    token = (
        api.AccessToken(key, secret)
        .with_identity("candidate")
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .with_room_config(config)
        .to_jwt()
    )
    async with sdk_worker(livekit_server, "test-agent") as worker:
        candidate = rtc.Room()
        agent_joined = asyncio.Event()
        kinds: list[int] = []

        def on_joined(p: rtc.RemoteParticipant) -> None:
            kinds.append(p.kind)
            agent_joined.set()

        candidate.on("participant_connected", on_joined)
        await candidate.connect(url, token)
        try:
            await asyncio.wait_for(agent_joined.wait(), WAIT_S)
            assert kinds == [rtc.ParticipantKind.PARTICIPANT_KIND_AGENT]

            async def seen() -> bool:
                return bool(worker.seen())

            await _until(seen, "the job's entrypoint")
            (job,) = worker.seen()
            assert (job.room, job.metadata) == (room, "from-token")
        finally:
            await candidate.disconnect()
        await lkapi.room.delete_room(api.DeleteRoomRequest(room=room))


async def _speak_like_room_io(ctx: JobContext) -> None:
    """Publish a 440 Hz tone the way AgentSession's RoomIO audio output does: frames flow only
    after the server reports that someone subscribed to the track."""
    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("agent-voice", source)
    publication = await ctx.room.local_participant.publish_track(track)
    await asyncio.wait_for(publication.wait_for_subscription(), WAIT_S)
    t = np.arange(480) / 48000
    for i in range(150):  # 1.5 s in 10 ms frames
        tone = (0.3 * 32767 * np.sin(2 * np.pi * 440 * (t + i * 0.01))).astype(np.int16)
        await source.capture_frame(rtc.AudioFrame(tone.tobytes(), 48000, 1, 480))
    await source.wait_for_playout()


async def test_dispatched_agent_is_heard_once_subscribed(
    livekit_server, lkapi: api.LiveKitAPI
) -> None:
    url, key, secret = livekit_server
    room = _room_name()
    token = (
        api.AccessToken(key, secret)
        .with_identity("candidate")
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .to_jwt()
    )
    async with sdk_worker(livekit_server, "test-agent", _speak_like_room_io):
        candidate = rtc.Room()
        levels: list[float] = []

        async def listen(track: rtc.Track) -> None:
            async for event in rtc.AudioStream(track, sample_rate=48000, num_channels=1):
                levels.append(float(np.abs(np.frombuffer(event.frame.data, np.int16)).mean()))

        listening: list[asyncio.Task[None]] = []
        candidate.on(
            "track_subscribed",
            lambda track, *_: listening.append(asyncio.create_task(listen(track))),
        )
        await candidate.connect(url, token)
        try:
            await lkapi.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name="test-agent", room=room)
            )

            async def heard() -> bool:
                return sum(level > 1000 for level in levels) >= 20

            await _until(heard, "the agent's tone, sent once the server reports the subscription")
        finally:
            for task in listening:
                task.cancel()
            await candidate.disconnect()
        await lkapi.room.delete_room(api.DeleteRoomRequest(room=room))


async def test_unnamed_worker_is_dispatched_automatically(
    livekit_server, lkapi: api.LiveKitAPI
) -> None:
    room, explicit_room = _room_name(), _room_name()
    async with sdk_worker(livekit_server, "") as worker:
        await lkapi.room.create_room(api.CreateRoomRequest(name=room))

        async def joined() -> bool:
            return await _agent_in_room(lkapi, room) is not None

        await _until(joined, "the automatically dispatched agent")
        (dispatch,) = await lkapi.agent_dispatch.list_dispatch(room)
        assert dispatch.agent_name == "" and len(dispatch.state.jobs) == 1

        # A room that names its agents gets those, not the unnamed one.
        await lkapi.room.create_room(
            api.CreateRoomRequest(
                name=explicit_room, agents=[api.RoomAgentDispatch(agent_name="absent-agent")]
            )
        )
        await asyncio.sleep(1.0)
        (dispatch,) = await lkapi.agent_dispatch.list_dispatch(explicit_room)
        assert dispatch.agent_name == "absent-agent" and list(dispatch.state.jobs) == []
        assert [j.room for j in worker.seen()] == [room]
        for name in (room, explicit_room):
            await lkapi.room.delete_room(api.DeleteRoomRequest(room=name))


CLI_WORKER = """
import json, os
from livekit.agents import JobContext, WorkerOptions, cli

async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    seen = {"metadata": ctx.job.metadata, "identity": ctx.room.local_participant.identity}
    with open(os.environ["JOB_SEEN_PATH"], "w") as f:
        json.dump(seen, f)

if __name__ == "__main__":
    # port 0 and no idle processes: production defaults would take port 8081 and two processes
    options = WorkerOptions(
        entrypoint_fnc=entrypoint, agent_name="cli-agent", port=0, num_idle_processes=0
    )
    cli.run_app(options)
"""


async def test_cli_worker_process_takes_job(
    livekit_server, lkapi: api.LiveKitAPI, tmp_path
) -> None:
    """A worker as `python worker.py start` runs it: own process, jobs in forked processes."""
    url, key, secret = livekit_server
    script, seen_path = tmp_path / "worker.py", tmp_path / "seen.json"
    script.write_text(CLI_WORKER)
    env = {
        **os.environ,
        "LIVEKIT_URL": url,
        "LIVEKIT_API_KEY": key,
        "LIVEKIT_API_SECRET": secret,
        "JOB_SEEN_PATH": str(seen_path),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), "start", env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    drain: asyncio.Task[bytes] | None = None
    try:
        async with asyncio.timeout(60):  # `start` logs JSON lines on stdout
            while b'"registered worker"' not in await proc.stdout.readline():
                assert proc.returncode is None, "the worker exited before registering"
        drain = asyncio.create_task(proc.stdout.read())  # a full pipe would stall the worker
        room = await _dispatch(lkapi, "cli-agent", metadata="cli-metadata")

        async def joined() -> bool:
            return seen_path.exists() and await _agent_in_room(lkapi, room) is not None

        await _until(joined, "the CLI worker's job to join")
        seen = json.loads(seen_path.read_text())
        assert seen["metadata"] == "cli-metadata" and seen["identity"].startswith("agent-AJ_")
        await lkapi.room.delete_room(api.DeleteRoomRequest(room=room))
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if drain is not None:
            await drain


# -- the bare worker protocol -------------------------------------------------------------------


class RawWorker:
    """A worker speaking livekit.protocol.agent directly, to script every answer."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self.session, self.ws = session, ws
        self.id = ""

    @classmethod
    async def connect(cls, livekit_server, agent_name: str) -> RawWorker:
        url, key, secret = livekit_server
        token = api.AccessToken(key, secret).with_grants(api.VideoGrants(agent=True)).to_jwt()
        session = aiohttp.ClientSession()
        ws = await session.ws_connect(
            f"{url.replace('http', 'ws', 1)}/agent", headers={"Authorization": f"Bearer {token}"}
        )
        worker = cls(session, ws)
        register = proto_agent.RegisterWorkerRequest(
            type=proto_agent.JobType.JT_ROOM, agent_name=agent_name, version="raw"
        )
        await worker.send(proto_agent.WorkerMessage(register=register))
        answer = await worker.receive()
        assert answer.WhichOneof("message") == "register"
        worker.id = answer.register.worker_id
        return worker

    async def send(self, msg: proto_agent.WorkerMessage) -> None:
        await self.ws.send_bytes(msg.SerializeToString())

    async def receive(self) -> proto_agent.ServerMessage:
        raw = await self.ws.receive(timeout=WAIT_S)
        assert raw.type == aiohttp.WSMsgType.BINARY, raw
        return proto_agent.ServerMessage.FromString(raw.data)

    async def expect_nothing(self, seconds: float) -> None:
        with pytest.raises(TimeoutError):
            await self.ws.receive(timeout=seconds)

    async def status(self, status: int, load: float) -> None:
        """Report status and load; returns once the server has taken them in."""
        update = proto_agent.UpdateWorkerStatus(status=status, load=load)
        await self.send(proto_agent.WorkerMessage(update_worker=update))
        # The server handles a connection's messages in order: its pong proves the update is in.
        await self.send(proto_agent.WorkerMessage(ping=proto_agent.WorkerPing(timestamp=7)))
        pong = await self.receive()
        assert pong.WhichOneof("message") == "pong" and pong.pong.last_timestamp == 7

    async def answer(self, job_id: str, available: bool, **fields: object) -> None:
        response = proto_agent.AvailabilityResponse(job_id=job_id, available=available, **fields)
        await self.send(proto_agent.WorkerMessage(availability=response))

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


@pytest.fixture
async def raw_workers(livekit_server) -> AsyncIterator[Callable[[str], Awaitable[RawWorker]]]:
    made: list[RawWorker] = []

    async def make(agent_name: str) -> RawWorker:
        made.append(await RawWorker.connect(livekit_server, agent_name))
        return made[-1]

    yield make
    for worker in made:
        await worker.close()


async def _dispatch(lkapi: api.LiveKitAPI, agent_name: str, metadata: str = "") -> str:
    room = _room_name()
    await lkapi.agent_dispatch.create_dispatch(
        api.CreateAgentDispatchRequest(agent_name=agent_name, room=room, metadata=metadata)
    )
    return room


async def test_full_worker_is_skipped(lkapi: api.LiveKitAPI, raw_workers) -> None:
    name = f"raw-{uuid.uuid4().hex[:6]}"
    full, free = await raw_workers(name), await raw_workers(name)
    # The full worker reports the lower load: only its status can keep it from being asked.
    await full.status(proto_agent.WorkerStatus.WS_FULL, 0.2)
    await free.status(proto_agent.WorkerStatus.WS_AVAILABLE, 0.9)

    room = await _dispatch(lkapi, name)
    offer = await free.receive()
    assert offer.WhichOneof("message") == "availability"
    assert offer.availability.job.room.name == room
    await full.expect_nothing(0.5)

    # With every worker full the dispatch stays without a job.
    await free.status(proto_agent.WorkerStatus.WS_FULL, 1.0)
    room = await _dispatch(lkapi, name)
    await free.expect_nothing(0.5)
    await full.expect_nothing(0.1)
    (dispatch,) = await lkapi.agent_dispatch.list_dispatch(room)
    assert list(dispatch.state.jobs) == []


async def test_rejected_job_goes_to_next_worker_with_minted_token(
    livekit_server, lkapi: api.LiveKitAPI, raw_workers
) -> None:
    _, key, secret = livekit_server
    name = f"raw-{uuid.uuid4().hex[:6]}"
    idle, busy = await raw_workers(name), await raw_workers(name)
    await idle.status(proto_agent.WorkerStatus.WS_AVAILABLE, 0.1)
    await busy.status(proto_agent.WorkerStatus.WS_AVAILABLE, 0.6)

    room = await _dispatch(lkapi, name, metadata='{"language": "en"}')
    first = await idle.receive()  # the least loaded worker is asked first
    job = first.availability.job
    assert job.id.startswith("AJ_") and job.agent_name == name
    assert job.metadata == '{"language": "en"}' and job.room.name == room
    await idle.answer(job.id, False)

    second = await busy.receive()
    assert second.availability.job.id == job.id
    await busy.answer(
        job.id,
        True,
        participant_identity="interviewer-1",
        participant_name="Interviewer",
        participant_metadata="md",
        participant_attributes={"lk.agent.name": name},
    )
    assignment = (await busy.receive()).assignment
    assert assignment.job.id == job.id and assignment.url.startswith("ws")

    claims = api.TokenVerifier(key, secret).verify(assignment.token)
    assert claims.identity == "interviewer-1" and claims.name == "Interviewer"
    assert claims.kind == "agent" and claims.metadata == "md"
    assert claims.attributes == {"lk.agent.name": name}
    video = claims.video
    assert video is not None and video.room_join and video.room == room and video.agent
    assert video.can_publish and video.can_subscribe and video.can_publish_data
    assert video.can_update_own_metadata and not video.hidden

    # A status from a newer protocol is recorded, not fatal to the connection.
    odd = proto_agent.UpdateJobStatus(job_id=job.id, status=99)  # type: ignore[arg-type]
    await busy.send(proto_agent.WorkerMessage(update_job=odd))
    # The worker reports the job running; when the worker vanishes the job is failed.
    running = proto_agent.UpdateJobStatus(job_id=job.id, status=proto_agent.JobStatus.JS_RUNNING)
    await busy.send(proto_agent.WorkerMessage(update_job=running))

    async def job_status(status: int) -> bool:
        (dispatch,) = await lkapi.agent_dispatch.list_dispatch(room)
        return [j.state.status for j in dispatch.state.jobs] == [status]

    await _until(lambda: job_status(proto_agent.JobStatus.JS_RUNNING), "job running")
    await busy.close()
    await _until(lambda: job_status(proto_agent.JobStatus.JS_FAILED), "job failed")
    (dispatch,) = await lkapi.agent_dispatch.list_dispatch(room)
    assert "disconnected" in dispatch.state.jobs[0].state.error


async def test_deleting_dispatch_terminates_job_and_ping(
    livekit_server, lkapi: api.LiveKitAPI, raw_workers
) -> None:
    _, key, secret = livekit_server
    name = f"raw-{uuid.uuid4().hex[:6]}"
    worker = await raw_workers(name)
    await worker.send(proto_agent.WorkerMessage(ping=proto_agent.WorkerPing(timestamp=1234)))
    pong = await worker.receive()
    assert pong.WhichOneof("message") == "pong" and pong.pong.last_timestamp == 1234

    room = await _dispatch(lkapi, name)
    job = (await worker.receive()).availability.job
    await worker.answer(job.id, True)
    assignment = (await worker.receive()).assignment
    assert api.TokenVerifier(key, secret).verify(assignment.token).identity == f"agent-{job.id}"
    (dispatch,) = await lkapi.agent_dispatch.list_dispatch(room)
    await lkapi.agent_dispatch.delete_dispatch(dispatch.id, room)
    termination = await worker.receive()
    assert termination.WhichOneof("message") == "termination"
    assert termination.termination.job_id == job.id


async def test_worker_socket_refusals(livekit_server) -> None:
    url, key, secret = livekit_server
    agent_url = f"{url.replace('http', 'ws', 1)}/agent"
    join_only = (
        api.AccessToken(key, secret)
        .with_identity("x")
        .with_grants(api.VideoGrants(room_join=True, room="r"))
        .to_jwt()
    )
    bad_secret = (
        api.AccessToken(key, "wrong-secret-wrong-secret-wrong-secret")
        .with_grants(api.VideoGrants(agent=True))
        .to_jwt()
    )
    async with aiohttp.ClientSession() as session:
        for token, status in ((None, 401), (bad_secret, 401), (join_only, 403)):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(agent_url, headers=headers)
            assert refused.value.status == status

        # A first message that is not a registration closes that connection only.
        good = api.AccessToken(key, secret).with_grants(api.VideoGrants(agent=True)).to_jwt()
        ws = await session.ws_connect(agent_url, headers={"Authorization": f"Bearer {good}"})
        await ws.send_bytes(b"\x08\x01garbage")
        closed = await ws.receive(timeout=WAIT_S)
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        await ws.close()
