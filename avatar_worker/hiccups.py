"""How late this host wakes a sleeping process: CPU starvation measured whatever its cause.

A real-time stack (the room's audio, 25 fps video, the barge-in) needs the CPU within a few
milliseconds of asking. Whether a shared host gave it that cannot be read from our own figures
(a slow frame may be our bug or the host's), nor from one counter: a busy neighbour shows as run
queue pressure, a hypervisor taking the CPU shows only as steal, a cgroup quota as throttling.
So, like jHiccup, a tiny process sleeps 10 ms at a time at normal priority and records how late
each wake-up comes: on a host with time to spare it wakes within a millisecond or two; any
starvation of a runnable process shows as lateness.

`HiccupMeter` runs that process around a measured run (the room test's scenario, the room
bench); `python -m avatar_worker.hiccups` is the sleeper itself, reporting one JSON line when its
standard input closes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

TICK_S = 0.010
HICCUP_S = 0.005  # lateness below this is the timer's own slack, not starvation
LATE_S = 0.020  # a wake-up this late: half a video frame lost
# a run is starved when its sleeper lost more than this share of the wall time to late
# wake-ups, or woke this late more often than this share of its ticks
STARVED_LOST_SHARE = 0.02
STARVED_LATE_SHARE = 0.01


@dataclass(frozen=True)
class Hiccups:
    """Lateness of the sleeper's wake-ups over one run."""

    seconds: float  # wall time measured
    ticks: int
    late_ticks: int  # woke more than LATE_S late
    lost_s: float  # total lateness of the wake-ups more than HICCUP_S late
    p99_ms: float
    max_ms: float

    @property
    def late_share(self) -> float:
        return self.late_ticks / self.ticks if self.ticks else 0.0

    @property
    def lost_share(self) -> float:
        return self.lost_s / self.seconds if self.seconds else 0.0

    @property
    def starved(self) -> bool:
        """The host kept runnable processes waiting enough to spoil real-time figures."""
        return self.lost_share > STARVED_LOST_SHARE or self.late_share > STARVED_LATE_SHARE

    def summary(self) -> str:
        return (
            f"host wake-ups over {self.seconds:.0f} s: {self.late_share:.1%} more than "
            f"{LATE_S * 1000:.0f} ms late, {self.lost_share:.1%} of the time lost, "
            f"p99 {self.p99_ms:.1f} ms, max {self.max_ms:.0f} ms"
        )


class HiccupMeter:
    """Measures the host's wake-up lateness from `start()` (or `with`) to `stop()`."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self.result: Hiccups | None = None

    def start(self) -> HiccupMeter:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "avatar_worker.hiccups"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        return self

    def stop(self) -> Hiccups:
        """End the measurement; raises RuntimeError when the sleeper reported nothing."""
        if self.result is not None:
            return self.result
        assert self._proc is not None, "start() first"
        out, _ = self._proc.communicate(input="", timeout=30)
        if self._proc.returncode != 0 or not out.strip():
            raise RuntimeError(f"the wake-up sleeper failed (exit {self._proc.returncode})")
        self.result = Hiccups(**json.loads(out))
        return self.result

    def __enter__(self) -> HiccupMeter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def sleep_and_measure(stop: threading.Event) -> Hiccups:
    """Sleep TICK_S at a time until `stop` is set; the lateness of each wake-up."""
    late: list[float] = []
    start = time.perf_counter()
    while not stop.is_set():
        t0 = time.perf_counter()
        time.sleep(TICK_S)
        late.append(max(0.0, time.perf_counter() - t0 - TICK_S))
    seconds = time.perf_counter() - start
    ordered = sorted(late) or [0.0]
    return Hiccups(
        seconds=round(seconds, 3),
        ticks=len(late),
        late_ticks=sum(1 for x in late if x > LATE_S),
        lost_s=round(sum(x for x in late if x > HICCUP_S), 4),
        p99_ms=round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 2),
        max_ms=round(ordered[-1] * 1000, 2),
    )


def main() -> int:
    stop = threading.Event()

    def _wait_for_eof() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=_wait_for_eof, daemon=True).start()
    result = sleep_and_measure(stop)
    print(json.dumps(result.__dict__))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
