"""Interview API against a LiveKit server (both kinds): room, dispatch, token grants, fresh tokens,
room lifetime, polite end, health."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime

import pytest
from livekit import api, rtc
from web_support import CONFIG

from agent.config import InterviewConfig
from agent.store import TranscriptStore
from web.livekit_ops import CONTROL_TOPIC

pytestmark = pytest.mark.integration


async def _lk(livekit_server):
    url, key, secret = livekit_server
    return api.LiveKitAPI(url.replace("ws", "http", 1), key, secret)


def _auth(body: dict) -> dict[str, str]:
    """The header every per-session endpoint requires, from the booking's answer."""
    return {"Authorization": f"Bearer {body['session_key']}"}


def test_session_creates_room_dispatch_and_a_narrow_token(make_client, livekit_server):
    client = make_client(livekit_server)
    res = client.post("/api/sessions", json={**CONFIG, "resume_text": "Kafka, Spring"})
    assert res.status_code == 201, res.text
    body = res.json()
    sid = body["session_id"]
    assert body["livekit_url"] == livekit_server.url and livekit_server.api_secret not in res.text
    assert len(body["session_key"]) >= 43  # 256 random bits

    claims = api.TokenVerifier(livekit_server.api_key, livekit_server.api_secret).verify(
        body["token"]
    )
    grants = claims.video
    assert claims.identity == body["participant_identity"] and claims.name == "김민준"
    assert grants.room == sid and grants.room_join
    assert grants.can_publish and grants.can_subscribe
    assert list(grants.can_publish_sources) == ["microphone"]
    assert not grants.can_publish_data and not grants.can_update_own_metadata
    assert not (grants.room_admin or grants.room_create or grants.room_list or grants.agent)
    expires = datetime.fromisoformat(body["expires_at"])
    remaining = (expires - datetime.now(expires.tzinfo)).total_seconds()
    assert 0 < remaining <= 600  # short-lived

    async def check() -> None:
        lk = await _lk(livekit_server)
        try:
            rooms = await lk.room.list_rooms(api.ListRoomsRequest(names=[sid]))
            assert [r.name for r in rooms.rooms] == [sid]
            dispatches = await lk.agent_dispatch.list_dispatch(room_name=sid)
            assert [d.agent_name for d in dispatches] == ["interviewer"]
            meta = json.loads(dispatches[0].metadata)
            assert meta["candidate_name"] == "김민준" and meta["resume_text"] == "Kafka, Spring"
        finally:
            await lk.aclose()

    asyncio.run(check())
    st = client.get(f"/api/sessions/{sid}", headers=_auth(body)).json()
    assert st["status"] == "waiting" and st["turn_count"] == 0

    # nobody answers the end request: the room is removed after the grace period anyway
    res = client.delete(f"/api/sessions/{sid}", headers=_auth(body))
    assert res.status_code == 200
    summary = res.json()
    assert summary["status"] == "ended" and summary["ended_politely"] is False
    assert summary["report_url"] == f"/api/sessions/{sid}/report"

    async def gone() -> None:
        lk = await _lk(livekit_server)
        try:
            rooms = await lk.room.list_rooms(api.ListRoomsRequest(names=[sid]))
            assert not rooms.rooms
        finally:
            await lk.aclose()

    asyncio.run(gone())
    assert client.delete(f"/api/sessions/{sid}", headers=_auth(body)).status_code == 200  # again


def test_candidate_token_joins_and_cannot_publish_data(make_client, livekit_server):
    client = make_client(livekit_server)
    body = client.post("/api/sessions", json=CONFIG).json()

    async def join() -> None:
        room = rtc.Room()
        await room.connect(body["livekit_url"], body["token"])
        try:
            assert room.name == body["session_id"]
            assert room.local_participant.identity == body["participant_identity"]
            perms = room.local_participant.permissions
            assert perms.can_publish and not perms.can_publish_data
        finally:
            await room.disconnect()

    asyncio.run(join())
    client.delete(f"/api/sessions/{body['session_id']}", headers=_auth(body))


def test_end_asks_the_interviewer_to_close_politely(make_client, livekit_server):
    """An agent participant that honours `interview.control` {"type": "end"} leaves by itself."""
    client = make_client(livekit_server, end_grace_s=10.0)
    body = client.post("/api/sessions", json=CONFIG).json()
    sid = body["session_id"]
    received: list[dict] = []

    async def scenario() -> dict:
        agent = rtc.Room()
        token = livekit_server.token("agent-test", sid, kind="agent")
        await agent.connect(livekit_server.url, token)
        got_end = asyncio.Event()

        @agent.on("data_received")
        def _on_data(packet: rtc.DataPacket) -> None:
            if packet.topic == CONTROL_TOPIC:
                received.append(json.loads(packet.data))
                got_end.set()

        async def leave_when_asked() -> None:
            await got_end.wait()
            await asyncio.sleep(0.5)  # "thank you, goodbye"
            await agent.disconnect()

        task = asyncio.create_task(leave_when_asked())
        loop = asyncio.get_running_loop()
        res = await loop.run_in_executor(
            None, lambda: client.delete(f"/api/sessions/{sid}", headers=_auth(body))
        )
        await task
        return res.json()

    summary = asyncio.run(scenario())
    assert received == [{"type": "end", "reason": "candidate"}]
    assert summary["ended_politely"] is True and summary["status"] == "ended"


def test_health_reports_livekit_reachable(make_client, livekit_server):
    body = make_client(livekit_server).get("/health").json()
    assert body["livekit"] == {"url": livekit_server.url, "reachable": True, "error": None}
    wrong = make_client(livekit_server, api_secret="not-the-secret").get("/health").json()
    assert wrong["livekit"]["reachable"] is False and "refused" in wrong["livekit"]["error"]


def test_rate_limit_with_a_live_server(make_client, livekit_server):
    from web.settings import RateLimit

    client = make_client(livekit_server, session_rate=RateLimit(1, 60))
    first = client.post("/api/sessions", json=CONFIG)
    assert first.status_code == 201
    assert client.post("/api/sessions", json=CONFIG).status_code == 429
    client.delete(f"/api/sessions/{first.json()['session_id']}", headers=_auth(first.json()))


def test_fresh_tokens_while_the_interview_goes_on_then_it_has_ended(
    make_client, livekit_server, caplog
):
    """A page that reloads (or joins late) gets a fresh token for the same room and identity,
    with the booking's grants, and joins with it; once the interview has ended: 410. The room
    waits and stays as the settings say. The key appears in no log."""
    caplog.set_level(logging.DEBUG)
    client = make_client(livekit_server, token_ttl_s=30, join_window_s=240, rejoin_window_s=45)
    body = client.post("/api/sessions", json=CONFIG).json()
    sid, auth = body["session_id"], _auth(body)
    verifier = api.TokenVerifier(livekit_server.api_key, livekit_server.api_secret)
    booking = verifier.verify(body["token"])
    # the interviewer has begun (what its store records), as during an interview
    store = TranscriptStore()
    store.begin(sid, InterviewConfig.model_validate(CONFIG))
    assert client.get(f"/api/sessions/{sid}", headers=auth).json()["status"] == "in_progress"

    res = client.post(f"/api/sessions/{sid}/token", headers=auth)
    assert res.status_code == 200, res.text
    fresh = res.json()
    assert fresh["session_id"] == sid and fresh["livekit_url"] == livekit_server.url
    assert fresh["participant_identity"] == body["participant_identity"]
    claims = verifier.verify(fresh["token"])
    assert claims.identity == booking.identity and claims.video == booking.video
    assert claims.kind == booking.kind
    expires = datetime.fromisoformat(fresh["expires_at"])
    assert 0 < (expires - datetime.now(expires.tzinfo)).total_seconds() <= 30

    async def join_and_look() -> None:
        room = rtc.Room()
        await room.connect(fresh["livekit_url"], fresh["token"])
        try:
            assert room.name == sid
            assert room.local_participant.identity == body["participant_identity"]
        finally:
            await room.disconnect()
        lk = await _lk(livekit_server)
        try:
            rooms = await lk.room.list_rooms(api.ListRoomsRequest(names=[sid]))
            assert [(r.empty_timeout, r.departure_timeout) for r in rooms.rooms] == [(240, 45)]
        finally:
            await lk.aclose()

    asyncio.run(join_and_look())
    assert client.post(f"/api/sessions/{sid}/token", headers=auth).status_code == 200

    assert client.delete(f"/api/sessions/{sid}", headers=auth).status_code == 200
    res = client.post(f"/api/sessions/{sid}/token", headers=auth)
    assert res.status_code == 410 and res.json()["detail"] == "this interview has ended"
    store.close()
    key = body["session_key"]
    for record in caplog.records:
        assert key not in record.getMessage() and key not in repr(record.__dict__), record
    assert key not in livekit_server.log_path.read_text(errors="replace")


def test_a_room_that_is_gone_means_the_interview_has_ended(make_client, livekit_server):
    """The server closed the room (its join or rejoin window passed, or it was removed):
    the server never creates it again on a join, so no token is given for it."""
    client = make_client(livekit_server)
    body = client.post("/api/sessions", json=CONFIG).json()
    sid = body["session_id"]

    async def remove() -> None:
        lk = await _lk(livekit_server)
        try:
            await lk.room.delete_room(api.DeleteRoomRequest(room=sid))
        finally:
            await lk.aclose()

    asyncio.run(remove())
    res = client.post(f"/api/sessions/{sid}/token", headers=_auth(body))
    assert res.status_code == 410 and res.json()["detail"] == "this interview has ended"
