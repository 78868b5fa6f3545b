"""Agent workers and dispatch for the dev server, with livekit-server's semantics.

livekit-agents workers open a WebSocket to ``/agent`` (bearer token with the ``agent`` grant) and
speak `livekit.protocol.agent`: they register (agent name, job type, permissions), report load
and status, answer availability requests, take job assignments (a one-hour room token minted
here) and report job status. Dispatches come from AgentDispatchService and from a room's
configuration (token ``roomConfig.agents`` or CreateRoom ``agents``); a room created without any
gets one for the unnamed agent. As in livekit-server (pkg/service/agentservice.go, pkg/agent):

- a dispatch is launched once, when it is created: no worker then, no job ever;
- a job is taken only if some available worker reports a load under the target load (0.7,
  livekit.yaml `agents.target_load`); the worker is then picked at random, weighted by its spare
  capacity (1 - load) among the available ones, so one reporting load >= 1 is never picked;
- a worker that declines passes the job to another; one that does not answer within 3 s (the
  job request's RPC timeout) ends the attempt: no other worker is asked;
- ListDispatch shows each job as it was assigned (running), not the worker's later reports;
- the job's agent leaving the room (including a rejoin with its identity, which replaces it)
  ends the job: the worker gets a JobTermination.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import random
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import WSMessage, WSMsgType, web
from google.protobuf.message import DecodeError
from livekit import api
from livekit.protocol import agent as proto_agent
from livekit.protocol import agent_dispatch as proto_dispatch
from livekit.protocol import models

from devserver.appkeys import KEYS, ROOMS
from devserver.auth import AuthError, token_from_request, verify_token
from devserver.rooms import Participant, Room, RoomRegistry, new_sid

logger = logging.getLogger("devserver.agents")

# no answer to an offer by then: the job is not launched (livekit-server waits 10 s for the
# answer, but the job request around it is an RPC that times out after 3 s, psrpc's default)
AVAILABILITY_TIMEOUT_S = 3.0
# livekit-server routes a job to a node only if its available workers have load to spare below
# this (agents.target_load, pkg/agent/config.go): with every worker at or above it, no job
TARGET_LOAD = 0.7
REGISTER_TIMEOUT_S = 10.0
JOB_TOKEN_TTL = datetime.timedelta(hours=1)  # livekit-server's (protocol agent/token.go)
AGENT_NAME_ATTRIBUTE = "lk.agent_name"  # set on every job token, as livekit-server does
# a deleted dispatch's agent has this long to leave after its termination before it is removed
TERMINATION_GRACE_S = 3.0
_ENDED = frozenset(
    {
        proto_agent.JobStatus.JS_SUCCESS,
        proto_agent.JobStatus.JS_FAILED,
        proto_agent.JobStatus.JS_CANCELLED,
    }
)


def _now_ns() -> int:
    return time.time_ns()


def _enum_name(enum: Any, value: int) -> str:
    """A protobuf enum value's name; a worker may send values newer than this protocol."""
    try:
        return str(enum.Name(value))
    except ValueError:
        return str(value)


@dataclass
class Worker:
    """One registered agent worker connection."""

    id: str
    ws: web.WebSocketResponse
    api_key: str
    agent_name: str
    job_type: int
    version: str
    permissions: models.ParticipantPermission
    status: int = proto_agent.WorkerStatus.WS_AVAILABLE
    load: float = 0.0
    draining: bool = False
    job_ids: set[str] = field(default_factory=set)
    offers: dict[str, asyncio.Future[proto_agent.AvailabilityResponse | None]] = field(
        default_factory=dict
    )
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def spare(self) -> float:
        """Its weight in the choice of a worker: spare capacity, 0 when not available."""
        if self.status != proto_agent.WorkerStatus.WS_AVAILABLE or self.draining:
            return 0.0
        return max(0.0, 1.0 - self.load)

    async def send(self, msg: proto_agent.ServerMessage) -> bool:
        """Send a message; False when the connection is already gone."""
        if self.ws.closed:
            return False
        async with self.send_lock:
            try:
                await self.ws.send_bytes(msg.SerializeToString())
            except (ConnectionError, RuntimeError):
                return False
        return True


@dataclass
class _Dispatch:
    proto: proto_dispatch.AgentDispatch  # without jobs; see Dispatcher.dispatch_proto
    job_ids: list[str] = field(default_factory=list)


@dataclass
class _Job:
    job: proto_agent.Job  # its state as the worker reports it
    assigned: proto_agent.Job  # as it was assigned: what ListDispatch shows
    room: str
    worker_id: str = ""


class Dispatcher:
    """Registered workers, dispatches and jobs of one dev server."""

    def __init__(self, app: web.Application) -> None:
        self._app = app  # the keys are read when used: a test may set them late
        rooms: RoomRegistry = app[ROOMS]
        self.workers: dict[str, Worker] = {}
        self._dispatches: dict[str, dict[str, _Dispatch]] = {}  # room name -> id -> dispatch
        self._jobs: dict[str, _Job] = {}
        # room name -> identity of a job's agent -> job id, for ending the job when it leaves
        self._agents: dict[str, dict[str, str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._rooms = rooms
        rooms.on("room_created", self._on_room_created)
        rooms.on("room_closed", self._on_room_closed)
        rooms.on("participant_left", self._on_participant_left)

    # -- dispatches ---------------------------------------------------------------------------

    def create_dispatch(
        self, room: Room, spec: proto_dispatch.RoomAgentDispatch
    ) -> proto_dispatch.AgentDispatch:
        """Record a dispatch for ``room`` and start looking for a worker; returns its proto."""
        dispatch = proto_dispatch.AgentDispatch(
            id=new_sid("AD_"),
            agent_name=spec.agent_name,
            room=room.name,
            metadata=spec.metadata,
            restart_policy=spec.restart_policy,
            deployment=spec.deployment,
            attributes=dict(spec.attributes),
            state=proto_dispatch.AgentDispatchState(created_at=_now_ns()),
        )
        record = _Dispatch(dispatch)
        self._dispatches.setdefault(room.name, {})[dispatch.id] = record
        logger.info(
            "agent dispatch created",
            extra={"room": room.name, "agent_name": spec.agent_name, "dispatch_id": dispatch.id},
        )
        self._spawn(self._launch_job(room, record))
        return self.dispatch_proto(record)

    def list_dispatches(self, room_name: str) -> list[proto_dispatch.AgentDispatch]:
        return [self.dispatch_proto(d) for d in self._dispatches.get(room_name, {}).values()]

    async def delete_dispatch(
        self, room_name: str, dispatch_id: str
    ) -> proto_dispatch.AgentDispatch | None:
        """Remove a dispatch and end its jobs; None when there is no such dispatch."""
        record = self._dispatches.get(room_name, {}).pop(dispatch_id, None)
        if record is None:
            return None
        record.proto.state.deleted_at = _now_ns()
        logger.info("agent dispatch deleted", extra={"room": room_name, "dispatch_id": dispatch_id})
        answer = self.dispatch_proto(record)
        self._spawn(self._end_dispatch_jobs(room_name, record))
        return answer

    def dispatch_proto(self, record: _Dispatch) -> proto_dispatch.AgentDispatch:
        out = proto_dispatch.AgentDispatch()
        out.CopyFrom(record.proto)
        out.state.jobs.extend(self._jobs[j].assigned for j in record.job_ids if j in self._jobs)
        return out

    def _on_room_created(
        self, room: Room, agents: Sequence[proto_dispatch.RoomAgentDispatch] = ()
    ) -> None:
        # livekit-server's backward-compatible default: a room created without agents gets a
        # dispatch for the unnamed agent, whether or not such a worker is registered
        for spec in agents or [proto_dispatch.RoomAgentDispatch()]:
            self.create_dispatch(room, spec)

    def _on_room_closed(self, room: Room) -> None:
        # the agents were removed with the room, which ended their jobs (_on_participant_left)
        self._agents.pop(room.name, None)
        for record in self._dispatches.pop(room.name, {}).values():
            record.proto.state.deleted_at = _now_ns()
            for job_id in record.job_ids:
                job = self._jobs.pop(job_id, None)
                worker = self.workers.get(job.worker_id) if job is not None else None
                if worker is not None:
                    worker.job_ids.discard(job_id)

    def _on_participant_left(self, room: Room, participant: Participant) -> None:
        job = self._jobs.get(self._agents.get(room.name, {}).pop(participant.identity, ""))
        if job is not None:  # taken now: a closing room forgets its jobs right after
            self._spawn(self._terminate(job, agent_left=True))

    async def _end_dispatch_jobs(self, room_name: str, record: _Dispatch) -> None:
        """A deleted dispatch's jobs: terminated, and their agents removed if they stay."""
        for job_id in record.job_ids:
            job = self._jobs.get(job_id)
            if job is None:
                continue
            identity = job.assigned.state.participant_identity
            self._agents.get(room_name, {}).pop(identity, None)
            if not await self._terminate(job, agent_left=False):
                continue
            room = self._rooms.get(room_name)
            deadline = time.monotonic() + TERMINATION_GRACE_S
            while room is not None and identity in room.participants:
                if time.monotonic() > deadline:
                    await room.remove_participant(identity)
                    break
                await asyncio.sleep(0.1)

    async def _terminate(self, job: _Job, *, agent_left: bool) -> bool:
        """Tell the job's worker to end it; False when its worker is gone or it already ended."""
        worker = self.workers.get(job.worker_id)
        if worker is None or job.job.state.status in _ENDED:
            return False
        job_id = job.job.id
        await worker.send(
            proto_agent.ServerMessage(termination=proto_agent.JobTermination(job_id=job_id))
        )
        if agent_left:
            self._set_status(job, proto_agent.JobStatus.JS_FAILED, "agent worker left the room")
        else:
            self._set_status(job, proto_agent.JobStatus.JS_SUCCESS, "")
        logger.info(
            "agent job termination sent",
            extra={
                "room": job.room,
                "job_id": job_id,
                "worker_id": worker.id,
                "agent_left_room": agent_left,
            },
        )
        return True

    # -- jobs ---------------------------------------------------------------------------------

    @staticmethod
    def _takes_room_jobs(worker: Worker) -> bool:
        return worker.job_type == proto_agent.JobType.JT_ROOM

    def _pick(self, agent_name: str, tried: set[str]) -> Worker | None:
        """A worker for a job: at random, weighted by spare capacity; None if none has any."""
        found = [
            w
            for w in self.workers.values()
            if w.agent_name == agent_name and self._takes_room_jobs(w) and w.id not in tried
        ]
        if not tried and not any(w.spare > 0 and w.load < TARGET_LOAD for w in found):
            return None  # livekit-server: no node has capacity to spare for the job
        found = [w for w in found if w.spare > 0]
        if not found:
            return None
        return random.choices(found, weights=[w.spare for w in found])[0]

    async def _launch_job(self, room: Room, record: _Dispatch) -> None:
        dispatch = record.proto
        job = proto_agent.Job(
            id=new_sid("AJ_"),
            dispatch_id=dispatch.id,
            type=proto_agent.JobType.JT_ROOM,
            room=room.to_proto(),
            metadata=dispatch.metadata,
            agent_name=dispatch.agent_name,
            deployment=dispatch.deployment,
            attributes=dict(dispatch.attributes),
        )
        log = {"room": room.name, "agent_name": dispatch.agent_name, "dispatch_id": dispatch.id}
        tried: set[str] = set()
        while True:
            if self._dispatches.get(room.name, {}).get(dispatch.id) is not record:
                return  # dispatch deleted or room closed meanwhile
            worker = self._pick(dispatch.agent_name, tried)
            if worker is None:
                logger.warning(
                    "no agent worker available for dispatch; it stays without a job",
                    extra={**log, "workers_tried": len(tried)},
                )
                return
            tried.add(worker.id)
            answer = await self._offer(worker, job)
            if isinstance(answer, TimeoutError):
                logger.warning(
                    "agent worker did not answer the job offer; the job is not launched",
                    extra={**log, "worker_id": worker.id, "job_id": job.id},
                )
                return
            if answer is None or not answer.available:  # gone, or declined: try another
                logger.info(
                    "agent worker declined job",
                    extra={**log, "worker_id": worker.id, "job_id": job.id},
                )
                continue
            if answer.terminate:
                logger.info("agent worker ended the job at once", extra={**log, "job_id": job.id})
                return
            if await self._assign(worker, room, record, job, answer):
                return

    async def _offer(
        self, worker: Worker, job: proto_agent.Job
    ) -> proto_agent.AvailabilityResponse | TimeoutError | None:
        """The worker's answer; None if its connection is gone."""
        future: asyncio.Future[proto_agent.AvailabilityResponse | None] = (
            asyncio.get_running_loop().create_future()
        )
        worker.offers[job.id] = future
        try:
            request = proto_agent.AvailabilityRequest(job=job)
            if not await worker.send(proto_agent.ServerMessage(availability=request)):
                return None
            return await asyncio.wait_for(future, AVAILABILITY_TIMEOUT_S)
        except TimeoutError as e:
            return e
        finally:
            worker.offers.pop(job.id, None)

    async def _assign(
        self,
        worker: Worker,
        room: Room,
        record: _Dispatch,
        job: proto_agent.Job,
        answer: proto_agent.AvailabilityResponse,
    ) -> bool:
        identity = answer.participant_identity
        now = _now_ns()
        job.state.CopyFrom(
            proto_agent.JobState(
                status=proto_agent.JobStatus.JS_RUNNING,  # as livekit-server marks it assigned
                participant_identity=identity,
                worker_id=worker.id,
                started_at=now,
                updated_at=now,
            )
        )
        token = self._job_token(worker, room.name, identity, answer)
        # no URL: the worker joins through the one it registered with, as with livekit-server
        assignment = proto_agent.JobAssignment(job=job, token=token)
        if not await worker.send(proto_agent.ServerMessage(assignment=assignment)):
            return False
        running = proto_agent.Job()
        running.CopyFrom(job)
        self._jobs[job.id] = _Job(job=running, assigned=job, room=room.name, worker_id=worker.id)
        if identity:
            self._agents.setdefault(room.name, {})[identity] = job.id
        record.job_ids.append(job.id)
        worker.job_ids.add(job.id)
        logger.info(
            "agent job assigned",
            extra={
                "room": room.name,
                "agent_name": job.agent_name,
                "dispatch_id": job.dispatch_id,
                "job_id": job.id,
                "worker_id": worker.id,
                "identity": identity,
            },
        )
        return True

    def _job_token(
        self,
        worker: Worker,
        room_name: str,
        identity: str,
        answer: proto_agent.AvailabilityResponse,
    ) -> str:
        # the grants livekit-server gives a job (protocol agent/token.go)
        perms = worker.permissions
        grants = api.VideoGrants(
            room_join=True,
            room=room_name,
            can_publish=perms.can_publish,
            can_subscribe=perms.can_subscribe,
            can_publish_data=perms.can_publish_data,
            can_update_own_metadata=perms.can_update_metadata,
            can_subscribe_metrics=perms.can_subscribe_metrics,
            hidden=perms.hidden,
            agent=True,
        )
        attributes = {**answer.participant_attributes, AGENT_NAME_ATTRIBUTE: worker.agent_name}
        return (
            api.AccessToken(worker.api_key, self._app[KEYS][worker.api_key])
            .with_identity(identity)
            .with_name(answer.participant_name)
            .with_metadata(answer.participant_metadata)
            .with_attributes(attributes)
            .with_kind("agent")
            .with_grants(grants)
            .with_ttl(JOB_TOKEN_TTL)
            .to_jwt()
        )

    # -- worker messages ------------------------------------------------------------------------

    def register(
        self, ws: web.WebSocketResponse, api_key: str, req: proto_agent.RegisterWorkerRequest
    ) -> Worker:
        permissions = models.ParticipantPermission(
            can_publish=True, can_subscribe=True, can_publish_data=True, can_update_metadata=True
        )
        if req.HasField("allowed_permissions"):
            permissions.CopyFrom(req.allowed_permissions)
        worker = Worker(
            id=new_sid("AW_"),
            ws=ws,
            api_key=api_key,
            agent_name=req.agent_name,
            job_type=req.type,
            version=req.version,
            permissions=permissions,
        )
        self.workers[worker.id] = worker
        logger.info(
            "agent worker registered",
            extra={
                "worker_id": worker.id,
                "agent_name": req.agent_name,
                "job_type": _enum_name(proto_agent.JobType, req.type),
                "version": req.version,
            },
        )
        if not self._takes_room_jobs(worker):
            logger.warning(
                "the dev server dispatches room jobs only; this worker will get no jobs",
                extra={
                    "worker_id": worker.id,
                    "job_type": _enum_name(proto_agent.JobType, req.type),
                },
            )
        return worker

    def unregister(self, worker: Worker) -> None:
        self.workers.pop(worker.id, None)
        for future in worker.offers.values():
            if not future.done():
                future.set_result(None)
        for job_id in worker.job_ids:
            job = self._jobs.get(job_id)
            if job is not None and job.worker_id == worker.id:
                if job.job.state.status not in _ENDED:
                    self._set_status(
                        job, proto_agent.JobStatus.JS_FAILED, "agent worker disconnected"
                    )
        logger.info(
            "agent worker disconnected",
            extra={
                "worker_id": worker.id,
                "agent_name": worker.agent_name,
                "jobs": len(worker.job_ids),
            },
        )

    async def handle(self, worker: Worker, msg: proto_agent.WorkerMessage) -> None:
        which = msg.WhichOneof("message")
        if which == "availability":
            future = worker.offers.get(msg.availability.job_id)
            if future is not None and not future.done():
                future.set_result(msg.availability)
        elif which == "update_worker":
            update = msg.update_worker
            worker.status = update.status
            worker.load = update.load
            worker.draining = worker.draining or update.draining
        elif which == "update_job":
            job = self._jobs.get(msg.update_job.job_id)
            if job is not None:
                self._set_status(job, msg.update_job.status, msg.update_job.error)
        elif which == "ping":
            pong = proto_agent.WorkerPong(
                last_timestamp=msg.ping.timestamp, timestamp=int(time.time() * 1000)
            )
            await worker.send(proto_agent.ServerMessage(pong=pong))
        elif which == "migrate_job":
            self._migrate(worker, msg.migrate_job.job_ids)
        elif which == "register":
            logger.warning("agent worker registered twice; ignored", extra={"worker_id": worker.id})
        else:
            logger.warning(
                "agent worker message not supported by the dev server",
                extra={"worker_id": worker.id, "message": which},
            )

    def _migrate(self, worker: Worker, job_ids: Sequence[str]) -> None:
        # A reconnecting worker reports the jobs it still runs: they are its again.
        for job_id in job_ids:
            job = self._jobs.get(job_id)
            if job is None:
                continue
            old = self.workers.get(job.worker_id)
            if old is not None:
                old.job_ids.discard(job_id)
            job.worker_id = worker.id
            job.job.state.worker_id = worker.id
            worker.job_ids.add(job_id)
            if job.job.state.status == proto_agent.JobStatus.JS_FAILED:
                self._set_status(job, proto_agent.JobStatus.JS_RUNNING, "")
            logger.info("agent job migrated", extra={"job_id": job_id, "worker_id": worker.id})

    def _set_status(self, job: _Job, status: int, error: str) -> None:
        state = job.job.state
        now = _now_ns()
        state.status = status
        state.error = error
        state.updated_at = now
        if status == proto_agent.JobStatus.JS_RUNNING and not state.started_at:
            state.started_at = now
        if status in _ENDED:
            state.ended_at = now
            worker = self.workers.get(job.worker_id)
            if worker is not None:
                worker.job_ids.discard(job.job.id)
        else:
            state.ended_at = 0
        logger.info(
            "agent job status",
            extra={
                "room": job.job.room.name,
                "job_id": job.job.id,
                "status": _enum_name(proto_agent.JobStatus, status),
                "error": error,
            },
        )

    # -- lifecycle ------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for worker in list(self.workers.values()):
            await worker.ws.close()


async def _worker_socket(request: web.Request) -> web.StreamResponse:
    dispatcher: Dispatcher = request.app[AGENT_DISPATCHER]
    token = token_from_request(request)
    try:
        claims = verify_token(token, request.app[KEYS])
    except AuthError as e:
        logger.info("agent worker refused", extra={"reason": e.reason})
        return web.Response(status=e.status, text=e.reason)
    if not (claims.video and claims.video.agent):
        logger.info("agent worker refused", extra={"reason": "no agent grant"})
        # livekit-server answers a missing grant as 401, like a bad token
        return web.Response(status=401, text="permissions denied: token lacks the agent grant")
    # verified above, so the issuer is a known API key
    api_key = jwt.decode(token, options={"verify_signature": False})["iss"]

    ws = web.WebSocketResponse(heartbeat=30.0)
    await ws.prepare(request)
    try:
        first = await ws.receive(timeout=REGISTER_TIMEOUT_S)
    except TimeoutError:
        await ws.close(code=1008, message=b"expected a register message")
        return ws
    register = _parse(first)
    if register is None or register.WhichOneof("message") != "register":
        await ws.close(code=1008, message=b"expected a register message")
        return ws

    worker = dispatcher.register(ws, api_key, register.register)
    info = models.ServerInfo(
        edition=models.ServerInfo.Edition.Standard,
        version="devserver",
        protocol=16,
        node_id="devserver",
        agent_protocol=1,
    )
    response = proto_agent.RegisterWorkerResponse(worker_id=worker.id, server_info=info)
    try:
        await worker.send(proto_agent.ServerMessage(register=response))
        async for raw in ws:
            if raw.type != WSMsgType.BINARY:
                continue
            msg = _parse(raw)
            if msg is None:
                logger.warning("malformed agent worker message", extra={"worker_id": worker.id})
                await ws.close(code=1003, message=b"malformed WorkerMessage")
                break
            await dispatcher.handle(worker, msg)
    finally:
        dispatcher.unregister(worker)
    return ws


def _parse(raw: WSMessage) -> proto_agent.WorkerMessage | None:
    if raw.type != WSMsgType.BINARY:
        return None
    msg = proto_agent.WorkerMessage()
    try:
        msg.ParseFromString(raw.data)
    except DecodeError:
        return None
    return msg


AGENT_DISPATCHER = web.AppKey("agent_dispatcher", Dispatcher)


def setup(app: web.Application) -> None:
    """Add the agent-worker WebSocket and the dispatcher (``app[AGENT_DISPATCHER]``)."""
    app[AGENT_DISPATCHER] = Dispatcher(app)
    app.router.add_get("/agent", _worker_socket)

    async def _close(app: web.Application) -> None:
        await app[AGENT_DISPATCHER].close()

    app.on_shutdown.append(_close)
