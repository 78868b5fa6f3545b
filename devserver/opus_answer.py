"""Opus in the answer to a publisher, set the way livekit-server sets it: FEC, and DTX by default.

aiortc answers Opus with no format parameters at all. A LiveKit publisher then sends a packet
every 20 ms through silence too, which a LiveKit server would not have it do: livekit-server
answers `minptime=10;useinbandfec=1` for Opus, adds `usedtx=1` for each audio track published
without `disable_dtx`, and `stereo=1;maxaveragebitrate=510000` for a stereo one. With DTX a
silent track (an agent's voice between its turns, a quiet microphone) sends about 5 packets a
second instead of 50, and the server forwards and every subscriber decodes that much less.
"""

from __future__ import annotations

import re

from livekit.protocol import models

from devserver.simulcast import sdp_attribute, sdp_sections

OPUS_BASE_FMTP = "minptime=10;useinbandfec=1"


def opus_fmtp(track: models.TrackInfo) -> str:
    """The Opus format parameters livekit-server answers for this audio track."""
    fmtp = OPUS_BASE_FMTP
    if not track.disable_dtx:
        fmtp += ";usedtx=1"
    if track.stereo:
        fmtp += ";stereo=1;maxaveragebitrate=510000"
    return fmtp


def configure_opus(answer_sdp: str, audio_by_mid: dict[str, models.TrackInfo]) -> str:
    """The answer, with the Opus parameters of each known audio track's m-section set."""
    out: list[str] = []
    for section in sdp_sections(answer_sdp):
        mids = sdp_attribute(section, "mid")
        track = audio_by_mid.get(mids[0]) if mids and section[0].startswith("m=audio") else None
        payload = _opus_payload(section) if track is not None else None
        if track is not None and payload is not None:
            fmtp = f"a=fmtp:{payload} {opus_fmtp(track)}"
            kept = [line for line in section if not line.startswith(f"a=fmtp:{payload} ")]
            at = next(i for i, line in enumerate(kept) if line.startswith(f"a=rtpmap:{payload} "))
            section = [*kept[: at + 1], fmtp, *kept[at + 1 :]]
        out.extend(section)
    return "\r\n".join(out) + "\r\n"


def _opus_payload(section: list[str]) -> str | None:
    for rtpmap in sdp_attribute(section, "rtpmap"):
        match = re.match(r"(\d+) opus/48000", rtpmap, re.IGNORECASE)
        if match:
            return match.group(1)
    return None
