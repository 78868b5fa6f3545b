"""A booking no interviewer takes, on both LiveKit servers: no interviewer worker is registered,
so the dispatch gets no job. Within seconds the session says so, the candidate in the room is
told in words, and the room is closed (web/interview_watch.py)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from livekit import api, rtc
from web_support import CONFIG

from web.interview_watch import NOTICE_TOPIC
from web.interviewer import WatchOptions

pytestmark = pytest.mark.integration


def test_a_booking_no_interviewer_takes_is_told_within_seconds(make_client, livekit_server):
    client = make_client(livekit_server)
    booked_at = time.monotonic()
    res = client.post("/api/sessions", json=CONFIG)
    assert res.status_code == 201, res.text
    body = res.json()
    sid = body["session_id"]
    auth = {"Authorization": f"Bearer {body.get('session_key', '')}"}

    async def candidate() -> tuple[list[dict], float | None, int | None]:
        notices: list[dict] = []
        left: list[int] = []
        room = rtc.Room()

        @room.on("data_received")
        def _on_data(packet: rtc.DataPacket) -> None:
            if packet.topic == NOTICE_TOPIC:
                notices.append(json.loads(packet.data))

        room.on("disconnected", left.append)
        await room.connect(body["livekit_url"], body["token"])
        ended_at = None
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not left:
                st = await asyncio.to_thread(client.get, f"/api/sessions/{sid}", headers=auth)
                if ended_at is None and st.json().get("interviewer") == "none_available":
                    ended_at = time.monotonic() - booked_at
                await asyncio.sleep(0.2)
        finally:
            await room.disconnect()
        return notices, ended_at, left[0] if left else None

    notices, ended_after, disconnect = asyncio.run(candidate())
    assert ended_after is not None, "the session never said no interviewer is available"
    # told once the time a worker has to take it is over, at the watch's next look or so
    limit = WatchOptions().dispatch_timeout_s + 2 * WatchOptions().interval_s + 1.0
    assert ended_after <= limit, f"said so after {ended_after:.1f} s"
    st = client.get(f"/api/sessions/{sid}", headers=auth).json()
    assert (st["status"], st["interviewer"], st["end_reason"]) == (
        "ended",
        "none_available",
        "no_interviewer",
    )
    # in words, in the candidate's language (prompts/ko/interviewer.yaml), then the room closed
    assert [n["type"] for n in notices] == ["no_interviewer"], notices
    assert notices[0]["message"].startswith("지금 면접을 진행할 수 있는 면접관이 없습니다")
    assert disconnect == rtc.DisconnectReason.ROOM_DELETED, disconnect

    async def rooms() -> list[str]:
        url, key, secret = livekit_server
        async with api.LiveKitAPI(url.replace("ws", "http", 1), key, secret) as lk:
            listed = await lk.room.list_rooms(api.ListRoomsRequest(names=[sid]))
        return [r.name for r in listed.rooms]

    assert asyncio.run(rooms()) == []
    print(f"\nno interviewer: said after {ended_after:.1f} s ({livekit_server.kind})")
