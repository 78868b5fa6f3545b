"""Opus parameters in the answer to a publisher, as livekit-server sets them: FEC, and DTX unless
the track was published without it; then a silent track really goes quiet on the wire."""

from __future__ import annotations

import asyncio

import pytest
from livekit import api, rtc
from livekit.protocol import models

from devserver.media_forward import FORWARDING_STATS
from devserver.opus_answer import configure_opus

ANSWER = "\r\n".join(
    [
        "v=0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 0",
        "a=mid:0",
        "a=recvonly",
        "a=rtpmap:111 opus/48000/2",
        "a=rtpmap:0 PCMU/8000",
        "m=audio 9 UDP/TLS/RTP/SAVPF 96",
        "a=mid:1",
        "a=recvonly",
        "a=rtpmap:96 opus/48000/2",
        "a=fmtp:96 minptime=20",
        "m=video 9 UDP/TLS/RTP/SAVPF 97",
        "a=mid:2",
        "a=recvonly",
        "a=rtpmap:97 VP8/90000",
        "",
    ]
)


def _section(sdp: str, mid: str) -> list[str]:
    sections = sdp.split("m=")[1:]
    return next(s for s in sections if f"a=mid:{mid}\r\n" in s).split("\r\n")


def test_dtx_and_fec_for_a_default_track_and_none_of_dtx_for_one_that_declined_it() -> None:
    tracks = {
        "0": models.TrackInfo(sid="TR_Aa"),
        "1": models.TrackInfo(sid="TR_Ab", disable_dtx=True, stereo=True),
    }
    answer = configure_opus(ANSWER, tracks)
    first, second = _section(answer, "0"), _section(answer, "1")
    # the parameters follow their rtpmap line
    assert first[first.index("a=rtpmap:111 opus/48000/2") + 1] == (
        "a=fmtp:111 minptime=10;useinbandfec=1;usedtx=1"
    )
    assert [line for line in second if line.startswith("a=fmtp:96")] == [
        "a=fmtp:96 minptime=10;useinbandfec=1;stereo=1;maxaveragebitrate=510000"
    ]
    assert not any(line.startswith("a=fmtp:97") for line in _section(answer, "2"))
    assert answer.endswith("\r\n")


def test_an_audio_section_of_no_known_track_is_left_as_aiortc_wrote_it() -> None:
    assert configure_opus(ANSWER, {}) == ANSWER


def _token(identity: str) -> str:
    grants = api.VideoGrants(room_join=True, room="opus")
    return api.AccessToken("devkey", "secret").with_identity(identity).with_grants(grants).to_jwt()


async def _silent_packets_per_s(url: str, options: rtc.TrackPublishOptions) -> float:
    """Audio packets the server forwards per second for a published track nobody speaks on."""
    speaker, listener = rtc.Room(), rtc.Room()
    try:
        await speaker.connect(url, _token("speaker"))
        source = rtc.AudioSource(48000, 1)
        track = rtc.LocalAudioTrack.create_audio_track("voice", source)
        publication = await speaker.local_participant.publish_track(track, options)
        await listener.connect(url, _token("listener"))
        await asyncio.wait_for(publication.wait_for_subscription(), 20)
        await asyncio.sleep(1.0)  # past the first packets of a new stream
        before = FORWARDING_STATS.frames["audio"]
        await asyncio.sleep(2.0)
        return (FORWARDING_STATS.frames["audio"] - before) / 2.0
    finally:
        await listener.disconnect()
        await speaker.disconnect()


@pytest.mark.integration
async def test_a_silent_track_sends_little_unless_published_without_dtx(devserver_in_process):
    url, _app = devserver_in_process
    microphone = rtc.TrackSource.SOURCE_MICROPHONE
    default = await _silent_packets_per_s(url, rtc.TrackPublishOptions(source=microphone))
    without_dtx = await _silent_packets_per_s(
        url, rtc.TrackPublishOptions(source=microphone, dtx=False)
    )
    assert without_dtx > 40  # a packet every 20 ms
    assert default < 10  # comfort-noise updates only
