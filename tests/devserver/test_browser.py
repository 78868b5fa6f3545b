"""livekit-client in headless Chromium against both LiveKit servers: a page joins a room, publishes
its fake microphone (heard by a Python participant) and plays a Python participant's video; its
simulcast camera reaches the Python participant as one layer; data and RPC work both ways. On
livekit-server the page uses the client's default transport (`/rtc/v1`, one peer connection) and
sends its microphone as RED; on the dev server it falls back to `/rtc` with plain Opus
(browser_webrtc.py)."""

from __future__ import annotations

import asyncio
import pathlib
import uuid

import numpy as np
import pytest
from aiohttp import web
from browser_webrtc import (
    KEEP_PEER_CONNECTIONS_JS,
    WEBRTC_JS,
    assert_transport_and_red,
    signal_paths,
)
from chromium_flags import CHROMIUM, CHROMIUM_ARGS, FAKE_MEDIA
from livekit import rtc

from agent.ports import free_loopback_port

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PAGE_DIR = pathlib.Path(__file__).parent / "browser"
ARTIFACTS = pathlib.Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
TIMEOUT = 20


async def serve_page() -> tuple[web.AppRunner, str]:
    if not (PAGE_DIR / "node_modules" / "livekit-client").is_dir():
        pytest.fail(f"livekit-client is not installed in {PAGE_DIR}: run scripts/setup.sh")
    app = web.Application()
    app.router.add_static("/", PAGE_DIR)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_loopback_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/index.html"


async def publish_pattern(room: rtc.Room, stop: asyncio.Event) -> None:
    """A 320x240 moving gradient at 25 fps until `stop` is set."""
    source = rtc.VideoSource(320, 240)
    track = rtc.LocalVideoTrack.create_video_track("pattern", source)
    await room.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA, simulcast=False)
    )
    x = np.arange(320, dtype=np.uint16)
    frame = np.full((240, 320, 4), 255, dtype=np.uint8)
    i = 0
    while not stop.is_set():
        frame[..., 0] = ((x + 8 * i) % 256).astype(np.uint8)
        frame[..., 1] = 80
        source.capture_frame(rtc.VideoFrame(320, 240, rtc.VideoBufferType.RGBA, frame.tobytes()))
        i += 1
        await asyncio.sleep(0.04)


async def loudest_sample(track: rtc.Track, seconds: float) -> float:
    loudest = 0.0
    samples = 0
    async for event in rtc.AudioStream(track, sample_rate=48000, num_channels=1):
        data = np.frombuffer(event.frame.data, dtype=np.int16)
        loudest = max(loudest, float(np.abs(data).max(initial=0)))
        samples += len(data)
        if samples >= seconds * 48000:
            break
    return loudest


async def test_browser_publishes_microphone_and_plays_python_video(livekit_server) -> None:
    from playwright.async_api import async_playwright

    room_name = f"browser-{uuid.uuid4().hex[:8]}"
    runner, page_url = await serve_page()
    py_room = rtc.Room()
    loop = asyncio.get_running_loop()
    heard: asyncio.Future[rtc.Track] = loop.create_future()
    seen: asyncio.Future[rtc.Track] = loop.create_future()

    def on_subscribed(track: rtc.Track, _pub: object, participant: rtc.RemoteParticipant) -> None:
        if participant.identity != "web":
            return
        future = heard if track.kind == rtc.TrackKind.KIND_AUDIO else seen
        future.done() or future.set_result(track)

    py_room.on("track_subscribed", on_subscribed)
    await livekit_server.create_room(room_name)  # livekit.yaml: auto_create false
    await py_room.connect(livekit_server.url, livekit_server.token("py", room_name))
    stop = asyncio.Event()
    publisher = asyncio.ensure_future(publish_pattern(py_room, stop))
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *FAKE_MEDIA]
            )
            page = await browser.new_page()
            logs: list[str] = []
            page.on("console", lambda msg: logs.append(msg.text))
            sockets: list[str] = []
            page.on("websocket", lambda ws: sockets.append(ws.url))
            await page.add_init_script(script=KEEP_PEER_CONNECTIONS_JS)
            await page.goto(page_url)
            token = livekit_server.token("web", room_name)
            await page.evaluate(
                "([url, token]) => lkTest.join(url, token)", [livekit_server.url, token]
            )
            state = await page.evaluate("lkTest.state")
            assert state["connected"], (state, logs[-20:])
            assert state["published"], (state, logs[-20:])

            # data both ways and an RPC from the page to the Python participant
            inbox: asyncio.Queue[rtc.DataPacket] = asyncio.Queue()
            py_room.on("data_received", inbox.put_nowait)
            py_room.local_participant.register_rpc_method(
                "echo", lambda data: f"{data.caller_identity}:{data.payload}"
            )
            await page.evaluate("lkTest.sendData('from the page', 'chat')")
            packet = await asyncio.wait_for(inbox.get(), TIMEOUT)
            assert (packet.data, packet.topic) == (b"from the page", "chat")
            assert packet.participant is not None and packet.participant.identity == "web"
            await py_room.local_participant.publish_data(b"from python", topic="chat")
            for _ in range(TIMEOUT * 4):
                received = (await page.evaluate("lkTest.state"))["received"]
                if received:
                    break
                await asyncio.sleep(0.25)
            assert received == [{"text": "from python", "from": "py", "topic": "chat"}]
            reply = await page.evaluate("lkTest.rpc('py', 'echo', 'hi')")
            assert reply == "web:hi"

            # the fake microphone beeps; the Python participant must hear it
            track = await asyncio.wait_for(heard, TIMEOUT)
            loudest = await asyncio.wait_for(loudest_sample(track, 2.5), TIMEOUT)
            assert loudest > 3000, loudest

            # how it got there: livekit-server, the client's default transport and RED audio;
            # the dev server, the /rtc fallback and plain Opus. The server names the codec it
            # receives in the track's MIME type.
            webrtc = await page.evaluate(WEBRTC_JS)
            assert_transport_and_red(livekit_server.real, signal_paths(sockets), webrtc)
            mic = next(
                p
                for p in py_room.remote_participants["web"].track_publications.values()
                if p.kind == rtc.TrackKind.KIND_AUDIO
            )
            expected = "audio/red" if livekit_server.real else "audio/opus"
            assert mic.mime_type == expected, (mic.mime_type, webrtc)

            # the Python participant's video plays in the page: right size, frames advancing
            info = None
            for _ in range(TIMEOUT * 4):
                info = await page.evaluate("lkTest.videoInfo('py')")
                if info and info["width"] and info["frames"] > 10:
                    break
                await asyncio.sleep(0.25)
            assert info and (info["width"], info["height"]) == (320, 240), (info, logs[-20:])
            await asyncio.sleep(1.0)
            later = await page.evaluate("lkTest.videoInfo('py')")
            assert later["frames"] >= info["frames"] + 10, (info, later)
            assert later["time"] > info["time"]
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / f"python_video_{livekit_server.kind}.png"))

            # the server's connection quality updates reach livekit-client, for both sides
            qualities_js = (
                "[lkRoom.localParticipant.connectionQuality,"
                " lkRoom.remoteParticipants.get('py')?.connectionQuality]"
            )
            for _ in range(TIMEOUT * 4):
                qualities = await page.evaluate(qualities_js)
                if "unknown" not in qualities:
                    break
                await asyncio.sleep(0.25)
            assert set(qualities) <= {"excellent", "good"}, qualities

            # the browser's camera (simulcast) arrives as one layer, the first the browser offers
            await page.evaluate("lkTest.publishCamera()")
            camera = await asyncio.wait_for(seen, TIMEOUT)
            frames = 0
            async with asyncio.timeout(TIMEOUT):
                async for event in rtc.VideoStream(camera):
                    frames += 1
                    if frames == 10:
                        width, height = event.frame.width, event.frame.height
                        break
            assert width > 0 and width * 9 == height * 16, (width, height)  # fake camera: 16:9
            await browser.close()
    finally:
        stop.set()
        publisher.cancel()
        await py_room.disconnect()
        await runner.cleanup()
