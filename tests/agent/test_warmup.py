"""An interview process is warmed before its interview: what the first seconds of an interview
would otherwise build on the event loop (the hyphenator the captions are paced with, the
assessor's cue patterns) is built by the worker's prewarm, and the worker keeps a warmed
process ready in `dev` too."""

from __future__ import annotations

from livekit.agents.tokenize import _basic_hyphenator

from agent import worker
from agent.evaluation import heuristic
from agent.evaluation.heuristic import HeuristicAssessor
from agent.warmup import LANGUAGES, warm_interview_process


def test_after_the_warm_up_an_interview_builds_none_of_it_again():
    took = warm_interview_process()
    assert set(took) == {"ffi", "hyphenator", *(f"assessor_{lang}" for lang in LANGUAGES)}
    assert _basic_hyphenator._get_hyphenator.cache_info().currsize == 1
    compiled = heuristic._compile_one.cache_info().misses
    terms = heuristic._term_pattern.cache_info().misses
    for language in LANGUAGES:
        HeuristicAssessor(language)  # what an interview's assessor builds at its start
    assert heuristic._compile_one.cache_info().misses == compiled
    assert heuristic._term_pattern.cache_info().misses == terms


class _Process:
    def __init__(self) -> None:
        self.userdata: dict[str, object] = {}


def test_the_worker_prewarm_loads_the_models_and_warms_the_process():
    _get = _basic_hyphenator._get_hyphenator
    _get.cache_clear()
    proc = _Process()
    worker.prewarm(proc)  # type: ignore[arg-type]
    assert proc.userdata["vad"] is not None
    assert _get.cache_info().currsize == 1


def test_the_worker_keeps_a_warmed_process_ready_in_dev_too():
    # livekit-agents keeps none in dev: each interview would wait for a process to start
    assert worker.IDLE_PROCESSES.dev_default >= 1
    assert worker.IDLE_PROCESSES.prod_default >= 1
