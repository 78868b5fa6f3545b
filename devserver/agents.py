"""Agent workers and dispatch for the dev server.

livekit-agents workers open a WebSocket to ``/agent`` (bearer token with the ``agent`` grant) and
speak `livekit.protocol.agent`: they register (agent name, job type, permissions), report load
and status, answer availability requests, take job assignments (a room token minted here) and
report job status. Dispatches come from AgentDispatchService, from a room's configuration (token
``roomConfig.agents`` or CreateRoom ``agents``), and automatically — for workers registered
without an agent name — when a room is created without explicit agents. Each dispatch becomes at
most one job, offered to available workers in order of load until one accepts.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
import urllib.parse
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

from devserver.appkeys import KEYS, PUBLIC_URL, ROOMS
from devserver.auth import AuthError, token_from_request, verify_token
from devserver.rooms import Room, RoomRegistry, new_sid

logger = logging.getLogger("devserver.agents")

AVAILABILITY_TIMEOUT_S = 10.0  # a worker that does not answer an offer in time is passed over
REGISTER_TIMEOUT_S = 10.0
JOB_TOKEN_TTL = datetime.timedelta(hours=24)  # long enough for any interview, incl. reconnects
_ENDED = frozenset(
    {
        proto_agent.JobStatus.JS_SUCCESS,
        proto_agent.JobStatus.JS_FAILED,
        proto_agent.JobStatus.JS_CANCELLED,
    }
)
_SOURCE_NAMES = {
    models.TrackSource.CAMERA: "camera",
    models.TrackSource.MICROPHONE: "microphone",
    models.TrackSource.SCREEN_SHARE: "screen_share",
    models.TrackSource.SCREEN_SHARE_AUDIO: "screen_share_audio",
}


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
    def available(self) -> bool:
        return self.status == proto_agent.WorkerStatus.WS_AVAILABLE and not self.draining

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
    job: proto_agent.Job
    worker_id: str = ""


class Dispatcher:
    """Registered workers, dispatches and jobs of one dev server."""

    def __init__(self, app: web.Application) -> None:
        self._app = app  # keys and public_url are read when used: a test may set them late
        rooms: RoomRegistry = app[ROOMS]
        self.workers: dict[str, Worker] = {}
        self._dispatches: dict[str, dict[str, _Dispatch]] = {}  # room name -> id -> dispatch
        self._jobs: dict[str, _Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        rooms.on("room_created", self._on_room_created)
        rooms.on("room_closed", self._on_room_closed)

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
        """Remove a dispatch and terminate its job; None when there is no such dispatch."""
        record = self._dispatches.get(room_name, {}).pop(dispatch_id, None)
        if record is None:
            return None
        record.proto.state.deleted_at = _now_ns()
        await self._terminate_jobs(record)
        logger.info("agent dispatch deleted", extra={"room": room_name, "dispatch_id": dispatch_id})
        return self.dispatch_proto(record)

    def dispatch_proto(self, record: _Dispatch) -> proto_dispatch.AgentDispatch:
        out = proto_dispatch.AgentDispatch()
        out.CopyFrom(record.proto)
        out.state.jobs.extend(self._jobs[j].job for j in record.job_ids if j in self._jobs)
        return out

    def _on_room_created(
        self, room: Room, agents: Sequence[proto_dispatch.RoomAgentDispatch] = ()
    ) -> None:
        if agents:
            for spec in agents:
                self.create_dispatch(room, spec)
            return
        # LiveKit's default: a room without explicit agents gets the unnamed agent, if any.
        if any(w.agent_name == "" and self._takes_room_jobs(w) for w in self.workers.values()):
            logger.info("automatic agent dispatch", extra={"room": room.name})
            self.create_dispatch(room, proto_dispatch.RoomAgentDispatch())

    def _on_room_closed(self, room: Room) -> None:
        for record in self._dispatches.pop(room.name, {}).values():
            record.proto.state.deleted_at = _now_ns()
            self._spawn(self._forget(record))

    async def _forget(self, record: _Dispatch) -> None:
        await self._terminate_jobs(record)
        for job_id in record.job_ids:
            job = self._jobs.pop(job_id, None)
            worker = self.workers.get(job.worker_id) if job is not None else None
            if worker is not None:
                worker.job_ids.discard(job_id)

    async def _terminate_jobs(self, record: _Dispatch) -> None:
        for job_id in record.job_ids:
            job = self._jobs.get(job_id)
            if job is None or job.job.state.status in _ENDED:
                continue
            worker = self.workers.get(job.worker_id)
            if worker is not None:
                await worker.send(
                    proto_agent.ServerMessage(termination=proto_agent.JobTermination(job_id=job_id))
                )
                logger.info(
                    "agent job termination sent",
                    extra={"room": job.job.room.name, "job_id": job_id, "worker_id": worker.id},
                )

    # -- jobs ---------------------------------------------------------------------------------

    @staticmethod
    def _takes_room_jobs(worker: Worker) -> bool:
        return worker.job_type == proto_agent.JobType.JT_ROOM

    def _candidates(self, agent_name: str, tried: set[str]) -> list[Worker]:
        found = [
            w
            for w in self.workers.values()
            if w.agent_name == agent_name
            and self._takes_room_jobs(w)
            and w.available
            and w.id not in tried
        ]
        return sorted(found, key=lambda w: (w.load, len(w.job_ids)))

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
            state=proto_agent.JobState(status=proto_agent.JobStatus.JS_PENDING),
        )
        log = {"room": room.name, "agent_name": dispatch.agent_name, "dispatch_id": dispatch.id}
        tried: set[str] = set()
        while True:
            if self._dispatches.get(room.name, {}).get(dispatch.id) is not record:
                return  # dispatch deleted or room closed meanwhile
            candidates = self._candidates(dispatch.agent_name, tried)
            if not candidates:
                logger.warning(
                    "no agent worker available for dispatch; it stays without a job",
                    extra={**log, "workers_tried": len(tried)},
                )
                return
            worker = candidates[0]
            tried.add(worker.id)
            answer = await self._offer(worker, job)
            if answer is None or not answer.available:
                logger.info(
                    "agent worker declined job",
                    extra={
                        **log,
                        "worker_id": worker.id,
                        "job_id": job.id,
                        "answered": bool(answer),
                    },
                )
                if answer is not None and answer.terminate:
                    return
                continue
            if await self._assign(worker, room, record, job, answer):
                return

    async def _offer(
        self, worker: Worker, job: proto_agent.Job
    ) -> proto_agent.AvailabilityResponse | None:
        future: asyncio.Future[proto_agent.AvailabilityResponse | None] = (
            asyncio.get_running_loop().create_future()
        )
        worker.offers[job.id] = future
        try:
            request = proto_agent.AvailabilityRequest(job=job)
            if not await worker.send(proto_agent.ServerMessage(availability=request)):
                return None
            return await asyncio.wait_for(future, AVAILABILITY_TIMEOUT_S)
        except TimeoutError:
            return None
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
        identity = answer.participant_identity or f"agent-{job.id}"
        job.state.participant_identity = identity
        job.state.worker_id = worker.id
        job.state.updated_at = _now_ns()
        token = self._job_token(worker, room.name, identity, answer)
        assignment = proto_agent.JobAssignment(job=job, token=token)
        url = _room_url(self._app.get(PUBLIC_URL, ""))
        if url:  # unset: the worker joins through the URL it registered with
            assignment.url = url
        if not await worker.send(proto_agent.ServerMessage(assignment=assignment)):
            return False
        self._jobs[job.id] = _Job(job=job, worker_id=worker.id)
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
        perms = worker.permissions
        sources = [_SOURCE_NAMES[s] for s in perms.can_publish_sources if s in _SOURCE_NAMES]
        grants = api.VideoGrants(
            room_join=True,
            room=room_name,
            can_publish=perms.can_publish,
            can_subscribe=perms.can_subscribe,
            can_publish_data=perms.can_publish_data,
            can_publish_sources=sources or None,
            can_update_own_metadata=perms.can_update_metadata,
            hidden=perms.hidden,
            agent=True,
        )
        return (
            api.AccessToken(worker.api_key, self._app[KEYS][worker.api_key])
            .with_identity(identity)
            .with_name(answer.participant_name)
            .with_metadata(answer.participant_metadata)
            .with_attributes(dict(answer.participant_attributes))
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
        return web.Response(status=403, text="permissions denied: token lacks the agent grant")
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


def _room_url(public_url: str) -> str:
    """The server's WebSocket URL for job assignments; "" when it names no reachable host."""
    parsed = urllib.parse.urlsplit(public_url)
    if parsed.hostname in (None, "", "0.0.0.0", "::"):
        return ""
    scheme = {"http": "ws", "https": "wss"}.get(parsed.scheme, parsed.scheme)
    return urllib.parse.urlunsplit(parsed._replace(scheme=scheme))


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
