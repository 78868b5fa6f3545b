"""Agent workers on both servers: registration, dispatch, job tokens, load and job endings.

Real livekit-agents workers (`AgentServer`, jobs in threads so the test can watch them) take
explicit dispatches (AgentDispatchService, CreateRoom's agents, a token's room configuration)
and the unnamed agent's default one, and join the room as agents. A bare protocol client
(`livekit.protocol.agent` over the WebSocket) checks what a well-behaved SDK worker never shows,
as livekit-server does it: the worker picked at random weighted by spare capacity (never a full
one), a declined job passed on but an unanswered one not, the minted one-hour job token, the job
ended when its agent leaves the room, refusals.

livekit-server registers a worker just after telling it so: a dispatch in the next moments finds
no worker, so the tests let a fresh worker settle before dispatching (`SETTLE_S`).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import jwt
import numpy as np
import pytest
from livekit import api, rtc
from livekit.agents import AgentServer, JobContext, JobExecutorType
from livekit.protocol import agent as proto_agent
from livekit.protocol import models

pytestmark = pytest.mark.integration

WAIT_S = 20.0
SETTLE_S = 1.0  # a registered worker's first moments, when livekit-server cannot dispatch to it


def _room_name() -> str:
    return f"agents-{uuid.uuid4().hex[:8]}"


async def _new_room(lkapi: api.LiveKitAPI, *agent_names: str, metadata: str = "") -> str:
    """A room created through the API, dispatching `agent_names` (none: the unnamed agent)."""
    room = _room_name()
    agents = [api.RoomAgentDispatch(agent_name=n, metadata=metadata) for n in agent_names]
    await lkapi.room.create_room(api.CreateRoomRequest(name=room, agents=agents))
    return room


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
        # livekit-agents reports the host's CPU use by default: on a busy test machine that
        # passes livekit-server's target load (0.7) and the worker would get no job
        load_fnc=lambda: 0.0,
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
        await asyncio.sleep(SETTLE_S)
        yield worker
    finally:
        await server.aclose()
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)


async def _agent_in_room(lkapi: api.LiveKitAPI, room: str) -> models.ParticipantInfo | None:
    listed = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room))
    agents = [p for p in listed.participants if p.kind == models.ParticipantInfo.Kind.AGENT]
    return agents[0] if agents else None


async def test_sdk_worker_takes_api_dispatch_and_joins(
    livekit_server, lkapi: api.LiveKitAPI
) -> None:
    room = _room_name()
    metadata = json.dumps({"candidate_name": "김민수", "role": "백엔드 개발자"})
    async with sdk_worker(livekit_server, "test-agent") as worker:
        await lkapi.room.create_room(api.CreateRoomRequest(name=room))  # and the default one
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

        (state,) = await _listed_jobs(lkapi, room, "test-agent")
        assert state.dispatch_id == dispatch.id
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
    # a join creates a room only with the roomCreate grant (livekit.yaml: auto_create false),
    # and then with the token's room configuration
    token = (
        api.AccessToken(key, secret)
        .with_identity("candidate")
        .with_grants(api.VideoGrants(room_join=True, room=room, room_create=True))
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
        await lkapi.room.create_room(api.CreateRoomRequest(name=room))
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
        assert dispatch.agent_name == ""
        (job,) = await _listed_jobs(lkapi, room, "")
        assert job.state.status == proto_agent.JobStatus.JS_RUNNING

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
    # and no load from the host's CPU use, which on a busy test machine passes livekit-server's
    # target load (0.7) so that no job would come
    options = WorkerOptions(
        entrypoint_fnc=entrypoint, agent_name="cli-agent", port=0, num_idle_processes=0,
        load_fnc=lambda: 0.0,
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
        await asyncio.sleep(SETTLE_S)
        room = await _new_room(lkapi, "cli-agent", metadata="cli-metadata")

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
    """A worker speaking livekit.protocol.agent directly, to script every answer. What the
    server sends is read as it comes into `inbox` (so waits can be given up without losing a
    message)."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self.session, self.ws = session, ws
        self.id = ""
        self.inbox: asyncio.Queue[proto_agent.ServerMessage | None] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

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
        worker.id = (await worker.expect("register")).register.worker_id
        await worker.status(proto_agent.WorkerStatus.WS_AVAILABLE, 0.0)
        await asyncio.sleep(SETTLE_S)
        return worker

    async def _read(self) -> None:
        async for raw in self.ws:
            if raw.type == aiohttp.WSMsgType.BINARY:
                self.inbox.put_nowait(proto_agent.ServerMessage.FromString(raw.data))
        self.inbox.put_nowait(None)  # closed

    async def send(self, msg: proto_agent.WorkerMessage) -> None:
        await self.ws.send_bytes(msg.SerializeToString())

    async def receive(self) -> proto_agent.ServerMessage:
        msg = await asyncio.wait_for(self.inbox.get(), WAIT_S)
        assert msg is not None, "the server closed the worker's connection"
        return msg

    async def expect(self, which: str) -> proto_agent.ServerMessage:
        msg = await self.receive()
        assert msg.WhichOneof("message") == which, msg
        return msg

    async def expect_nothing(self, seconds: float) -> None:
        try:
            msg = await asyncio.wait_for(self.inbox.get(), seconds)
        except TimeoutError:
            return
        raise AssertionError(f"expected no message, got {msg}")

    async def status(self, status: int, load: float) -> None:
        """Report status and load; returns once the server has taken them in."""
        update = proto_agent.UpdateWorkerStatus(status=status, load=load)
        await self.send(proto_agent.WorkerMessage(update_worker=update))
        # The server handles a connection's messages in order: its pong proves the update is in.
        await self.send(proto_agent.WorkerMessage(ping=proto_agent.WorkerPing(timestamp=7)))
        pong = await self.expect("pong")
        assert pong.pong.last_timestamp == 7

    async def answer(self, job_id: str, available: bool, **fields: object) -> None:
        response = proto_agent.AvailabilityResponse(job_id=job_id, available=available, **fields)
        await self.send(proto_agent.WorkerMessage(availability=response))

    async def take(self, identity: str = "") -> tuple[proto_agent.Job, proto_agent.JobAssignment]:
        """Accept the next job offered; its assignment."""
        job = (await self.expect("availability")).availability.job
        await self.answer(job.id, True, participant_identity=identity or f"agent-{job.id}")
        assignment = (await self.expect("assignment")).assignment
        assert assignment.job.id == job.id
        return job, assignment

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()
        await self._reader


@pytest.fixture
async def raw_workers(livekit_server) -> AsyncIterator[Callable[[str], Awaitable[RawWorker]]]:
    made: list[RawWorker] = []

    async def make(agent_name: str) -> RawWorker:
        made.append(await RawWorker.connect(livekit_server, agent_name))
        return made[-1]

    yield make
    for worker in made:
        await worker.close()


def _agent_name() -> str:
    return f"raw-{uuid.uuid4().hex[:6]}"


async def _jobs(lkapi: api.LiveKitAPI, room: str, agent_name: str) -> list[proto_agent.Job]:
    dispatches = await lkapi.agent_dispatch.list_dispatch(room)
    return [j for d in dispatches if d.agent_name == agent_name for j in d.state.jobs]


async def _listed_jobs(lkapi: api.LiveKitAPI, room: str, agent_name: str) -> list[proto_agent.Job]:
    """The dispatch's jobs once listed: livekit-server lists a job seconds after assigning it."""
    async with asyncio.timeout(WAIT_S):
        while True:  # polled: the state lives in the server
            if jobs := await _jobs(lkapi, room, agent_name):
                return jobs
            await asyncio.sleep(0.1)


async def test_full_worker_is_skipped(lkapi: api.LiveKitAPI, raw_workers) -> None:
    name = _agent_name()
    full, free = await raw_workers(name), await raw_workers(name)
    # The full worker reports the lower load: only its status can keep it from being asked.
    await full.status(proto_agent.WorkerStatus.WS_FULL, 0.2)
    await free.status(proto_agent.WorkerStatus.WS_AVAILABLE, 0.6)

    room = await _new_room(lkapi, name)
    offer = await free.expect("availability")
    assert offer.availability.job.room.name == room
    await full.expect_nothing(0.5)

    # With no available worker under livekit-server's target load (0.7), or at a load of 1,
    # the dispatch stays without a job.
    for load in (0.75, 1.0):
        await free.status(proto_agent.WorkerStatus.WS_AVAILABLE, load)
        room = await _new_room(lkapi, name)
        await free.expect_nothing(1.0)
        await full.expect_nothing(0.1)
        assert await _jobs(lkapi, room, name) == [], load


async def test_worker_is_picked_at_random_weighted_by_spare_capacity(
    lkapi: api.LiveKitAPI, raw_workers
) -> None:
    """livekit-server weighs each available worker by 1 - load: with loads 0, 0.8 and 1 the
    first gets 5/6 of the jobs, the second 1/6, the third none."""
    name = _agent_name()
    idle, busy, full = [await raw_workers(name) for _ in range(3)]
    await busy.status(proto_agent.WorkerStatus.WS_AVAILABLE, 0.8)
    await full.status(proto_agent.WorkerStatus.WS_AVAILABLE, 1.0)
    taken = {"idle": 0, "busy": 0, "full": 0}

    async def take_all(label: str, worker: RawWorker) -> None:
        """Accept every job offered (offers and assignments of many jobs interleave)."""
        while True:
            msg = await worker.inbox.get()
            which = msg.WhichOneof("message") if msg is not None else None
            if which == "availability":
                job_id = msg.availability.job.id
                await worker.answer(job_id, True, participant_identity=f"agent-{job_id}")
            elif which == "assignment":
                taken[label] += 1

    takers = [
        asyncio.create_task(take_all(label, worker))
        for label, worker in (("idle", idle), ("busy", busy), ("full", full))
    ]
    rooms = []
    try:
        for _ in range(40):
            rooms.append(await _new_room(lkapi, name))
        await _until(_async(lambda: sum(taken.values()) == 40), "40 jobs taken")
    finally:
        for task in takers:
            task.cancel()
        await asyncio.gather(*takers, return_exceptions=True)
    # P(busy gets none) = (5/6)^40 < 0.1 %; P(busy gets as many as idle) is far smaller
    assert taken["full"] == 0 and 0 < taken["busy"] < taken["idle"], taken
    for room in rooms:
        await lkapi.room.delete_room(api.DeleteRoomRequest(room=room))


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def wrapped() -> bool:
        return check()

    return wrapped


async def test_a_declined_job_goes_to_another_worker_an_unanswered_one_does_not(
    lkapi: api.LiveKitAPI, raw_workers
) -> None:
    name = _agent_name()
    first, second = await raw_workers(name), await raw_workers(name)

    async def offered() -> tuple[RawWorker, RawWorker, proto_agent.Job]:
        """The worker that got the offer (either: the pick is random), the other, the job."""
        async with asyncio.timeout(WAIT_S):
            while True:  # polled: the offer lands in one of the inboxes
                for asked, other in ((first, second), (second, first)):
                    if not asked.inbox.empty():
                        offer = await asked.expect("availability")
                        return asked, other, offer.availability.job
                await asyncio.sleep(0.05)

    room = await _new_room(lkapi, name)
    asked, other, job = await offered()
    await asked.answer(job.id, False)
    passed_on = (await other.expect("availability")).availability.job
    assert passed_on.id == job.id and passed_on.room.name == room
    await other.answer(job.id, True, participant_identity="interviewer-1")
    await other.expect("assignment")

    # no answer in time (3 s, livekit-server's job request timeout): the job is not launched and
    # the other worker is not asked
    room = await _new_room(lkapi, name)
    asked, other, job = await offered()
    await other.expect_nothing(6.0)
    assert await _jobs(lkapi, room, name) == []


async def test_assignment_carries_a_one_hour_job_token(
    livekit_server, lkapi: api.LiveKitAPI, raw_workers
) -> None:
    _, key, secret = livekit_server
    name = _agent_name()
    worker = await raw_workers(name)
    room = await _new_room(lkapi, name, metadata='{"language": "en"}')
    job = (await worker.expect("availability")).availability.job
    assert job.id.startswith("AJ_") and job.agent_name == name
    assert job.metadata == '{"language": "en"}' and job.room.name == room
    await worker.answer(
        job.id,
        True,
        participant_identity="interviewer-1",
        participant_name="Interviewer",
        participant_metadata="md",
        participant_attributes={"lk.agent.name": name},
    )
    assignment = (await worker.expect("assignment")).assignment
    assert assignment.job.id == job.id

    claims = api.TokenVerifier(key, secret).verify(assignment.token)
    assert claims.identity == "interviewer-1" and claims.name == "Interviewer"
    assert claims.kind == "agent" and claims.metadata == "md"
    # livekit-server adds the worker's agent name as lk.agent_name
    assert claims.attributes == {"lk.agent.name": name, "lk.agent_name": name}
    video = claims.video
    assert video is not None and video.room_join and video.room == room and video.agent
    assert video.can_publish and video.can_subscribe and video.can_publish_data
    assert video.can_update_own_metadata and not video.hidden
    raw = jwt.decode(assignment.token, options={"verify_signature": False})
    assert abs(raw["exp"] - time.time() - 3600) < 60

    # the listed job is as assigned: running, whatever the worker reports later
    (listed,) = await _listed_jobs(lkapi, room, name)
    assert listed.id == job.id and listed.state.participant_identity == "interviewer-1"
    assert listed.state.status == proto_agent.JobStatus.JS_RUNNING
    # a status from a newer protocol is taken in, not fatal to the connection
    odd = proto_agent.UpdateJobStatus(job_id=job.id, status=99)  # type: ignore[arg-type]
    await worker.send(proto_agent.WorkerMessage(update_job=odd))
    await worker.status(proto_agent.WorkerStatus.WS_AVAILABLE, 0.1)


async def test_deleting_dispatch_terminates_job_and_ping(
    livekit_server, lkapi: api.LiveKitAPI, raw_workers
) -> None:
    name = _agent_name()
    worker = await raw_workers(name)
    await worker.send(proto_agent.WorkerMessage(ping=proto_agent.WorkerPing(timestamp=1234)))
    assert (await worker.expect("pong")).pong.last_timestamp == 1234

    room = await _new_room(lkapi, name)
    job, _ = await worker.take()
    (dispatch,) = [d for d in await lkapi.agent_dispatch.list_dispatch(room) if d.agent_name]
    await lkapi.agent_dispatch.delete_dispatch(dispatch.id, room)
    assert (await worker.expect("termination")).termination.job_id == job.id


async def test_the_agent_leaving_the_room_ends_its_job(
    livekit_server, lkapi: api.LiveKitAPI, raw_workers
) -> None:
    """Leaving, and being replaced by a new connection with the same identity, both remove the
    job's participant: the worker is told to end the job (livekit-server's AGENT_LEFT_ROOM).
    livekit-server knows the job's participant only once the job is listed, which is seconds
    after its assignment (~5 s here): the test waits for that."""
    name = _agent_name()
    worker = await raw_workers(name)
    for how in ("leaves", "rejoins"):
        room = await _new_room(lkapi, name)
        job, assignment = await worker.take()
        await _listed_jobs(lkapi, room, name)  # only then it knows the job's participant
        agent = rtc.Room()
        await agent.connect(livekit_server.url, assignment.token)
        await worker.expect_nothing(0.5)  # joining is not leaving
        again = rtc.Room()
        if how == "leaves":
            await agent.disconnect()
        else:
            await again.connect(livekit_server.url, assignment.token)
        try:
            ended = await worker.expect("termination")
            assert ended.termination.job_id == job.id, how
        finally:
            await again.disconnect()
            await agent.disconnect()
        await lkapi.room.delete_room(api.DeleteRoomRequest(room=room))


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
        for token in (None, bad_secret, join_only):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(agent_url, headers=headers)
            assert refused.value.status == 401

        # A first message that is not a registration closes that connection only.
        good = api.AccessToken(key, secret).with_grants(api.VideoGrants(agent=True)).to_jwt()
        ws = await session.ws_connect(agent_url, headers={"Authorization": f"Bearer {good}"})
        await ws.send_bytes(b"\x08\x01garbage")
        closed = await ws.receive(timeout=WAIT_S)
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        await ws.close()
