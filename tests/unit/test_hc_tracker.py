"""Rise/fall, retry and alpha sequences on a stepped clock (the tracker is pure)."""

from __future__ import annotations

import pytest

from healthchecks import CheckResult, Timing, Tracker, Transition

OK = CheckResult.up("status 200")
BAD = CheckResult.down("status 503")
TIMEOUT = CheckResult.down("timeout after 3s")


def run(tracker: Tracker, steps: list[tuple[float, CheckResult]]) -> list[Transition | None]:
    return [tracker.observe(result, now) for now, result in steps]


def test_keepalived_default_retry_once_then_down_and_one_success_up() -> None:
    # HTTP_GET defaults: retry 1, delay_before_retry 3 s, delay_loop 60 s.
    t = Tracker(Timing(delay_loop=60).resolved("HTTP_GET"))
    assert t.up
    assert t.observe(BAD, 0.0) is None  # first failure: retried, no change yet
    assert t.retrying and t.next_due(0.0, 0.5) == 3.5
    assert t.observe(TIMEOUT, 3.5) == Transition(False, "timeout after 3s", None, 3.5)
    assert not t.up and t.last_failure == "timeout after 3s"
    assert not t.retrying and t.next_due(0.0, 3.6) == 60.0
    assert t.observe(OK, 60.0) == Transition(True, "status 200", None, 60.0)
    assert t.up and t.last_failure == "timeout after 3s"  # the last failure's reason is kept


def test_a_success_between_failures_resets_the_retry_count() -> None:
    t = Tracker(Timing(retry=2).resolved("TCP_CHECK"))
    assert run(t, [(0, BAD), (1, BAD), (2, OK), (3, BAD), (4, BAD)]) == [None] * 5
    assert t.up
    assert t.observe(BAD, 5) == Transition(False, "status 503", None, 5)


@pytest.mark.parametrize(
    ("kind", "retry", "delay_before_retry"),
    [("HTTP_GET", 1, 3.0), ("SSL_GET", 1, 3.0), ("TCP_CHECK", 1, 1.0), ("SMTP_CHECK", 1, 1.0),
     ("MISC_CHECK", 0, 1.0), ("DNS_CHECK", 3, 7.0)],
)
def test_keepalived_defaults_per_kind(kind: str, retry: int, delay_before_retry: float) -> None:
    timing = Timing(delay_loop=7).resolved(kind)
    assert (timing.retry, timing.delay_before_retry, timing.warmup) == (
        retry, delay_before_retry, 7,
    )
    t = Tracker(timing)
    transitions = run(t, [(float(i), BAD) for i in range(retry + 1)])
    assert transitions[:-1] == [None] * retry
    assert transitions[-1] is not None and not transitions[-1].up


def test_fall_and_rise_count_rounds_after_retries() -> None:
    t = Tracker(Timing(retry=1, rise=2, fall=2).resolved("TCP_CHECK"))
    # Each counted failure takes a retry first: four failures make two rounds.
    assert run(t, [(0, BAD), (1, BAD), (2, BAD)]) == [None, None, None]
    assert t.up
    assert t.observe(BAD, 3) == Transition(False, "status 503", None, 3)
    assert t.observe(OK, 4) is None  # rise 2: one success is not enough
    assert t.observe(BAD, 5) is None  # and a failure restarts the count
    assert run(t, [(6, BAD), (7, OK)]) == [None, None]
    assert t.observe(OK, 8) == Transition(True, "status 200", None, 8)


def test_alpha_starts_down_until_the_first_success() -> None:
    t = Tracker(Timing(alpha=True).resolved("TCP_CHECK"))
    assert not t.up and t.last_failure is not None
    assert t.observe(BAD, 0) is None
    assert t.observe(BAD, 1) is None  # already down: no transition, only the reason
    assert t.last_failure == "status 503"
    assert t.observe(OK, 2) == Transition(True, "status 200", None, 2)


def test_dynamic_weight_changes_are_reported_while_up() -> None:
    t = Tracker(Timing().resolved("MISC_CHECK"))
    assert t.observe(CheckResult.up("exit 0"), 0) is None  # weight unchanged
    assert t.observe(CheckResult.up("exit 12", weight=10), 1) == Transition(True, "exit 12", 10, 1)
    assert t.observe(CheckResult.up("exit 12", weight=10), 2) is None
    assert t.observe(CheckResult.up("exit 0"), 3) is None  # exit 0 keeps weight 10
    assert t.weight == 10
    down = t.observe(CheckResult.down("exit 1"), 4)
    assert down == Transition(False, "exit 1", 10, 4)
    assert t.observe(CheckResult.up("exit 5", weight=3), 5) == Transition(True, "exit 5", 3, 5)


def test_next_due_keeps_phase_and_skips_overrun_slots() -> None:
    t = Tracker(Timing(delay_loop=2, retry=0).resolved("TCP_CHECK"))
    t.observe(OK, 10.1)
    assert t.next_due(10.0, 10.1) == 12.0
    t.observe(OK, 15.3)  # a check due at 10 that ended at 15.3 overran two slots
    assert t.next_due(10.0, 15.3) == 16.0


def test_next_due_skips_the_slot_too_close_to_a_late_start() -> None:
    t = Tracker(Timing(delay_loop=2, retry=0).resolved("TCP_CHECK"))
    t.observe(OK, 13.95)
    # due at 10, started late at 13.9: the slot at 14 would check it back to back
    assert t.next_due(10.0, 13.95, started=13.9) == 16.0
    assert t.next_due(10.0, 12.5, started=12.5) == 14.0  # a whole interval later: kept
    assert t.next_due(10.0, 12.9, started=12.9) == 14.0  # more than half: kept


def test_unresolved_timing_is_refused() -> None:
    with pytest.raises(ValueError, match="resolved"):
        Tracker(Timing())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"delay_loop": 0}, "delay_loop"), ({"retry": -1}, "retry"), ({"rise": 0}, "rise"),
     ({"fall": 1.5}, "fall"), ({"warmup": -1}, "warmup"), ({"delay_before_retry": "x"},
     "delay_before_retry")],
)
def test_bad_timing_is_a_clear_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Timing(**kwargs)  # type: ignore[arg-type]
