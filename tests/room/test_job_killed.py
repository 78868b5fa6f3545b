"""Interviews whose job ends early, on both LiveKit servers.

The interviewer worker runs as the tests run it (agent/stack.py, audio-only: no avatar service,
which this is not about), the interview API in this process; a candidate books through the API,
joins and answers twice, and then, while the interviewer speaks:
- the job process (its pid from the worker's "interview job started" line) is killed with
  SIGKILL. Within seconds, from the job's missing heartbeat (the real server keeps the dead
  participant about 20 s): the session is ended with its reason, transcript.json and the report
  hold every turn said before the kill, the candidate is told in words and the room is closed;
  erasing it then works.
- the server removes the interviewer from the room (as when its connection times out): the
  server ends the job, whose process lives on and writes transcript.json and the report itself,
  once (the API does not write them too); the candidate is told and the room closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from livekit import api, rtc

from agent.ports import free_loopback_port
from agent.stack import Stack, StackOptions
from agent.store import TranscriptStore
from agent.transcript import Turn
from avatar_worker.room_probe import RoomProbe, espeak
from avatar_worker.room_scenario import ANSWERS, LOUD, until
from web.app import create_app
from web.interview_watch import NOTICE_TOPIC
from web.settings import REPO_ROOT, WebSettings

pytestmark = pytest.mark.integration

CONFIG = json.loads((REPO_ROOT / "examples" / "en" / "config.json").read_text())
ADMIN = "crash-test-admin-token"


@pytest.fixture(scope="module")
def stack(livekit_server, tmp_path_factory):
    data = tmp_path_factory.mktemp("crash-stack")
    options = StackOptions(
        livekit_url=livekit_server.url,
        api_key=livekit_server.api_key,
        api_secret=livekit_server.api_secret,
        avatar=False,
        avatar_port=free_loopback_port(),  # nothing listens: the interview is audio-only
        web=False,
        data_dir=data,
    )
    with Stack(options) as running:
        yield running


def _heard_after(probe: RoomProbe, t: float) -> bool:
    return any((rec.loud_times(LOUD) > t).any() for rec in probe.received.values())


def _quiet_for(probe: RoomProbe, seconds: float) -> bool:
    loud = [float(r.loud_times(LOUD).max(initial=0.0)) for r in probe.received.values()]
    last = max(loud, default=0.0)
    return last > 0.0 and time.perf_counter() - last > seconds


def _job_pid(stack: Stack, room: str) -> int:
    """The interview's job process, from the line the job logs as it starts."""
    log = stack.component("interviewer worker").log_tail(10_000_000)
    for line in log.splitlines():
        if "interview job started" in line and room in line:
            found = re.search(r'"pid":\s*(\d+)', line)
            if found:
                return int(found.group(1))
    raise AssertionError(f"no 'interview job started' line for {room} in the worker's log")


@pytest.fixture(scope="module")
def client(stack, livekit_server):
    """The interview API, its watch included, on the stack's data directory."""
    settings = WebSettings(
        livekit_url=livekit_server.url,
        livekit_public_url=livekit_server.url,
        api_key=livekit_server.api_key,
        api_secret=livekit_server.api_secret,
        data_dir=stack.options.data_dir,
        avatar_service_url=stack.options.avatar_url,
        admin_token=ADMIN,
    )
    with TestClient(create_app(settings)) as running:
        yield running


@dataclass
class Interview:
    """A booked interview, its candidate in the room, what the candidate received."""

    client: TestClient
    sid: str
    auth: dict[str, str]
    probe: RoomProbe
    notices: list[dict] = field(default_factory=list)
    disconnects: list[int] = field(default_factory=list)

    async def status(self) -> dict:
        res = await asyncio.to_thread(
            self.client.get, f"/api/sessions/{self.sid}", headers=self.auth
        )
        return res.json()

    async def until_status(self, check: Callable[[dict], bool], within_s: float) -> float | None:
        """Seconds until `check(status)` held, None if it did not within `within_s`."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < within_s:
            if check(await self.status()):
                return time.monotonic() - t0
            await asyncio.sleep(0.2)
        return None

    def stored_turns(self, data_dir: Path) -> list[Turn]:
        store = TranscriptStore(data_dir / "interviews.sqlite3")
        try:
            return store.transcript(self.sid).turns
        finally:
            store.close()


@contextlib.asynccontextmanager
async def interview_under_way(client: TestClient, stack: Stack) -> AsyncIterator[Interview]:
    """Booked through the API; the candidate has answered twice and the interviewer speaks."""
    body = (await asyncio.to_thread(client.post, "/api/sessions", json=CONFIG)).json()
    iv = Interview(
        client,
        body["session_id"],
        {"Authorization": f"Bearer {body.get('session_key') or ADMIN}"},
        RoomProbe(),
    )
    iv.probe.room.on(
        "data_received",
        lambda p: iv.notices.append(json.loads(p.data)) if p.topic == NOTICE_TOPIC else None,
    )
    iv.probe.room.on("disconnected", iv.disconnects.append)
    await iv.probe.connect(body["livekit_url"], body["token"])
    try:
        await iv.probe.start_microphone()
        await until(lambda: _heard_after(iv.probe, 0.0), 90, "the greeting")
        for answer in ANSWERS["en"][:2]:
            await until(lambda: _quiet_for(iv.probe, 1.3), 60, "the interviewer to finish")
            pcm = await espeak(answer, "en", stack.options.data_dir / "answer.wav")
            _start, end = await iv.probe.say(pcm, silence_after_s=0.2)
            await until(lambda end=end: _heard_after(iv.probe, end), 45, "the interviewer again")
        st = await iv.status()
        assert st["status"] == "in_progress" and st.get("interviewer") == "in_room", st
        yield iv
    finally:
        await iv.probe.aclose()


def _transcript_holds(out: Path, said: list[Turn]) -> dict:
    transcript = json.loads((out / "transcript.json").read_text())
    assert [(t["speaker"], t["text"]) for t in transcript["turns"]][: len(said)] == [
        (t.speaker, t.text) for t in said
    ]
    assert transcript["ended_at"]
    return transcript


async def test_a_killed_job_leaves_an_ended_session_with_its_transcript_and_report(
    client, stack, livekit_server
):
    async with interview_under_way(client, stack) as iv:
        # killed while it speaks its next question; what was said is in the store
        said = iv.stored_turns(stack.options.data_dir)
        assert sum(t.speaker == "candidate" for t in said) >= 1, said
        os.kill(_job_pid(stack, iv.sid), signal.SIGKILL)
        killed = time.monotonic()
        lost_after = await iv.until_status(lambda st: st.get("interviewer") == "lost", 30)
        ready = await iv.until_status(lambda st: st["report_ready"], 30)
        report_after = None if ready is None else time.monotonic() - killed
        await until(lambda: bool(iv.disconnects), 10, "the room to close")

    print(
        f"\njob killed ({livekit_server.kind}): session lost after {lost_after} s, "
        f"report after {report_after} s"
    )
    assert lost_after is not None and lost_after <= 12.0, f"lost after {lost_after} s"
    assert report_after is not None and report_after <= 20.0, f"report after {report_after}"
    st = await iv.status()
    assert (st["status"], st.get("interviewer"), st.get("end_reason")) == (
        "ended",
        "lost",
        "interviewer_lost",
    )
    out = stack.options.data_dir / "interviews" / iv.sid
    _transcript_holds(out, said)
    report = json.loads((out / "report.json").read_text())
    assert report["interview_id"] == iv.sid and report["questions"], report
    # told in words, then the room closed under the candidate
    assert [n["type"] for n in iv.notices] == ["interviewer_lost"], iv.notices
    assert iv.notices[0]["message"].startswith("The connection to your interviewer was lost")
    assert iv.disconnects[0] == rtc.DisconnectReason.ROOM_DELETED, iv.disconnects

    # and the data of a lost interview can be erased, for good
    res = await asyncio.to_thread(client.delete, f"/api/sessions/{iv.sid}/data", headers=iv.auth)
    assert res.status_code == 200, res.text
    assert not out.exists()
    res = await asyncio.to_thread(client.get, f"/api/sessions/{iv.sid}/report", headers=iv.auth)
    assert res.status_code == 404 and "erased" in res.json()["detail"]


async def test_a_job_the_server_ends_writes_its_report_itself_once(client, stack, livekit_server):
    async with interview_under_way(client, stack) as iv:
        agent = next(
            p.identity
            for p in iv.probe.room.remote_participants.values()
            if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
        )
        async with api.LiveKitAPI(
            livekit_server.url.replace("ws", "http", 1),
            livekit_server.api_key,
            livekit_server.api_secret,
        ) as lk:
            await lk.room.remove_participant(
                api.RoomParticipantIdentity(room=iv.sid, identity=agent)
            )
        removed = time.monotonic()
        lost_after = await iv.until_status(lambda st: st.get("interviewer") == "lost", 30)
        await until(lambda: bool(iv.disconnects), 15, "the room to close")
        said = iv.stored_turns(stack.options.data_dir)
        finalized_by = _store_row(stack.options.data_dir, iv.sid)
    print(
        f"\njob ended by the server ({livekit_server.kind}): session lost after {lost_after} s, "
        f"room closed after {time.monotonic() - removed:.1f} s"
    )
    assert lost_after is not None, "the session never said the interviewer was lost"
    # the job's own shutdown callback wrote them (with its live assessments), the API did not
    assert finalized_by == ("agent", "interviewer_lost"), finalized_by
    out = stack.options.data_dir / "interviews" / iv.sid
    _transcript_holds(out, said)
    assert json.loads((out / "report.json").read_text())["interview_id"] == iv.sid
    st = await iv.status()
    assert (st["status"], st.get("interviewer"), st.get("end_reason")) == (
        "ended",
        "lost",
        "interviewer_lost",
    )
    assert [n["type"] for n in iv.notices] == ["interviewer_lost"], iv.notices
    assert iv.disconnects[0] == rtc.DisconnectReason.ROOM_DELETED, iv.disconnects


def _store_row(data_dir: Path, sid: str) -> tuple[str | None, str | None]:
    db = sqlite3.connect(data_dir / "interviews.sqlite3")
    try:
        return db.execute(
            "SELECT finalized_by, end_reason FROM interviews WHERE id = ?", (sid,)
        ).fetchone()
    finally:
        db.close()
