"""The streaming side of WhisperSTT: utterances cut by a VAD, decoded early, interims on request.

Whisper is a batch model, so LiveKit would wrap it in a `stt.StreamAdapter` that transcribes an
utterance only after the VAD has declared its end (`min_silence_duration` of silence): the
transcript then comes a whole decode after that. This stream runs the same VAD itself and

- starts a *speculative* decode of the utterance once `speculative_silence_s` of silence has
  passed; if the VAD then ends the utterance with no speech in between, that decode (the same
  audio less a little silence) is the final transcript, ready about when the VAD ends;
- keeps that decode when the candidate goes on after the short pause (a breath between
  phrases, shorter than the VAD's end of speech) as the transcript of the phrase before it, once
  the phrase holds `min_phrase_s` of audio: later decodes of the utterance start after that
  phrase, so when a long answer ends only its last phrase is left to decode, however long the
  answer ran without a pause the VAD would end it on. A last stretch shorter than `min_tail_s`
  is decoded together with the phrase before it: alone, whisper misreads a trailing "I..." as
  "Eye" and loses the "..." that tells the turn detector the sentence is unfinished;
- while `WhisperSTT.interim_gate()` says so (the session: while the interviewer speaks), decodes
  the growing utterance every `interim_interval_s` and sends INTERIM_TRANSCRIPT events, so the
  session's `min_words` barge-in rule has words before the candidate stops talking;
- sends the final transcripts in utterance order, with the VAD's end of speech as
  `speech_end_time`, exactly as the StreamAdapter did (START/END_OF_SPEECH events included).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from livekit import rtc
from livekit.agents import APIConnectOptions, LanguageCode, stt, utils
from livekit.agents.vad import VAD, VADEvent, VADEventType

from .log import logger

if TYPE_CHECKING:
    from .stt import WhisperSTT


@dataclass(frozen=True)
class WhisperStreamOptions:
    speculative_silence_s: float = 0.15  # silence after which the utterance decode starts
    # audio a phrase needs to be decoded apart from the rest of its utterance: whisper reads
    # shorter stretches worse alone, and they cost little to decode again at the end
    min_phrase_s: float = 1.5
    min_tail_s: float = 1.0  # shortest last stretch (trailing silence included) decoded alone
    interim_first_s: float = 0.6  # speech before the first interim of an utterance
    interim_interval_s: float = 0.8  # speech between interims


@dataclass
class _Phrase:
    start: int  # samples into the utterance
    text: asyncio.Future[str]


@dataclass
class _Utterance:
    request_id: str
    frames: list[rtc.AudioFrame]
    next_interim_at: float
    speculative: asyncio.Future[str] | None = None
    speculative_start: int = 0  # the speculative decode covers these samples
    speculative_samples: int = 0
    last_silence: float = 0.0
    interim: asyncio.Task[None] | None = None
    interims_sent: int = 0
    ended: bool = False
    # the phrases closed by short pauses, in order; they cover the audio up to `cut`
    phrases: list[_Phrase] = field(default_factory=list)
    cut: int = 0

    def decode_start(self, samples: int, rate: int, min_tail_s: float) -> int:
        """Where a decode of the utterance's first `samples` samples starts: after the closed
        phrases, or with the last of them when what follows it is shorter than `min_tail_s`."""
        if self.phrases and (samples - self.cut) / rate < min_tail_s:
            return self.phrases[-1].start
        return self.cut

    def parts_before(self, start: int) -> list[asyncio.Future[str]]:
        return [ph.text for ph in self.phrases if ph.start < start]


@dataclass
class _Final:
    utterance: _Utterance
    text: asyncio.Future[str]
    speech_end_time: float
    audio_duration: float


@dataclass
class StreamStats:
    """What the stream did, for logs and the benchmark."""

    utterances: int = 0
    speculative_hits: int = 0
    speculative_misses: int = 0
    phrases: int = 0  # speculative decodes kept as a phrase when the candidate went on
    interims: int = 0
    final_wait_s: list[float] = field(default_factory=list)  # VAD end -> final transcript


def _samples(frames: list[rtc.AudioFrame]) -> int:
    return sum(f.samples_per_channel for f in frames)


def _rate(frames: list[rtc.AudioFrame]) -> int:
    """The frames' sample rate (the VAD's input rate; 16 kHz when there are none)."""
    return max(frames[0].sample_rate, 1) if frames else 16000


def _frames_from(frames: list[rtc.AudioFrame], start: int) -> list[rtc.AudioFrame]:
    """The audio of `frames` from sample `start` on (a frame cut there is sliced)."""
    out: list[rtc.AudioFrame] = []
    pos = 0
    for f in frames:
        n = f.samples_per_channel
        if pos + n <= start:
            pos += n
            continue
        skip = max(start - pos, 0)
        if skip:
            data = np.frombuffer(bytes(f.data), dtype=np.int16)[skip * f.num_channels :]
            f = rtc.AudioFrame(data.tobytes(), f.sample_rate, f.num_channels, n - skip)
        out.append(f)
        pos += n
    return out


async def _joined(parts: list[asyncio.Future[str]], request_id: str) -> str:
    """The utterance's transcript from its phrases' decodes; a failed phrase is logged and
    left out rather than losing the whole answer."""
    texts: list[str] = []
    for part in parts:
        try:
            texts.append((await part).strip())
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception(
                "whisper failed to transcribe a phrase",
                extra={"provider": "faster-whisper", "request_id": request_id},
            )
    return " ".join(t for t in texts if t)


class WhisperSpeechStream(stt.RecognizeStream):
    def __init__(
        self,
        whisper: WhisperSTT,
        *,
        vad: VAD,
        language: str,
        opts: WhisperStreamOptions,
        conn_options: APIConnectOptions,
    ) -> None:
        super().__init__(stt=whisper, conn_options=conn_options)
        self._whisper = whisper
        self._vad = vad
        self._language = language
        self._opts = opts
        self._utt: _Utterance | None = None
        self._finals: asyncio.Queue[_Final] = asyncio.Queue()
        # decodes of this stream queued or running; a speculative or interim decode starts only
        # when there is none, so a final never waits behind a pile of stale guesses
        self._jobs = 0
        self.stats = StreamStats()

    async def _run(self) -> None:
        vad_stream = self._vad.stream()

        async def _forward_input() -> None:
            async for item in self._input_ch:
                if isinstance(item, self._FlushSentinel):
                    vad_stream.flush()
                    continue
                vad_stream.push_frame(item)
            vad_stream.end_input()

        async def _segment() -> None:
            async for ev in vad_stream:
                self._on_vad_event(ev)

        tasks = [
            asyncio.create_task(_forward_input(), name="whisper_forward_input"),
            asyncio.create_task(_segment(), name="whisper_segment"),
            asyncio.create_task(self._send_finals(), name="whisper_finals"),
        ]
        try:
            await asyncio.gather(*tasks[:2])
            await self._finals.join()  # the last utterance's transcript still goes out
        finally:
            await utils.aio.cancel_and_wait(*tasks)
            if self._utt is not None and self._utt.interim is not None:
                await utils.aio.cancel_and_wait(self._utt.interim)
            # utterances dropped on close no longer hold the turn detector
            while not self._finals.empty():
                self._finals.get_nowait().text.cancel()
                self._whisper.active -= 1
            await vad_stream.aclose()
            logger.debug(
                "whisper stream closed",
                extra={
                    "provider": "faster-whisper",
                    "utterances": self.stats.utterances,
                    "speculative_hits": self.stats.speculative_hits,
                    "interims": self.stats.interims,
                },
            )

    def _decode(self, frames: list[rtc.AudioFrame], kind: str) -> asyncio.Future[str]:
        """Queue a decode; cancelling the result drops it if it has not started yet."""
        from .stt import to_pcm16k

        loop = asyncio.get_running_loop()
        pcm = to_pcm16k(frames)
        t0 = time.perf_counter()
        job = self._whisper.submit(pcm, self._language)
        self._jobs += 1

        def _done(_job: object) -> None:
            self._jobs -= 1
            logger.debug(
                "whisper decode done",
                extra={
                    "provider": "faster-whisper",
                    "kind": kind,
                    "audio_s": round(pcm.size / 16000, 2),
                    "took_s": round(time.perf_counter() - t0, 3),  # queue + decode
                },
            )

        def _on_job_done(j: object) -> None:
            # the count is kept on the loop's thread; a closed loop needs no count any more
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_done, j)

        job.add_done_callback(_on_job_done)
        return asyncio.wrap_future(job)

    def _on_vad_event(self, ev: VADEvent) -> None:
        if ev.type == VADEventType.START_OF_SPEECH:
            self._utt = _Utterance(
                request_id=utils.shortuuid("whisper_"),
                frames=list(ev.frames),  # the speech so far, with the VAD's prefix padding
                next_interim_at=self._opts.interim_first_s,
            )
            self._event_ch.send_nowait(stt.SpeechEvent(type=stt.SpeechEventType.START_OF_SPEECH))
        elif ev.type == VADEventType.INFERENCE_DONE:
            if self._utt is not None and not self._utt.ended:
                self._on_inference(self._utt, ev)
        elif ev.type == VADEventType.END_OF_SPEECH:
            self._on_end(ev)

    def _on_inference(self, utt: _Utterance, ev: VADEvent) -> None:
        utt.frames.extend(ev.frames)
        silence = ev.raw_accumulated_silence
        rate = _rate(utt.frames)
        if silence < utt.last_silence and utt.speculative is not None:
            # the candidate went on after a short pause: that decode missed the rest, but it
            # is the transcript of the phrase before the pause if that phrase is long enough
            start = utt.speculative_start
            if (utt.speculative_samples - start) / rate >= self._opts.min_phrase_s:
                if start < utt.cut:  # it decoded the last phrase again, with what followed
                    utt.phrases.pop()
                utt.phrases.append(_Phrase(start, utt.speculative))
                utt.cut = utt.speculative_samples
                self.stats.phrases += 1
            else:
                utt.speculative.cancel()
                self.stats.speculative_misses += 1
            utt.speculative = None
        utt.last_silence = silence
        if self._jobs:
            return
        if utt.speculative is None and silence >= self._opts.speculative_silence_s:
            utt.speculative_samples = _samples(utt.frames)
            utt.speculative_start = utt.decode_start(
                utt.speculative_samples, rate, self._opts.min_tail_s
            )
            utt.speculative = self._decode(
                _frames_from(utt.frames, utt.speculative_start), "speculative"
            )
        elif (
            silence == 0.0
            and ev.speech_duration >= utt.next_interim_at
            and utt.speculative is None
            and self._whisper.interim_gate()
        ):
            utt.next_interim_at = ev.speech_duration + self._opts.interim_interval_s
            utt.interim = asyncio.create_task(self._send_interim(utt, list(utt.frames)))

    async def _send_interim(self, utt: _Utterance, frames: list[rtc.AudioFrame]) -> None:
        try:
            text = await self._decode(frames, "interim")
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception(
                "whisper failed on an interim transcript",
                extra={"provider": "faster-whisper", "request_id": utt.request_id},
            )
            return
        if utt.ended or not text:
            return  # the final transcript supersedes it
        utt.interims_sent += 1
        self.stats.interims += 1
        self._event_ch.send_nowait(
            stt.SpeechEvent(
                type=stt.SpeechEventType.INTERIM_TRANSCRIPT,
                request_id=utt.request_id,
                alternatives=[self._speech_data(text)],
            )
        )

    def _on_end(self, ev: VADEvent) -> None:
        utt, self._utt = self._utt, None
        speech_end_time = time.time() - ev.silence_duration - ev.inference_duration
        self._event_ch.send_nowait(
            stt.SpeechEvent(type=stt.SpeechEventType.END_OF_SPEECH, speech_end_time=speech_end_time)
        )
        frames = list(ev.frames)
        if utt is None:  # an end without a start (after a flush): decode what the VAD kept
            utt = _Utterance(
                request_id=utils.shortuuid("whisper_"), frames=frames, next_interim_at=0
            )
        utt.ended = True
        total = _samples(frames)
        reuse = utt.speculative is not None and total >= utt.speculative_samples
        if reuse:
            assert utt.speculative is not None
            start, last = utt.speculative_start, utt.speculative
            self.stats.speculative_hits += 1
        else:
            if utt.speculative is not None:
                utt.speculative.cancel()
            start = utt.decode_start(total, _rate(frames), self._opts.min_tail_s)
            rest = _frames_from(frames, start)
            if rest:
                last = self._decode(rest, "final")
            else:  # the phrases hold all of it
                last = asyncio.get_running_loop().create_future()
                last.set_result("")
        parts = utt.parts_before(start)
        text = asyncio.ensure_future(_joined([*parts, last], utt.request_id)) if parts else last
        self.stats.utterances += 1
        self._whisper.active += 1
        self._finals.put_nowait(
            _Final(
                utterance=utt,
                text=text,
                speech_end_time=speech_end_time,
                audio_duration=total / _rate(frames),
            )
        )

    async def _send_finals(self) -> None:
        while True:
            final = await self._finals.get()
            text = ""
            try:
                text = await self._final_text(final)
                self._send_final(final, text)
            finally:
                self._whisper.active -= 1
                if not text:
                    # no transcript will reach the turn detector: tell it the utterance is
                    # settled. A transcript is its own signal once the session has it; saying
                    # "settled" now would let it score the turn before the words arrive
                    self._whisper.last_done = time.time()
                self._finals.task_done()

    async def _final_text(self, final: _Final) -> str:
        try:
            return await final.text
        except asyncio.CancelledError:
            raise
        except Exception:
            # one utterance lost is better than an interview without ears; say it loudly
            logger.exception(
                "whisper failed to transcribe an utterance",
                extra={"provider": "faster-whisper", "request_id": final.utterance.request_id},
            )
            return ""

    def _send_final(self, final: _Final, text: str) -> None:
        utt = final.utterance
        self.stats.final_wait_s.append(time.time() - final.speech_end_time)
        if not text:
            if utt.interims_sent:
                # no final will replace the interim words: clear them, or a later barge-in
                # check would count words nobody said
                self._event_ch.send_nowait(
                    stt.SpeechEvent(
                        type=stt.SpeechEventType.INTERIM_TRANSCRIPT,
                        request_id=utt.request_id,
                        alternatives=[self._speech_data("")],
                    )
                )
            return
        self._event_ch.send_nowait(
            stt.SpeechEvent(
                type=stt.SpeechEventType.FINAL_TRANSCRIPT,
                request_id=utt.request_id,
                alternatives=[self._speech_data(text)],
                speech_end_time=final.speech_end_time,
            )
        )
        self._event_ch.send_nowait(
            stt.SpeechEvent(
                type=stt.SpeechEventType.RECOGNITION_USAGE,
                request_id=utt.request_id,
                recognition_usage=stt.RecognitionUsage(audio_duration=final.audio_duration),
            )
        )

    def _speech_data(self, text: str) -> stt.SpeechData:
        return stt.SpeechData(language=LanguageCode(self._language), text=text, confidence=1.0)
