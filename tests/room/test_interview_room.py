"""One interview end to end on the dev server, seen from the candidate's seat.

A module-scoped scenario starts the avatar service and the interviewer worker (the dev server is
the session's `livekit_server`), dispatches `interviewer` with a config as job metadata, and a
candidate (the `livekit` SDK) listens, answers with espeak-ng speech, barges in, tries to drive
the avatar with its own token, and finally the avatar service is killed mid-sentence. Each test
asserts one property of what the candidate saw and heard. One more interview in its own room: the
candidate reloads the page (leaves and rejoins) and the interviewer is still there.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from livekit import api, rtc

from agent.booking import interview_room
from agent.ports import free_loopback_port
from agent.stack import Component, Stack, StackOptions
from agent.store import TranscriptStore
from avatar_worker.hiccups import HiccupMeter
from avatar_worker.room_probe import RoomProbe, av_offset_s, av_xcorr_s
from avatar_worker.room_scenario import LOUD, ScenarioResult, run_scenario, until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SIZE = 512
FPS = 25.0
SCENARIO_RUNS = 3


@pytest.fixture(scope="module")
def stack(livekit_server, tmp_path_factory):
    data = tmp_path_factory.mktemp("room-stack")
    options = StackOptions(
        livekit_url=livekit_server.url,
        api_key=livekit_server.api_key,
        api_secret=livekit_server.api_secret,
        avatar_port=free_loopback_port(),
        web=False,
        data_dir=data,
    )
    with Stack(options) as running:
        yield running


@pytest.fixture(scope="module")
def scenario(stack, livekit_server, tmp_path_factory) -> ScenarioResult:
    config = json.loads((ROOT / "examples" / "en" / "config.json").read_text())
    work = tmp_path_factory.mktemp("room-scenario")
    result = _run_measured(stack, livekit_server, config, work / "run1")
    assert result.host is not None
    # real-time figures from a starved host say more about the host than about the stack: the
    # scenario runs again (up to SCENARIO_RUNS in all) and the tests judge the run the host
    # starved least. A shared VM's CPU steal comes in bursts of minutes (30 % seen in one)
    for run in range(2, SCENARIO_RUNS + 1):
        if not result.host.starved:
            break
        print(f"\nthe host starved the scenario ({result.host.summary()}); running it again")
        again = _run_measured(stack, livekit_server, config, work / f"run{run}")
        assert again.host is not None
        result = min((result, again), key=lambda r: r.host.lost_share if r.host else 0.0)
    if result.avatar is not None:
        end = result.killed_at or float("inf")
        print(
            f"\nA/V offset at the candidate: onsets {av_offset_s(result.avatar, 0.0, end)}, "
            f"coarse {av_xcorr_s(result.avatar, 0.0, end)}"
        )
    print(
        f"\nroom figures: voice-to-voice {result.voice_to_voice_s}, barge-in to silence "
        f"{result.barge_in_to_silence_s} (avatar paused after {result.barge_in_to_avatar_pause_s}; "
        f"stops {result.avatar_stops}), backchannel paused "
        f"{result.backchannel_paused_at}, resumed {result.backchannel_resumed_at}, fallback "
        f"{result.fallback_s}, notes {result.notes}; {_host(result)}"
    )
    return result


def _run_measured(stack: Stack, livekit_server, config: dict, work: Path) -> ScenarioResult:
    """One scenario with the host's wake-up lateness measured around it; the avatar service
    (killed by the scenario) is started again first when needed."""
    work.mkdir(parents=True)
    service = _avatar_service_up(stack)
    with HiccupMeter() as meter:
        result = asyncio.run(
            run_scenario(
                livekit_server.url,
                livekit_server.api_key,
                livekit_server.api_secret,
                config,
                work,
                avatar_service_pid=service.proc.pid,
                avatar_service_url=stack.options.avatar_url,
            )
        )
    result.host = meter.result
    if result.host is not None:  # kept for a look at why a run was judged starved
        (work / "host.json").write_text(json.dumps(dataclasses.asdict(result.host)))
    result.save_recording(work / "avatar.npz")  # kept for a look when an assertion fails
    return result


def _server_api(livekit_server) -> api.LiveKitAPI:
    return api.LiveKitAPI(livekit_server.url, livekit_server.api_key, livekit_server.api_secret)


async def _book(livekit_server, room: str, config: dict) -> None:
    """An interview booked as the web app books it: its room (closing 5 s after the candidate
    leaves) and the interviewer dispatched with the config, before any candidate joins."""
    async with _server_api(livekit_server) as lk:
        await lk.room.create_room(interview_room(room, json.dumps(config), departure_timeout=5))


def _avatar_service_up(stack: Stack) -> Component:
    """The stack's avatar service, started again when a scenario killed it."""
    service = stack.component("avatar service")
    if service.proc is None or service.proc.poll() is not None:
        service = stack.relaunch("avatar service")
    assert service.proc is not None
    return service


def _heard_after(probe: RoomProbe, t: float) -> bool:
    """The probe heard someone in the room (the interviewer or its avatar) after t."""
    return any((rec.loud_times(LOUD) > t).any() for rec in probe.received.values())


def _host(scenario: ScenarioResult) -> str:
    """How starved the host was during the judged run, and how late the interviewer heard the
    candidate (its receive buffer), for the failure messages."""
    host = scenario.host.summary() if scenario.host else "host not measured"
    heard = scenario.hearing_ms
    late = f"up to {max(heard):.0f} ms" if heard else "not reported"
    return f"{host}; the interviewer heard the candidate late by {late}"


@contextlib.contextmanager
def _in_real_time(scenario: ScenarioResult) -> Iterator[None]:
    """Assertions about timing (frame rate, sync, how soon the interviewer stops or pauses).
    Their failure when the host starved every run of the scenario (the judged one is the least
    starved) is an expected failure naming the host's state: these machines are shared, and a
    VM's CPU steal can last longer than the three runs. On a host that was not starved it is a
    failure."""
    try:
        yield
    except AssertionError as e:
        if scenario.host is not None and scenario.host.starved:
            pytest.xfail(f"the host starved every run ({_host(scenario)}): {e}")
        raise


def test_the_interviewer_reports_how_late_it_hears_the_candidate(scenario):
    # agent/hearing.py: its receive buffer every 2 s, as an attribute a client can read
    heard = scenario.hearing_ms
    assert heard, "the interviewer never reported its receive buffer"
    assert all(0 <= ms < 10_000 for ms in heard), heard


def test_the_first_interview_finds_a_process_warmed_for_it(scenario, stack):
    # the worker registers (and the stack says it is ready) once a job process has loaded the
    # models and warmed up (agent/warmup.py): the first interview starts at once, instead of
    # waiting for a process to start and building its pieces while the greeting plays
    log = stack.component("interviewer worker").log_tail(10_000_000)
    assert log.index("interview process warmed up") < log.index("registered worker")
    first_job = log.index("received job request")
    second_job = log.find("received job request", first_job + 1)
    first_interview = log[first_job : second_job if second_job >= 0 else None]
    assert "no warmed process available" not in first_interview


def test_avatar_joins_as_agent_publishing_on_behalf_of_the_interviewer(scenario):
    assert scenario.avatar_kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
    assert scenario.agent_identity.startswith("agent-")
    assert scenario.avatar_attributes["lk.publish_on_behalf"] == scenario.agent_identity
    assert scenario.avatar_identity != scenario.agent_identity


def test_the_interviewer_hears_the_candidate_and_not_its_own_voice_from_the_avatar(scenario):
    tracks = scenario.room_tracks
    interviewer, avatar = tracks[scenario.agent_identity], tracks[scenario.avatar_identity]
    assert interviewer["subscribed"] == tracks["candidate"]["published"]  # the microphone
    assert len(avatar["published"]) == 2  # its audio and video, neither received by the agent
    assert not set(interviewer["subscribed"]) & set(avatar["published"])


def test_video_arrives_at_25_fps_and_the_configured_size(scenario):
    turn = scenario.longest_turn()
    frames = scenario.avatar.video_between(turn.start, turn.end)
    assert len(frames) > 25
    assert {(f.width, f.height) for f in frames} == {(SIZE, SIZE)}
    # the avatar service's own account of the video it published until it was killed: gaps
    # over 100 ms between frames and the frame slots skipped in any gap (avatar_worker/sync.py)
    stalls = scenario.avatar_session.get("video_stalls")
    assert isinstance(stalls, dict) and {"over_100ms", "frames_skipped"} <= stalls.keys(), (
        scenario.avatar_session
    )
    # and WebRTC's: the frames its video source took, and those encoded and sent
    sender = scenario.avatar_session.get("video_sender")
    assert isinstance(sender, dict) and sender.get("frames_sent", 0) > 25, scenario.avatar_session
    assert sender["frames_sent"] <= sender["frames_encoded"] <= sender["source_frames"], sender
    with _in_real_time(scenario):
        fps = (len(frames) - 1) / (frames[-1].t - frames[0].t)
        assert FPS * 0.9 <= fps <= FPS * 1.1, f"{fps:.1f} fps; {_host(scenario)}"
        assert stalls["frames_skipped"] <= 10, f"the avatar stalled: {stalls}; {_host(scenario)}"


def _quiet_window(scenario: ScenarioResult) -> tuple[float, float]:
    """Interviewer silent: after its turn, while the candidate's (ignored) audio and first
    answer go on."""
    return scenario.fed_audio_at, scenario.answers[0].end


def test_mouth_moves_while_the_interviewer_speaks_and_rests_in_silence(scenario):
    av = scenario.avatar
    turn = scenario.longest_turn()
    speaking = av.video_between(turn.start + 0.3, turn.end - 0.1)
    silent = av.video_between(*_quiet_window(scenario))
    assert len(silent) > 20
    # the face is alive in silence (blinks, breathing, sway), not a frozen image
    assert len({f.luma_sum for f in silent}) > 3
    with _in_real_time(scenario):  # frames judged by when they arrived against the voice
        open_share = np.mean([f.mouth > 0.01 for f in speaking])
        assert open_share > 0.4, f"mouth open in only {open_share:.0%} of speaking frames"
        closed_share = np.mean([f.mouth < 0.005 for f in silent])
        assert closed_share > 0.95, f"mouth closed in only {closed_share:.0%} of silent frames"


def test_audio_carries_the_interviewers_speech(scenario):
    av = scenario.avatar
    turn = scenario.longest_turn()
    rms = av.audio_between(turn.start, turn.end)
    loud = rms > LOUD
    assert loud.mean() > 0.5, "mostly silence where the interviewer spoke"
    # speech is syllabic: many loud/quiet alternations, unlike a tone or noise
    assert np.count_nonzero(np.diff(loud.astype(int)) == 1) >= 5
    quiet = av.audio_between(*_quiet_window(scenario))
    assert quiet.size and (quiet < LOUD).mean() > 0.95


def test_mouth_motion_lines_up_with_the_audio(scenario):
    # as published: each speech frame's video is handed to the room the configured delay
    # (AVATAR_VIDEO_DELAY_MS) after its audio starts playing (avatar_worker/sync.py); the
    # service measures it per frame
    published = scenario.avatar_session.get("av_offset_published_ms")
    delay_ms = scenario.avatar_session.get("video_delay_ms")
    assert published and published["frames"] > 50, published
    assert isinstance(delay_ms, int), scenario.avatar_session
    with _in_real_time(scenario):
        assert abs(published["median"] - delay_ms) <= 1000.0 / FPS, f"published {published}"
        # as a candidate receives it: every interviewer turn the avatar spoke (until the service
        # was killed), as received by a Python client
        end = scenario.killed_at or float("inf")
        coarse, corr = av_xcorr_s(scenario.avatar, 0.0, end)
        assert corr > 0.4, f"mouth and speech activity barely related (r={corr:.2f})"
        assert abs(coarse) <= 0.2, (
            f"mouth {coarse * 1000:+.0f} ms from the audio (coarse); {_host(scenario)}"
        )
        lag, matched = av_offset_s(scenario.avatar, 0.0, end)
        assert matched >= 5, "too few phrase onsets matched between audio and mouth"
        # two frames here, not one: the published delay (70 ms by default) centres what Chromium
        # shows (python -m avatar_worker.browser_av_bench); this receiver's audio path differs from
        # a browser's and its phrase onsets scatter from run to run (-53..+46 ms measured at 70 ms,
        # wider on a loaded 2-core box such as CI); the benchmarks print the figures
        assert abs(lag) <= 2.0 / FPS + 0.01, (
            f"mouth {lag * 1000:+.0f} ms from the audio; {_host(scenario)}"
        )


def test_barge_in_stops_the_interviewer_and_closes_the_mouth(scenario):
    with _in_real_time(scenario):
        barge, silent_at = scenario.barge_in, scenario.barge_silence_at
        assert barge is not None and silent_at is not None
        assert "the greeting ended before the barge-in" not in scenario.notes
        # the interviewer stopped on the candidate's voice, while its first words were still being
        # said (no transcript exists yet then), not at its own end
        if silent_at > barge.start:
            assert silent_at < barge.start + scenario.barge_words_s, _host(scenario)
        else:
            # it was between two words as the voice began (it was mid-word when the candidate
            # was asked to speak) and never spoke again: the candidate heard no more of it. That
            # it stopped for the voice, not by chance, is the avatar's pause within the words
            assert silent_at > barge.start - 0.3, _host(scenario)
            pause = scenario.barge_in_to_avatar_pause_s
            assert pause is not None and pause < scenario.barge_words_s, (
                f"avatar paused after {pause} s; {_host(scenario)}"
            )
        # and stays quiet, mouth closed, while the candidate goes on
        after = scenario.avatar.audio_between(silent_at + 0.1, barge.end)
        assert after.size and (after < LOUD).mean() > 0.95
        frames = scenario.avatar.video_between(silent_at + 0.2, barge.end)
        assert frames and np.mean([f.mouth < 0.005 for f in frames]) > 0.95


def test_a_backchannel_pauses_the_question_which_then_goes_on(scenario, stack):
    bc = scenario.backchannel
    assert bc is not None, scenario.notes
    assert scenario.backchannel_did_not_interrupt, scenario.notes
    # and the question was not cut: its transcript turn is not marked interrupted
    store = TranscriptStore(stack.options.data_dir / "interviews.sqlite3")
    try:
        transcript = store.transcript(scenario.room)
    finally:
        store.close()
    at = scenario.backchannel_wall - datetime.fromisoformat(transcript.started_at).timestamp()
    spoken_over = [
        t for t in transcript.turns if t.speaker == "interviewer" and t.start <= at <= t.end + 1.0
    ]
    assert spoken_over and not any(t.interrupted for t in spoken_over), spoken_over
    with _in_real_time(scenario):  # it paused while the candidate's "yeah" was heard
        assert scenario.backchannel_paused_at is not None, (
            f"the interviewer did not pause; {_host(scenario)}"
        )
        assert bc.start < scenario.backchannel_paused_at < bc.end + 0.5, _host(scenario)


def test_transcript_holds_both_sides(scenario, stack):
    store = TranscriptStore(stack.options.data_dir / "interviews.sqlite3")
    try:
        transcript = store.transcript(scenario.room)
    finally:
        store.close()
    speakers = [t.speaker for t in transcript.turns]
    assert "interviewer" in speakers and "candidate" in speakers
    first = next(t for t in transcript.turns if t.speaker == "interviewer")
    assert first.interrupted, "the barged-in greeting is not marked interrupted"
    said = [t.text for t in transcript.turns if t.speaker == "candidate"]
    # the barge-in and its question (one turn or two), "Yes, I'm ready." and the introduction;
    # words are checked only in the long ones: Whisper tiny hears espeak's "ready" as "Revit"
    # or "rev it" in some runs
    assert len(said) >= 3, said
    text = " ".join(said).lower()
    assert "start" in text and "computer science" in text, said


def test_a_candidate_cannot_call_the_avatars_rpcs_or_feed_it_audio(scenario):
    assert scenario.rpc_by_candidate != "ok", scenario.rpc_by_candidate
    # nor pause it: the extension answers the agent only
    assert scenario.pause_rpc_by_candidate.startswith("error"), scenario.pause_rpc_by_candidate
    assert f"only {scenario.agent_identity}" in scenario.pause_rpc_by_candidate
    # the greeting went on after the candidate's clear_buffer attempt
    assert scenario.turns[0].end - scenario.turns[0].start > 2.5
    fed = scenario.avatar.audio_between(scenario.fed_audio_at, scenario.fed_audio_at + 1.5)
    assert fed.size > 50 and (fed < LOUD).all(), "the avatar played the candidate's audio"


def test_losing_the_avatar_service_mid_interview_falls_back_to_the_agents_audio(
    scenario, stack, livekit_server
):
    assert scenario.killed_at is not None
    assert scenario.fallback_heard_at is not None, "the interviewer was not heard again"
    assert scenario.agent.attributes.get("interview.avatar", "").startswith("off")
    # the agent learns of the crash from the avatar service's watch stream (agent/avatar.py),
    # not from the room: livekit-server reports the dead avatar gone only ~20 s later. It then
    # takes the avatar out of the room itself (there, the server still holds it)
    log = stack.component("interviewer worker").log_tail(10_000_000)
    assert "avatar service lost" in log
    if livekit_server.real:
        assert "removed the lost avatar from the room" in log
    # the figure (target <= 1 s) is printed by the benchmark; this only catches the interview
    # stalling on a timeout (the 15 s join wait, the 2 s clear-buffer wait, the server's ~20 s
    # for a dead participant)
    assert scenario.fallback_s is not None and scenario.fallback_s < 3.0, scenario.notes


async def test_a_reloading_candidate_finds_the_interviewer_still_there(stack, livekit_server):
    """The browser client rejoins the same room after a page reload: the interviewer welcomes
    the candidate back with its last words (unheard while they were away), hears them again,
    and ends the interview (transcript saved) only once they are gone for good and the room
    closes."""
    from avatar_worker.room_probe import espeak
    from avatar_worker.room_scenario import ANSWERS

    config = json.loads((ROOT / "examples" / "en" / "config.json").read_text())
    config["avatar"] = "man"
    room = f"reload-{datetime.now():%H%M%S%f}"
    await _book(livekit_server, room, config)
    token = livekit_server.token("candidate", room)

    def interviewer(probe: RoomProbe) -> rtc.RemoteParticipant | None:
        return next(
            (
                p
                for p in probe.room.remote_participants.values()
                if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
                and not p.attributes.get("lk.publish_on_behalf")
            ),
            None,
        )

    def quiet_for(probe: RoomProbe, seconds: float) -> bool:
        loud = [float(r.loud_times(LOUD).max(initial=0.0)) for r in probe.received.values()]
        last = max(loud, default=0.0)
        return last > 0.0 and time.perf_counter() - last > seconds

    first = RoomProbe()
    await first.connect(livekit_server.url, token)
    await until(lambda: _heard_after(first, 0.0), 60, "the greeting")
    await until(lambda: quiet_for(first, 1.3), 60, "the end of the greeting")
    agent = interviewer(first)
    assert agent is not None
    await first.aclose()  # the page reloads

    await asyncio.sleep(2.0)
    again = RoomProbe()
    rejoined = time.perf_counter()
    await again.connect(livekit_server.url, token)
    try:
        await again.start_microphone()
        back = interviewer(again)
        assert back is not None and back.identity == agent.identity, "the interviewer left"
        # unasked, it says its last words again
        await until(lambda: _heard_after(again, rejoined), 15, "a welcome back")
        await until(lambda: quiet_for(again, 1.3), 30, "the end of the welcome back")
        answer = await espeak(ANSWERS["en"][0], "en", stack.options.data_dir / "ready.wav")
        _s, end = await again.say(answer, silence_after_s=0.2)
        await until(lambda: _heard_after(again, end), 45, "a reply after the reload")
    finally:
        await again.aclose()  # gone for good: the room closes, the interview ends

    saved = stack.options.data_dir / "interviews" / room / "transcript.json"
    await until(saved.is_file, 40, "the transcript saved after the candidate left")
    turns = json.loads(saved.read_text())["turns"]
    # heard after the rejoin (what Whisper tiny made of espeak's "Yes, I'm ready" varies)
    said = [t["text"] for t in turns if t["speaker"] == "candidate" and t["text"].strip()]
    assert said, turns
    asked = [t["text"] for t in turns if t["speaker"] == "interviewer"]
    assert any(t.startswith("Welcome back.") and "ready" in t for t in asked), asked


async def test_a_candidate_who_joins_late_hears_the_greeting_from_its_first_word(
    stack, livekit_server
):
    """An interview is dispatched when it is booked, and the browser joins after: the
    interviewer, ready within a second, greets only once the candidate is in the room. The
    candidate joins once the interviewer and its avatar have been in the room a while, and the
    first caption it receives is the greeting's beginning."""
    _avatar_service_up(stack)  # the scenario kills it
    config = json.loads((ROOT / "examples" / "en" / "config.json").read_text())
    room = f"late-{datetime.now():%H%M%S%f}"
    await _book(livekit_server, room, config)
    async with _server_api(livekit_server) as lk:
        deadline = time.monotonic() + 60
        while True:  # the interviewer and its avatar (both kind agent), its video published
            listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
            agents = [p for p in listed.participants if p.kind == api.ParticipantInfo.Kind.AGENT]
            video = [p for p in agents if any(t.type == api.TrackType.VIDEO for t in p.tracks)]
            if len(agents) >= 2 and video:
                break
            # no candidate yet: no one has subscribed to the avatar's audio
            assert time.monotonic() < deadline, "the avatar's video was not up before a candidate"
            await asyncio.sleep(0.2)
    await asyncio.sleep(2.0)  # long enough for a greeting that did not wait to be under way

    captions: list[str] = []
    reading: set[asyncio.Task[None]] = set()

    async def read(reader: rtc.TextStreamReader) -> None:
        captions.append(await reader.read_all())

    probe = RoomProbe()
    probe.room.register_text_stream_handler(
        "lk.transcription",
        lambda reader, _who: reading.add(asyncio.create_task(read(reader))),
    )
    joined = time.perf_counter()
    await probe.connect(livekit_server.url, livekit_server.token("candidate", room))
    try:
        await until(lambda: bool(captions), 30, "the interviewer's first caption")
        assert captions[0].startswith(f"Hello {config['candidate_name']}"), captions
        assert _heard_after(probe, joined), "the greeting was not heard"
        avatar = [r for r in probe.received.values() if r.attributes.get("lk.publish_on_behalf")]
        assert avatar and avatar[0].video, "the greeting was not the avatar's"
    finally:
        await probe.aclose()
        for task in reading:
            task.cancel()
