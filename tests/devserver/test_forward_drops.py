"""The video frames the dev server does not forward are counted by reason (/debug/stats)."""

from __future__ import annotations

from aiortc.rtp import RtpPacket

from devserver.media_forward import FORWARDING_STATS, TrackSource

KEY = bytes([0x10, 0x00])  # VP8 descriptor: start of partition 0; payload header: keyframe
DELTA = bytes([0x10, 0x01])  # the same, an interframe
MORE = bytes([0x00, 0x00])  # a continuation packet of the frame


class _Receiver:
    """What TrackSource touches of aiortc's RTCRtpReceiver: statistics and the PLI sender."""

    def __init__(self) -> None:
        self._RTCRtpReceiver__remote_streams: dict[int, object] = {}
        self.plis = 0

    async def _send_rtcp_pli(self, media_ssrc: int) -> None:
        self.plis += 1


def _frame(source: TrackSource, seq: int, ts: int, payloads: list[bytes], skip: int = -1) -> int:
    """Feed one frame's packets (all but the `skip`-th); returns the next sequence number."""
    for i, payload in enumerate(payloads):
        if i != skip:
            packet = RtpPacket(
                payload_type=96,
                sequence_number=seq + i,
                timestamp=ts,
                ssrc=9,
                marker=i == len(payloads) - 1,
            )
            packet.payload = payload
            source.on_rtp(packet)
    return seq + len(payloads)


async def test_lost_packets_and_a_sink_awaiting_a_keyframe_are_counted() -> None:
    before = dict(FORWARDING_STATS.video_dropped)
    source = TrackSource("video", "video/vp8", _Receiver())  # type: ignore[arg-type]
    seq = _frame(source, 0, 3000, [KEY, MORE])
    sink = source.add_sink("TR_V1")  # joins now: waits for the next keyframe

    seq = _frame(source, seq, 6000, [DELTA, MORE, MORE], skip=1)  # a packet lost on the way in
    seq = _frame(source, seq, 9000, [DELTA, MORE])  # whole, but not a keyframe: not for the sink
    _frame(source, seq, 12000, [KEY, MORE])  # the keyframe it waited for

    dropped = {k: v - before[k] for k, v in FORWARDING_STATS.video_dropped.items()}
    assert dropped == {"incomplete": 1, "backlog": 0, "no_keyframe": 1}
    assert sink._queue.qsize() == 1  # the keyframe
    assert FORWARDING_STATS.summary()["video_dropped"] == FORWARDING_STATS.video_dropped
