"""The LiveKit worker: agent "interviewer", explicitly dispatched, one job per interview.

The job metadata is the interview config. An invalid config (or a provider that cannot run)
makes the agent say nothing: it logs one clear reason, publishes it to the room (participant
attribute `interview.error` and a data message on topic `interview.error`) and leaves without
raising, so the job is not retried in a crash loop.

While the interview runs, the job beats in the transcript store; when it ends, however it ends
(goodbye, room closed, terminated by the server), its shutdown callback claims and writes
transcript.json and the report, unless the web API found the job dead first and wrote them
(agent/ending.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path

from livekit import rtc
from livekit.agents import AgentServer, AutoSubscribe, JobContext, JobProcess, cli
from livekit.agents.utils.hw import get_cpu_monitor
from livekit.agents.worker import ServerEnvOption, _DefaultLoadCalc

from .avatar import avatar_service_load, start_avatar
from .booking import AGENT_NAME
from .capacity import HostLoad, host_capacity
from .config import ConfigError, InterviewConfig, parse_config
from .ending import BY_AGENT, Heartbeat, job_end_reason
from .env import listen_address, whole_number
from .flow import StageAgent
from .hearing import HearingMonitor
from .providers import ProviderError, warm_offline_stt
from .rejoin import WelcomeBack, hear_the_candidate
from .session import Interview, create_interview
from .spare_processes import SpareProcesses, SpareProcessOptions
from .store import data_dir, staging_dir
from .turn_taking import TurnTakingOptions, load_vad, room_options
from .warmup import LANGUAGES, warm_interview_process

logger = logging.getLogger("interview.worker")

ERROR_TOPIC = "interview.error"
ERROR_ATTRIBUTE = "interview.error"
STAGE_ATTRIBUTE = "interview.stage"
CONTROL_TOPIC = "interview.control"  # server-sent {"type": "end"}: close politely
# after the candidate joins, before the greeting: their browser subscribes to the interviewer's
# voice (as after a reload, rejoin.py), and the interviewer's receive buffer for their microphone,
# which starts high, settles (greeting at once: barge-ins on it measured slower)
CANDIDATE_SETTLE_S = 1.0


def prewarm(proc: JobProcess) -> None:
    """Load what every interview needs once per process, before an interview is assigned to it:
    the VAD, the end-of-turn model, what would otherwise be built on the event loop in the
    interview's first seconds (warmup.py), and the offline STT models of both languages: an idle
    process is then ready to interview at full speed."""
    from livekit.local_inference import init_eot

    proc.userdata["vad"] = load_vad(TurnTakingOptions.from_env())
    init_eot()
    warm_interview_process()
    t0 = time.perf_counter()
    try:
        models = warm_offline_stt(LANGUAGES)
    except ProviderError as e:  # a bad STT setting or a missing model: each interview says so
        logger.warning("offline STT not loaded ahead", extra={"error": str(e)})
    else:
        if models:
            took = round(time.perf_counter() - t0, 2)
            logger.info("offline STT loaded ahead", extra={"models": models, "s": took})


async def publish_error(ctx: JobContext, message: str) -> None:
    """Tell the client why there is no interview, then leave quietly."""
    logger.error(message, extra={"room": ctx.room.name, "job": ctx.job.id})
    try:
        await ctx.connect()
        lp = ctx.room.local_participant
        await lp.set_attributes({ERROR_ATTRIBUTE: message})
        payload = json.dumps({"type": "error", "message": message}, ensure_ascii=False)
        await lp.publish_data(payload, reliable=True, topic=ERROR_TOPIC)
        await asyncio.sleep(0.5)  # let the reliable message leave before disconnecting
    except Exception as e:  # the error is already logged; publishing is best effort
        logger.warning("could not publish the error to the room", extra={"error": str(e)})
    ctx.shutdown(reason=message)


def job_config(metadata: str) -> InterviewConfig:
    """The job's interview config; with no metadata (the `console` command) the JSON file named
    by INTERVIEW_CONFIG, so a developer can talk to the interviewer locally."""
    path = os.environ.get("INTERVIEW_CONFIG")
    if not metadata.strip() and path:
        try:
            return parse_config(Path(path).read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigError(f"cannot read INTERVIEW_CONFIG file {path}: {e.strerror}") from None
    return parse_config(metadata)


async def entrypoint(ctx: JobContext) -> None:
    # the job's process, for an operator (and the crash tests) to find an interview's process
    logger.info(
        "interview job started",
        extra={"room": ctx.room.name, "job": ctx.job.id, "pid": os.getpid()},
    )
    try:
        config = job_config(ctx.job.metadata)
    except ConfigError as e:
        await publish_error(ctx, str(e))
        return
    interview_id = ctx.room.name or ctx.job.id
    vad = ctx.proc.userdata.get("vad") or load_vad(TurnTakingOptions.from_env())
    try:
        interview = create_interview(
            config,
            interview_id=interview_id,
            vad_model=vad,
            log_extra={"room": ctx.room.name},
        )
    except ProviderError as e:
        await publish_error(ctx, str(e))
        return

    out_dir = data_dir() / "interviews" / interview_id
    log = {"room": ctx.room.name, "interview": interview_id}
    # from here on the web API sees within seconds when this process is gone (agent/ending.py)
    heartbeat = Heartbeat(interview.store, interview_id).start()
    # for the end reason: why the room connection ended, and who of the candidate's side was
    # still in the room as the interviewer last saw it
    disconnects: list[int] = []
    ctx.room.on("disconnected", disconnects.append)
    people: set[str] = set()

    def _joined(p: rtc.RemoteParticipant) -> None:
        if p.kind != rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            people.add(p.identity)

    ctx.room.on("participant_connected", _joined)
    ctx.room.on("participant_disconnected", lambda p: people.discard(p.identity))

    async def _export(shutdown_reason: str) -> None:
        try:
            await _save_transcript_and_report(shutdown_reason)
        finally:
            if interview.assessment is not None:
                await interview.assessment.aclose()
            heartbeat.stop()

    async def _save_transcript_and_report(shutdown_reason: str) -> None:
        reason = job_end_reason(
            interview.state.finished, disconnects[0] if disconnects else None, bool(people)
        )
        store = interview.store
        # one writer: the API writes them instead for a job it found dead (or an erase came)
        if not store.claim(interview_id, BY_AGENT, reason=reason):
            store.finish(interview_id, reason)
            logger.info(
                "transcript and report left to the web API",
                extra={**log, "reason": reason, "shutdown": shutdown_reason},
            )
            return
        transcript = interview.transcript()
        staging = staging_dir(out_dir)
        await asyncio.to_thread(transcript.write, staging / "transcript.json")
        if not await asyncio.to_thread(
            store.publish, interview_id, BY_AGENT, staging, out_dir, final=False
        ):
            return  # erased meanwhile
        logger.info(
            "transcript saved",
            extra={**log, "path": str(out_dir), "reason": reason, "shutdown": shutdown_reason},
        )
        staging = staging_dir(out_dir)
        try:
            if interview.assessment is not None:
                # reuses the answers assessed during the interview (falls back to assessing all)
                await interview.assessment.write_report(transcript, staging)
            else:  # (session.py imports the evaluation: it is always there)
                from .evaluation import generate_report

                await asyncio.to_thread(generate_report, transcript, staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        await asyncio.to_thread(store.publish, interview_id, BY_AGENT, staging, out_dir, final=True)

    ctx.add_shutdown_callback(_export)

    async def _publish_stage() -> None:
        last = ""
        while True:
            await asyncio.sleep(0.5)
            if interview.state.stage != last and ctx.room.isconnected():
                last = interview.state.stage
                await ctx.room.local_participant.set_attributes({STAGE_ATTRIBUTE: last})

    # the avatar (or, when the avatar service cannot serve, the agent's own audio) speaks; the
    # interviewer hears the candidate's audio only (rejoin.py: not the avatar's, nor any video)
    await ctx.connect(auto_subscribe=AutoSubscribe.SUBSCRIBE_NONE)
    for p in ctx.room.remote_participants.values():  # already there: no connected event
        _joined(p)
    hear_the_candidate(ctx.room, {"room": ctx.room.name, "interview": interview_id})
    await start_avatar(ctx, interview.session, config.avatar)  # it joins while we wait
    if not ctx.is_fake_job():
        await _wait_for_the_candidate(ctx, interview_id)
    await interview.session.start(
        interview.first_agent(),
        room=ctx.room,
        room_options=room_options(TurnTakingOptions.from_env()),
    )
    stage_task = asyncio.create_task(_publish_stage())
    interview.session.on("close", lambda _ev: stage_task.cancel())
    hearing = HearingMonitor(
        ctx.room,
        lambda: interview.session.room_io.linked_participant,
        log_extra={"room": ctx.room.name, "interview": interview_id},
    )
    hearing_task = asyncio.create_task(hearing.run())
    WelcomeBack(
        interview.session,
        ctx.room,
        lambda: (p := interview.session.room_io.linked_participant) and p.identity,
        interview.plan.line("welcome_back"),
        log_extra={"room": ctx.room.name, "interview": interview_id},
    )
    interview.session.on("close", lambda _ev: hearing_task.cancel())
    # after the goodbye (or any other close) the interviewer leaves: the client sees it go
    interview.session.on("close", lambda _ev: ctx.shutdown(reason="interview closed"))
    ctx.room.on("data_received", lambda packet: _on_control(packet, interview, ctx.room.name))


async def _wait_for_the_candidate(ctx: JobContext, interview_id: str) -> None:
    """The interview is dispatched when it is booked (`POST /api/sessions`), before the
    candidate's browser has joined, and a warmed interviewer is ready within a second: it greets
    once the candidate is in the room, or they would miss the greeting's first words, and
    `CANDIDATE_SETTLE_S` after that."""
    t0 = time.monotonic()
    candidate = await ctx.wait_for_participant()
    logger.info(
        "the candidate is in the room",
        extra={
            "room": ctx.room.name,
            "interview": interview_id,
            "identity": candidate.identity,
            "waited_s": round(time.monotonic() - t0, 2),
        },
    )
    await asyncio.sleep(CANDIDATE_SETTLE_S)


def _on_control(packet: rtc.DataPacket, interview: Interview, room: str) -> None:
    """DELETE /api/sessions/{id} (web/livekit_ops.py) asks for the end with a server-sent data
    message; the interviewer then goes to its closing stage, says goodbye and leaves."""
    if packet.topic != CONTROL_TOPIC or packet.participant is not None:
        return  # only the server (RoomService.SendData) may end the interview this way
    try:
        kind = json.loads(packet.data).get("type")
    except (ValueError, AttributeError):
        return
    if kind != "end" or interview.state.stage == "closing" or interview.state.finished:
        return
    logger.info("ending the interview on request", extra={"room": room})
    # the question being asked is cut short so the goodbye starts at once
    interview.session.interrupt(force=True)
    current = interview.session.current_agent
    interview.session.update_agent(StageAgent(interview.state, "closing", current.chat_ctx))


# one process warmed ahead in `dev` too (livekit-agents keeps none there): without it every
# interview waits for a process to start and load its models, ~2.7 s before the greeting here;
# INTERVIEW_IDLE_PROCESSES sets it for a host where interviews often start a few seconds apart
_IDLE = whole_number(os.environ, "INTERVIEW_IDLE_PROCESSES", 0, 0, 64, SystemExit)
IDLE_PROCESSES = ServerEnvOption(
    dev_default=_IDLE or 1, prod_default=_IDLE or math.ceil(get_cpu_monitor().cpu_count())
)
# a process is ready once its models are loaded (prewarm): on a busy host that can take longer
# than livekit-agents' 10 s default, and a process killed for it only starts the load again
INITIALIZE_PROCESS_TIMEOUT_S = 60.0

SPARES = SpareProcesses(SpareProcessOptions.from_env())


HOST_LOAD = HostLoad(host_capacity(error=SystemExit), avatar_service_load)


def load(server: AgentServer) -> float:
    """The load the worker reports: its share of the host's interviews (capacity.py). Spare
    processes are held back or let load by the host's CPU use, measured here as before."""
    SPARES.update(server, _DefaultLoadCalc.get_load(server))
    return HOST_LOAD(len(server.active_jobs))


# livekit-agents' worker HTTP server (GET / health, GET /worker: the agent's name, its jobs and
# load) listens on every interface unless told otherwise; here on loopback, and
# INTERVIEW_HEALTH_HOST=0.0.0.0 opens it for a container's health check (port: 8081 under
# `start`, a free one under `dev`)
HEALTH_HOST = listen_address(os.environ, "INTERVIEW_HEALTH_HOST", "127.0.0.1", SystemExit)

server = AgentServer(
    setup_fnc=prewarm,
    load_fnc=load,
    num_idle_processes=IDLE_PROCESSES,
    initialize_process_timeout=INITIALIZE_PROCESS_TIMEOUT_S,
    host=HEALTH_HOST,
)
server.rtc_session(entrypoint, agent_name=AGENT_NAME)


def run_worker() -> None:
    cli.run_app(server)
