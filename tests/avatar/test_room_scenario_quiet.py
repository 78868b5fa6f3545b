"""When the room scenario says the interviewer went quiet after a barge-in: counted from the
last loud moment at or before the candidate's onset, so a stop that fell between two words just
before the onset is not mistaken for the end of the reply that follows."""

from __future__ import annotations

import numpy as np

from avatar_worker.room_probe import LOUD, STEP_S, Received
from avatar_worker.room_scenario import _first_quiet


def _received(loud: list[tuple[float, float]], until: float) -> Received:
    """Audio in 10 ms steps from 0 to `until`, loud inside the given stretches."""
    t = np.arange(0.0, until, STEP_S)
    rms = np.where(np.any([(t >= a) & (t < b) for a, b in loud], axis=0), 4 * LOUD, 20.0)
    return Received(identity="avatar", audio_t=t.tolist(), audio_rms=rms.tolist())


def test_speech_that_stops_after_the_onset_is_quiet_from_its_last_loud_step():
    rec = _received([(0.0, 2.3), (6.0, 7.0)], until=8.0)
    assert abs(_first_quiet(rec, 2.0, 0.8) - 2.29) < 1e-6


def test_speech_that_had_stopped_just_before_the_onset_is_quiet_from_then():
    # between two words 20 ms before the candidate began, and quiet until the reply 13 s later
    # (the old count began at the onset and reported the end of that reply)
    rec = _received([(0.0, 2.0), (15.0, 16.0)], until=17.0)
    quiet = _first_quiet(rec, 2.02, 0.8)
    assert abs(quiet - 1.99) < 1e-6
    assert quiet < 2.02


def test_a_short_gap_between_words_is_not_the_stop():
    rec = _received([(0.0, 2.0), (2.2, 3.0)], until=5.0)
    assert abs(_first_quiet(rec, 2.05, 0.8) - 2.99) < 1e-6


def test_no_answer_until_the_quiet_has_lasted_long_enough():
    rec = _received([(0.0, 2.3)], until=2.9)
    assert _first_quiet(rec, 2.0, 0.8) is None
    rec = _received([(0.0, 2.3)], until=3.2)
    assert abs(_first_quiet(rec, 2.0, 0.8) - 2.29) < 1e-6
