"""The API's watch over interviews in progress (web/interview_watch.py), with a fake clock and a
LiveKit double: a booking no interviewer takes, a job killed mid-interview, a job ending on its
own, LiveKit out of reach, and the candidate ending it."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from livekit import api
from watch_doubles import FakeLiveKit
from web_support import ADMIN_TOKEN, CONFIG

import agent.evaluation
from agent.config import InterviewConfig
from agent.ending import BY_AGENT, COMPLETED, INTERVIEWER_LOST
from agent.store import TranscriptStore, staging_dir
from web.interview_watch import InterviewWatcher, RoomView, StoreRow, decide, presence
from web.interviewer import OpenSession, WatchOptions
from web.sessions import SessionRegistry, new_session_id, now_utc
from web.settings import REPO_ROOT

OPTS = WatchOptions(notice_delay_s=0.0)
T0 = 1_800_000_000.0
# just past the time a worker has to take a booking
PAST_DISPATCH = OPTS.dispatch_timeout_s + 0.5


def _session(age_s: float = 0.0) -> OpenSession:
    return OpenSession("iv-0123456789ab", "candidate-0123456789ab", "ko", _at(T0 - age_s))


def _at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


# -- decisions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "room", "seen", "verdict"),
    [
        (30.0, None, False, "wait"),  # LiveKit not reached: nothing concluded
        (5.0, RoomView(True, jobs=0), False, "wait"),  # a worker has time to take it
        (PAST_DISPATCH, RoomView(True, jobs=0), False, "none_available"),
        (PAST_DISPATCH, RoomView(True, jobs=1), False, "wait"),  # taken; the interviewer is coming
        (PAST_DISPATCH, RoomView(True, jobs=1, jobs_ended=True), False, "none_available"),
        (60.0, RoomView(True, jobs=1), False, "wait"),  # a cold process loads its models
        (80.0, RoomView(True, jobs=1), False, "none_available"),
        (PAST_DISPATCH, RoomView(True, interviewer=True, jobs=1), False, "wait"),
        (
            PAST_DISPATCH,
            RoomView(True, jobs=1),
            True,
            "none_available",
        ),  # came and left, never began
        (PAST_DISPATCH, RoomView(False), False, "none_available"),  # the room is gone
        (2.0, RoomView(False), False, "wait"),  # being created
    ],
)
def test_a_booking_no_interviewer_began(age, room, seen, verdict):
    assert decide(T0, _session(age), None, room, seen, OPTS).verdict == verdict


def _row(**kw: object) -> StoreRow:
    return StoreRow(started_at=_at(T0 - 60), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("row", "room", "verdict"),
    [
        (_row(alive_at=T0 - 2), None, "wait"),
        (_row(alive_at=T0 - 5.9), RoomView(True, interviewer=True), "wait"),
        # dead: whatever LiveKit still lists (livekit-server keeps it ~20 s), and without LiveKit
        (_row(alive_at=T0 - 6.5), RoomView(True, interviewer=True), "lost"),
        (_row(alive_at=T0 - 6.5), None, "lost"),
        # no heartbeat at all (an older job): the room says
        (_row(), RoomView(True, interviewer=True), "wait"),
        (_row(), RoomView(True, interviewer=False), "lost"),
        (_row(), RoomView(False), "lost"),
        (_row(), None, "wait"),
        # ended: the job is writing its report, done, or died writing it
        (_row(ended_at="x", finalized_by=BY_AGENT, alive_at=T0 - 1), None, "wait"),
        (
            _row(ended_at="x", finalized_by=BY_AGENT, finalized_at="y", alive_at=T0 - 1),
            None,
            "ended",
        ),
        (_row(ended_at="x", finalized_by=BY_AGENT, alive_at=T0 - 7), None, "take_over"),
        (_row(ended_at="x", alive_at=T0 - 7), None, "take_over"),
        (_row(ended_at="x"), None, "ended"),  # an older job wrote its files itself
    ],
)
def test_an_interview_the_interviewer_began(row, room, verdict):
    assert decide(T0, _session(90), row, room, False, OPTS).verdict == verdict


def test_the_interviewer_is_the_agent_that_does_not_publish_for_another():
    agent = api.ParticipantInfo(identity="agent-AJ_1", kind=api.ParticipantInfo.Kind.AGENT)
    avatar = api.ParticipantInfo(
        identity="avatar-1",
        kind=api.ParticipantInfo.Kind.AGENT,
        attributes={"lk.publish_on_behalf": "agent-AJ_1"},
    )
    candidate = api.ParticipantInfo(identity="candidate-1")
    assert presence([avatar, candidate], "candidate-1") == (False, True)
    assert presence([agent, avatar], "candidate-1") == (True, False)


# -- the watch at work ------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def rig(data_dir):
    registry = SessionRegistry(data_dir)
    livekit = FakeLiveKit()
    clock = Clock()
    watcher = InterviewWatcher(registry, livekit, REPO_ROOT / "prompts", OPTS, clock=clock)
    yield registry, livekit, clock, watcher
    registry.close()


def _book(registry: SessionRegistry, livekit: FakeLiveKit, *, candidate: bool = True) -> str:
    sid = new_session_id()
    registry.add(sid, f"candidate-{sid[3:]}", InterviewConfig.model_validate(CONFIG), now_utc())
    livekit.book(sid)
    if candidate:
        livekit.join(sid, f"candidate-{sid[3:]}")
    return sid


def _begin(sid: str, livekit: FakeLiveKit, at: float) -> TranscriptStore:
    """The interviewer took the job and began: its store row, turns and first beat."""
    livekit.rooms[sid].jobs.append(api.JobStatus.JS_RUNNING)
    livekit.join(sid, "agent-AJ_1", agent=True)
    livekit.join(sid, "avatar-1", agent=True, avatar_of="agent-AJ_1")
    store = TranscriptStore()
    store.begin(sid, InterviewConfig.model_validate(CONFIG))
    store.add_turn(sid, "interviewer", "간단히 자기소개 부탁드립니다.", 0.5, 3.0)
    store.add_turn(sid, "candidate", "저는 결제 시스템을 만든 백엔드 개발자입니다.", 4.0, 9.0)
    store.beat(sid, at=at)
    return store


async def _look(watcher: InterviewWatcher) -> None:
    await watcher.tick()
    await watcher.wait_idle()


async def test_a_booking_no_worker_takes_is_ended_and_the_candidate_told(rig):
    registry, livekit, clock, watcher = rig
    sid = _book(registry, livekit)
    clock.t += 5
    await _look(watcher)
    assert "ListDispatch" not in livekit.calls and not livekit.closed
    assert registry.status(registry.get(sid)).interviewer == "pending"
    clock.t += PAST_DISPATCH - 5
    await _look(watcher)
    assert livekit.closed == [sid]
    [(room, identity, notice)] = livekit.notices
    assert (room, identity, notice["type"]) == (sid, f"candidate-{sid[3:]}", "no_interviewer")
    assert notice["message"].startswith("지금 면접을 진행할 수 있는 면접관이 없습니다")
    st = registry.status(registry.get(sid))
    assert (st.status, st.interviewer, st.end_reason) == (
        "ended",
        "none_available",
        "no_interviewer",
    )
    livekit.calls.clear()
    await _look(watcher)  # ended: no longer watched
    assert livekit.calls == []


async def test_a_job_taken_but_no_interviewer_began_in_time(rig):
    registry, livekit, clock, watcher = rig
    sid = _book(registry, livekit, candidate=False)
    livekit.rooms[sid].jobs.append(api.JobStatus.JS_RUNNING)
    clock.t += 40
    await _look(watcher)
    assert not livekit.closed
    clock.t += 40
    await _look(watcher)
    assert livekit.closed == [sid] and livekit.notices == []  # no one to tell in the room
    assert registry.status(registry.get(sid)).interviewer == "none_available"


async def test_a_killed_job_is_found_by_its_heartbeat_and_its_report_written(rig, data_dir):
    registry, livekit, clock, watcher = rig
    sid = _book(registry, livekit)
    store = _begin(sid, livekit, at=clock.t)
    clock.t += 2
    await _look(watcher)
    st = registry.status(registry.get(sid))
    assert (st.status, st.interviewer) == ("in_progress", "in_room")
    # a running interview costs no LiveKit call beyond the one list of rooms
    assert livekit.calls == ["ListRooms"]
    clock.t += 3
    await _look(watcher)  # a beat missed: the room is looked at, nothing is concluded
    assert not livekit.closed and registry.get(sid).ended_at is None
    clock.t += 2  # no beat for 7 s; livekit-server still lists the dead interviewer
    await _look(watcher)
    out = data_dir / "interviews" / sid
    transcript = json.loads((out / "transcript.json").read_text())
    assert [t["speaker"] for t in transcript["turns"]] == ["interviewer", "candidate"]
    assert json.loads((out / "report.json").read_text())["interview_id"] == sid
    [(_room, _who, notice)] = livekit.notices
    assert notice["type"] == "interviewer_lost" and "연결이 끊어져" in notice["message"]
    assert livekit.closed == [sid]
    st = registry.status(registry.get(sid))
    assert (st.status, st.interviewer, st.end_reason) == ("ended", "lost", "interviewer_lost")
    assert st.report_ready and st.turn_count == 2
    store.close()


async def test_a_job_ending_on_its_own_writes_alone(rig, data_dir):
    """The server terminated the job (its interviewer left the room) but the process lives: its
    shutdown callback claims and writes; the watch does not write too, then tells the
    candidate left alone in the room."""
    registry, livekit, clock, watcher = rig
    sid = _book(registry, livekit)
    store = _begin(sid, livekit, at=clock.t)
    livekit.leave(sid, "agent-AJ_1")
    livekit.leave(sid, "avatar-1")
    assert store.claim(sid, BY_AGENT, reason=INTERVIEWER_LOST)
    clock.t += 3
    store.beat(sid, at=clock.t)  # still beating while it writes
    await _look(watcher)
    out = data_dir / "interviews" / sid
    assert not out.exists() and not livekit.closed
    staging = staging_dir(out)
    (staging / "report.json").write_text('{"by": "agent"}')
    assert store.publish(sid, BY_AGENT, staging, out, final=True)
    clock.t += 10  # the process is gone after its callback
    await _look(watcher)
    assert json.loads((out / "report.json").read_text()) == {"by": "agent"}
    assert [n["type"] for _r, _i, n in livekit.notices] == ["interviewer_lost"]
    assert livekit.closed == [sid]
    st = registry.status(registry.get(sid))
    assert (st.interviewer, st.end_reason) == ("lost", "interviewer_lost")
    store.close()


async def test_a_job_that_died_writing_its_report_has_it_written_here(rig, data_dir):
    registry, livekit, clock, watcher = rig
    sid = _book(registry, livekit)
    store = _begin(sid, livekit, at=clock.t)
    assert store.claim(sid, BY_AGENT, reason=COMPLETED)  # said goodbye, then was killed
    livekit.leave(sid, "agent-AJ_1")
    clock.t += 7
    await _look(watcher)
    assert (data_dir / "interviews" / sid / "report.json").is_file()
    assert livekit.notices == [] and livekit.closed == []  # a finished interview: nothing to say
    st = registry.status(registry.get(sid))
    assert (st.status, st.interviewer, st.end_reason) == ("ended", "finished", "completed")
    store.close()


async def test_without_livekit_only_the_heartbeat_is_judged(rig, data_dir):
    registry, livekit, clock, watcher = rig
    waiting = _book(registry, livekit)
    running = _book(registry, livekit)
    store = _begin(running, livekit, at=clock.t)
    livekit.reachable = False
    clock.t += 30
    await _look(watcher)
    # the files are written; the booking nobody took is not judged without LiveKit
    assert (data_dir / "interviews" / running / "report.json").is_file()
    assert registry.status(registry.get(waiting)).interviewer == "pending"
    assert registry.get(running).ended_at is None  # the room is still to be closed
    livekit.reachable = True
    await _look(watcher)
    assert sorted(livekit.closed) == sorted([waiting, running])
    assert sorted(n["type"] for _r, _i, n in livekit.notices) == [
        "interviewer_lost",
        "no_interviewer",
    ]
    assert registry.get(running).ended_at and registry.get(waiting).ended_at
    await _look(watcher)
    assert len(livekit.notices) == 2  # told once
    store.close()


async def test_the_candidate_ending_the_interview_is_no_loss(rig):
    registry, livekit, clock, watcher = rig
    sid = _book(registry, livekit)
    clock.t += 30  # long past the dispatch timeout, while the end request is under way
    with watcher.ending(sid):
        await _look(watcher)
        assert livekit.closed == []
        registry.mark_ended(sid)
    st = registry.status(registry.get(sid))
    assert (st.status, st.interviewer, st.end_reason) == ("ended", "finished", "ended_by_request")


def test_erase_right_as_a_lost_interview_ends_is_final(make_client, data_dir, monkeypatch):
    """The status turns `ended` when the API claims the files of a lost interview, while it is
    still writing the report: an erase then leaves nothing behind, and the report is 404."""
    real = agent.evaluation.generate_report

    def slow_report(*args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(1.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(agent.evaluation, "generate_report", slow_report)
    client = make_client()  # LiveKit out of reach: the heartbeat alone shows the loss
    registry = client.app.state.registry
    sid = new_session_id()
    registry.add(sid, "candidate-x", InterviewConfig.model_validate(CONFIG), now_utc())
    store = TranscriptStore()
    store.begin(sid, InterviewConfig.model_validate(CONFIG))
    store.add_turn(sid, "candidate", "저는 결제 시스템을 만든 백엔드 개발자입니다.", 4.0, 9.0)
    store.beat(sid, at=time.time() - 30)  # killed 30 s ago
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    deadline = time.monotonic() + 10
    while client.get(f"/api/sessions/{sid}", headers=auth).json()["status"] != "ended":
        assert time.monotonic() < deadline, "the lost interview was not ended"
        time.sleep(0.05)
    res = client.delete(f"/api/sessions/{sid}/data", headers=auth)
    assert res.status_code == 200, res.text
    time.sleep(2.5)  # the writer finishes its report meanwhile
    out = data_dir / "interviews"
    assert not list(out.iterdir()) if out.exists() else True, list(out.iterdir())
    res = client.get(f"/api/sessions/{sid}/report", headers=auth)
    assert res.status_code == 404 and "erased" in res.json()["detail"]
    st = client.get(f"/api/sessions/{sid}", headers=auth).json()
    assert (st["status"], st["interviewer"]) == ("erased", "lost")
    with pytest.raises(KeyError):
        store.transcript(sid)
    store.close()
