"""A candidate's token allows the microphone only, but neither LiveKit server checks that a track
published as a microphone is audio: livekit-server v1.13.5 checks the declared source against the
grant and nothing more (pkg/rtc/participant.go AddTrack), and the dev server does the same. So the
interviewer must not trust the label: it subscribes to candidates' audio by the track's kind.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from livekit import rtc

from agent.rejoin import subscribe_to_candidates
from avatar_worker.room_scenario import until

pytestmark = pytest.mark.integration


async def test_a_video_labelled_microphone_is_published_but_never_heard(livekit_server) -> None:
    room = f"sources-{uuid.uuid4().hex[:8]}"
    await livekit_server.create_room(room)
    interviewer, candidate = rtc.Room(), rtc.Room()
    await interviewer.connect(
        livekit_server.url,
        livekit_server.token("agent-1", room, kind="agent"),
        rtc.RoomOptions(auto_subscribe=False),
    )
    token = livekit_server.token(
        "candidate", room, can_publish=True, can_publish_sources=["microphone"]
    )
    await candidate.connect(livekit_server.url, token)
    try:
        video = rtc.LocalVideoTrack.create_video_track("cam", rtc.VideoSource(64, 64))
        mic = rtc.LocalAudioTrack.create_audio_track("mic", rtc.AudioSource(48000, 1))
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        # both servers take the video under the microphone's name
        await asyncio.wait_for(candidate.local_participant.publish_track(video, options), 10)
        await asyncio.wait_for(candidate.local_participant.publish_track(mic, options), 10)

        def published() -> list[rtc.RemoteTrackPublication]:
            person = interviewer.remote_participants.get("candidate")
            return list(person.track_publications.values()) if person else []

        await until(lambda: len(published()) == 2, 15, "both tracks announced")
        assert {p.source for p in published()} == {rtc.TrackSource.SOURCE_MICROPHONE}
        assert subscribe_to_candidates(interviewer) == 1  # the real audio only
        await until(lambda: any(p.subscribed for p in published()), 15, "the audio subscribed")
        heard = {p.kind for p in published() if p.subscribed}
        assert heard == {rtc.TrackKind.KIND_AUDIO}
    finally:
        await candidate.disconnect()
        await interviewer.disconnect()
