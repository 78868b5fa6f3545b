"""A crashed avatar taken out of the room by its agent, on both LiveKit servers.

The avatar's process is killed (kill -9) while it is in the room. livekit-server keeps a
participant whose connection dropped until ICE gives up (~20 s), so every candidate's client
would show its frozen video that long; the agent, which has learnt of the crash from the avatar
service's watch stream, removes it through the server API (`ServiceAvatar._remove_from_room`).
That is not the job's participant, so the agent stays (livekit-server ends a job only when the
job's own participant leaves: pkg/rtc/room.go, RemoveParticipant).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from livekit import api, rtc

from agent.avatar import AvatarServiceSettings, ServiceAvatar

pytestmark = pytest.mark.integration

# the avatar's side: joins with its token and publishes a video track as the avatar does (the
# real server tells the room of a publisher's departure at once, of others' in 3 s batches),
# says so, then does nothing until killed
JOIN = """
import asyncio, sys
from livekit import rtc

async def main():
    room = rtc.Room()
    await room.connect(sys.argv[1], sys.argv[2], rtc.RoomOptions(auto_subscribe=False))
    source = rtc.VideoSource(64, 64)
    track = rtc.LocalVideoTrack.create_video_track("avatar_video", source)
    options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA)
    await room.local_participant.publish_track(track, options)
    print("joined", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_a_killed_avatar_is_removed_from_the_room_and_the_agent_stays(livekit_server):
    url, key, secret = livekit_server
    room_name = f"avatar-loss-{uuid.uuid4().hex[:8]}"
    async with api.LiveKitAPI(url, key, secret) as lk:
        await lk.room.create_room(api.CreateRoomRequest(name=room_name))
    agent_room = rtc.Room()
    await agent_room.connect(url, livekit_server.token("agent-x", room_name, kind="agent"))
    avatar = ServiceAvatar(
        "woman", AvatarServiceSettings(livekit_url=url, api_key=key, api_secret=secret)
    )
    avatar._identity, avatar._agent_identity = "avatar-agent-x", "agent-x"
    avatar._room = agent_room
    left = asyncio.Event()
    agent_room.on(
        "participant_disconnected",
        lambda p: left.set() if p.identity == avatar.avatar_identity else None,
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", JOIN, url, avatar._token(room_name), stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line.strip() == b"joined"
        deadline = time.monotonic() + 10
        while avatar.avatar_identity not in agent_room.remote_participants:
            assert time.monotonic() < deadline, "the agent never saw the avatar join"
            await asyncio.sleep(0.05)

        os.kill(proc.pid, signal.SIGKILL)
        if livekit_server.real:
            # the server keeps the dead participant: why the agent cannot wait for the room
            await asyncio.sleep(2.0)
            assert not left.is_set(), "livekit-server reported the killed avatar gone at once"
        removing = time.monotonic()
        await avatar._remove_from_room()
        await asyncio.wait_for(left.wait(), 2)
        took = time.monotonic() - removing
        print(f"\n{livekit_server.kind}: killed avatar gone from the room {took:.2f} s later")

        await asyncio.sleep(1.0)  # a job ended for it would take the agent out by now
        assert agent_room.isconnected()
        async with api.LiveKitAPI(url, key, secret) as lk:
            listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room_name))
        assert [p.identity for p in listed.participants] == ["agent-x"]
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        await agent_room.disconnect()
        async with api.LiveKitAPI(url, key, secret) as lk:
            await lk.room.delete_room(api.DeleteRoomRequest(room=room_name))
