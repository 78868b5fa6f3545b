"""Lost connections, on both servers: a participant whose process dies is kept for a while, then
removed as CONNECTION_TIMEOUT; a dropped signal connection recovers (livekit-server resumes the
session, the dev server has the client rejoin from scratch); after a rejoin from scratch the
interviewer hears the candidate again, and only the candidate.

The signal connection is cut by a TCP relay in front of the server (`SignalRelay`): media goes
to the server directly, so only signalling is lost, as when a network path drops a WebSocket.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import os
import signal
import sys
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
import pytest
from livekit import api, rtc
from livekit.protocol import rtc as proto_rtc

from agent.rejoin import hear_the_candidate

pytestmark = pytest.mark.integration

TIMEOUT = 20
# livekit-server keeps a dead participant until ICE gives up (15 s) plus 5 s of cleanup
DEAD_PARTICIPANT_REMOVED_WITHIN_S = 40


class SignalRelay:
    """A TCP relay to the server's signal port that the test can cut; with `refuse_resume` it
    also turns away the SDK's attempts to resume (`reconnect=1`), so it rejoins from scratch."""

    def __init__(self, server_url: str, *, refuse_resume: bool = False) -> None:
        target = urllib.parse.urlsplit(server_url)
        self._target = (target.hostname or "127.0.0.1", target.port or 80)
        self._refuse_resume = refuse_resume
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> SignalRelay:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cut()
        assert self._server is not None
        self._server.close()

    def cut(self) -> None:
        """Drop every relayed connection, both ways."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = await reader.readline()
        if self._refuse_resume and _is_resume(request_line):
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        self._writers.update((writer, up_writer))
        up_writer.write(request_line)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


def _is_resume(request_line: bytes) -> bool:
    """Whether a signal request resumes a session: `reconnect=1` on /rtc, the JoinRequest's
    `reconnect` on /rtc/v1 (a base64 WrappedJoinRequest in `join_request`)."""
    target = request_line.split(b" ")[1].decode() if b" " in request_line else ""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
    if query.get("reconnect") == ["1"]:
        return True
    for encoded in query.get("join_request", []):
        data = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        wrapped = proto_rtc.WrappedJoinRequest.FromString(data)
        raw = wrapped.join_request
        if wrapped.compression != proto_rtc.WrappedJoinRequest.Compression.NONE:
            raw = gzip.decompress(raw)
        return proto_rtc.JoinRequest.FromString(raw).reconnect
    return False


async def _new_room(server) -> str:
    name = f"reconnect-{uuid.uuid4().hex[:8]}"
    await server.create_room(name)
    return name


async def _identities(server, room: str) -> list[str]:
    async with api.LiveKitAPI(server.url, server.api_key, server.api_secret) as lk:
        listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
    return sorted(p.identity for p in listed.participants)


async def _sid(server, room: str, identity: str) -> str:
    async with api.LiveKitAPI(server.url, server.api_key, server.api_secret) as lk:
        who = api.RoomParticipantIdentity(room=room, identity=identity)
        return (await lk.room.get_participant(who)).sid


async def _publish_a_tone(lk_room: rtc.Room) -> asyncio.Task[None]:
    """A microphone track on `lk_room` that keeps sending a tone, until the task is cancelled."""
    mic = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("microphone", mic)
    await lk_room.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )

    async def speak() -> None:
        tone = (np.ones(480, np.int16) * 1000).tobytes()
        while True:
            await mic.capture_frame(rtc.AudioFrame(tone, 48000, 1, 480))

    return asyncio.create_task(speak())


_PARTICIPANT = """
import asyncio, sys
import numpy as np
from livekit import rtc

async def main():
    room = rtc.Room()
    await room.connect(sys.argv[1], sys.argv[2])
    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("mic", source)
    await room.local_participant.publish_track(track)
    frame = rtc.AudioFrame((np.ones(480, np.int16) * 1000).tobytes(), 48000, 1, 480)
    print("joined", flush=True)
    while True:
        await source.capture_frame(frame)

asyncio.run(main())
"""


@asynccontextmanager
async def _participant_process(server, identity: str, room: str) -> AsyncIterator[int]:
    """A participant in its own process (publishing a tone), for the test to kill; its pid."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _PARTICIPANT, server.url, server.token(identity, room),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).strip() == b"joined"
        yield proc.pid
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def test_a_participant_whose_process_dies_is_kept_then_removed_as_connection_timeout(
    livekit_server,
) -> None:
    room = await _new_room(livekit_server)
    observer = rtc.Room()
    await observer.connect(livekit_server.url, livekit_server.token("observer", room))
    gone: asyncio.Future[tuple[float, int | None]] = asyncio.get_running_loop().create_future()
    observer.on(
        "participant_disconnected",
        lambda p: (
            p.identity == "avatar"
            and not gone.done()
            and gone.set_result((time.monotonic(), p.disconnect_reason))
        ),
    )
    try:
        async with _participant_process(livekit_server, "avatar", room) as pid:
            async with asyncio.timeout(TIMEOUT):
                while True:  # polled: the state lives in the SDK
                    if "avatar" in observer.remote_participants:
                        break
                    await asyncio.sleep(0.05)
            os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            await asyncio.sleep(3.0)
            # still there: the server waits for it to come back
            assert not gone.done()
            assert await _identities(livekit_server, room) == ["avatar", "observer"]
            left_at, reason = await asyncio.wait_for(gone, DEAD_PARTICIPANT_REMOVED_WITHIN_S)
        assert reason == rtc.DisconnectReason.CONNECTION_TIMEOUT
        kept_s = left_at - killed
        print(f"\n[{livekit_server.kind}] a killed participant was removed after {kept_s:.1f} s")
        assert kept_s > 5
        assert await _identities(livekit_server, room) == ["observer"]
    finally:
        await observer.disconnect()


async def test_a_dropped_signal_connection_recovers_and_data_flows_again(livekit_server) -> None:
    room = await _new_room(livekit_server)
    alice, bob = rtc.Room(), rtc.Room()
    async with SignalRelay(livekit_server.url) as relay:
        try:
            await alice.connect(relay.url, livekit_server.token("alice", room))
            await bob.connect(livekit_server.url, livekit_server.token("bob", room))
            reconnected = asyncio.Event()
            alice.on("reconnected", reconnected.set)
            inbox: asyncio.Queue[rtc.DataPacket] = asyncio.Queue()
            bob.on("data_received", inbox.put_nowait)

            relay.cut()  # the signal link drops
            await asyncio.wait_for(reconnected.wait(), TIMEOUT)

            assert await _identities(livekit_server, room) == ["alice", "bob"]
            await alice.local_participant.publish_data(b"still here", reliable=True)
            packet = await asyncio.wait_for(inbox.get(), TIMEOUT)
            assert packet.data == b"still here"
            assert packet.participant is not None and packet.participant.identity == "alice"
        finally:
            await alice.disconnect()
            await bob.disconnect()


async def test_the_interviewer_hears_only_the_candidate_and_again_after_rejoining(
    livekit_server,
) -> None:
    """The interviewer asks for the candidate's audio itself (`hear_the_candidate`), never for an
    agent's such as the avatar's; after a rejoin from scratch it is subscribed to it again."""
    room = await _new_room(livekit_server)
    candidate, avatar, interviewer = rtc.Room(), rtc.Room(), rtc.Room()
    feeding: list[asyncio.Task[None]] = []
    async with SignalRelay(livekit_server.url, refuse_resume=True) as relay:
        try:
            await candidate.connect(livekit_server.url, livekit_server.token("candidate", room))
            await avatar.connect(
                livekit_server.url, livekit_server.token("avatar", room, kind="agent")
            )
            feeding += [await _publish_a_tone(candidate), await _publish_a_tone(avatar)]
            voice = next(iter(candidate.local_participant.track_publications))
            avatar_voice = next(iter(avatar.local_participant.track_publications))

            subscribed: asyncio.Queue[str] = asyncio.Queue()
            interviewer.on("track_subscribed", lambda t, _pub, _p: subscribed.put_nowait(t.sid))
            await interviewer.connect(
                relay.url,
                livekit_server.token("interviewer", room),
                rtc.RoomOptions(auto_subscribe=False),
            )
            hear_the_candidate(interviewer)
            assert await asyncio.wait_for(subscribed.get(), TIMEOUT) == voice
            first_sid = await _sid(livekit_server, room, "interviewer")

            relay.cut()  # resuming is refused: the SDK rejoins from scratch
            assert await asyncio.wait_for(subscribed.get(), TIMEOUT) == voice
            assert await _sid(livekit_server, room, "interviewer") != first_sid
            await asyncio.sleep(1.0)  # time for a wrong subscription to show
            assert subscribed.empty()
            heard = interviewer.remote_participants["avatar"].track_publications[avatar_voice]
            assert not heard.subscribed
            assert await _identities(livekit_server, room) == ["avatar", "candidate", "interviewer"]
        finally:
            for task in feeding:
                task.cancel()
            for r in (interviewer, avatar, candidate):
                await r.disconnect()
