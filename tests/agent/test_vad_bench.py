"""How soon candidate speech holds the interviewer (`python -m agent bench --vad`): the real
silero VAD as the session loads it, spoken words against a sound that is not speech."""

from __future__ import annotations

import pytest
from livekit.agents import vad

from agent.bench import main as bench_main
from agent.turn_taking import TurnTakingOptions, room_options
from agent.vad_bench import LEAD_S, WINDOW, hold_at_s, measure, non_speech_sounds


def _ev(
    kind: vad.VADEventType, window_end_16k: int, speech_s: float, p: float = 0.0
) -> vad.VADEvent:
    return vad.VADEvent(
        type=kind,
        samples_index=window_end_16k,
        timestamp=0.0,
        speech_duration=speech_s,
        silence_duration=0.0,
        speaking=speech_s > 0,
        probability=p,
    )


def test_the_hold_counts_at_the_end_of_the_frame_that_completed_the_window():
    lead = int(LEAD_S * 16000)
    events = [
        _ev(vad.VADEventType.INFERENCE_DONE, lead + 512, 0.0, p=0.8),  # first window at 32 ms
        _ev(vad.VADEventType.START_OF_SPEECH, lead + 1024, 0.064),  # window ends at 64 ms
        _ev(vad.VADEventType.INFERENCE_DONE, lead + 1536, 0.096),
        _ev(vad.VADEventType.INFERENCE_DONE, lead + 2048, 0.128),  # at 128 ms
    ]
    assert hold_at_s(events, 0.05, 20) == pytest.approx(0.08)  # the 20 ms frame ending at 80
    assert hold_at_s(events, 0.05, 50) == pytest.approx(0.10)
    assert hold_at_s(events, 0.1, 20) == pytest.approx(0.14)
    assert hold_at_s(events, 0.2, 20) is None
    assert hold_at_s(events, WINDOW, 20) == pytest.approx(0.04)
    assert hold_at_s(events, WINDOW, 20, activation=0.9) is None


async def test_speech_holds_within_a_fifth_of_a_second_and_a_click_never_does():
    opts = TurnTakingOptions()
    rules = [opts.min_interruption_duration, WINDOW]
    results = await measure(["en"], [opts.input_frame_ms], rules)
    start, first = ((opts.input_frame_ms, rule) for rule in rules)
    spoken = [r for r in results if r.speech]
    assert len(spoken) >= 3
    for r in spoken:
        assert r.hold_ms[start] is not None and 0 < r.hold_ms[start] <= 200, r
        assert r.hold_ms[first] is not None and 0 < r.hold_ms[first] <= r.hold_ms[start], r
    others = {r.name: r for r in results if not r.speech}
    assert set(others) == set(non_speech_sounds())
    click = others["click"]
    assert click.hold_ms[start] is None and click.hold_ms[first] is None
    assert click.longest_speech_s == 0.0


def test_the_session_reads_the_room_in_the_frames_the_vad_was_measured_with():
    opts = TurnTakingOptions()
    assert room_options(opts).audio_input.frame_size_ms == opts.input_frame_ms
    assert room_options(opts).close_on_disconnect is False  # a reload does not end it
    assert opts.min_interruption_duration <= opts.vad_min_speech  # held at the VAD's start


def test_the_candidate_audio_arrives_at_the_rate_the_models_hear_so_nothing_resamples_it():
    from livekit.agents.inference.eot.base import DEFAULT_SAMPLE_RATE as EOT_RATE

    from agent.providers.stt import WHISPER_SAMPLE_RATE
    from agent.sim_io import INPUT_SAMPLE_RATE
    from agent.turn_taking import load_vad

    opts = TurnTakingOptions()
    rate = room_options(opts).audio_input.sample_rate
    assert rate == load_vad(opts)._opts.sample_rate == EOT_RATE == WHISPER_SAMPLE_RATE
    assert INPUT_SAMPLE_RATE == rate  # the rehearsal hears what the room delivers


@pytest.mark.parametrize("args", [["--frame-ms", "15"], ["--hold", "0"], ["--hold", "x"]])
def test_bad_bench_settings_exit_with_a_usage_error(args, capsys):
    with pytest.raises(SystemExit) as e:
        bench_main(["--vad", *args])
    assert e.value.code == 2
    assert "error:" in capsys.readouterr().err
