"""Room benchmark: `python -m avatar_worker.room_bench [--sessions 4] [--interviews 3] [--json]`.

Starts its own offline stack on free loopback ports (dev server, avatar service, interviewer
worker; see agent/stack.py) and measures from a candidate's seat:

1. avatar sessions at once: stand-in agents stream espeak-ng speech to N avatar sessions while
   one candidate per room watches; per session the frame rate the service produced and the one
   received, missing frames and stalls, and the A/V offset as received (phrase onsets, and a
   coarse cross-correlation; all probes share this process, so a busy receiver shows up here);
   then `lk.clear_buffer` mid-sentence -> the last audio the avatar gave the room has played
   (interrupt to silence at the avatar, the service's own figure) and the last interviewer audio
   and mouth closed at the candidate (transport included);
2. real interviews at once (interviewer worker, offline providers): voice-to-voice latency as
   the candidate hears it (end of its answer -> first interviewer audio), barge-in to silence
   (candidate speech onset -> interviewer audio silent at the candidate; 3.5 s into the
   greeting, and the same phrase again 1 s into the third turn), a backchannel ("yeah"
   over a question: pause onset, how long the interviewer held, whether it went on rather than
   being interrupted), and per interview the frame drops and how late the interviewer heard
   the candidate (its receive buffer, which it reports: agent/hearing.py);
3. one more interview with the avatar service killed mid-sentence: time until the candidate
   hears the interviewer again (audio-only fallback).

Timings depend on the machine; on a shared 2-core box they are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from livekit import api, rtc
from livekit.agents.voice.avatar import DataStreamAudioOutput

from .hiccups import HiccupMeter
from .room_probe import AUDIO_RATE, Received, RoomProbe, av_offset_s, av_xcorr_s, espeak
from .room_scenario import LOUD, ScenarioResult, dev_server_stats, run_scenario

CONFIG_PATH = Path(__file__).resolve().parents[1] / "examples" / "en" / "config.json"
SPEECH = (
    "Thank you for joining today. Could you walk me through a project you are proud of, "
    "what your role was, and what you would do differently next time?"
)


def _token(key: str, secret: str, identity: str, room: str, **extra: Any) -> str:
    t = (
        api.AccessToken(key, secret)
        .with_identity(identity)
        .with_grants(api.VideoGrants(room_join=True, room=room))
    )
    if extra.get("kind"):
        t = t.with_kind(extra["kind"])
    if extra.get("attributes"):
        t = t.with_attributes(extra["attributes"])
    return t.to_jwt()


def frame_drops(rec: Received, t0: float, t1: float, fps: float = 25.0) -> tuple[float, int, int]:
    """(received fps, frames missing, stalls) between t0 and t1: missing = frames a steady 25 fps
    stream would have delivered in that span minus those that arrived; stalls = arrival gaps over
    100 ms (late frames that still arrived, in a burst, are not counted as missing)."""
    times = np.asarray([v.t for v in rec.video_between(t0, t1)])
    if times.size < 2:
        return 0.0, 0, 0
    span = times[-1] - times[0]
    missing = max(0, round(span * fps) - (times.size - 1))
    stalls = int(np.count_nonzero(np.diff(times) > 0.1))
    return float((times.size - 1) / span), missing, stalls


async def stream_speech(out: DataStreamAudioOutput, pcm: np.ndarray) -> None:
    """Push speech ahead of real time as a streaming TTS does (1.5x, 0.5 s head start); an
    all-at-once burst would queue the RPCs behind it on the dev server's data channel."""
    step = AUDIO_RATE // 50  # 20 ms
    start = time.perf_counter()
    for i in range(0, pcm.size - step, step):
        await out.capture_frame(rtc.AudioFrame(pcm[i : i + step].tobytes(), AUDIO_RATE, 1, step))
        ahead = (i + step) / AUDIO_RATE / 1.5 - 0.5 - (time.perf_counter() - start)
        if ahead > 0:
            await asyncio.sleep(ahead)
    out.flush()


async def start_avatar(
    url: str, key: str, secret: str, service_url: str, room: str, **session: Any
) -> tuple[rtc.Room, DataStreamAudioOutput, dict[str, Any]]:
    """A stand-in agent in `room` and an avatar session for it (extra `session` fields go to
    the service's POST /sessions): (the agent's room, its audio output to the avatar, the
    session's info)."""
    # identities unique across rooms, as livekit-agents makes them (agent-<job id>): the
    # avatar protocol's RPC handlers are registered per caller identity in a process
    agent_id, avatar_id = f"agent-{room}", f"avatar-{room}"
    agent = rtc.Room()
    await agent.connect(url, _token(key, secret, agent_id, room, kind="agent"))
    avatar_token = _token(
        key, secret, avatar_id, room, kind="agent", attributes={"lk.publish_on_behalf": agent_id}
    )
    body = {"livekit_url": url, "token": avatar_token, "avatar": "woman", **session}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{service_url}/sessions", json=body) as resp,
    ):
        if resp.status != 201:
            await agent.disconnect()
            raise RuntimeError(f"avatar service refused session: {await resp.text()}")
        info = await resp.json()
    out = DataStreamAudioOutput(
        agent,
        destination_identity=avatar_id,
        sample_rate=AUDIO_RATE,
        wait_remote_track=rtc.TrackKind.KIND_VIDEO,
        wait_playback_start=True,  # as the interviewer does (agent/avatar.py)
    )
    return agent, out, info


async def avatar_sessions(
    url: str, key: str, secret: str, service_url: str, n: int, work: Path
) -> dict[str, Any]:
    """N avatar sessions at once driven by stand-in agents; see the module docstring."""
    pcm = await espeak(SPEECH, "en", work / "speech.wav")
    rooms = [f"bench-{uuid.uuid4().hex[:6]}" for _ in range(n)]
    async with api.LiveKitAPI(url, key, secret) as lk:  # the real server creates none on join
        for room in rooms:
            await lk.room.create_room(api.CreateRoomRequest(name=room))
    agents, probes, outs = [], [], []
    for room in rooms:
        probe = RoomProbe()
        await probe.connect(url, _token(key, secret, "candidate", room))
        agent, out, _info = await start_avatar(url, key, secret, service_url, room)
        agents.append(agent)
        outs.append(out)
        probes.append(probe)

    def avatar_of(p: RoomProbe) -> Received:
        return next(r for r in p.received.values() if r.identity.startswith("avatar-"))

    deadline = time.perf_counter() + 60
    while not all(
        any(r.video for r in p.received.values() if r.identity.startswith("avatar-"))
        for p in probes
    ):
        if time.perf_counter() > deadline:
            raise RuntimeError("avatar video did not arrive in every room")
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)

    async def sessions() -> dict[str, dict[str, Any]]:
        """The service's session infos, by room."""
        async with aiohttp.ClientSession() as http, http.get(f"{service_url}/sessions") as resp:
            return {x["room"]: x for x in (await resp.json())["sessions"]}

    async def produced() -> dict[str, int]:
        """Frames each session has produced so far, by room (the service's own count)."""
        return {room: int(x["frames"]) for room, x in (await sessions()).items()}

    produced0 = await produced()
    t0 = time.perf_counter()
    await asyncio.gather(*(stream_speech(o, pcm) for o in outs))
    speech_s = pcm.size / AUDIO_RATE
    # interrupt each session 2 s into a second sentence
    await asyncio.sleep(max(0.0, t0 + speech_s + 1.0 - time.perf_counter()))
    t_second = time.perf_counter()
    await asyncio.gather(*(stream_speech(o, pcm) for o in outs))
    await asyncio.sleep(max(0.0, t_second + 2.5 - time.perf_counter()))
    clear_at, rpc_ms = [], []

    async def clear(agent: rtc.Room, room: str) -> None:
        sent = time.perf_counter()
        clear_at.append(sent)
        try:
            await agent.local_participant.perform_rpc(
                destination_identity=f"avatar-{room}", method="lk.clear_buffer", payload=""
            )
            rpc_ms.append((time.perf_counter() - sent) * 1000)
        except rtc.RpcError as e:  # a finding (the server's data path is saturated), not a crash
            print(f"lk.clear_buffer to avatar-{room} failed: {e.message}", file=sys.stderr)
            rpc_ms.append(float("nan"))

    for agent, room in zip(agents, rooms, strict=True):
        await clear(agent, room)
    await asyncio.sleep(1.5)
    t1 = time.perf_counter()
    infos = await sessions()
    produced1 = {room: int(x["frames"]) for room, x in infos.items()}

    per_session = []
    for room, probe, cleared, rpc in zip(rooms, probes, clear_at, rpc_ms, strict=True):
        if room in produced0 and room in produced1:
            sent_fps = (produced1[room] - produced0[room]) / (t1 - t0)
        else:  # the session ended during the run (see the service log)
            sent_fps = float("nan")
        rec = avatar_of(probe)
        fps, missing, stalls = frame_drops(rec, t0, t1)
        lag, onsets = av_offset_s(rec, t0, t1)
        coarse, corr = av_xcorr_s(rec, t0, t1)
        loud = rec.loud_times(LOUD)
        last_loud = loud[loud > cleared - 0.5]
        silence_ms = (float(last_loud[-1]) - cleared) * 1000 if last_loud.size else float("nan")
        closed = [v.t for v in rec.video_between(cleared, t1) if v.mouth < 0.005]
        mouth_ms = (closed[0] - cleared) * 1000 if closed else float("nan")
        stop = (infos.get(room, {}).get("stops") or [{}])[-1]
        per_session.append(
            {
                "produced_fps": round(sent_fps, 2),
                "fps": round(fps, 2),
                "frames_missing": missing,
                "stalls_over_100ms": stalls,
                "av_offset_published_ms": infos.get(room, {}).get("av_offset_published_ms"),
                "av_offset_ms": round(lag * 1000, 1),
                "av_onsets_matched": onsets,
                "av_offset_xcorr_ms": round(coarse * 1000, 1),
                "av_xcorr": round(corr, 2),
                "clear_buffer_rpc_round_trip_ms": round(rpc, 1),
                "interrupt_to_silence_at_avatar_ms": stop.get("silent_after_ms", float("nan")),
                "interrupt_to_silence_ms": round(silence_ms, 1),
                "interrupt_to_mouth_closed_ms": round(mouth_ms, 1),
            }
        )
    for probe in probes:
        await probe.aclose()
    for agent in agents:
        await agent.disconnect()
    return {"sessions": n, "per_session": per_session}


async def interviews(
    url: str,
    key: str,
    secret: str,
    n: int,
    work: Path,
    kill_pid: int | None = None,
    service_url: str | None = None,
    stagger_s: float = 0.0,
) -> list[ScenarioResult]:
    """`n` scripted interviews at once, the i-th starting `i * stagger_s` after the first."""
    config = json.loads(await asyncio.to_thread(CONFIG_PATH.read_text))

    async def after(delay: float, scenario: Coroutine[Any, Any, ScenarioResult]) -> ScenarioResult:
        await asyncio.sleep(delay)
        return await scenario

    runs = []
    dirs = [work / f"interview{i}" for i in range(n)]
    for i, d in enumerate(dirs):
        d.mkdir(parents=True, exist_ok=True)
        runs.append(
            after(
                i * stagger_s,
                run_scenario(
                    url,
                    key,
                    secret,
                    config,
                    d,
                    avatar_service_pid=kill_pid,
                    avatar_service_url=service_url,
                    late_barge_in=kill_pid is None,
                    probe_security=False,
                    # the candidates share this process: frames it is late to read are queued
                    # and count as stalls, not lost to it and counted as missing (room_probe.py)
                    video_queue_frames=25,
                ),
            )
        )
    with HiccupMeter() as meter:  # figures from a starved host are the host's, not the stack's
        done = await asyncio.gather(*runs, return_exceptions=True)
    for d, outcome in zip(dirs, done, strict=True):  # a stalled interview is a finding
        if isinstance(outcome, BaseException):
            print(f"interview failed: {outcome}", file=sys.stderr)
        else:  # next to its logs and transcript, for a look at an outlying figure
            outcome.save_recording(d / "received.npz")
    results = [r for r in done if isinstance(r, ScenarioResult)]
    for r in results:
        r.host = meter.result
    return results


def _spread(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"median": None, "max": None, "all": []}
    return {
        "median": round(statistics.median(values)),
        "max": round(max(values)),
        "all": [round(v) for v in values],
    }


def summarize_interviews(results: list[ScenarioResult]) -> dict[str, Any]:
    v2v = [v for r in results for v in r.voice_to_voice_s]
    barge = [r.barge_in_to_silence_s for r in results if r.barge_in_to_silence_s is not None]
    said = [r for r in results if r.backchannel is not None]
    paused = [r for r in said if r.backchannel_paused_at is not None]
    per = []
    for r in results:
        if r.avatar is None or not r.turns:
            continue
        fps, missing, stalls = frame_drops(r.avatar, r.turns[0].start, r.turns[-1].end)
        per.append(
            {
                "fps": round(fps, 2),
                "frames_missing": missing,
                "stalls_over_100ms": stalls,
                # of those, the avatar service's own: gaps between the frames it published
                "stalls_at_the_avatar": r.avatar_session.get("video_stalls"),
                # WebRTC's counts there: frames its video source took, encoded, sent
                "video_sender": r.avatar_session.get("video_sender"),
                # and the candidate's: frames received, decoded, dropped, packets lost
                "video_receiver": r.video_receiver,
                # the interviewer's receive buffer, as it reported it every 2 s (agent/hearing.py)
                "heard_late_ms": _spread(r.hearing_ms),
                "notes": r.notes,
            }
        )
    host = results[0].host if results else None
    spans = [(r.turns[0].start, r.turns[-1].end) for r in results if r.turns]
    return {
        "interviews_completed": len(results),
        # how long all of them were under way together (first greeting to last reply each)
        "together_s": round(max(0.0, min(e for _, e in spans) - max(s for s, _ in spans)), 1)
        if spans
        else 0.0,
        "host": {"summary": host.summary(), "starved": host.starved} if host else None,
        "voice_to_voice_s": {
            "median": round(statistics.median(v2v), 3) if v2v else None,
            "p90": round(float(np.percentile(v2v, 90)), 3) if v2v else None,
            "all": [round(v, 3) for v in v2v],
        },
        # <= 0: the interviewer was between two words as the voice began and never spoke again
        "barge_in_to_silence_s": [round(b, 3) for b in barge],
        # the same phrase ~20 s later, 1 s into the third turn: the interviewer's receive
        # buffer has settled by then (the first comes 3.5 s into the greeting)
        "late_barge_in_to_silence_s": [
            round(b, 3) for r in results if (b := r.late_barge_in_to_silence_s) is not None
        ],
        "late_barge_in_to_avatar_pause_s": [
            round(p, 3) for r in results if (p := r.late_barge_in_to_avatar_pause_s) is not None
        ],
        # the same onset -> the avatar received the pause (uplink, VAD, agent, RPC): the rest
        # of barge-in to silence is the avatar and the downlink
        "barge_in_to_avatar_pause_s": [
            round(p, 3) for r in results if (p := r.barge_in_to_avatar_pause_s) is not None
        ],
        "avatar_pause_to_silence_at_avatar_ms": [
            x.get("silent_after_ms")
            for r in results
            for x in r.avatar_stops[:1]
            if x.get("kind") == "pause"
        ],
        "backchannels": {
            "said": len(said),
            "did_not_interrupt": sum(bool(r.backchannel_did_not_interrupt) for r in said),
            "paused_the_interviewer": len(paused),
            # backchannel onset -> interviewer silent at the candidate; and how long it held
            "onset_to_silence_s": [
                round((r.backchannel_paused_at or 0.0) - r.backchannel.start, 3)  # type: ignore[union-attr]
                for r in paused
            ],
            "held_s": [
                round((r.backchannel_resumed_at or 0.0) - (r.backchannel_paused_at or 0.0), 3)
                for r in paused
            ],
        },
        "per_interview": per,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from agent.ports import free_loopback_port as free_port
    from agent.stack import Stack, StackOptions

    work = Path(tempfile.mkdtemp(prefix="room-bench-"))
    options = StackOptions(
        server=args.server,
        livekit_port=free_port(),
        avatar_port=free_port(),
        web=False,
        data_dir=work / "data",
        avatar_capacity=max(args.sessions, args.interviews) + 1,
    )
    stack = Stack(options)
    await asyncio.to_thread(stack.start, lambda m: print(f"  {m}", file=sys.stderr))
    out: dict[str, Any] = {
        "note": "shared 2-core machine: figures are noisy",
        # the logs, transcripts and each interview's recording as received (received.npz)
        "work_dir": str(work),
        "server": args.server,
        "load_before": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        url, key, secret = options.url, options.api_key, options.api_secret
        if args.sessions:
            print(f"avatar sessions x{args.sessions} ...", file=sys.stderr)
            out["avatar"] = await avatar_sessions(
                url, key, secret, options.avatar_url, args.sessions, work
            )
            print(json.dumps(out["avatar"]), file=sys.stderr)
        if args.interviews:
            print(f"interviews x{args.interviews} ...", file=sys.stderr)
            out["interviews"] = summarize_interviews(
                await interviews(
                    url,
                    key,
                    secret,
                    args.interviews,
                    work,
                    service_url=options.avatar_url,
                    stagger_s=args.stagger,
                )
            )
            # frames the dev server itself did not forward, over the whole run, by reason
            forwarding = (await dev_server_stats(url, key, secret)).get("forwarding", {})
            out["interviews"]["video_dropped_at_the_dev_server"] = forwarding.get("video_dropped")
            # and the video frames it received whole and sent on (to every subscriber)
            out["interviews"]["video_frames_through_the_dev_server"] = {
                "in": forwarding.get("video_in", {}).get("frames"),
                "out": forwarding.get("video", {}).get("frames"),
            }
            print(json.dumps(out["interviews"]), file=sys.stderr)
        if args.fallback:
            print("avatar service killed mid-interview ...", file=sys.stderr)
            proc = stack.component("avatar service").proc
            assert proc is not None
            results = await interviews(url, key, secret, 1, work / "fallback", proc.pid)
            out["fallback"] = {
                "heard_again_after_s": round(results[0].fallback_s, 3)
                if results and results[0].fallback_s is not None
                else None,
                "notes": results[0].notes if results else ["the interview did not complete"],
            }
    finally:
        await asyncio.to_thread(stack.stop)
    out["load_after"] = [round(x, 2) for x in os.getloadavg()]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m avatar_worker.room_bench", description=__doc__)
    p.add_argument("--sessions", type=int, default=4, help="avatar sessions at once (0: skip)")
    p.add_argument("--interviews", type=int, default=3, help="real interviews at once (0: skip)")
    p.add_argument(
        "--stagger",
        type=float,
        default=0.0,
        help="seconds between the interviews' starts (0: in lockstep, every candidate answering "
        "and every interviewer replying at the same moments, the worst case)",
    )
    p.add_argument("--no-fallback", dest="fallback", action="store_false")
    p.add_argument(
        "--server",
        choices=("devserver", "livekit"),
        default="devserver",
        help="the LiveKit server the stack starts: the dev server or the real livekit-server",
    )
    p.add_argument("--json", action="store_true", help="one JSON object")
    args = p.parse_args(argv)
    result = asyncio.run(run(args))
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
