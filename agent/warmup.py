"""What an interview process builds once, before an interview is assigned to it.

Each of these is built lazily on first use, and the first use falls in the interview's first
seconds, on the job's event loop, while the greeting plays: the agent then hears the candidate
late and a barge-in on the greeting is answered late. Measured on this project's 2-core VM, one
interview (more when the host is busy: up to 477 ms for the hyphenator with two interviews):

- LiveKit's FFI client, loaded on the first call into the Rust SDK: ~100 ms;
- livekit-agents' hyphenator, which the transcript synchronizer uses to pace the captions and
  which builds its pattern tree on the first word: 35-110 ms;
- the answer assessor's compiled cue patterns (both languages): ~60 ms each.

The worker's `prewarm` calls `warm_interview_process()` in each job process it starts ahead of
time, so an interview finds them ready.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from livekit import rtc
from livekit.agents.tokenize import basic

from .evaluation.heuristic import HeuristicAssessor
from .evaluation.resources import Language

logger = logging.getLogger("interview.warmup")

LANGUAGES: tuple[Language, ...] = ("ko", "en")


def warm_interview_process() -> dict[str, float]:
    """Build the lazily built pieces of an interview now; returns what each took, in ms."""
    took: dict[str, float] = {}

    def timed(name: str, build: Callable[[], object]) -> None:
        t0 = time.perf_counter()
        build()
        took[name] = round((time.perf_counter() - t0) * 1000, 1)

    # any FFI object loads the client; a resampler is the smallest one there is
    timed("ffi", lambda: rtc.AudioResampler(16000, 24000))
    timed("hyphenator", lambda: basic.hyphenate_word("interviewer"))
    for language in LANGUAGES:
        timed(f"assessor_{language}", lambda lang=language: HeuristicAssessor(lang))
    logger.info("interview process warmed up", extra={"ms": took})
    return took
