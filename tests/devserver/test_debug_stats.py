"""The dev server's /debug/stats names rooms (interview ids) and identities (candidates): it needs
a token with the roomList grant, as RoomService.ListRooms does, and no web page may read it."""

from __future__ import annotations

import aiohttp
import pytest
from livekit import api

pytestmark = pytest.mark.integration


def _bearer(**grants: bool) -> dict[str, str]:
    token = api.AccessToken("devkey", "secret").with_grants(api.VideoGrants(**grants))
    return {"Authorization": f"Bearer {token.to_jwt()}"}


async def test_the_debug_stats_need_the_room_list_grant_and_send_no_cors(dev_server) -> None:
    url = dev_server.url.replace("ws://", "http://", 1) + "/debug/stats"
    await dev_server.create_room("iv-private")
    async with aiohttp.ClientSession() as http:
        for headers, status in (
            ({}, 401),
            (_bearer(room_create=True), 401),  # another grant is not enough
            ({"Authorization": "Bearer not-a-token"}, 401),
            (_bearer(room_list=True), 200),
        ):
            async with http.get(url, headers={**headers, "Origin": "https://elsewhere"}) as resp:
                body = await resp.json()
                assert resp.status == status, body
                assert "Access-Control-Allow-Origin" not in resp.headers
                assert ("iv-private" in body.get("rooms", {})) == (status == 200)
        async with http.options(url, headers={"Origin": "https://elsewhere"}) as resp:
            assert "Access-Control-Allow-Origin" not in resp.headers
