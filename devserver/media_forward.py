"""RTP forwarding without decoding: one published track's packets fanned out to its subscribers.

aiortc decodes everything it receives and encodes everything it sends, which would cost a full
video codec round trip per subscriber. Instead, a publisher's `RTCRtpReceiver` is tapped before
its jitter buffer (`tap_receiver`): RTCP statistics, NACKs and REMB are still produced, then each
packet goes to a `TrackSource`. Subscribers get a `ForwardTrack` whose "frames" are the original
RTP payloads; their `RTCRtpSender` is given a pass-through encoder, so aiortc only rewrites SSRC,
sequence numbers, timestamps offset and header extensions, and keeps its NACK history and sender
reports. Video is handed over a whole frame at a time (so the marker bit stays on the frame's
last packet); audio one packet at a time, for latency. Keyframes are requested from the publisher
(PLI) when a subscriber starts, asks for one, or lost part of a frame.

This reaches into aiortc private attributes (name-mangled); it is pinned to aiortc 1.16.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass

from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender
from aiortc.codecs import is_rtx
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RtcpPsfbPacket,
    RtpPacket,
    pack_remb_fci,
    unwrap_rtx,
)

from devserver.quality import STALL_GAP_S, LinkSample
from devserver.speakers import AudioLevel

logger = logging.getLogger("devserver.media")

_KEYFRAME_REQUEST_INTERVAL_S = 0.3
_AUDIO_QUEUE_FRAMES = 10  # 200 ms of 20 ms Opus packets; older ones are dropped
_VIDEO_QUEUE_FRAMES = 30
# Bandwidth the server reports to video publishers (REMB). aiortc's own delay-based estimate
# stayed at tens of kbit/s on loopback, so clients sent 384x384 video at 55 kbit/s; a local link
# is never the bottleneck, so the estimate is a fixed generous one and the client's own
# loss-based control does the rest.
_REMB_BPS = 8_000_000
_REMB_INTERVAL_S = 1.0
_background: set[asyncio.Future[None]] = set()  # fire-and-forget RTCP sends, kept referenced


@dataclass
class EncodedFrame:
    """RTP payloads of one frame as the publisher packetized them."""

    payloads: list[bytes]
    timestamp: int
    keyframe: bool
    received_at: float = 0.0  # perf_counter() when its last packet reached the server


class ForwardingStats:
    """Time each forwarded frame spent inside the server (last packet in -> handed to the
    subscriber's sender), kept for the most recent frames per kind, and the video frames the
    server did not forward, by reason; served at /debug/stats."""

    def __init__(self, keep: int = 20000) -> None:
        self.latency_s: dict[str, deque[float]] = {
            "audio": deque(maxlen=keep),
            "video": deque(maxlen=keep),
        }
        self.frames: dict[str, int] = {"audio": 0, "video": 0}  # sent to subscribers
        self.video_frames_in = 0  # whole video frames received from publishers
        self.bytes: dict[str, int] = {"audio": 0, "video": 0}
        # video frames not forwarded: "incomplete" (packets lost on the way in; not sent to
        # anyone), "backlog" (a subscriber's sender fell behind; per subscriber), "no_keyframe"
        # (a subscriber waiting for a keyframe after one of those; per subscriber)
        self.video_dropped: dict[str, int] = {"incomplete": 0, "backlog": 0, "no_keyframe": 0}

    def drop(self, reason: str, frames: int = 1) -> None:
        self.video_dropped[reason] += frames

    def add(self, kind: str, seconds: float, size: int) -> None:
        self.latency_s[kind].append(seconds)
        self.frames[kind] += 1
        self.bytes[kind] += size

    def summary(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {
            "video_dropped": dict(self.video_dropped),
            "video_in": {"frames": self.video_frames_in},
        }
        for kind, values in self.latency_s.items():
            ordered = sorted(values)
            if not ordered:
                continue
            out[kind] = {
                "frames": self.frames[kind],
                "bytes": self.bytes[kind],
                "p50_ms": 1000 * ordered[len(ordered) // 2],
                "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
                "max_ms": 1000 * ordered[-1],
            }
        return out


FORWARDING_STATS = ForwardingStats()


class PassthroughEncoder:
    """Stands in for aiortc's encoder on a forwarding sender: payloads go out unchanged."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def encode(self, frame: object, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        raise TypeError("a forwarding sender only takes already-encoded frames")

    def pack(self, frame: EncodedFrame) -> tuple[list[bytes], int]:
        size = sum(len(p) for p in frame.payloads)
        FORWARDING_STATS.add(self.kind, time.perf_counter() - frame.received_at, size)
        return frame.payloads, frame.timestamp


def is_keyframe(mime_type: str, payload: bytes) -> bool:
    """Whether an RTP payload starts a keyframe (VP8: RFC 7741; H.264: RFC 6184 IDR/SPS)."""
    mime = mime_type.lower()
    if mime == "video/vp8":
        if len(payload) < 1:
            return False
        first = payload[0]
        start, partition = bool(first & 0x10), first & 0x07
        pos = 1
        if first & 0x80 and len(payload) > 1:  # extended control bits
            ext = payload[1]
            pos = 2
            if ext & 0x80:  # picture id, 7 or 15 bits
                pos += 2 if len(payload) > 2 and payload[2] & 0x80 else 1
            if ext & 0x40:
                pos += 1
            if ext & 0x30:
                pos += 1
        return start and partition == 0 and len(payload) > pos and not payload[pos] & 0x01
    if mime == "video/h264":
        if not payload:
            return False
        nal_type = payload[0] & 0x1F
        if nal_type == 24:  # STAP-A: size-prefixed NAL units
            pos = 1
            while pos + 2 < len(payload):
                size = int.from_bytes(payload[pos : pos + 2], "big")
                if payload[pos + 2] & 0x1F in (5, 7):
                    return True
                pos += 2 + size
            return False
        if nal_type == 28:  # FU-A: only its first fragment says which NAL type it carries
            return len(payload) > 1 and bool(payload[1] & 0x80) and payload[1] & 0x1F in (5, 7)
        return nal_type in (5, 7)
    return True  # audio: every packet stands alone


class ForwardTrack(MediaStreamTrack):
    """A subscriber's copy of a published track, fed encoded frames by a `TrackSource`."""

    def __init__(self, source: TrackSource, track_sid: str) -> None:
        super().__init__()
        self.kind = source.kind
        self._id = track_sid
        self.source = source
        self.enabled = True
        self._queue: asyncio.Queue[EncodedFrame | None] = asyncio.Queue()
        self._limit = _AUDIO_QUEUE_FRAMES if source.kind == "audio" else _VIDEO_QUEUE_FRAMES
        self._waiting_keyframe = source.kind == "video"

    def push(self, frame: EncodedFrame) -> None:
        if not self.enabled or self.readyState != "live":
            return
        if self._waiting_keyframe:
            if not frame.keyframe:
                self.source.request_keyframe()
                FORWARDING_STATS.drop("no_keyframe")
                return
            self._waiting_keyframe = False
        if self._queue.qsize() >= self._limit:
            # The sender fell behind: drop the backlog rather than add latency.
            backlog = self._queue.qsize()
            while not self._queue.empty():
                self._queue.get_nowait()
            if self.kind == "video":
                FORWARDING_STATS.drop("backlog", backlog)
                self._waiting_keyframe = not frame.keyframe
                if self._waiting_keyframe:
                    self.source.request_keyframe()
                    FORWARDING_STATS.drop("no_keyframe")
                    return
        self._queue.put_nowait(frame)

    def set_enabled(self, enabled: bool) -> None:
        if enabled and not self.enabled and self.kind == "video":
            self._waiting_keyframe = True
            self.source.request_keyframe()
        self.enabled = enabled

    async def recv(self) -> EncodedFrame:  # type: ignore[override]
        frame = await self._queue.get()
        if frame is None:
            raise MediaStreamError
        return frame

    def stop(self) -> None:
        if self.readyState == "live":
            self._queue.put_nowait(None)
        super().stop()
        self.source.sinks.discard(self)


class TrackSource:
    """The RTP of one published track, reassembled into frames and fanned out to sinks."""

    def __init__(self, kind: str, mime_type: str, receiver: RTCRtpReceiver) -> None:
        self.kind = kind
        self.mime_type = mime_type
        self.sinks: set[ForwardTrack] = set()
        self.packets_in = 0
        self.level = AudioLevel() if kind == "audio" else None
        self._receiver = receiver
        self._streams: dict[int, StreamStatistics] = receiver._RTCRtpReceiver__remote_streams
        self._media_ssrc: int | None = None
        # reception over the current quality window (see take_window)
        self._last_arrival = 0.0
        self._window_start = time.monotonic()
        self._stalled_s = 0.0
        self._prior_expected = 0
        self._prior_received = 0
        self._last_keyframe_request = 0.0
        self._frame: list[RtpPacket] = []
        self._frame_ts: int | None = None

    def add_sink(self, track_sid: str) -> ForwardTrack:
        sink = ForwardTrack(self, track_sid)
        self.sinks.add(sink)
        self.request_keyframe()
        return sink

    def close(self) -> None:
        for sink in list(self.sinks):
            sink.stop()

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe (PLI), at most every 300 ms."""
        if self.kind != "video" or self._media_ssrc is None:
            return
        now = time.monotonic()
        if now - self._last_keyframe_request < _KEYFRAME_REQUEST_INTERVAL_S:
            return
        self._last_keyframe_request = now
        task = asyncio.ensure_future(self._receiver._send_rtcp_pli(self._media_ssrc))
        _background.add(task)
        task.add_done_callback(_background.discard)

    def take_window(self) -> LinkSample:
        """Reception since the previous call: loss (sequence gaps, and stalled time as lost),
        interarrival jitter, and whether nothing arrived at all; starts the next window."""
        now = time.monotonic()
        elapsed = max(now - self._window_start, 1e-3)
        stalled = self._stalled_s
        if now - self._last_arrival > STALL_GAP_S:  # still stalled (or never started)
            stalled += now - max(self._last_arrival, self._window_start)
        stream = self._streams.get(self._media_ssrc) if self._media_ssrc is not None else None
        expected = received = 0
        jitter_ms = 0.0
        if stream is not None:
            expected = stream.packets_expected - self._prior_expected
            received = stream.packets_received - self._prior_received
            self._prior_expected = stream.packets_expected
            self._prior_received = stream.packets_received
            jitter_ms = 1000 * stream.jitter / stream._clockrate
        seq_loss = (expected - received) / expected if expected > 0 else 0.0
        self._window_start, self._stalled_s = now, 0.0
        return LinkSample(
            loss=min(max(seq_loss, stalled / elapsed, 0.0), 1.0),
            jitter_ms=jitter_ms,
            silent=received == 0,
        )

    def on_rtp(self, packet: RtpPacket) -> None:
        self.packets_in += 1
        now = time.monotonic()
        if now - self._last_arrival > STALL_GAP_S and self._last_arrival:
            self._stalled_s += now - max(self._last_arrival, self._window_start)
        self._last_arrival = now
        self._media_ssrc = packet.ssrc
        if self.kind == "audio":
            if self.level is not None and packet.extensions.audio_level is not None:
                self.level.add(packet.extensions.audio_level[1])
            frame = EncodedFrame(
                [packet.payload], packet.timestamp, keyframe=True, received_at=time.perf_counter()
            )
            for sink in self.sinks:
                sink.push(frame)
            return
        self._on_video_packet(packet)

    def _on_video_packet(self, packet: RtpPacket) -> None:
        if self._frame_ts is not None and packet.timestamp != self._frame_ts:
            if (packet.timestamp - self._frame_ts) & 0x80000000:
                return  # a late packet of a frame already sent or dropped
            if self._frame:  # the previous frame never completed
                self._frame = []
                self.request_keyframe()
                FORWARDING_STATS.drop("incomplete")
        self._frame_ts = packet.timestamp
        self._frame.append(packet)
        if not packet.marker:
            return
        first = self._frame[0].sequence_number
        packets = sorted(self._frame, key=lambda p: (p.sequence_number - first) & 0xFFFF)
        self._frame = []
        expected = (packets[-1].sequence_number - packets[0].sequence_number) & 0xFFFF
        unique = {p.sequence_number for p in packets}
        if expected + 1 != len(unique):
            self.request_keyframe()  # lost packets: subscribers will see a gap in picture ids
            FORWARDING_STATS.drop("incomplete")
            return
        seen: set[int] = set()
        payloads = []
        for p in packets:
            if p.sequence_number not in seen:
                seen.add(p.sequence_number)
                payloads.append(p.payload)
        FORWARDING_STATS.video_frames_in += 1
        frame = EncodedFrame(
            payloads,
            packets[0].timestamp,
            keyframe=is_keyframe(self.mime_type, payloads[0]),
            received_at=time.perf_counter(),
        )
        for sink in list(self.sinks):
            sink.push(frame)


def tap_receiver(receiver: RTCRtpReceiver, kind: str, on_rtp: TrackSource) -> None:
    """Route a receiver's RTP to `on_rtp` instead of aiortc's jitter buffer and decoder."""
    # name-mangled state of aiortc's RTCRtpReceiver (1.16)
    codecs: dict[int, RTCRtpCodecParameters] = receiver._RTCRtpReceiver__codecs
    rtx_ssrc: dict[int, int] = receiver._RTCRtpReceiver__rtx_ssrc
    streams: dict[int, StreamStatistics] = receiver._RTCRtpReceiver__remote_streams
    nack_generator = receiver._RTCRtpReceiver__nack_generator
    estimator = receiver._RTCRtpReceiver__remote_bitrate_estimator  # None for audio
    last_remb = [0.0]

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        codec = codecs.get(packet.payload_type)
        if codec is None:
            return
        if packet.ssrc not in streams:
            streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        streams[packet.ssrc].add(packet)
        if estimator is not None and time.monotonic() - last_remb[0] > _REMB_INTERVAL_S:
            last_remb[0] = time.monotonic()
            rtcp_ssrc = receiver._RTCRtpReceiver__rtcp_ssrc
            if rtcp_ssrc is not None:
                fci = pack_remb_fci(_REMB_BPS, [packet.ssrc])
                await receiver._send_rtcp(
                    RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=fci)
                )
        if is_rtx(codec):
            original_ssrc = rtx_ssrc.get(packet.ssrc)
            apt = codec.parameters.get("apt")
            if original_ssrc is None or len(packet.payload) < 2 or apt not in codecs:
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)
        if nack_generator is not None and nack_generator.add(packet):
            await receiver._send_rtcp_nack(packet.ssrc, sorted(nack_generator.missing))
        if packet.payload:
            on_rtp.on_rtp(packet)

    receiver._handle_rtp_packet = handle_rtp_packet  # type: ignore[method-assign]


def prepare_forward_sender(sender: RTCRtpSender, sink: ForwardTrack) -> None:
    """Make a subscriber's sender pass payloads through and relay keyframe requests upstream."""
    sender._RTCRtpSender__encoder = PassthroughEncoder(sink.kind)
    original = sender._handle_rtcp_packet

    async def handle_rtcp_packet(packet: object) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            sink.source.request_keyframe()
            return
        with contextlib.suppress(ConnectionError):
            await original(packet)

    sender._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]
