"""A dropped signal connection: the SDK tries to resume, is told to rejoin, and recovers.

Runs the server in-process so the test can cut one participant's WebSocket from the server side.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from livekit import api, rtc

from agent.rejoin import keep_hearing_after_rejoin
from devserver.appkeys import ROOMS

pytestmark = pytest.mark.integration

TIMEOUT = 20


def _token(identity: str) -> str:
    grants = api.VideoGrants(room_join=True, room="resume")
    return api.AccessToken("devkey", "secret").with_identity(identity).with_grants(grants).to_jwt()


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


async def test_an_audio_only_listener_hears_the_speaker_again_after_rejoining(
    devserver_in_process,
) -> None:
    """The interviewer joins audio-only and asks for each audio track itself (livekit-agents'
    AUDIO_ONLY); after a rejoin from scratch it must be subscribed to the candidate again."""
    url, app = devserver_in_process
    candidate, interviewer = rtc.Room(), rtc.Room()
    feeding: asyncio.Task[None] | None = None
    try:
        await candidate.connect(url, _token("candidate"))
        mic = rtc.AudioSource(48000, 1)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", mic)
        await candidate.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )

        async def speak() -> None:
            tone = (np.ones(480, np.int16) * 1000).tobytes()
            while True:
                await mic.capture_frame(rtc.AudioFrame(tone, 48000, 1, 480))

        feeding = asyncio.create_task(speak())

        subscribed: asyncio.Queue[str] = asyncio.Queue()
        interviewer.on("track_subscribed", lambda t, _pub, _p: subscribed.put_nowait(t.sid))

        def ask(pub: rtc.RemoteTrackPublication, *_: object) -> None:
            if pub.kind == rtc.TrackKind.KIND_AUDIO:
                pub.set_subscribed(True)

        await interviewer.connect(url, _token("interviewer"), rtc.RoomOptions(auto_subscribe=False))
        for p in interviewer.remote_participants.values():
            for pub in p.track_publications.values():
                ask(pub)
        interviewer.on("track_published", ask)
        keep_hearing_after_rejoin(interviewer)
        sid = await asyncio.wait_for(subscribed.get(), TIMEOUT)

        room = app[ROOMS].get("resume")
        await room.participants["interviewer"].session.ws.close()  # rejoins from scratch
        assert await asyncio.wait_for(subscribed.get(), TIMEOUT) == sid
        assert room.participants["interviewer"].session.subscribed_tracks() == [sid]
    finally:
        if feeding is not None:
            feeding.cancel()
        await interviewer.disconnect()
        await candidate.disconnect()
