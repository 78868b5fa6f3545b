"""The host-starvation meter: a stalled sleeper shows as lost time, a free one does not."""

from __future__ import annotations

import os
import signal
import time

from avatar_worker.hiccups import HiccupMeter, Hiccups


def test_a_stalled_sleeper_reports_the_stall_as_starvation():
    meter = HiccupMeter().start()
    time.sleep(0.5)
    assert meter._proc is not None
    # what a hypervisor or a CPU quota does to every process: 0.3 s without the CPU
    os.kill(meter._proc.pid, signal.SIGSTOP)
    time.sleep(0.3)
    os.kill(meter._proc.pid, signal.SIGCONT)
    time.sleep(0.5)
    h = meter.stop()
    assert 1.0 < h.seconds < 5.0 and h.ticks > 30
    assert h.max_ms >= 250 and h.late_ticks >= 1
    assert h.lost_s >= 0.25
    assert h.starved, h.summary()


def test_thresholds_separate_a_free_host_from_a_starved_one():
    free = Hiccups(seconds=78, ticks=7700, late_ticks=8, lost_s=0.3, p99_ms=2.4, max_ms=126)
    assert not free.starved, free.summary()
    busy_neighbour = Hiccups(
        seconds=78, ticks=7500, late_ticks=30, lost_s=2.9, p99_ms=9, max_ms=471
    )
    assert busy_neighbour.starved
    often_late = Hiccups(seconds=60, ticks=6000, late_ticks=100, lost_s=0.5, p99_ms=30, max_ms=50)
    assert often_late.starved
    assert "1.7% more than 20 ms late" in often_late.summary()
