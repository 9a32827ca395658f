"""Skew time and master-down interval, v2 (RFC 3768 §6.1) and v3 (RFC 5798/9568 §6.1)."""

from __future__ import annotations

import itertools

import pytest

from vrrp import timing


@pytest.mark.parametrize(
    ("priority", "skew"),
    [(100, 156 / 256), (255, 1 / 256), (1, 255 / 256), (254, 2 / 256), (0, 1.0)],
)
def test_v2_skew_is_256_minus_priority_over_256_seconds(priority: int, skew: float) -> None:
    assert timing.skew_time(priority, 1, timing.V2) == pytest.approx(skew, abs=1e-12)


def test_v2_skew_ignores_the_interval() -> None:
    assert timing.skew_time(100, 5, timing.V2) == timing.skew_time(100, 1, timing.V2)


def test_v2_master_down_interval_is_three_intervals_plus_skew() -> None:
    assert timing.master_down_interval(100, 1, timing.V2) == pytest.approx(3.609375)
    assert timing.master_down_interval(100, 5, timing.V2) == pytest.approx(15.609375)


@pytest.mark.parametrize(
    ("priority", "interval", "skew"),
    [
        (100, 1.0, 0.609375),  # 156 * 100 cs / 256 = 60.9375 cs
        (100, 0.1, 0.0609375),
        (100, 2.0, 1.21875),
        (200, 0.01, 56 * 1 / 25600),
        (255, 1.0, 1 / 256),
    ],
)
def test_v3_skew_scales_with_the_master_interval(
    priority: int, interval: float, skew: float
) -> None:
    assert timing.skew_time(priority, interval, timing.V3) == pytest.approx(skew, abs=1e-12)


def test_v3_and_v2_differ_when_the_interval_is_not_one_second() -> None:
    assert timing.skew_time(100, 2.0, timing.V3) == pytest.approx(
        2 * timing.skew_time(100, 2.0, timing.V2)
    )


def test_v3_master_down_interval() -> None:
    assert timing.master_down_interval(100, 0.1, timing.V3) == pytest.approx(0.3609375)
    assert timing.master_down_interval(200, 1.0, timing.V3) == pytest.approx(3 + 56 / 256)


def test_down_timer_adverts_counts_the_missed_adverts() -> None:
    assert timing.master_down_interval(100, 1.0, timing.V3, down_timer_adverts=5) == (
        pytest.approx(5.609375)
    )
    with pytest.raises(ValueError, match="at least 1"):
        timing.master_down_interval(100, 1.0, timing.V3, down_timer_adverts=0)


@pytest.mark.parametrize("version", [timing.V2, timing.V3])
def test_higher_priority_always_has_the_shorter_master_down_interval(version: int) -> None:
    mdis = [timing.master_down_interval(p, 1.0, version) for p in range(0, 256)]
    assert all(a > b for a, b in itertools.pairwise(mdis))


@pytest.mark.parametrize(("seconds", "cs"), [(0.01, 1), (0.1, 10), (1, 100), (40.95, 4095)])
def test_v3_intervals_are_whole_centiseconds(seconds: float, cs: int) -> None:
    assert timing.centiseconds(seconds) == cs
    assert timing.check_interval(timing.V3, seconds) == pytest.approx(cs / 100)


@pytest.mark.parametrize(
    "seconds", [0, 0.005, 0.015, 40.96, 41, -1, 1e306, float("nan"), float("inf")]
)
def test_v3_refuses_intervals_the_wire_cannot_carry(seconds: float) -> None:
    with pytest.raises(ValueError, match="VRRPv3 interval"):
        timing.check_interval(timing.V3, seconds)


@pytest.mark.parametrize("seconds", [0, 0.5, 1.5, 256, float("nan"), float("inf")])
def test_v2_intervals_are_whole_seconds_1_to_255(seconds: float) -> None:
    with pytest.raises(ValueError, match="VRRPv2 interval"):
        timing.check_interval(timing.V2, seconds)
    assert timing.check_interval(timing.V2, 255) == 255.0


def test_bad_version_and_priority_are_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        timing.skew_time(100, 1, 4)
    with pytest.raises(ValueError, match="priority"):
        timing.skew_time(256, 1, timing.V3)
    with pytest.raises(ValueError, match="priority"):
        timing.skew_time(-1, 1, timing.V2)
