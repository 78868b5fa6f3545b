"""A publisher learns when its track gets a subscriber, on both servers (the dev server as
livekit-server does).

AvatarRunner (and the agent's own room audio output) publish, then await
`LocalTrackPublication.wait_for_subscription()`; without the server's `track_subscribed` signal
an avatar never publishes its video and the agent never speaks.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from livekit import rtc

pytestmark = pytest.mark.integration


async def test_publisher_learns_of_its_first_subscriber(livekit_server) -> None:
    room = f"sub-{uuid.uuid4().hex[:8]}"
    await livekit_server.create_room(room)
    publisher, viewer = rtc.Room(), rtc.Room()
    await publisher.connect(livekit_server.url, livekit_server.token("pub", room))
    try:
        source = rtc.AudioSource(24000, 1)
        track = rtc.LocalAudioTrack.create_audio_track("tone", source)
        publication = await publisher.local_participant.publish_track(track)
        with pytest.raises(TimeoutError):  # nobody is subscribed yet
            await asyncio.wait_for(publication.wait_for_subscription(), 0.5)
        await viewer.connect(livekit_server.url, livekit_server.token("viewer", room))
        await asyncio.wait_for(publication.wait_for_subscription(), 10)
    finally:
        await viewer.disconnect()
        await publisher.disconnect()
