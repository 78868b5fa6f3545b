"""Interview API against the dev server: room, dispatch, token grants, polite end, health."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import pytest
from livekit import api, rtc
from web_support import CONFIG

from web.livekit_ops import CONTROL_TOPIC

pytestmark = pytest.mark.integration


async def _lk(livekit_server):
    url, key, secret = livekit_server
    return api.LiveKitAPI(url.replace("ws", "http", 1), key, secret)


def test_session_creates_room_dispatch_and_a_narrow_token(make_client, livekit_server):
    client = make_client(livekit_server)
    res = client.post("/api/sessions", json={**CONFIG, "resume_text": "Kafka, Spring"})
    assert res.status_code == 201, res.text
    body = res.json()
    sid = body["session_id"]
    assert body["livekit_url"] == livekit_server.url and livekit_server.api_secret not in res.text

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
    st = client.get(f"/api/sessions/{sid}").json()
    assert st["status"] == "waiting" and st["turn_count"] == 0

    # nobody answers the end request: the room is removed after the grace period anyway
    res = client.delete(f"/api/sessions/{sid}")
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
    assert client.delete(f"/api/sessions/{sid}").status_code == 200  # idempotent


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
    client.delete(f"/api/sessions/{body['session_id']}")


def test_end_asks_the_interviewer_to_close_politely(make_client, livekit_server):
    """An agent participant that honours `interview.control` {"type": "end"} leaves by itself."""
    client = make_client(livekit_server, end_grace_s=10.0)
    sid = client.post("/api/sessions", json=CONFIG).json()["session_id"]
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
        res = await loop.run_in_executor(None, lambda: client.delete(f"/api/sessions/{sid}"))
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
    client.delete(f"/api/sessions/{first.json()['session_id']}")
