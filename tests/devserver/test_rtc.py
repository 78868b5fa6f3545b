"""Both servers with the real `livekit` SDK: media, data, streams, RPC, attributes, tokens.

Rooms are created through the API first, as the product does (livekit.yaml: `auto_create:
false`)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import jwt
import numpy as np
import pytest
from livekit import api, rtc
from livekit.protocol import rtc as proto_rtc

pytestmark = pytest.mark.integration

TIMEOUT = 15


async def new_room(server) -> str:
    """A fresh room, created through RoomService."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    await server.create_room(name)
    return name


@asynccontextmanager
async def joined(server, identity: str, room: str, **grants: object) -> AsyncIterator[rtc.Room]:
    lk_room = rtc.Room()
    await lk_room.connect(server.url, server.token(identity, room, **grants))
    try:
        yield lk_room
    finally:
        await lk_room.disconnect()


@pytest.fixture
async def pair(livekit_server) -> AsyncIterator[tuple[rtc.Room, rtc.Room]]:
    """alice and bob, connected to a fresh room."""
    room = await new_room(livekit_server)
    async with (
        joined(livekit_server, "alice", room) as alice,
        joined(livekit_server, "bob", room) as bob,
    ):
        yield alice, bob


async def subscribed_track(lk_room: rtc.Room, kind: int) -> rtc.Track:
    """The first remote track of `kind` the room subscribes to (already or in the future)."""
    for participant in lk_room.remote_participants.values():
        for publication in participant.track_publications.values():
            if publication.track is not None and publication.kind == kind:
                return publication.track
    future: asyncio.Future[rtc.Track] = asyncio.get_running_loop().create_future()

    def on_subscribed(track: rtc.Track, *_: object) -> None:
        if track.kind == kind and not future.done():
            future.set_result(track)

    lk_room.on("track_subscribed", on_subscribed)
    try:
        return await asyncio.wait_for(future, TIMEOUT)
    finally:
        lk_room.off("track_subscribed", on_subscribed)


async def test_audio_tone_arrives_at_the_other_participant(pair: tuple[rtc.Room, rtc.Room]) -> None:
    alice, bob = pair
    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("tone", source)
    await alice.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )

    async def play(seconds: float) -> None:
        t = np.arange(480)
        for i in range(int(seconds * 100)):
            samples = 0.3 * np.sin(2 * np.pi * 440 * (t + i * 480) / 48000)
            frame = rtc.AudioFrame((samples * 32767).astype(np.int16).tobytes(), 48000, 1, 480)
            await source.capture_frame(frame)

    speaking: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
    bob.on(
        "active_speakers_changed",
        lambda speakers: (
            speakers and not speaking.done() and speaking.set_result([p.identity for p in speakers])
        ),
    )
    player = asyncio.ensure_future(play(4.0))
    remote = await subscribed_track(bob, rtc.TrackKind.KIND_AUDIO)
    received: list[np.ndarray] = []
    async with asyncio.timeout(TIMEOUT):
        async for event in rtc.AudioStream(remote, sample_rate=48000, num_channels=1):
            data = np.frombuffer(event.frame.data, dtype=np.int16).astype(np.float64)
            if np.abs(data).max() > 1000:  # skip silence before the tone arrives
                received.append(data)
            if len(received) * 480 >= 48000:
                break
    assert await asyncio.wait_for(speaking, TIMEOUT) == ["alice"]  # from the RTP audio levels
    player.cancel()

    signal = np.concatenate(received)[:48000]
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    peak_hz = np.argmax(spectrum) * 48000 / len(signal)
    assert abs(peak_hz - 440) < 3, peak_hz
    assert np.sqrt(np.mean(signal**2)) > 0.1 * 32767  # not just a faint leak


@pytest.mark.parametrize("codec", [rtc.VideoCodec.VP8, rtc.VideoCodec.H264], ids=["vp8", "h264"])
async def test_video_arrives_with_its_size_and_colour(
    pair: tuple[rtc.Room, rtc.Room], codec: int
) -> None:
    alice, bob = pair
    source = rtc.VideoSource(512, 512)
    track = rtc.LocalVideoTrack.create_video_track("cam", source)
    options = rtc.TrackPublishOptions(
        source=rtc.TrackSource.SOURCE_CAMERA, simulcast=False, video_codec=codec
    )
    publication = await alice.local_participant.publish_track(track, options)
    expected_mime = "video/VP8" if codec == rtc.VideoCodec.VP8 else "video/H264"
    rgba = np.zeros((512, 512, 4), dtype=np.uint8)
    rgba[...] = (200, 40, 40, 255)
    frame = rtc.VideoFrame(512, 512, rtc.VideoBufferType.RGBA, rgba.tobytes())

    async def feed() -> None:
        while True:
            source.capture_frame(frame)
            await asyncio.sleep(0.04)

    feeder = asyncio.ensure_future(feed())
    remote = await subscribed_track(bob, rtc.TrackKind.KIND_VIDEO)
    frames = 0
    async with asyncio.timeout(TIMEOUT):
        async for event in rtc.VideoStream(remote, format=rtc.VideoBufferType.RGBA):
            frames += 1
            if frames == 10:  # past the first, blurrier frames of the encoder
                got = event.frame
                break
    feeder.cancel()

    remote_publication = bob.remote_participants["alice"].track_publications[publication.sid]
    assert (remote_publication.width, remote_publication.height) == (512, 512)
    assert remote_publication.mime_type.lower() == expected_mime.lower()
    # the encoder starts below the published size and scales up as the bandwidth estimate
    # grows (with livekit-server VP8 reaches 512 after ~20 s), so any of its steps is right
    assert got.width == got.height and 256 <= got.width <= 512, (got.width, got.height)
    pixels = np.frombuffer(got.data, dtype=np.uint8).reshape(got.height, got.width, 4)
    mean = pixels[..., :3].reshape(-1, 3).mean(axis=0)
    assert np.allclose(mean, (200, 40, 40), atol=25), mean


async def test_data_packets_carry_sender_topic_and_destinations(livekit_server) -> None:
    room = await new_room(livekit_server)
    async with (
        joined(livekit_server, "alice", room) as alice,
        joined(livekit_server, "bob", room) as bob,
        joined(livekit_server, "carol", room) as carol,
    ):
        inbox: dict[str, asyncio.Queue[rtc.DataPacket]] = {
            "bob": asyncio.Queue(),
            "carol": asyncio.Queue(),
        }
        bob.on("data_received", inbox["bob"].put_nowait)
        carol.on("data_received", inbox["carol"].put_nowait)

        await alice.local_participant.publish_data(b"to all", reliable=True, topic="chat")
        for name in ("bob", "carol"):
            packet = await asyncio.wait_for(inbox[name].get(), TIMEOUT)
            assert packet.data == b"to all"
            assert packet.topic == "chat"
            assert packet.participant is not None and packet.participant.identity == "alice"
            assert packet.kind == rtc.DataPacketKind.KIND_RELIABLE

        await alice.local_participant.publish_data(
            b"only carol", reliable=True, destination_identities=["carol"]
        )
        packet = await asyncio.wait_for(inbox["carol"].get(), TIMEOUT)
        assert packet.data == b"only carol"

        # lossy packets go over the lossy channel; loopback loses none of a few
        await alice.local_participant.publish_data(b"lossy", reliable=False)
        packet = await asyncio.wait_for(inbox["bob"].get(), TIMEOUT)
        assert (packet.data, packet.kind) == (b"lossy", rtc.DataPacketKind.KIND_LOSSY)
        assert inbox["bob"].empty()  # bob never saw carol's private packet


async def test_byte_stream_and_rpc_round_trip(pair: tuple[rtc.Room, rtc.Room]) -> None:
    alice, bob = pair
    received: asyncio.Future[tuple[str, bytes]] = asyncio.get_running_loop().create_future()

    async def read_stream(reader: rtc.ByteStreamReader, sender: str) -> None:
        chunks = [chunk async for chunk in reader]
        received.set_result((sender, b"".join(chunks)))

    tasks: set[asyncio.Task[None]] = set()

    def on_stream(reader: rtc.ByteStreamReader, sender: str) -> None:
        tasks.add(asyncio.ensure_future(read_stream(reader, sender)))

    bob.register_byte_stream_handler("files", on_stream)
    payload = os.urandom(300_000)  # many chunks
    await alice.local_participant.send_bytes(payload, topic="files", name="blob.bin")
    sender, data = await asyncio.wait_for(received, TIMEOUT)
    assert sender == "alice"
    assert hashlib.sha256(data).digest() == hashlib.sha256(payload).digest()

    callers: list[str] = []

    @bob.local_participant.register_rpc_method("shout")
    async def shout(data: rtc.RpcInvocationData) -> str:
        callers.append(data.caller_identity)
        return data.payload.upper()

    reply = await alice.local_participant.perform_rpc(
        destination_identity="bob", method="shout", payload="hello", response_timeout=TIMEOUT
    )
    assert reply == "HELLO"
    assert callers == ["alice"]


async def test_attribute_and_metadata_updates_reach_the_other_side(livekit_server) -> None:
    room = await new_room(livekit_server)
    async with (
        joined(livekit_server, "alice", room, can_update_own_metadata=True) as alice,
        joined(livekit_server, "bob", room) as bob,
    ):
        changed: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        bob.on(
            "participant_attributes_changed",
            lambda attrs, p: changed.put_nowait(dict(p.attributes)),
        )
        metadata: asyncio.Queue[str] = asyncio.Queue()
        bob.on("participant_metadata_changed", lambda p, old, new: metadata.put_nowait(new))

        await alice.local_participant.set_attributes({"stage": "intro"})
        attrs = await asyncio.wait_for(changed.get(), TIMEOUT)
        assert attrs == {"stage": "intro"}
        await alice.local_participant.set_metadata('{"score": 3}')
        assert await asyncio.wait_for(metadata.get(), TIMEOUT) == '{"score": 3}'
        assert bob.remote_participants["alice"].attributes == {"stage": "intro"}


async def _refusal(server, token: str | None) -> tuple[int, str]:
    """The status of a WebSocket upgrade with `token`, and the reason /rtc/validate gives (where
    livekit-client asks for it)."""
    query = f"?access_token={token}" if token else ""
    http_url = server.url.replace("ws://", "http://")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(f"{server.url}/rtc{query}")
        async with session.get(f"{http_url}/rtc/validate{query}") as resp:
            assert resp.status == refused.value.status
            return resp.status, await resp.text()


async def test_bad_tokens_are_refused_with_a_reason(livekit_server) -> None:
    room = await new_room(livekit_server)
    good = livekit_server.token("mallory", room)
    claims = jwt.decode(good, options={"verify_signature": False})
    forged = jwt.encode(claims, "not-the-secret", algorithm="HS256")
    expired = jwt.encode({**claims, "exp": int(time.time()) - 3600}, "secret", algorithm="HS256")
    no_join = jwt.encode(
        {**claims, "video": {"room": room, "roomJoin": False}}, "secret", algorithm="HS256"
    )
    no_room = jwt.encode({**claims, "video": {"roomJoin": True}}, "secret", algorithm="HS256")
    no_identity = jwt.encode(
        {k: v for k, v in claims.items() if k != "sub"}, "secret", algorithm="HS256"
    )
    cases = {
        "forged": (forged, 401),
        "expired": (expired, 401),
        "no roomJoin grant": (no_join, 401),
        "no token": (None, 401),
        "no room": (no_room, 400),
        "no identity": (no_identity, 400),
    }
    for case, (token, expected) in cases.items():
        status, reason = await _refusal(livekit_server, token)
        assert status == expected and reason.strip(), (case, status, reason)

    with pytest.raises(rtc.ConnectError):
        await rtc.Room().connect(livekit_server.url, forged, rtc.RoomOptions())


async def test_malformed_signal_message_closes_only_that_connection(livekit_server) -> None:
    room = await new_room(livekit_server)
    async with joined(livekit_server, "bob", room) as bob:
        token = livekit_server.token("raw", room)
        url = f"{livekit_server.url}/rtc?access_token={token}&protocol=16"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            first = proto_rtc.SignalResponse.FromString(await ws.receive_bytes(timeout=TIMEOUT))
            assert first.WhichOneof("message") == "join"
            assert [p.identity for p in first.join.other_participants] == ["bob"]
            assert first.join.subscriber_primary

            await ws.send_bytes(
                proto_rtc.SignalRequest(ping_req=proto_rtc.Ping(timestamp=1234)).SerializeToString()
            )
            while True:
                reply = proto_rtc.SignalResponse.FromString(await ws.receive_bytes(timeout=TIMEOUT))
                if reply.WhichOneof("message") == "pong_resp":
                    assert reply.pong_resp.last_ping_timestamp == 1234
                    break

            await ws.send_bytes(b"\xff\xff\xff not a protobuf")
            async with asyncio.timeout(TIMEOUT):
                while (await ws.receive()).type not in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.CLOSING,
                ):
                    pass
        # gone at once: it never connected media, so there is nothing to resume
        async with api.LiveKitAPI(
            livekit_server.url, livekit_server.api_key, livekit_server.api_secret
        ) as lk:
            async with asyncio.timeout(TIMEOUT):
                while True:  # polled: the state lives in the server
                    listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
                    if [p.identity for p in listed.participants] == ["bob"]:
                        break
                    await asyncio.sleep(0.1)
        assert bob.connection_state == rtc.ConnectionState.CONN_CONNECTED


async def test_late_joiner_receives_tracks_published_before_it_came(livekit_server) -> None:
    room = await new_room(livekit_server)
    async with joined(livekit_server, "alice", room) as alice:
        source = rtc.VideoSource(64, 64)
        track = rtc.LocalVideoTrack.create_video_track("cam", source)
        await alice.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA, simulcast=False)
        )
        frame = rtc.VideoFrame(64, 64, rtc.VideoBufferType.RGBA, bytes(64 * 64 * 4))

        async def feed() -> None:
            while True:
                source.capture_frame(frame)
                await asyncio.sleep(0.04)

        feeder = asyncio.ensure_future(feed())
        try:
            async with joined(livekit_server, "bob", room) as bob:
                remote = await subscribed_track(bob, rtc.TrackKind.KIND_VIDEO)
                async with asyncio.timeout(TIMEOUT):
                    async for event in rtc.VideoStream(remote):
                        assert (event.frame.width, event.frame.height) == (64, 64)
                        break
        finally:
            feeder.cancel()


async def test_mute_unpublish_and_explicit_subscription(livekit_server) -> None:
    room = await new_room(livekit_server)
    async with (
        joined(livekit_server, "alice", room) as alice,
        joined(livekit_server, "bob", room) as bob,
    ):
        # a third participant that subscribes only on request
        manual = rtc.Room()
        await manual.connect(
            livekit_server.url,
            livekit_server.token("carol", room),
            rtc.RoomOptions(auto_subscribe=False),
        )
        try:
            events: asyncio.Queue[str] = asyncio.Queue()
            bob.on("track_muted", lambda p, pub: events.put_nowait(f"muted {pub.sid}"))
            bob.on("track_unmuted", lambda p, pub: events.put_nowait(f"unmuted {pub.sid}"))
            bob.on("track_unpublished", lambda pub, p: events.put_nowait(f"unpublished {pub.sid}"))
            source = rtc.AudioSource(48000, 1)
            track = rtc.LocalAudioTrack.create_audio_track("mic", source)
            publication = await alice.local_participant.publish_track(track)
            await subscribed_track(bob, rtc.TrackKind.KIND_AUDIO)

            published: asyncio.Future[rtc.RemoteTrackPublication] = (
                asyncio.get_running_loop().create_future()
            )
            manual.on(
                "track_published", lambda pub, p: published.done() or published.set_result(pub)
            )
            remote_pub = manual.remote_participants["alice"].track_publications.get(
                publication.sid
            ) or await asyncio.wait_for(published, TIMEOUT)
            await asyncio.sleep(0.5)
            assert remote_pub.track is None  # nothing until asked for
            remote_pub.set_subscribed(True)
            assert (await subscribed_track(manual, rtc.TrackKind.KIND_AUDIO)).sid == publication.sid

            track.mute()
            assert await asyncio.wait_for(events.get(), TIMEOUT) == f"muted {publication.sid}"
            track.unmute()
            assert await asyncio.wait_for(events.get(), TIMEOUT) == f"unmuted {publication.sid}"
            await alice.local_participant.unpublish_track(publication.sid)
            assert await asyncio.wait_for(events.get(), TIMEOUT) == f"unpublished {publication.sid}"
            assert publication.sid not in bob.remote_participants["alice"].track_publications
        finally:
            await manual.disconnect()


async def test_permissions_limit_data_and_metadata(livekit_server) -> None:
    room = await new_room(livekit_server)
    async with (
        joined(livekit_server, "alice", room, can_publish_data=False) as alice,
        joined(livekit_server, "bob", room) as bob,
    ):
        inbox: asyncio.Queue[rtc.DataPacket] = asyncio.Queue()
        bob.on("data_received", inbox.put_nowait)
        alice_inbox: asyncio.Queue[rtc.DataPacket] = asyncio.Queue()
        alice.on("data_received", alice_inbox.put_nowait)
        await alice.local_participant.publish_data(b"not allowed", reliable=True)
        await bob.local_participant.publish_data(b"allowed", reliable=True)
        assert (await asyncio.wait_for(alice_inbox.get(), TIMEOUT)).data == b"allowed"
        await asyncio.sleep(0.5)
        assert inbox.empty()

        # livekit-server tells others about a participant that publishes nothing every 3 s
        async with asyncio.timeout(TIMEOUT):
            while True:  # polled: the state lives in the SDK
                if "bob" in alice.remote_participants:
                    break
                await asyncio.sleep(0.05)
        # without canUpdateOwnMetadata the server refuses (the SDK does not report it); the
        # others keep seeing the old attributes
        await asyncio.wait_for(bob.local_participant.set_attributes({"role": "boss"}), TIMEOUT)
        await asyncio.sleep(0.5)
        assert alice.remote_participants["bob"].attributes == {}


async def test_revoked_subscribe_permission_drops_subscriptions(livekit_server, pair) -> None:
    alice, bob = pair
    source = rtc.AudioSource(48000, 1)
    await alice.local_participant.publish_track(
        rtc.LocalAudioTrack.create_audio_track("mic", source)
    )
    tone = (np.ones(480, np.int16) * 3000).tobytes()

    async def speak() -> None:
        while True:
            await source.capture_frame(rtc.AudioFrame(tone, 48000, 1, 480))

    speaking = asyncio.ensure_future(speak())
    received: list[float] = []  # arrival times of bob's audio frames

    async def listen(track: rtc.Track) -> None:
        async for _ in rtc.AudioStream(track, sample_rate=48000, num_channels=1):
            received.append(time.monotonic())

    listening = asyncio.ensure_future(listen(await subscribed_track(bob, rtc.TrackKind.KIND_AUDIO)))
    changed: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    bob.on(
        "participant_permissions_changed",
        lambda p, permission: changed.done() or changed.set_result(permission.can_subscribe),
    )
    try:
        async with asyncio.timeout(TIMEOUT):
            while True:  # polled: frames arrive in another task
                if len(received) >= 20:
                    break
                await asyncio.sleep(0.05)
        async with api.LiveKitAPI(
            livekit_server.url, livekit_server.api_key, livekit_server.api_secret
        ) as lk:
            await lk.room.update_participant(
                api.UpdateParticipantRequest(
                    room=alice.name,
                    identity="bob",
                    permission=api.ParticipantPermission(can_subscribe=False, can_publish=True),
                )
            )
        assert await asyncio.wait_for(changed, TIMEOUT) is False
        await asyncio.sleep(1.0)  # what was on its way has arrived
        stopped = time.monotonic()
        await asyncio.sleep(1.0)
        assert [t for t in received if t > stopped] == []  # 50 frames a second before
    finally:
        speaking.cancel()
        listening.cancel()


async def test_transcriptions_are_forwarded_from_agents_only(livekit_server) -> None:
    room = await new_room(livekit_server)
    async with (
        joined(livekit_server, "candidate", room) as candidate,
        joined(livekit_server, "agent", room, agent=True) as agent,
        joined(livekit_server, "observer", room) as observer,
    ):
        heard: asyncio.Queue[str] = asyncio.Queue()
        observer.on(
            "transcription_received", lambda segments, *_: heard.put_nowait(segments[0].text)
        )
        # of the candidate's microphone (the SDK cannot take a transcription of no track)
        mic = await candidate.local_participant.publish_track(
            rtc.LocalAudioTrack.create_audio_track("mic", rtc.AudioSource(48000, 1))
        )
        await subscribed_track(observer, rtc.TrackKind.KIND_AUDIO)

        def said(text: str) -> rtc.Transcription:
            segment = rtc.TranscriptionSegment(
                id=text, text=text, start_time=0, end_time=0, language="en", final=True
            )
            return rtc.Transcription("candidate", mic.sid, [segment])

        await candidate.local_participant.publish_transcription(said("forged"))
        await agent.local_participant.publish_transcription(said("transcribed"))
        assert await asyncio.wait_for(heard.get(), TIMEOUT) == "transcribed"
        await asyncio.sleep(0.5)
        assert heard.empty()
