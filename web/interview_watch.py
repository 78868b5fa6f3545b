"""The web API's watch over the interviews it booked: none is left in limbo.

A task of the API (started in its lifespan) looks every `interval_s` at the sessions that have
not ended, newest first (at most `max_sessions`, booked within `horizon_s`), with one LiveKit
ListRooms call for all of them and a few calls per session that needs them:

- **No interviewer.** Booked `dispatch_timeout_s` ago and no interviewer began: the dispatch has
  no job (livekit-server adds a job to the dispatch only once a worker accepted it, and neither
  retries another worker nor dispatches again), its jobs ended (the dev server reports job
  status), the interviewer left without beginning (a provider error), or no interviewer appeared
  within `start_timeout_s`. The session ends with `interviewer: "none_available"`, a candidate in
  the room is told in words (data message, topic `interview.notice`), and the room is closed so
  an interviewer that turns up later does not talk to an empty room.
- **Interviewer lost.** The job's heartbeat in the store (agent/ending.py) is older than
  `heartbeat_timeout_s` while the store says the interview runs: the job was killed, or its host
  lost. (A job without heartbeats: its interviewer left the room or the room is gone.) The API
  claims the files, marks the end, writes transcript.json and the report from the stored turns
  (in a thread), tells a candidate still in the room, closes the room: `interviewer: "lost"`.
  A job the server terminated while its process lives saves them itself in its shutdown
  callback; the claim in the store makes sure only one of them writes.
- **Ended.** The store says the interview ended: the registry records it; when the job ended
  cut short (`interviewer_lost`), a candidate still in the room is told and the room closed; a
  job that died while writing its report has it written here.

The server's own view of a dead participant is not waited for: livekit-server keeps one whose
connection dropped for about 20 s, and ends the job of an agent that left the room.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

import aiohttp
import yaml
from livekit import api

from agent.ending import (
    ENDED_BY_REQUEST,
    INTERVIEWER_LOST,
    NO_INTERVIEWER,
    write_from_store,
)
from agent.store import TranscriptStore

from .interviewer import LOST, NONE_AVAILABLE, InterviewerLog, OpenSession, WatchOptions
from .livekit_ops import AGENT_NAME, PUBLISH_ON_BEHALF, LiveKitRooms

logger = logging.getLogger("web.watch")

NOTICE_TOPIC = "interview.notice"
# the notice's type -> its sentence in prompts/<language>/interviewer.yaml `lines`
NOTICE_LINES = {"interviewer_lost": "interviewer_lost", "no_interviewer": "no_interviewer"}
_JOB_ENDED = (api.JobStatus.JS_SUCCESS, api.JobStatus.JS_FAILED)


# -- what the watcher sees and decides (pure, so it is tested with a fake clock) -----------------


@dataclass(frozen=True)
class StoreRow:
    """The agent's row for the interview (agent/store.py)."""

    started_at: datetime
    ended_at: str | None = None
    end_reason: str | None = None
    alive_at: float | None = None
    finalized_by: str | None = None
    finalized_at: str | None = None


@dataclass(frozen=True)
class RoomView:
    """The interview's room as LiveKit lists it."""

    exists: bool
    interviewer: bool = False  # an interviewer agent is in the room (not its avatar)
    candidate: bool = False
    jobs: int | None = None  # jobs of the interviewer dispatch; None: not asked
    jobs_ended: bool = False  # every one of them ended (the dev server says; livekit-server not)


Verdict = Literal["wait", "none_available", "lost", "take_over", "ended"]


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    why: str = ""  # for the log


def decide(
    now: float,
    session: OpenSession,
    store: StoreRow | None,
    room: RoomView | None,
    interviewer_seen: bool,
    opts: WatchOptions,
) -> Decision:
    """What to do about one open session. `room` None: LiveKit was not asked or not reached,
    nothing is concluded from it; `interviewer_seen`: an interviewer was in the room earlier."""
    age = now - session.created_at.timestamp()
    if store is None:  # no interviewer began
        if room is None or room.interviewer or age < opts.dispatch_timeout_s:
            return Decision("wait")
        if not room.exists:
            return Decision("none_available", "the room closed before an interviewer began")
        if interviewer_seen:
            return Decision("none_available", "the interviewer left without beginning")
        if room.jobs == 0:
            return Decision("none_available", "no worker took the job")
        if room.jobs and room.jobs_ended:
            return Decision("none_available", "the job ended before the interviewer began")
        if age >= opts.start_timeout_s:
            return Decision("none_available", "no interviewer came")
        return Decision("wait")
    beat_age = None if store.alive_at is None else now - store.alive_at
    stale = beat_age is not None and beat_age > opts.heartbeat_timeout_s
    if store.ended_at is None:
        if beat_age is not None:
            return (
                Decision("lost", f"no heartbeat for {beat_age:.1f} s")
                if stale
                else Decision("wait")
            )
        # no heartbeat (a job from before heartbeats, or one killed as it began)
        if now - store.started_at.timestamp() <= opts.heartbeat_timeout_s or room is None:
            return Decision("wait")
        if not room.exists:
            return Decision("lost", "the room closed while the interview ran")
        if not room.interviewer:
            return Decision("lost", "the interviewer left while the interview ran")
        return Decision("wait")
    if store.finalized_at is None and store.finalized_by is not None and stale:
        return Decision("take_over", f"the job died writing the report ({beat_age:.1f} s)")
    if store.finalized_at is None and store.alive_at is not None and not stale:
        return Decision("wait")  # the job is writing them
    if store.finalized_by is None and stale:
        return Decision("take_over", "the job ended without writing the report")
    return Decision("ended")


def presence(participants: list[api.ParticipantInfo], candidate: str) -> tuple[bool, bool]:
    """(an interviewer is in the room, the candidate is): the interviewer is an agent that does
    not publish on another's behalf (its avatar does)."""
    interviewer = any(
        p.kind == api.ParticipantInfo.Kind.AGENT and not p.attributes.get(PUBLISH_ON_BEHALF)
        for p in participants
    )
    return interviewer, any(p.identity == candidate for p in participants)


# -- LiveKit ---------------------------------------------------------------------------------


class LiveKitView(Protocol):
    async def existing_rooms(self, names: list[str]) -> set[str]: ...
    async def participants(self, room: str) -> list[api.ParticipantInfo]: ...
    async def interviewer_jobs(self, room: str) -> tuple[int, bool]: ...
    async def send_notice(self, room: str, identity: str, payload: bytes) -> None: ...
    async def close_room(self, room: str) -> None: ...


class LiveKitWatch:
    """The watcher's LiveKit calls (Twirp), through the API's client."""

    def __init__(self, rooms: LiveKitRooms) -> None:
        self._rooms = rooms

    async def existing_rooms(self, names: list[str]) -> set[str]:
        res = await self._rooms.lk.room.list_rooms(api.ListRoomsRequest(names=names))
        return {r.name for r in res.rooms}

    async def participants(self, room: str) -> list[api.ParticipantInfo]:
        # a missing room lists empty on livekit-server (pkg/service/localstore.go)
        res = await self._rooms.lk.room.list_participants(api.ListParticipantsRequest(room=room))
        return list(res.participants)

    async def interviewer_jobs(self, room: str) -> tuple[int, bool]:
        # ask only about a room that exists: livekit-server answers 503 after 3 s otherwise
        dispatches = await self._rooms.lk.agent_dispatch.list_dispatch(room_name=room)
        jobs = [j for d in dispatches if d.agent_name == AGENT_NAME for j in d.state.jobs]
        return len(jobs), bool(jobs) and all(j.state.status in _JOB_ENDED for j in jobs)

    async def send_notice(self, room: str, identity: str, payload: bytes) -> None:
        await self._rooms.lk.room.send_data(
            api.SendDataRequest(
                room=room,
                data=payload,
                kind=api.DataPacket.Kind.RELIABLE,
                destination_identities=[identity],
                topic=NOTICE_TOPIC,
            )
        )

    async def close_room(self, room: str) -> None:
        try:
            await self._rooms.lk.room.delete_room(api.DeleteRoomRequest(room=room))
        except api.TwirpError as e:
            if e.code != api.TwirpErrorCode.NOT_FOUND:
                raise


_LIVEKIT_ERRORS = (aiohttp.ClientError, TimeoutError, OSError, api.TwirpError)


# -- the watcher -----------------------------------------------------------------------------


class RegistryView(Protocol):
    """What the watcher uses of web/sessions.py's SessionRegistry."""

    interviewer_log: InterviewerLog
    data_dir: Path

    def mark_ended(self, session_id: str) -> None: ...
    def interview_dir(self, session_id: str) -> Path: ...


def agent_db_path(data_dir: Path) -> Path:
    # the same rule as agent.store.default_db_path, for the API's data directory
    return Path(os.environ.get("INTERVIEW_DB_PATH") or data_dir / "interviews.sqlite3")


class InterviewWatcher:
    def __init__(
        self,
        registry: RegistryView,
        livekit: LiveKitView,
        prompts_dir: Path,
        options: WatchOptions | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.livekit = livekit
        self.prompts_dir = prompts_dir
        self.options = options or WatchOptions()
        self.clock = clock
        self.log = registry.interviewer_log
        self.db_path = agent_db_path(registry.data_dir)
        self._seen: dict[str, float] = {}  # session -> when its interviewer was last in the room
        self._busy: set[str] = set()  # sessions being acted on
        self._ending: set[str] = set()  # sessions the candidate is ending (DELETE)
        self._acting: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._unreachable_since: float | None = None
        self._semaphore = asyncio.Semaphore(self.options.concurrency)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="interview-watch")

    async def aclose(self) -> None:
        tasks = [t for t in (self._task, *self._acting) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    async def _run(self) -> None:
        if self.db_path.is_file():  # a store made by an older release gets its new columns
            await asyncio.to_thread(lambda: TranscriptStore(self.db_path).close())
        while True:
            try:
                await self.tick()
            except Exception:  # the next tick tries again; one bad tick must not stop the watch
                logger.exception("interview watch tick failed")
            await asyncio.sleep(self.options.interval_s)

    @contextlib.contextmanager
    def ending(self, session_id: str) -> Iterator[None]:
        """Around DELETE /api/sessions/{id}: the interviewer leaving and the room going are the
        candidate's doing, not a loss; recorded as `ended_by_request` once it succeeded."""
        self._ending.add(session_id)
        try:
            yield
            self.log.record(session_id, None, ENDED_BY_REQUEST)
        finally:
            self._ending.discard(session_id)

    async def wait_idle(self) -> None:
        """Until the actions under way are done (tests, shutdown)."""
        while self._acting:
            await asyncio.gather(*list(self._acting), return_exceptions=True)

    # -- one look --------------------------------------------------------------------------------

    async def tick(self) -> None:
        now = self.clock()
        since = datetime.fromtimestamp(now - self.options.horizon_s, UTC)
        sessions = [
            s
            for s in await asyncio.to_thread(
                self.log.open_sessions, since, self.options.max_sessions
            )
            if s.id not in self._busy and s.id not in self._ending
        ]
        self._seen = {k: v for k, v in self._seen.items() if k in {s.id for s in sessions}}
        if not sessions:
            return
        before = await asyncio.to_thread(self._store_rows, [s.id for s in sessions])
        rooms = await self._rooms(sessions, before, now)
        # read again after LiveKit: an interviewer that joined meanwhile began before
        stores = await asyncio.to_thread(self._store_rows, [s.id for s in sessions])
        for s in sessions:
            room = rooms.get(s.id)
            if room is not None and room.interviewer:
                self._seen[s.id] = now
            decision = decide(now, s, stores.get(s.id), room, s.id in self._seen, self.options)
            if decision.verdict != "wait":
                self._act(s, decision, stores.get(s.id), room)

    def _store_rows(self, ids: list[str]) -> dict[str, StoreRow]:
        if not self.db_path.is_file():
            return {}
        db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)
        try:
            marks = ",".join("?" * len(ids))
            rows = db.execute(
                "SELECT id, started_at, ended_at, end_reason, alive_at, finalized_by,"
                f" finalized_at FROM interviews WHERE id IN ({marks})",
                ids,
            ).fetchall()
        except sqlite3.OperationalError as e:  # no tables yet: no interview began
            if "no such table" in str(e):
                return {}
            raise
        finally:
            db.close()
        return {
            r[0]: StoreRow(datetime.fromisoformat(r[1]), r[2], r[3], r[4], r[5], r[6]) for r in rows
        }

    async def _rooms(
        self, sessions: list[OpenSession], stores: dict[str, StoreRow], now: float
    ) -> dict[str, RoomView]:
        """The rooms, as far as the decisions need them; empty when LiveKit is unreachable."""
        try:
            existing = await self.livekit.existing_rooms([s.id for s in sessions])
        except _LIVEKIT_ERRORS as e:
            if self._unreachable_since is None:
                self._unreachable_since = now
                logger.warning("interview watch: LiveKit unreachable", extra={"error": str(e)})
            return {}
        if self._unreachable_since is not None:
            logger.info("interview watch: LiveKit reachable again")
            self._unreachable_since = None

        async def one(s: OpenSession) -> tuple[str, RoomView | None]:
            if s.id not in existing:
                return s.id, RoomView(exists=False)
            store = stores.get(s.id)
            running = (
                store is not None
                and store.ended_at is None
                and store.alive_at is not None
                and now - store.alive_at <= self.options.heartbeat_timeout_s / 2
            )
            if running:  # its heartbeat says enough; LiveKit is asked again if it falters
                return s.id, RoomView(exists=True, interviewer=True)
            try:
                async with self._semaphore:
                    interviewer, candidate = presence(
                        await self.livekit.participants(s.id), s.identity
                    )
                    jobs, ended = None, False
                    age = now - s.created_at.timestamp()
                    if store is None and not interviewer and age >= self.options.dispatch_timeout_s:
                        jobs, ended = await self.livekit.interviewer_jobs(s.id)
            except _LIVEKIT_ERRORS as e:
                logger.debug(
                    "interview watch: room not read", extra={"room": s.id, "error": str(e)}
                )
                return s.id, None
            return s.id, RoomView(True, interviewer, candidate, jobs, ended)

        found = await asyncio.gather(*(one(s) for s in sessions))
        return {sid: view for sid, view in found if view is not None}

    # -- acting ---------------------------------------------------------------------------------

    def _act(
        self, s: OpenSession, decision: Decision, store: StoreRow | None, room: RoomView | None
    ) -> None:
        self._busy.add(s.id)
        task = asyncio.create_task(self._carry_out(s, decision, store, room))
        self._acting.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._acting.discard(t)
            self._busy.discard(s.id)

        task.add_done_callback(done)

    async def _carry_out(
        self, s: OpenSession, decision: Decision, store: StoreRow | None, room: RoomView | None
    ) -> None:
        extra = {"room": s.id, "why": decision.why}
        try:
            if decision.verdict == "none_available":
                logger.warning("no interviewer for the interview", extra=extra)
                self.log.record(s.id, NONE_AVAILABLE, NO_INTERVIEWER)
                if not await self._tell_and_close(s, room, "no_interviewer"):
                    return
            elif decision.verdict == "lost":
                logger.warning("the interviewer was lost; writing the report", extra=extra)
                self.log.record(s.id, LOST, INTERVIEWER_LOST)
                # the candidate hears of it while the report is written
                told = asyncio.create_task(self._tell_and_close(s, room, "interviewer_lost"))
                try:
                    await self._write(s.id, INTERVIEWER_LOST)
                finally:
                    closed = await told
                if not closed:
                    return
            else:  # ended, or take_over: the job ended (it may have died writing)
                assert store is not None
                if decision.verdict == "take_over":
                    logger.warning("writing the report the job did not", extra=extra)
                    await self._write(s.id, store.end_reason or INTERVIEWER_LOST)
                if store.end_reason == INTERVIEWER_LOST and not await self._tell_and_close(
                    s, room, "interviewer_lost"
                ):
                    return
            self.registry.mark_ended(s.id)
        except Exception:  # tried again on the next look
            logger.exception("interview watch: acting failed", extra=extra)

    async def _write(self, session_id: str, reason: str) -> None:
        out_dir = self.registry.interview_dir(session_id)
        dead_before = self.clock() - self.options.heartbeat_timeout_s

        def write() -> bool:
            store = TranscriptStore(self.db_path)
            try:
                return write_from_store(
                    store, session_id, out_dir, reason=reason, dead_before=dead_before
                )
            finally:
                store.close()

        if await asyncio.to_thread(write):
            logger.info("transcript and report written", extra={"room": session_id})

    async def _tell_and_close(self, s: OpenSession, room: RoomView | None, notice: str) -> bool:
        """Tell a candidate in the room, once, then close the room; False when LiveKit could not
        be asked (the next look tries again)."""
        if room is None:
            return False
        if not room.exists:
            return True
        try:
            if room.candidate and self.log.first_notice(s.id):
                payload = {"type": notice, "message": self._sentence(s.language, notice)}
                await self.livekit.send_notice(
                    s.id, s.identity, json.dumps(payload, ensure_ascii=False).encode()
                )
                await asyncio.sleep(self.options.notice_delay_s)
            await self.livekit.close_room(s.id)
        except _LIVEKIT_ERRORS as e:
            logger.warning(
                "interview watch: room not closed", extra={"room": s.id, "error": str(e)}
            )
            return False
        logger.info("interview room closed", extra={"room": s.id, "notice": notice})
        return True

    def _sentence(self, language: str, notice: str) -> str:
        path = self.prompts_dir / language / "interviewer.yaml"
        try:
            lines = yaml.safe_load(path.read_text(encoding="utf-8"))["lines"]
            return str(lines[NOTICE_LINES[notice]])
        except (OSError, yaml.YAMLError, KeyError, TypeError) as e:
            logger.error(
                "notice sentence missing from the prompts",
                extra={"path": str(path), "error": str(e)},
            )
            return ""
