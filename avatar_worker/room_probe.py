"""A measuring participant: what a candidate sees and hears in an interview room.

Used by the room benchmark and the room tests. It joins like any client (the `livekit` SDK),
subscribes to everything, and records per remote participant: audio energy in 10 ms steps and,
for video, each frame's arrival time, size and how open the avatar's mouth is — read from the
pixels (dark mouth-interior pixels inside the stylized characters' mouth box), so the figure is
what a viewer sees after encoding, forwarding and decoding. It can also speak: a WAV file played
in real time into a microphone that, like a browser's, stays open and sends silence between.
"""

from __future__ import annotations

import asyncio
import time
import wave
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from livekit import rtc
from livekit.rtc._ffi_client import FfiClient
from livekit.rtc._proto import ffi_pb2 as proto_ffi
from livekit.rtc._proto import video_frame_pb2 as proto_video_frame

AUDIO_RATE = 24000
STEP_S = 0.01  # audio energy resolution
LOUD = 300.0  # int16 RMS over STEP_S: speech, not codec noise or silence
DARK_Y = 60  # mouth interior in the stylized characters (lips, skin are brighter)
_MOUTH_BOX = (216, 252, 80, 58)  # x, y, w, h at 512x512 (stylized characters, head space)
_SWAY = 6  # head sway/nod margin in pixels


@dataclass
class VideoSample:
    t: float
    width: int
    height: int
    mouth: float  # share of dark pixels in the mouth region, 0 = closed
    luma_sum: int  # cheap frame fingerprint: changes when anything moves
    # the frame's timestamp as the SDK gives it, from the sender's capture clock: a gap here
    # and not in the arrival times is a frame never sent; a gap only in arrivals, one held up
    timestamp_us: int = 0


@dataclass
class Received:
    """Everything one remote participant sent us."""

    identity: str
    kind: int = 0
    attributes: dict[str, str] = field(default_factory=dict)
    # (perf_counter, key, value) of each attribute change after it joined
    attribute_changes: list[tuple[float, str, str]] = field(default_factory=list)
    audio_t: list[float] = field(default_factory=list)  # arrival time of each 10 ms step
    audio_rms: list[float] = field(default_factory=list)
    video: list[VideoSample] = field(default_factory=list)
    video_track: rtc.Track | None = field(default=None, repr=False, compare=False)
    # the LOUD steps found so far: the scenarios ask every 30 ms while the recording grows, and
    # rescanning it whole each time made the measuring process a load of its own on the host
    _loud: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False, compare=False)
    _scanned: tuple[list[float] | None, int] = field(default=(None, 0), repr=False, compare=False)

    def loud_times(self, threshold: float = LOUD) -> np.ndarray:
        if threshold != LOUD:
            rms = np.asarray(self.audio_rms)
            return np.asarray(self.audio_t)[rms > threshold]
        n = min(len(self.audio_t), len(self.audio_rms))
        source, done = self._scanned
        if source is not self.audio_rms or n < done:  # the recording was replaced
            self._loud, done = np.empty(0), 0
        if n > done:
            rms = np.asarray(self.audio_rms[done:n])
            self._loud = np.concatenate([self._loud, np.asarray(self.audio_t[done:n])[rms > LOUD]])
        self._scanned = (self.audio_rms, n)
        return self._loud

    def audio_between(self, t0: float, t1: float) -> np.ndarray:
        t = np.asarray(self.audio_t)
        return np.asarray(self.audio_rms)[(t >= t0) & (t < t1)]

    def video_between(self, t0: float, t1: float) -> list[VideoSample]:
        return [v for v in self.video if t0 <= v.t < t1]

    def numbers_in(self, key: str) -> list[float]:
        """The numeric values an attribute took, in order (anything else skipped)."""
        values = []
        for _t, k, v in self.attribute_changes:
            if k != key:
                continue
            try:
                values.append(float(v))
            except ValueError:
                continue
        return values


def mouth_openness(frame: rtc.VideoFrame) -> tuple[float, int]:
    """(dark share of the mouth region, luma sum) of an I420 frame of any size."""
    i420 = (
        frame if frame.type == rtc.VideoBufferType.I420 else frame.convert(rtc.VideoBufferType.I420)
    )
    w, h = i420.width, i420.height
    y = np.frombuffer(i420.data, dtype=np.uint8)[: w * h].reshape(h, w)
    sx, sy = w / 512.0, h / 512.0
    bx, by, bw, bh = _MOUTH_BOX
    x0, x1 = int((bx - _SWAY) * sx), int((bx + bw + _SWAY) * sx)
    y0, y1 = int((by - _SWAY) * sy), int((by + bh + _SWAY) * sy)
    region = y[max(0, y0) : y1, max(0, x0) : x1]
    return float((region < DARK_Y).mean()), int(y[::8, ::8].sum())


class _QueuedVideoStream(rtc.VideoStream):
    """An `rtc.VideoStream` whose SDK queue holds `queue_frames` frames instead of one."""

    def __init__(self, track: rtc.Track, queue_frames: int) -> None:
        self._queue_frames = queue_frames
        super().__init__(track)

    def _create_owned_stream(self) -> Any:
        assert self._track is not None
        req = proto_ffi.FfiRequest()
        stream = req.new_video_stream
        stream.track_handle = self._track._ffi_handle.handle
        stream.type = proto_video_frame.VideoStreamType.VIDEO_STREAM_NATIVE
        stream.normalize_stride = True
        stream.queue_size_frames = self._queue_frames
        return FfiClient.instance.request(req).new_video_stream.stream


class RoomProbe:
    """A participant that records what it receives and can play a WAV as its microphone."""

    def __init__(self, video_queue_frames: int = 1) -> None:
        # The SDK keeps one received frame for Python to read and drops the rest when Python
        # is late: right for the A/V measures (a late frame is not shown late), but when several
        # probes share a process on a starved host, about half the frames missing at the
        # candidates in three-interview runs were lost there, to the measuring process, not to
        # the stack. The benchmark's interviews keep a second's worth: late frames then count
        # as stalls, not as missing.
        self.video_queue_frames = video_queue_frames
        self.room = rtc.Room()
        self.received: dict[str, Received] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._mic: rtc.AudioSource | None = None
        # what say() queued for the microphone, one STEP_S each; the first step of each say()
        # carries a future for the moment it will play out in the room
        self._speech: deque[tuple[np.ndarray, asyncio.Future[float] | None]] = deque()
        self._spoken = asyncio.Event()
        self.room.on("track_subscribed", self._on_track)
        self.room.on("participant_connected", self._on_participant)
        self.room.on("participant_attributes_changed", self._on_attributes)

    def of(self, identity: str) -> Received:
        if identity not in self.received:
            self.received[identity] = Received(identity)
        return self.received[identity]

    async def connect(self, url: str, token: str) -> None:
        await self.room.connect(url, token)
        for p in self.room.remote_participants.values():
            self._on_participant(p)

    def _on_participant(self, p: rtc.RemoteParticipant) -> None:
        rec = self.of(p.identity)
        rec.kind = p.kind
        rec.attributes = dict(p.attributes)

    def _on_attributes(self, changed: dict[str, str], p: rtc.Participant) -> None:
        rec = self.of(p.identity)
        rec.attributes = dict(p.attributes)
        now = time.perf_counter()
        rec.attribute_changes.extend((now, k, v) for k, v in changed.items())

    def _on_track(
        self, track: rtc.Track, _pub: rtc.RemoteTrackPublication, p: rtc.RemoteParticipant
    ) -> None:
        self._on_participant(p)
        rec = self.of(p.identity)
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            coro = self._read_audio(track, rec)
        else:
            rec.video_track = track
            coro = self._read_video(track, rec)
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_audio(self, track: rtc.Track, rec: Received) -> None:
        step = int(AUDIO_RATE * STEP_S)
        # 40 ms events: a quarter of the default's, so a busy receiver (several probes in one
        # process) does not fall behind on audio while video frames, which the SDK drops when
        # late, stay current, which would fake an A/V offset
        stream = rtc.AudioStream(track, sample_rate=AUDIO_RATE, num_channels=1, frame_size_ms=40)
        async for ev in stream:
            now = time.perf_counter()
            pcm = np.frombuffer(ev.frame.data, dtype=np.int16).astype(np.float32)
            n = pcm.size // step
            steps = pcm[: n * step].reshape(n, step)
            # the last step arrived now, earlier ones a little before
            rec.audio_t.extend(now - (n - 1 - i) * STEP_S for i in range(n))
            rec.audio_rms.extend(np.sqrt(np.mean(steps * steps, axis=1)).tolist())

    async def _read_video(self, track: rtc.Track, rec: Received) -> None:
        if self.video_queue_frames > 1:
            stream: rtc.VideoStream = _QueuedVideoStream(track, self.video_queue_frames)
        else:
            stream = rtc.VideoStream(track)
        async for ev in stream:
            now = time.perf_counter()
            mouth, luma = mouth_openness(ev.frame)
            rec.video.append(
                VideoSample(now, ev.frame.width, ev.frame.height, mouth, luma, ev.timestamp_us)
            )

    # ---- speaking ------------------------------------------------------------------------
    async def start_microphone(self) -> None:
        """Publish a microphone that stays open, as a browser's does: silence between what is
        said. (A track that only sends while speaking reaches the interviewer in bursts after
        each gap, and its jitter buffer then holds the start of the speech longer than it
        would a candidate's.)"""
        self._mic = rtc.AudioSource(AUDIO_RATE, 1, queue_size_ms=100)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", self._mic)
        await self.room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        task = asyncio.create_task(self._keep_microphone_open(), name="probe-microphone")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _keep_microphone_open(self) -> None:
        """The microphone's clock: one STEP_S of what is being said, or of silence, per step,
        in real time (up to 50 ms ahead, so the source's queue never runs dry)."""
        assert self._mic is not None
        step = int(AUDIO_RATE * STEP_S)
        silence = np.zeros(step, dtype=np.int16)
        start, sent = time.perf_counter(), 0
        while True:
            if self._speech:
                chunk, started = self._speech.popleft()
                if started is not None:  # the first step of a say(): when it will play out,
                    # after what the source still holds
                    started.set_result(time.perf_counter() + self._mic.queued_duration)
            else:
                chunk = silence
            if not self._speech:
                self._spoken.set()
            await self._mic.capture_frame(rtc.AudioFrame(chunk.tobytes(), AUDIO_RATE, 1, step))
            sent += 1
            ahead = start + sent * STEP_S - time.perf_counter() - 0.05
            if ahead > 0:
                await asyncio.sleep(ahead)
            elif ahead < -0.5:  # the loop was starved: keep real time, do not burst to catch up
                start, sent = time.perf_counter(), 0

    async def say(self, pcm: np.ndarray, silence_after_s: float = 0.0) -> tuple[float, float]:
        """Say int16 mono samples at AUDIO_RATE into the open microphone, then `silence_after_s`
        of its silence; returns when the voice in them began and ended (perf_counter), not the
        file's: espeak-ng leads with up to 40 ms of silence and trails ~0.35 s, which would
        flatter every latency measured from an end."""
        assert self._mic is not None, "start_microphone() first"
        step = int(AUDIO_RATE * STEP_S)
        data = pcm.astype(np.int16)
        if data.size % step:
            data = np.pad(data, (0, step - data.size % step))
        started: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        chunks = data.reshape(-1, step)
        self._speech.append((chunks[0], started))
        self._speech.extend((c, None) for c in chunks[1:])
        self._spoken.clear()
        voice_from, voice_to = voiced_span_s(pcm)
        start = await started
        await self._spoken.wait()
        if silence_after_s > 0:
            await asyncio.sleep(silence_after_s)
        return start + voice_from, start + voice_to

    async def silence(self, seconds: float) -> None:
        """Let the open microphone carry silence for `seconds`."""
        await asyncio.sleep(seconds)

    async def video_receiver(self, identity: str) -> dict[str, object]:
        """WebRTC's counts for the video received from `identity`: frames received, decoded
        and dropped, packets lost, retransmission and keyframe requests, freezes; with the
        sender's counts they say where a frame that never arrived was lost ({} with no video)."""
        track = self.of(identity).video_track
        if track is None:
            return {}
        try:
            stats = await track.get_stats()
        except Exception:  # a closing room: nothing to report
            return {}
        for entry in stats:
            if entry.WhichOneof("stats") == "inbound_rtp":
                got, inbound = entry.inbound_rtp.received, entry.inbound_rtp.inbound
                return {
                    "frames_received": inbound.frames_received,
                    "frames_decoded": inbound.frames_decoded,
                    "frames_dropped": inbound.frames_dropped,
                    "packets_lost": got.packets_lost,
                    "nacks": inbound.nack_count,
                    "keyframe_requests": inbound.pli_count + inbound.fir_count,
                    "freezes": inbound.freeze_count,
                    "frozen_s": round(inbound.total_freeze_duration, 2),
                }
        return {}

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.room.disconnect()


def voiced_span_s(pcm: np.ndarray) -> tuple[float, float]:
    """Where the voice is in int16 samples at AUDIO_RATE: (start of the first loud STEP_S,
    end of the last), seconds; the whole span when nothing is loud."""
    step = int(AUDIO_RATE * STEP_S)
    n = pcm.size // step
    steps = pcm[: n * step].astype(np.float32).reshape(n, step)
    loud = np.flatnonzero(np.sqrt(np.mean(steps * steps, axis=1)) > LOUD)
    if not loud.size:
        return 0.0, pcm.size / AUDIO_RATE
    return float(loud[0] * STEP_S), float((loud[-1] + 1) * STEP_S)


def read_wav(path: Path) -> np.ndarray:
    """Mono int16 at AUDIO_RATE from a WAV file (espeak-ng writes 22050 Hz)."""
    with wave.open(str(path), "rb") as w:
        rate, channels = w.getframerate(), w.getnchannels()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1).astype(np.int16)
    if rate != AUDIO_RATE:
        t = np.arange(int(pcm.size * AUDIO_RATE / rate)) * rate / AUDIO_RATE
        pcm = np.interp(t, np.arange(pcm.size), pcm).astype(np.int16)
    return pcm


async def espeak(text: str, language: str, out: Path) -> np.ndarray:
    """Synthesize a candidate's answer with espeak-ng (offline)."""
    proc = await asyncio.create_subprocess_exec(
        "espeak-ng",
        "-v",
        language,
        "-s",
        "160",
        "-w",
        str(out),
        text,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"espeak-ng failed: {err.decode(errors='replace').strip()}")
    return read_wav(out)


def _onsets(t: np.ndarray, active: np.ndarray, quiet_s: float) -> np.ndarray:
    """Times where `active` turns on after at least `quiet_s` of inactivity."""
    out, last_active = [], -1e9
    for ti, on in zip(t, active, strict=True):
        if on:
            if ti - last_active >= quiet_s:
                out.append(ti)
            last_active = ti
    return np.asarray(out)


def av_onset_lags_s(
    rec: Received,
    t0: float = 0.0,
    t1: float = float("inf"),
    loud: float = LOUD,
    max_lag_s: float = 0.2,
) -> list[float]:
    """The lag from each phrase onset in the audio (speech after >= 100 ms of quiet) to the
    nearest mouth opening in the video within `max_lag_s` (positive: video late), t0 to t1.

    Phrase onsets, not energy correlation: lips legitimately close on a loud /m/ and round on
    /o/, but every phrase must start on both tracks together."""
    at, ar = np.asarray(rec.audio_t), np.asarray(rec.audio_rms)
    vt = np.asarray([v.t for v in rec.video])
    vm = np.asarray([v.mouth for v in rec.video])
    a_sel, v_sel = (at >= t0) & (at < t1), (vt >= t0) & (vt < t1)
    audio_on = _onsets(at[a_sel], ar[a_sel] > loud, 0.1)
    mouth_on = _onsets(vt[v_sel], vm[v_sel] > 0.002, 0.08)
    lags = []
    for onset in audio_on:
        near = mouth_on[np.abs(mouth_on - onset) <= max_lag_s]
        if near.size:
            lags.append(float(near[np.argmin(np.abs(near - onset))] - onset))
    return lags


def av_offset_s(
    rec: Received,
    t0: float = 0.0,
    t1: float = float("inf"),
    loud: float = LOUD,
    max_lag_s: float = 0.2,
) -> tuple[float, int]:
    """A/V offset as the candidate receives it: the median of `av_onset_lags_s` (positive:
    video late), and how many onsets were matched. The median keeps a few onsets distorted by a
    busy receiver (frames arriving in bursts) from deciding the figure."""
    lags = av_onset_lags_s(rec, t0, t1, loud, max_lag_s)
    if not lags:
        return float("nan"), 0
    return float(np.median(lags)), len(lags)


def av_xcorr_s(
    rec: Received, t0: float, t1: float, max_lag_s: float = 1.0, loud: float = LOUD
) -> tuple[float, float]:
    """Coarse A/V offset over +-`max_lag_s`: the lag maximising the correlation of speech
    activity and mouth activity on a 10 ms grid (positive: video late), and that correlation.
    Catches offsets larger than the gap between phrases, which onset matching cannot."""
    at, ar = np.asarray(rec.audio_t), np.asarray(rec.audio_rms)
    vt = np.asarray([v.t for v in rec.video])
    vm = np.asarray([v.mouth for v in rec.video])
    if at.size < 10 or vt.size < 10:
        return float("nan"), 0.0
    t0, t1 = max(t0, at[0], vt[0]), min(t1, at[-1], vt[-1])
    if t1 - t0 < 2 * max_lag_s:
        return float("nan"), 0.0
    grid = np.arange(t0, t1, STEP_S)
    a = (np.interp(grid, at, ar) > loud).astype(np.float64)
    idx = np.clip(np.searchsorted(vt, grid, side="right") - 1, 0, vt.size - 1)
    v = (vm[idx] > 0.002).astype(np.float64)
    a = (a - a.mean()) / (a.std() + 1e-9)
    v = (v - v.mean()) / (v.std() + 1e-9)
    n, best, best_lag = a.size, -2.0, 0
    for lag in range(-int(max_lag_s / STEP_S), int(max_lag_s / STEP_S) + 1):
        c = (
            float(np.mean(a[: n - lag] * v[lag:]))
            if lag >= 0
            else float(np.mean(a[-lag:] * v[: n + lag]))
        )
        if c > best:
            best, best_lag = c, lag
    return best_lag * STEP_S, best
