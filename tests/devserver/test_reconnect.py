"""A dropped signal connection: the SDK tries to resume, is told to rejoin, and recovers.

Runs the server in-process so the test can cut one participant's WebSocket from the server side.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from livekit import api, rtc

from agent.rejoin import hear_the_candidate
from devserver.appkeys import ROOMS

pytestmark = pytest.mark.integration

TIMEOUT = 20


def _token(identity: str, kind: str = "standard") -> str:
    grants = api.VideoGrants(room_join=True, room="resume")
    token = api.AccessToken("devkey", "secret").with_identity(identity).with_kind(kind)
    return token.with_grants(grants).to_jwt()


async def test_dropped_signal_connection_rejoins_and_data_flows_again(devserver_in_process) -> None:
    url, app = devserver_in_process
    alice, bob = rtc.Room(), rtc.Room()
    try:
        await alice.connect(url, _token("alice"))
        await bob.connect(url, _token("bob"))
        reconnected = asyncio.Event()
        alice.on("reconnected", lambda: reconnected.set())
        inbox: asyncio.Queue[rtc.DataPacket] = asyncio.Queue()
        bob.on("data_received", inbox.put_nowait)

        room = app[ROOMS].get("resume")
        await room.participants["alice"].session.ws.close()  # the signal link drops
        await asyncio.wait_for(reconnected.wait(), TIMEOUT)

        assert sorted(room.participants) == ["alice", "bob"]
        await alice.local_participant.publish_data(b"still here", reliable=True)
        packet = await asyncio.wait_for(inbox.get(), TIMEOUT)
        assert packet.data == b"still here"
        assert packet.participant is not None and packet.participant.identity == "alice"
    finally:
        await alice.disconnect()
        await bob.disconnect()


async def _publish_a_tone(room: rtc.Room) -> asyncio.Task[None]:
    """A microphone track on `room` that keeps sending a tone, until the task is cancelled."""
    mic = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("microphone", mic)
    await room.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )

    async def speak() -> None:
        tone = (np.ones(480, np.int16) * 1000).tobytes()
        while True:
            await mic.capture_frame(rtc.AudioFrame(tone, 48000, 1, 480))

    return asyncio.create_task(speak())


async def test_the_interviewer_hears_only_the_candidate_and_again_after_rejoining(
    devserver_in_process,
) -> None:
    """The interviewer asks for the candidate's audio itself (`hear_the_candidate`), never for an
    agent's such as the avatar's; after a rejoin from scratch it is subscribed to it again."""
    url, app = devserver_in_process
    candidate, avatar, interviewer = rtc.Room(), rtc.Room(), rtc.Room()
    feeding: list[asyncio.Task[None]] = []
    try:
        await candidate.connect(url, _token("candidate"))
        await avatar.connect(url, _token("avatar", kind="agent"))
        feeding += [await _publish_a_tone(candidate), await _publish_a_tone(avatar)]
        voice = next(iter(candidate.local_participant.track_publications))

        subscribed: asyncio.Queue[str] = asyncio.Queue()
        interviewer.on("track_subscribed", lambda t, _pub, _p: subscribed.put_nowait(t.sid))
        await interviewer.connect(url, _token("interviewer"), rtc.RoomOptions(auto_subscribe=False))
        hear_the_candidate(interviewer)
        assert await asyncio.wait_for(subscribed.get(), TIMEOUT) == voice

        room = app[ROOMS].get("resume")
        await room.participants["interviewer"].session.ws.close()  # rejoins from scratch
        assert await asyncio.wait_for(subscribed.get(), TIMEOUT) == voice
        await asyncio.sleep(1.0)  # time for a wrong subscription to show
        assert room.participants["interviewer"].session.subscribed_tracks() == [voice]
        assert subscribed.empty()
    finally:
        for task in feeding:
            task.cancel()
        for r in (interviewer, avatar, candidate):
            await r.disconnect()
