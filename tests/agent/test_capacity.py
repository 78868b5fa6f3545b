"""The worker's reported load: its share of the host's interviews, or 1 when the avatar is full."""

from __future__ import annotations

import pytest

from agent.capacity import FULL_LOAD, HostLoad, host_capacity, host_load


def test_a_host_with_room_reports_under_the_servers_target_load():
    # livekit-server offers jobs only below its agents.target_load (0.7)
    assert host_load(0, 2, 0.0) == 0.0
    assert host_load(1, 2, 0.0) == pytest.approx(0.35)
    assert host_load(3, 4, 0.0) < FULL_LOAD  # room for a fourth
    assert host_load(2, 2, 0.0) == pytest.approx(FULL_LOAD)  # full: no more offers
    assert host_load(5, 2, 0.0) == 1.0  # never above 1


def test_a_full_avatar_service_makes_the_host_full_whatever_runs():
    assert host_load(0, 4, 1.0) == 1.0
    assert host_load(1, 4, 0.5) == pytest.approx(0.35)


def test_the_host_load_asks_the_avatar_service_each_time():
    avatar = iter([0.0, 1.0])
    load = HostLoad(3, lambda: next(avatar))
    assert load(1) == pytest.approx(FULL_LOAD / 3)
    assert load(1) == 1.0


def test_the_capacity_is_the_setting_or_the_avatar_services_default():
    from avatar_worker.service import default_capacity

    assert host_capacity({"INTERVIEW_HOST_CAPACITY": "6"}) == 6
    assert host_capacity({}) == default_capacity()


@pytest.mark.parametrize("raw", ["0", "-1", "two", "1.5"])
def test_a_bad_capacity_names_the_setting(raw):
    with pytest.raises(ValueError, match="INTERVIEW_HOST_CAPACITY"):
        host_capacity({"INTERVIEW_HOST_CAPACITY": raw})
