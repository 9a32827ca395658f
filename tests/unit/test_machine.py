"""One VRRP machine fed events by hand: each RFC 5798 §6.4 rule on its own."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

import pytest

from vrrp import timing
from vrrp.machine import (
    AddVips,
    AdvertReceived,
    Announce,
    FaultCleared,
    FaultRaised,
    InstanceParams,
    Machine,
    MasterInfo,
    PriorityChanged,
    Reannounce,
    RemoveVips,
    SendAdvert,
    Shutdown,
    Startup,
    State,
    StateChanged,
    TimerExpired,
    effective_priority,
)

ME = IPv4Address("10.0.0.5")
LOWER_IP = IPv4Address("10.0.0.4")
HIGHER_IP = IPv4Address("10.0.0.6")
VIPS = ("10.99.0.100/24",)


def make(**kw: Any) -> Machine:
    fields: dict[str, Any] = {
        "name": "VI_1",
        "vrid": 51,
        "primary_ip": ME,
        "priority": 100,
        "version": 3,
        "advert_int": 1.0,
        "vips": VIPS,
    }
    fields.update(kw)
    return Machine(InstanceParams(**fields))


def mdi(priority: int, interval: float = 1.0, version: int = 3) -> float:
    return timing.master_down_interval(priority, interval, version)


def skew(priority: int, interval: float = 1.0, version: int = 3) -> float:
    return timing.skew_time(priority, interval, version)


def advert(src: Any, priority: int, interval: float = 1.0) -> AdvertReceived:
    return AdvertReceived(ip_address(src), priority, interval)


def started_master(**kw: Any) -> Machine:
    """A machine that became MASTER at t = its master-down interval, nothing heard."""
    m = make(**kw)
    m.handle(Startup(), 0.0)
    deadline = m.next_deadline()
    assert deadline is not None
    m.handle_timer(deadline)
    assert m.state is State.MASTER
    return m


# ---------------------------------------------------------------------------- startup


def test_a_new_machine_waits_in_initialize_with_no_timer() -> None:
    m = make()
    assert m.state is State.INITIALIZE
    assert m.next_deadline() is None
    assert m.handle(advert(HIGHER_IP, 200), 0.0) == []


def test_startup_enters_backup_with_the_master_down_timer() -> None:
    m = make()
    assert m.handle(Startup(), 10.0) == [StateChanged(State.INITIALIZE, State.BACKUP, "startup")]
    assert m.state is State.BACKUP
    assert m.next_deadline() == pytest.approx(10.0 + mdi(100))
    assert m.master is None


def test_startup_twice_changes_nothing() -> None:
    m = make()
    m.handle(Startup(), 0.0)
    assert m.handle(Startup(), 1.0) == []
    assert m.next_deadline() == pytest.approx(mdi(100))


def test_owner_goes_master_at_once_with_advert_vips_and_announce_in_order() -> None:
    m = make(priority=255)
    actions = m.handle(Startup(), 3.0)
    assert actions[:3] == [SendAdvert(255, 1.0), AddVips(VIPS), Announce(VIPS)]
    change = actions[3]
    assert isinstance(change, StateChanged)
    assert (change.old, change.new) == (State.INITIALIZE, State.MASTER)
    assert "owner" in change.reason
    assert m.next_deadline() == pytest.approx(4.0)
    assert m.master == MasterInfo(ME, 255)


# ---------------------------------------------------------------------------- backup timer


def test_backup_timer_does_nothing_before_its_deadline() -> None:
    m = make()
    m.handle(Startup(), 0.0)
    deadline = mdi(100)
    assert m.handle_timer(deadline - 1e-6) == []
    assert m.handle(TimerExpired(), deadline - 1e-6) == []
    assert m.state is State.BACKUP
    assert m.next_deadline() == pytest.approx(deadline)


def test_backup_takes_over_at_the_deadline() -> None:
    m = make()
    m.handle(Startup(), 0.0)
    actions = m.handle(TimerExpired(), mdi(100))
    assert actions == [
        SendAdvert(100, 1.0),
        AddVips(VIPS),
        Announce(VIPS),
        StateChanged(State.BACKUP, State.MASTER, "master down timer"),
    ]
    assert m.next_deadline() == pytest.approx(mdi(100) + 1.0)


# ---------------------------------------------------------------------------- master timer


def test_master_sends_one_advert_per_interval_without_drift() -> None:
    m = started_master(advert_int=0.1)
    start = mdi(100, 0.1)
    # Woken a little late each time, the schedule stays on the original grid.
    for k in range(1, 50):
        due = m.next_deadline()
        assert due is not None
        assert due == pytest.approx(start + 0.1 * k)
        assert m.handle_timer(due + 0.0004) == [SendAdvert(100, 0.1)]
    assert m.counters.adverts_sent == 50


def test_master_after_a_long_stall_restarts_the_schedule_from_now() -> None:
    m = started_master()
    assert m.handle_timer(100.0) == [SendAdvert(100, 1.0)]
    assert m.next_deadline() == pytest.approx(101.0)


def test_master_timer_early_sends_nothing() -> None:
    m = started_master()
    due = m.next_deadline()
    assert due is not None
    assert m.handle_timer(due - 0.001) == []
    assert m.next_deadline() == due


# ---------------------------------------------------------------------------- backup adverts


def test_backup_accepting_an_advert_restarts_the_master_down_timer() -> None:
    m = make()
    m.handle(Startup(), 0.0)
    assert m.handle(advert(HIGHER_IP, 150), 2.0) == []
    assert m.next_deadline() == pytest.approx(2.0 + mdi(100))
    assert m.master == MasterInfo(HIGHER_IP, 150)


def test_backup_accepts_equal_priority() -> None:
    m = make()
    m.handle(Startup(), 0.0)
    m.handle(advert(LOWER_IP, 100), 2.0)
    assert m.next_deadline() == pytest.approx(2.0 + mdi(100))


def test_backup_discards_a_lower_priority_advert_and_will_preempt() -> None:
    m = make()
    m.handle(Startup(), 0.0)
    assert m.handle(advert(HIGHER_IP, 50), 2.0) == []
    assert m.next_deadline() == pytest.approx(mdi(100))  # not restarted
    assert m.counters.adverts_discarded_lower == 1
    actions = m.handle_timer(mdi(100))
    change = actions[-1]
    assert isinstance(change, StateChanged)
    assert change.reason == f"preempt: lower priority 50 advert from {HIGHER_IP}"


def test_nopreempt_backup_accepts_lower_priority() -> None:
    m = make(nopreempt=True, priority=200)
    m.handle(Startup(), 0.0)
    m.handle(advert(LOWER_IP, 50), 2.0)
    assert m.next_deadline() == pytest.approx(2.0 + mdi(200))
    assert m.master == MasterInfo(LOWER_IP, 50)


def test_priority_zero_sets_the_backup_timer_to_skew_time() -> None:
    m = make()
    m.handle(Startup(), 0.0)
    m.handle(advert(HIGHER_IP, 150), 1.0)
    m.handle(advert(HIGHER_IP, 0), 1.5)
    assert m.next_deadline() == pytest.approx(1.5 + skew(100))
    assert m.master is None
    actions = m.handle_timer(1.5 + skew(100))
    assert actions[-1] == StateChanged(
        State.BACKUP, State.MASTER, f"priority 0 from {HIGHER_IP}"
    )
    assert m.counters.priority_zero_received == 1


def test_v3_backup_learns_the_master_interval() -> None:
    m = make(advert_int=1.0)
    m.handle(Startup(), 0.0)
    m.handle(advert(HIGHER_IP, 150, 0.25), 1.0)
    assert m.master_adver_int == pytest.approx(0.25)
    assert m.next_deadline() == pytest.approx(1.0 + mdi(100, 0.25))
    # Priority 0 uses the learned interval for the skew too.
    m.handle(advert(HIGHER_IP, 0, 0.25), 1.1)
    assert m.next_deadline() == pytest.approx(1.1 + skew(100, 0.25))


def test_v3_master_uses_its_own_interval_again() -> None:
    m = make(advert_int=1.0)
    m.handle(Startup(), 0.0)
    m.handle(advert(HIGHER_IP, 150, 0.25), 1.0)
    actions = m.handle_timer(1.0 + mdi(100, 0.25))
    assert actions[0] == SendAdvert(100, 1.0)
    assert m.master_adver_int == 1.0


def test_v2_discards_an_advert_with_another_interval() -> None:
    m = make(version=2, advert_int=1)
    m.handle(Startup(), 0.0)
    assert m.handle(advert(HIGHER_IP, 150, 2), 1.0) == []
    assert m.counters.adverts_invalid == 1
    assert m.next_deadline() == pytest.approx(mdi(100, 1, 2))
    m.handle(advert(HIGHER_IP, 150, 1), 1.0)
    assert m.next_deadline() == pytest.approx(1.0 + mdi(100, 1, 2))
    assert m.master_adver_int == 1.0


@pytest.mark.parametrize(
    "bad",
    [
        AdvertReceived(ME, 150, 1.0),  # our own address looped back
        AdvertReceived(IPv6Address("fe80::1"), 150, 1.0),  # other family
        AdvertReceived(HIGHER_IP, 256, 1.0),
        AdvertReceived(HIGHER_IP, -1, 1.0),
        AdvertReceived(HIGHER_IP, 150, 0.0),
        AdvertReceived(HIGHER_IP, 150, 0.005),
        AdvertReceived(HIGHER_IP, 150, 50.0),
        AdvertReceived(HIGHER_IP, 150, float("nan")),
        AdvertReceived(HIGHER_IP, 150, float("inf")),
        AdvertReceived("10.0.0.6", 150, 1.0),  # type: ignore[arg-type]  # not an address
        AdvertReceived(HIGHER_IP, 150.5, 1.0),  # type: ignore[arg-type]  # not an integer
    ],
)
def test_adverts_the_machine_cannot_use_are_counted_and_change_nothing(
    bad: AdvertReceived,
) -> None:
    for m in (make(), started_master()):
        before = (m.state, m.next_deadline(), m.master)
        assert m.handle(bad, 1.0) == []
        assert (m.state, m.next_deadline(), m.master) == before
        assert m.counters.adverts_invalid == 1


# ---------------------------------------------------------------------------- master adverts


def test_master_yields_to_higher_priority_and_removes_its_vips() -> None:
    m = started_master()
    now = mdi(100) + 0.5
    assert m.handle(advert(LOWER_IP, 150, 0.5), now) == [
        RemoveVips(VIPS),
        StateChanged(State.MASTER, State.BACKUP, f"higher priority 150 advert from {LOWER_IP}"),
    ]
    assert m.master_adver_int == pytest.approx(0.5)
    assert m.next_deadline() == pytest.approx(now + mdi(100, 0.5))
    assert m.master == MasterInfo(LOWER_IP, 150)


def test_master_keeps_its_place_against_lower_priority_and_asserts_itself() -> None:
    # keepalived, not RFC 5798 §6.4.3's discard: our advert at once, then re-announce.
    m = started_master()
    due = m.next_deadline()
    sent = m.counters.adverts_sent
    assert m.handle(advert(HIGHER_IP, 99), 5.0) == [SendAdvert(100, 1.0), Reannounce(VIPS)]
    assert m.state is State.MASTER
    assert m.next_deadline() == due  # the advert cadence is not disturbed
    assert m.counters.adverts_sent == sent + 1
    assert m.counters.lower_prio_heard_as_master == 1
    assert m.counters.adverts_discarded_lower == 0


def test_master_hearing_equal_priority_from_a_lower_address_asserts_itself() -> None:
    m = started_master()
    assert m.handle(advert(LOWER_IP, 100), 5.0) == [SendAdvert(100, 1.0), Reannounce(VIPS)]
    assert m.state is State.MASTER


def test_lower_prio_no_advert_only_reannounces() -> None:
    m = started_master(lower_prio_no_advert=True)
    sent = m.counters.adverts_sent
    assert m.handle(advert(LOWER_IP, 50), 5.0) == [Reannounce(VIPS)]
    assert m.counters.adverts_sent == sent


def test_backup_hearing_a_lower_advert_sends_nothing() -> None:
    m = make(priority=100)
    m.handle(Startup(), 0.0)
    assert m.handle(advert(LOWER_IP, 50), 0.5) == []


def test_master_answers_priority_zero_with_an_advert_at_once() -> None:
    m = started_master()
    assert m.handle(advert(HIGHER_IP, 0), 4.0) == [SendAdvert(100, 1.0)]
    assert m.next_deadline() == pytest.approx(5.0)
    assert m.state is State.MASTER


def test_equal_priority_from_a_higher_address_wins() -> None:
    m = started_master()
    actions = m.handle(advert(HIGHER_IP, 100), 4.0)
    assert actions[-1] == StateChanged(
        State.MASTER, State.BACKUP, f"equal priority advert from higher address {HIGHER_IP}"
    )


def test_equal_priority_from_a_lower_address_loses() -> None:
    m = started_master()
    assert m.handle(advert(LOWER_IP, 100), 4.0) == [SendAdvert(100, 1.0), Reannounce(VIPS)]
    assert m.state is State.MASTER


def test_higher_prio_send_advert_makes_a_leaving_master_advertise_first() -> None:
    # keepalived's higher_prio_send_advert: the new master hears us as a lower-priority
    # master and re-announces its VIPs, whichever advert crossed first at a heal.
    m = started_master(higher_prio_send_advert=True)
    actions = m.handle(advert(HIGHER_IP, 150), 4.0)
    assert actions[:2] == [SendAdvert(100, 1.0), RemoveVips(VIPS)]
    assert m.state is State.BACKUP
    plain = started_master()
    assert not any(isinstance(a, SendAdvert) for a in plain.handle(advert(HIGHER_IP, 150), 4.0))


def test_addresses_compare_as_integers_not_text() -> None:
    # "10.0.0.10" sorts before "10.0.0.9" as text but is the higher address.
    m = started_master(primary_ip=IPv4Address("10.0.0.9"))
    m.handle(advert("10.0.0.10", 100), 4.0)
    assert m.state is State.BACKUP
    m2 = started_master(primary_ip=IPv4Address("10.0.0.10"))
    m2.handle(advert("10.0.0.9", 100), 4.0)
    assert m2.state is State.MASTER


def test_ipv6_tie_break_uses_the_link_local_addresses() -> None:
    m = started_master(primary_ip=IPv6Address("fe80::a"))
    m.handle(advert("fe80::9", 100), 4.0)
    assert m.master == MasterInfo(IPv6Address("fe80::a"), 100)
    m.handle(advert("fe80::b", 100), 4.0)
    assert m.state is State.BACKUP


# ---------------------------------------------------------------------------- priority


@pytest.mark.parametrize(
    ("base", "delta", "effective"),
    [
        (100, 0, 100),
        (100, -20, 80),
        (100, 200, 254),
        (100, -150, 1),
        (1, -5, 1),
        (254, 1, 254),
        (255, -50, 255),
        (255, 10, 255),
    ],
)
def test_effective_priority_is_clamped_and_owner_stays_255(
    base: int, delta: int, effective: int
) -> None:
    assert effective_priority(base, delta) == effective
    m = make(priority=base)
    m.handle(PriorityChanged(delta), 0.0)
    assert m.priority == effective
    assert m.priority_delta == delta


def test_master_advertises_its_effective_priority() -> None:
    m = started_master()
    m.handle(PriorityChanged(-30), 4.0)
    due = m.next_deadline()
    assert due is not None
    assert m.handle_timer(due) == [SendAdvert(70, 1.0)]
    m.handle(PriorityChanged(0), 5.0)
    assert m.handle_timer(due + 1.0) == [SendAdvert(100, 1.0)]


def test_rising_priority_brings_the_backup_timer_forward_by_the_skew_saved() -> None:
    m = make()
    m.handle(Startup(), 0.0)
    m.handle(PriorityChanged(+100), 1.0)
    assert m.next_deadline() == pytest.approx(mdi(100) - (skew(100) - skew(200)))
    # Falling priority leaves the running timer alone.
    m.handle(PriorityChanged(-50), 1.5)
    assert m.next_deadline() == pytest.approx(mdi(100) - (skew(100) - skew(200)))


def test_priority_change_compares_adverts_with_the_effective_priority() -> None:
    m = make(priority=100)
    m.handle(Startup(), 0.0)
    m.handle(PriorityChanged(-50), 0.5)
    m.handle(advert(HIGHER_IP, 60), 1.0)  # higher than 50: accepted
    assert m.next_deadline() == pytest.approx(1.0 + mdi(50))


# ---------------------------------------------------------------------------- fault


def test_master_entering_fault_resigns_with_priority_zero() -> None:
    m = started_master()
    assert m.handle(FaultRaised("interface eth1 down"), 5.0) == [
        SendAdvert(0, 1.0),
        RemoveVips(VIPS),
        StateChanged(State.MASTER, State.FAULT, "fault: interface eth1 down"),
    ]
    assert m.next_deadline() is None
    assert m.counters.priority_zero_sent == 1


def test_backup_entering_fault_sends_nothing() -> None:
    m = make()
    m.handle(Startup(), 0.0)
    assert m.handle(FaultRaised("chk_proxy"), 1.0) == [
        StateChanged(State.BACKUP, State.FAULT, "fault: chk_proxy")
    ]
    assert m.next_deadline() is None


def test_fault_state_ignores_adverts_and_timers() -> None:
    m = make()
    m.handle(Startup(), 0.0)
    m.handle(FaultRaised("x"), 1.0)
    assert m.handle(advert(HIGHER_IP, 0), 2.0) == []
    assert m.handle_timer(100.0) == []
    assert m.state is State.FAULT
    assert m.master is None


def test_leaving_fault_needs_every_fault_cleared() -> None:
    m = make()
    m.handle(Startup(), 0.0)
    m.handle(FaultRaised("a"), 1.0)
    assert m.handle(FaultRaised("b"), 1.0) == []
    assert m.faults == ("a", "b")
    assert m.handle(FaultCleared("a"), 2.0) == []
    assert m.handle(FaultCleared("nonexistent"), 2.0) == []
    assert m.state is State.FAULT
    assert m.handle(FaultCleared("b"), 3.0) == [
        StateChanged(State.FAULT, State.BACKUP, "fault cleared")
    ]
    assert m.next_deadline() == pytest.approx(3.0 + mdi(100))


def test_leaving_fault_resets_the_learned_interval() -> None:
    m = make()
    m.handle(Startup(), 0.0)
    m.handle(advert(HIGHER_IP, 150, 0.2), 0.5)
    m.handle(FaultRaised("a"), 1.0)
    m.handle(FaultCleared("a"), 2.0)
    assert m.master_adver_int == 1.0


def test_a_fault_before_startup_starts_in_fault() -> None:
    m = make()
    assert m.handle(FaultRaised("eth0 down"), 0.0) == []
    assert m.state is State.INITIALIZE
    assert m.handle(Startup(), 1.0) == [
        StateChanged(State.INITIALIZE, State.FAULT, "fault: eth0 down")
    ]


def test_owner_leaving_fault_goes_master_at_once() -> None:
    m = make(priority=255)
    m.handle(Startup(), 0.0)
    m.handle(FaultRaised("eth0 down"), 1.0)
    actions = m.handle(FaultCleared("eth0 down"), 2.0)
    assert actions[0] == SendAdvert(255, 1.0)
    assert m.state is State.MASTER


# ---------------------------------------------------------------------------- shutdown


def test_master_shutdown_resigns_and_releases_vips() -> None:
    m = started_master()
    assert m.handle(Shutdown(), 9.0) == [
        SendAdvert(0, 1.0),
        RemoveVips(VIPS),
        StateChanged(State.MASTER, State.INITIALIZE, "shutdown"),
    ]
    assert m.next_deadline() is None
    assert m.handle(Shutdown(), 9.5) == []


def test_backup_shutdown_sends_nothing_and_can_start_again() -> None:
    m = make()
    m.handle(Startup(), 0.0)
    assert m.handle(Shutdown(), 1.0) == [StateChanged(State.BACKUP, State.INITIALIZE, "shutdown")]
    m.handle(Startup(), 2.0)
    assert m.state is State.BACKUP
    assert m.next_deadline() == pytest.approx(2.0 + mdi(100))


# ---------------------------------------------------------------------------- initial MASTER


def test_initial_master_takes_over_after_one_interval_and_the_smallest_skew() -> None:
    m = make(initial_state=State.MASTER)
    assert m.handle(Startup(), 0.0) == [StateChanged(State.INITIALIZE, State.BACKUP, "startup")]
    assert m.next_deadline() == pytest.approx(1.0 + 1 / 256)
    actions = m.handle_timer(1.0 + 1 / 256)
    assert actions[0] == SendAdvert(100, 1.0)
    assert actions[-1] == StateChanged(State.BACKUP, State.MASTER, "initial state MASTER")


def test_initial_master_yields_to_a_higher_master_heard_first() -> None:
    m = make(initial_state=State.MASTER)
    m.handle(Startup(), 0.0)
    m.handle(advert(HIGHER_IP, 150), 0.5)
    assert m.next_deadline() == pytest.approx(0.5 + mdi(100))
    assert m.state is State.BACKUP


# ---------------------------------------------------------------------------- preempt_delay


def test_preempt_delay_accepts_lower_adverts_until_it_runs_out() -> None:
    m = make(priority=200, preempt_delay=5.0)
    m.handle(Startup(), 0.0)
    assert m.preempt_at == pytest.approx(5.0)
    m.handle(advert(LOWER_IP, 100), 4.9)
    assert m.next_deadline() == pytest.approx(4.9 + mdi(200))
    m.handle(advert(LOWER_IP, 100), 5.0)  # the delay is over: discarded
    assert m.next_deadline() == pytest.approx(4.9 + mdi(200))
    assert m.counters.adverts_discarded_lower == 1


def test_preempt_delay_stops_when_a_higher_master_is_heard_and_restarts_on_a_lower() -> None:
    m = make(priority=200, preempt_delay=5.0)
    m.handle(Startup(), 0.0)
    m.handle(advert(HIGHER_IP, 250), 1.0)
    assert m.preempt_at is None
    m.handle(advert(LOWER_IP, 100), 20.0)
    assert m.preempt_at == pytest.approx(25.0)


# ---------------------------------------------------------------------------- params


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"vrid": 0}, "virtual_router_id"),
        ({"vrid": 256}, "virtual_router_id"),
        ({"priority": 0}, "priority"),
        ({"priority": 256}, "priority"),
        ({"version": 2, "advert_int": 0.5}, "advert_int"),
        ({"version": 3, "advert_int": 0.001}, "advert_int"),
        ({"version": 4}, "version"),
        ({"nopreempt": True, "initial_state": State.MASTER}, "nopreempt"),
        ({"preempt_delay": -1}, "preempt_delay"),
        ({"preempt_delay": 1001}, "preempt_delay"),
        ({"initial_state": State.FAULT}, "initial state"),
        ({"down_timer_adverts": 0}, "down_timer_adverts"),
    ],
)
def test_bad_parameters_are_refused_with_the_instance_named(
    kw: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as info:
        make(**kw)
    assert "VI_1" in str(info.value)


def test_params_normalise_the_interval_and_know_the_owner() -> None:
    p = InstanceParams("VI_2", 2, ME, priority=255, version=2, advert_int=3)
    assert p.advert_int == 3.0
    assert p.owner
    assert not InstanceParams("VI_3", 3, ME).owner
