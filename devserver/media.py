"""A participant's two PeerConnections (LiveKit's dual-PC mode) and its track subscriptions.

The client offers on the *publisher* connection (its tracks come in) and answers the server's
offers on the *subscriber* connection (other participants' tracks and the server's data channels
go out). Published tracks are bound to their `add_track` request by the `msid` track id (= cid)
in the client's offer; their RTP is tapped and forwarded without decoding (media_forward.py).
aiortc embeds its own ICE candidates in the SDP, so only the client's candidates are trickled.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
    sdp,
)
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp
from livekit.protocol import models
from livekit.protocol import rtc as proto_rtc

from devserver.media_forward import ForwardTrack, TrackSource, prepare_forward_sender, tap_receiver
from devserver.opus_answer import configure_opus
from devserver.quality import LinkSample
from devserver.rooms import Participant, PublishedTrack
from devserver.simulcast import accept_best_layer

logger = logging.getLogger("devserver.media")

PUBLISHER = proto_rtc.SignalTarget.PUBLISHER
SUBSCRIBER = proto_rtc.SignalTarget.SUBSCRIBER

DataHandler = Callable[[bytes, bool], None]  # (raw DataPacket, reliable)
SignalSender = Callable[[proto_rtc.SignalResponse], None]

_CLOCK_RATE = {"audio": 48000, "video": 90000}
# libwebrtc sends receiver reports every 1 s for video and 5 s for audio; older ones are stale
_REPORT_STALE_S = 12.0


def _new_pc() -> RTCPeerConnection:
    # No ICE servers: aiortc would otherwise ask Google's STUN server for candidates.
    # max-bundle: with aiortc's default (balanced), the 2nd..nth video m-lines of one offer keep a
    # transport that BUNDLE then discards, so their receivers never start.
    return RTCPeerConnection(
        RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    )


@dataclass
class Subscription:
    publisher: Participant
    track: PublishedTrack
    sink: ForwardTrack
    transceiver: RTCRtpTransceiver


class ParticipantMedia:
    def __init__(
        self,
        participant: Participant,
        *,
        room_name: str,
        send_signal: SignalSender,
        on_data: DataHandler,
        on_track_bound: Callable[[PublishedTrack], None],
        on_tracks_stopped: Callable[[list[str]], None],
    ) -> None:
        self.participant = participant
        self._room_name = room_name
        self._send_signal = send_signal
        self._on_data = on_data
        self._on_track_bound = on_track_bound
        self._on_tracks_stopped = on_tracks_stopped
        self._bound_mids: dict[str, str] = {}  # publisher mid -> track sid
        # the audio tracks bound so far, for their Opus parameters in each answer (opus_answer.py)
        self._audio_by_mid: dict[str, models.TrackInfo] = {}
        self.publisher = _new_pc()
        self.subscriber = _new_pc()
        self.subscriptions: dict[str, Subscription] = {}  # by track sid
        self.pending_tracks: dict[str, PublishedTrack] = {}  # by cid, until their offer
        self._sources: list[TrackSource] = []
        self._publisher_lock = asyncio.Lock()
        self._subscriber_lock = asyncio.Lock()
        self._awaiting_answer = False
        self._renegotiate = False
        self._negotiation_task: asyncio.Task[None] | None = None
        self._pending_candidates: dict[int, list[dict[str, object]]] = {
            PUBLISHER: [],
            SUBSCRIBER: [],
        }
        self._new_receivers: list[tuple[str, RTCRtpTransceiver, MediaStreamTrack]] = []
        self._offer_id = 0
        self._deferred: list[tuple[Participant, PublishedTrack]] = []
        self._closed = False
        # whether a peer connection ever connected: a participant whose signal connection drops
        # before that is gone at once, one after that is kept for a while (signal_join.py)
        self.has_connected = False
        self._observed_unmuted: set[str] = set()  # published tracks unmuted at the last look
        # Data goes to the client over channels the server opens on the subscriber connection.
        self.reliable = self.subscriber.createDataChannel("_reliable", ordered=True)
        self.lossy = self.subscriber.createDataChannel("_lossy", ordered=False, maxRetransmits=0)
        self._reliable_backlog: list[bytes] = []
        self.reliable.on("open", self._flush_reliable)
        for pc in (self.publisher, self.subscriber):
            pc.on("datachannel", self._watch_channel)
        for channel in (self.reliable, self.lossy):
            self._watch_channel(channel)
        self.publisher.on("track", self._on_remote_track)
        for name, pc in (("publisher", self.publisher), ("subscriber", self.subscriber)):
            pc.on("connectionstatechange", self._state_logger(name, pc))

    @property
    def _log(self) -> dict[str, str]:
        return {"room": self._room_name, "identity": self.participant.identity}

    def _state_logger(self, name: str, pc: RTCPeerConnection) -> Callable[[], None]:
        def log_state() -> None:
            state = pc.connectionState
            if state == "connected":
                self.has_connected = True
            level = logging.WARNING if state == "failed" else logging.DEBUG
            logger.log(level, "peer connection %s", state, extra={**self._log, "pc": name})

        return log_state

    # -- data channels ----------------------------------------------------------------------

    def _watch_channel(self, channel: RTCDataChannel) -> None:
        if channel.label not in ("_reliable", "_lossy"):
            return  # e.g. the Python SDK's "_data_track" channel: not DataPackets
        reliable = channel.label == "_reliable"

        def on_message(message: bytes | str) -> None:
            if isinstance(message, bytes):
                self._on_data(message, reliable)

        channel.on("message", on_message)

    def _flush_reliable(self) -> None:
        backlog, self._reliable_backlog = self._reliable_backlog, []
        for data in backlog:
            self.reliable.send(data)

    def send_data(self, data: bytes, *, reliable: bool) -> None:
        if reliable:
            if self.reliable.readyState == "open":
                self.reliable.send(data)
            elif self.reliable.readyState == "connecting":
                self._reliable_backlog.append(data)
        elif self.lossy.readyState == "open":
            self.lossy.send(data)

    # -- publisher side ---------------------------------------------------------------------

    def _on_remote_track(self, track: MediaStreamTrack) -> None:
        transceiver = next(
            (t for t in self.publisher.getTransceivers() if t.receiver.track is track), None
        )
        if transceiver is None:
            return
        self._new_receivers.append((track.id, transceiver, track))

    async def handle_publisher_offer(self, offer: proto_rtc.SessionDescription) -> None:
        async with self._publisher_lock:
            self._new_receivers = []
            await self.publisher.setRemoteDescription(
                RTCSessionDescription(sdp=offer.sdp, type="offer")
            )
            await self._apply_candidates(PUBLISHER)
            stopped = self._stopped_tracks(offer.sdp)
            mid_to_cid = {e.mid: e.track_id for e in offer.mid_to_track_id}
            bound = [self._bind_track(m, mid_to_cid) for m in self._new_receivers]
            for item in bound:
                if item is not None and item[0].info.type == models.TrackType.AUDIO:
                    self._audio_by_mid[item[1].mid or ""] = item[0].info
            answer = await self.publisher.createAnswer()
            await self.publisher.setLocalDescription(answer)
            answer_sdp = accept_best_layer(offer.sdp, self.publisher.localDescription.sdp)
            answer_sdp = configure_opus(answer_sdp, self._audio_by_mid)
            self._send_signal(
                proto_rtc.SignalResponse(
                    answer=proto_rtc.SessionDescription(type="answer", sdp=answer_sdp, id=offer.id)
                )
            )
        if stopped:
            self._on_tracks_stopped(stopped)
        for item in bound:
            if item is not None:
                track, transceiver = item
                self._finish_binding(track, transceiver)

    def _stopped_tracks(self, offer_sdp: str) -> list[str]:
        """Tracks whose m-line the client no longer sends on: that is how clients unpublish."""
        stopped = []
        for media in sdp.SessionDescription.parse(offer_sdp).media:
            mid = media.rtp.muxId
            if mid in self._bound_mids and (
                media.port == 0 or media.direction in ("inactive", "recvonly")
            ):
                stopped.append(self._bound_mids.pop(mid))
                self._audio_by_mid.pop(mid, None)
        return stopped

    def _bind_track(
        self,
        receiver_info: tuple[str, RTCRtpTransceiver, MediaStreamTrack],
        mid_to_cid: dict[str, str],
    ) -> tuple[PublishedTrack, RTCRtpTransceiver] | None:
        track_id, transceiver, remote = receiver_info
        cid = mid_to_cid.get(transceiver.mid or "", track_id)
        published = self.pending_tracks.pop(cid, None)
        if published is None:
            # Clients that do not put the cid in msid: take the oldest request of that kind.
            kind = models.TrackType.AUDIO if remote.kind == "audio" else models.TrackType.VIDEO
            cid = next((c for c, t in self.pending_tracks.items() if t.info.type == kind), "")
            published = self.pending_tracks.pop(cid, None)
        if published is None:
            logger.warning(
                "media track without an add_track request", extra={**self._log, "cid": track_id}
            )
            return None
        source = TrackSource(remote.kind, "", transceiver.receiver)
        tap_receiver(transceiver.receiver, remote.kind, source)
        published.source = source
        self._sources.append(source)
        return published, transceiver

    def _finish_binding(self, published: PublishedTrack, transceiver: RTCRtpTransceiver) -> None:
        codec = next((c for c in transceiver._codecs if c.name.lower() != "rtx"), None)
        mime = codec.mimeType if codec else ""
        assert isinstance(published.source, TrackSource)
        published.source.mime_type = mime
        info = published.info
        info.mid = transceiver.mid or ""
        self._bound_mids[info.mid] = info.sid
        info.mime_type = mime
        del info.codecs[:]
        info.codecs.append(
            models.SimulcastCodecInfo(
                mime_type=mime, mid=info.mid, cid=info.sid, layers=list(info.layers)
            )
        )
        self._on_track_bound(published)

    # -- subscriber side --------------------------------------------------------------------

    def subscribe(self, publisher: Participant, track: PublishedTrack) -> None:
        sid = track.info.sid
        if sid in self.subscriptions or not isinstance(track.source, TrackSource):
            return
        if self._offer_id == 0:
            # The first offer must carry only the data channels: aiortc (1.16) tears down the
            # shared transport when the SCTP m-line, created first, is not the BUNDLE leader.
            self._deferred.append((publisher, track))
            self.negotiate()
            return
        source = track.source
        sink = source.add_sink(sid)
        transceiver = self.subscriber.addTransceiver(sink, direction="sendonly")
        # LiveKit's stream id convention: "<participant sid>|<track sid>", track id = track sid.
        transceiver.sender._stream_id = f"{publisher.sid}|{sid}"
        prefs = [
            c
            for c in RTCRtpSender.getCapabilities(source.kind).codecs
            if c.mimeType.lower() in (source.mime_type.lower(), f"{source.kind}/rtx")
        ]
        if prefs:
            transceiver.setCodecPreferences(prefs)
        prepare_forward_sender(transceiver.sender, sink)
        self.subscriptions[sid] = Subscription(publisher, track, sink, transceiver)
        logger.info(
            "track subscribed",
            extra={**self._log, "track": sid, "publisher": publisher.identity},
        )
        if publisher.session is not None:
            # as livekit-server does: the publisher learns its track has a subscriber
            # (`LocalTrackPublication.wait_for_subscription`, which AvatarRunner awaits)
            publisher.session.send_signal(
                proto_rtc.SignalResponse(track_subscribed=proto_rtc.TrackSubscribed(track_sid=sid))
            )
        self.negotiate()

    def unsubscribe(self, track_sid: str) -> None:
        sub = self.subscriptions.pop(track_sid, None)
        if sub is None:
            return
        sub.sink.stop()
        sub.transceiver.direction = "inactive"
        self.negotiate()

    def set_subscription_enabled(self, track_sid: str, enabled: bool) -> None:
        sub = self.subscriptions.get(track_sid)
        if sub is not None:
            sub.sink.set_enabled(enabled)

    def negotiate(self) -> None:
        """Send the client a new subscriber offer soon (changes within 20 ms are batched)."""
        if self._closed:
            return
        self._renegotiate = True
        if self._negotiation_task is None or self._negotiation_task.done():
            self._negotiation_task = asyncio.ensure_future(self._send_offer())

    async def _send_offer(self) -> None:
        await asyncio.sleep(0.02)
        async with self._subscriber_lock:
            if self._awaiting_answer or not self._renegotiate or self._closed:
                return
            self._renegotiate = False
            self._awaiting_answer = True
            offer = await self.subscriber.createOffer()
            await self.subscriber.setLocalDescription(offer)
            self._offer_id += 1
            self._send_signal(
                proto_rtc.SignalResponse(
                    offer=proto_rtc.SessionDescription(
                        type="offer", sdp=self.subscriber.localDescription.sdp, id=self._offer_id
                    )
                )
            )
        deferred, self._deferred = self._deferred, []
        for publisher, track in deferred:  # offered once the client has answered
            self.subscribe(publisher, track)

    async def handle_subscriber_answer(self, answer: proto_rtc.SessionDescription) -> None:
        async with self._subscriber_lock:
            if not self._awaiting_answer:
                logger.warning("unexpected subscriber answer", extra=self._log)
                return
            await self.subscriber.setRemoteDescription(
                RTCSessionDescription(sdp=answer.sdp, type="answer")
            )
            self._awaiting_answer = False
            await self._apply_candidates(SUBSCRIBER)
        if self._renegotiate:
            self.negotiate()

    # -- connection quality -----------------------------------------------------------------

    @property
    def transport_failed(self) -> bool:
        pcs = [self.subscriber] + ([self.publisher] if self._bound_mids else [])
        return any(pc.connectionState in ("failed", "closed") for pc in pcs)

    async def link_samples(self) -> list[LinkSample]:
        """What the server saw of this participant's media since the previous call: one sample
        per published track that was unmuted for the whole interval, one per subscription the
        participant's receiver reports cover."""
        samples = []
        unmuted: set[str] = set()
        for sid, track in self.participant.tracks.items():
            if not isinstance(track.source, TrackSource):
                continue
            sample = track.source.take_window()  # always, so each window starts afresh
            if track.info.muted:
                continue
            unmuted.add(sid)
            if sid in self._observed_unmuted:  # a just published/unmuted track gets a grace
                samples.append(sample)
        self._observed_unmuted = unmuted
        for sub in list(self.subscriptions.values()):
            if sub.sink.enabled and not sub.track.info.muted:
                sample = await _receiver_report(sub)
                if sample is not None:
                    samples.append(sample)
        return samples

    # -- ICE --------------------------------------------------------------------------------

    async def add_candidate(self, target: int, candidate_init: str) -> None:
        init = json.loads(candidate_init)
        if not isinstance(init, dict):
            raise ValueError("candidateInit is not a JSON object")
        self._pending_candidates[target].append(init)
        await self._apply_candidates(target)

    async def _apply_candidates(self, target: int) -> None:
        pc = self.publisher if target == PUBLISHER else self.subscriber
        if pc.remoteDescription is None:
            return  # kept until the description they belong to is set
        pending, self._pending_candidates[target] = self._pending_candidates[target], []
        for init in pending:
            line = str(init.get("candidate") or "")
            if not line:
                continue  # end of candidates: aiortc needs no signal for it
            candidate = candidate_from_sdp(
                line.split(":", 1)[1] if line.startswith("candidate:") else line
            )
            candidate.sdpMid = init.get("sdpMid")  # type: ignore[assignment]
            candidate.sdpMLineIndex = init.get("sdpMLineIndex")  # type: ignore[assignment]
            await pc.addIceCandidate(candidate)

    # -- teardown ---------------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._negotiation_task is not None:
            self._negotiation_task.cancel()
        for sub in self.subscriptions.values():
            sub.sink.stop()
        self.subscriptions.clear()
        for source in self._sources:
            source.close()
        for pc in (self.publisher, self.subscriber):
            with contextlib.suppress(Exception):
                await pc.close()


async def _receiver_report(sub: Subscription) -> LinkSample | None:
    """The subscriber's latest receiver report on a forwarded track, if it is recent."""
    stats = await sub.transceiver.sender.getStats()
    report = next((r for r in stats.values() if r.type == "remote-inbound-rtp"), None)
    if report is None:
        return None
    age = (datetime.datetime.now(datetime.UTC) - report.timestamp).total_seconds()
    if age > _REPORT_STALE_S:
        return None
    return LinkSample(
        loss=report.fractionLost / 256,
        jitter_ms=1000 * report.jitter / _CLOCK_RATE.get(sub.sink.kind, 90000),
        rtt_ms=1000 * (report.roundTripTime or 0.0),
    )
