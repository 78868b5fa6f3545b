"""`python -m devserver` command line: key pairs, room settings and bad input, and its defaults
(those of `livekit-server --dev`: a join creates its room). Dev server only: the real server's
command line is its own."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from livekit import api, rtc

from agent.livekit_server import production_room_settings
from devserver.__main__ import build_parser, parse_keys, room_flags, room_settings
from devserver.rooms import RoomSettings


def test_key_pairs_parse_like_livekit_server() -> None:
    assert parse_keys("devkey: secret") == {"devkey": "secret"}
    assert parse_keys("a:1, b: 2\nc :3") == {"a": "1", "b": "2", "c": "3"}


@pytest.mark.parametrize("text", ["", "nokey", ":secret", "key:"])
def test_bad_key_pairs_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_keys(text)


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["--keys", "devkey"], {}, "--keys"),
        (["--port", "70000"], {}, "--port"),
        ([], {"LIVEKIT_KEYS": "broken"}, "LIVEKIT_KEYS"),
    ],
)
def test_bad_input_is_one_line_on_stderr(args: list[str], env: dict[str, str], needle: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devserver", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr


def test_room_settings_default_to_livekit_servers_and_take_livekit_yaml() -> None:
    assert room_settings(build_parser().parse_args([])) == RoomSettings()
    assert RoomSettings().auto_create  # as `livekit-server --dev`
    flags = room_flags(production_room_settings())
    assert flags == [
        "--room.auto_create=false",
        "--room.empty_timeout=120",
        "--room.departure_timeout=20",
        "--room.max_participants=4",
    ]
    args = build_parser().parse_args([*flags, "--dropped-participant-timeout", "2"])
    production = room_settings(args)
    assert production == RoomSettings(
        auto_create=False,
        empty_timeout=120,
        departure_timeout=20,
        max_participants=4,
        dropped_participant_timeout_s=2.0,
    )


@pytest.mark.parametrize("flag", ["--room.auto_create=maybe", "--room.empty_timeout=-1"])
def test_bad_room_settings_are_refused(flag: str) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([flag])


async def test_by_default_a_join_creates_its_room(devserver_in_process) -> None:
    url, _app = devserver_in_process
    grants = api.VideoGrants(room_join=True, room="made-by-joining")
    token = api.AccessToken("devkey", "secret").with_identity("a").with_grants(grants).to_jwt()
    lk_room = rtc.Room()
    await asyncio.wait_for(lk_room.connect(url, token), 20)
    try:
        async with api.LiveKitAPI(url, "devkey", "secret") as lk:
            rooms = await lk.room.list_rooms(api.ListRoomsRequest(names=["made-by-joining"]))
        assert [r.name for r in rooms.rooms] == ["made-by-joining"]
    finally:
        await lk_room.disconnect()
