"""VRRP timelines over a fake segment: election, failover, hand-over, preemption, ..."""

from __future__ import annotations

import itertools
import random
from ipaddress import IPv6Address, ip_address
from typing import Any

import pytest

from tests.unit.vrrp_segment import Segment
from vrrp import timing
from vrrp.machine import (
    FaultCleared,
    FaultRaised,
    InstanceParams,
    Machine,
    PriorityChanged,
    Reannounce,
    RemoveVips,
    SendAdvert,
    SourceChanged,
    State,
    StateChanged,
    VipRemoved,
)


def router(name: str, ip: str, priority: int, **kw: Any) -> Machine:
    fields: dict[str, Any] = {"vrid": 51, "version": 3, "advert_int": 1.0, "vips": (f"vip-{name}",)}
    fields.update(kw)
    return Machine(InstanceParams(name, primary_ip=ip_address(ip), priority=priority, **fields))


def mdi(priority: int, interval: float = 1.0, version: int = 3) -> float:
    return timing.master_down_interval(priority, interval, version)


def skew(priority: int, interval: float = 1.0, version: int = 3) -> float:
    return timing.skew_time(priority, interval, version)


def state_of(seg: Segment, name: str) -> State:
    """The state now (a call, so that type narrowing does not outlive the next event)."""
    return seg[name].state


def last_advert(seg: Segment, name: str) -> float:
    return seg.adverts(name)[-1].time


def steady(a_prio: int = 200, b_prio: int = 100, **kw: Any) -> Segment:
    """A master A and a backup B, settled after ten seconds."""
    seg = Segment(router("A", "10.0.0.1", a_prio, **kw), router("B", "10.0.0.2", b_prio, **kw))
    seg.start()
    seg.run_until(10.0)
    assert seg.masters() == ["A"]
    return seg


# ---------------------------------------------------------------------------- election


def test_election_highest_priority_wins_at_its_master_down_interval() -> None:
    seg = Segment(
        router("A", "10.0.0.1", 100), router("B", "10.0.0.2", 200), router("C", "10.0.0.3", 150)
    )
    seg.start()
    t = seg.run_until_state("B", State.MASTER)
    assert t == pytest.approx(mdi(200))
    seg.run_until(30.0)
    assert seg.masters() == ["B"]
    assert seg.holders() == ["B"]
    assert [tr.new for tr in seg.transitions("A")] == [State.BACKUP]
    assert [tr.new for tr in seg.transitions("C")] == [State.BACKUP]


def test_only_the_master_advertises_in_steady_state() -> None:
    seg = steady()
    seg.run_until(20.0)
    senders = {a.name for a in seg.adverts() if a.time > 10.0}
    assert senders == {"A"}
    times = [a.time for a in seg.adverts("A")]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == pytest.approx([1.0] * len(gaps))


# ---------------------------------------------------------------------------- failover


@pytest.mark.parametrize(
    ("version", "interval"), [(3, 1.0), (3, 0.1), (3, 0.01), (2, 1)]
)
def test_failover_happens_exactly_one_master_down_interval_after_the_last_advert(
    version: int, interval: float
) -> None:
    seg = steady(version=version, advert_int=interval)
    seg.run_for(0.5 * interval)
    seg.kill("A")
    last = last_advert(seg, "A")
    t = seg.run_until_state("B", State.MASTER)
    assert t == pytest.approx(last + mdi(100, interval, version), abs=1e-9)
    assert seg.transitions("B")[-1].reason == "master down timer"
    first = seg.adverts("B")[0]
    assert first.time == pytest.approx(t)
    assert first.priority == 100
    assert seg.holders() == ["B"]


def test_graceful_hand_over_happens_exactly_skew_time_after_priority_zero() -> None:
    seg = steady()
    seg.run_for(0.3)
    stop = seg.now
    seg.shutdown("A")
    assert seg.adverts("A")[-1].priority == 0
    assert seg.holders() == []
    t = seg.run_until_state("B", State.MASTER)
    assert t == pytest.approx(stop + skew(100))
    assert seg.transitions("B")[-1].reason == "priority 0 from 10.0.0.1"


def test_graceful_hand_over_at_fast_v3_intervals() -> None:
    seg = steady(advert_int=0.05)
    stop = seg.now
    seg.shutdown("A")
    t = seg.run_until_state("B", State.MASTER)
    assert t == pytest.approx(stop + skew(100, 0.05))


def test_three_routers_next_in_priority_takes_over() -> None:
    seg = Segment(
        router("A", "10.0.0.1", 200), router("B", "10.0.0.2", 150), router("C", "10.0.0.3", 100)
    )
    seg.start()
    seg.run_until(10.0)
    seg.kill("A")
    last = last_advert(seg, "A")
    t = seg.run_until_state("B", State.MASTER)
    assert t == pytest.approx(last + mdi(150))
    seg.run_until(t + 30.0)
    assert seg.masters() == ["B"]
    assert State.MASTER not in [tr.new for tr in seg.transitions("C")]


# ---------------------------------------------------------------------------- preemption


def test_a_higher_priority_router_preempts_at_its_master_down_interval() -> None:
    seg = Segment(router("A", "10.0.0.1", 200), router("B", "10.0.0.2", 100))
    seg.start("B")
    seg.run_until(10.0)
    assert seg.masters() == ["B"]
    seg.start("A")
    t = seg.run_until_state("A", State.MASTER)
    assert t == pytest.approx(10.0 + mdi(200))  # B's lower adverts did not hold it back
    assert seg["B"].state is State.BACKUP
    assert seg.transitions("B")[-1].time == pytest.approx(t)  # B yields on A's first advert
    assert seg.transitions("A")[-1].reason.startswith("preempt: lower priority 100 advert")
    seg.run_for(20.0)
    assert seg.masters() == ["A"]


def test_nopreempt_leaves_a_lower_master_in_place() -> None:
    seg = Segment(router("A", "10.0.0.1", 200, nopreempt=True), router("B", "10.0.0.2", 100))
    seg.start("B")
    seg.run_until(10.0)
    seg.start("A")
    seg.run_for(60.0)
    assert seg.masters() == ["B"]
    assert seg.transitions("A")[-1].new is State.BACKUP
    # ... but it still takes over when that master dies.
    seg.kill("B")
    last = last_advert(seg, "B")
    assert seg.run_until_state("A", State.MASTER) == pytest.approx(last + mdi(200))


def test_preempt_delay_postpones_preemption_after_startup() -> None:
    seg = Segment(router("A", "10.0.0.1", 200, preempt_delay=5), router("B", "10.0.0.2", 100))
    seg.start("B")
    seg.run_until(10.25)
    seg.start("A")
    t = seg.run_until_state("A", State.MASTER)
    # A accepts B's adverts until 15.25; B's last accepted advert is the one just before.
    accepted = [a.time for a in seg.adverts("B") if a.time < 15.25]
    assert t == pytest.approx(accepted[-1] + mdi(200))
    assert t > 15.25
    assert t > 10.25 + mdi(200) + 1  # clearly later than without the delay


def test_preempt_delay_restarts_after_a_higher_master_disappears() -> None:
    # A (200, delay 5) is backup to C (250); when C dies B (100) takes over; A then
    # waits its delay again before preempting B.
    seg = Segment(
        router("A", "10.0.0.1", 200, preempt_delay=5),
        router("B", "10.0.0.2", 100),
        router("C", "10.0.0.3", 250),
    )
    seg.start()
    seg.run_until(20.0)
    assert seg.masters() == ["C"]
    seg.kill("C")
    a_master = seg.run_until_state("A", State.MASTER)
    # A is the best of the rest: it takes over at its own master-down interval, no delay
    # (the delay only applies to preempting a lower master that is alive).
    assert a_master == pytest.approx(last_advert(seg, "C") + mdi(200))
    assert seg.masters() == ["A"]


# ---------------------------------------------------------------------------- tie break


@pytest.mark.parametrize(
    ("low", "high"),
    [("10.0.0.9", "10.0.0.10"), ("192.168.1.2", "192.168.1.200"), ("fe80::9", "fe80::1:0")],
)
def test_two_masters_of_equal_priority_keep_the_higher_address(low: str, high: str) -> None:
    # Both time out while they cannot hear each other (as when their first adverts
    # cross on the wire); once they hear each other the lower address yields.
    seg = Segment(router("L", low, 100), router("H", high, 100))
    seg.cut("L")
    seg.start()
    seg.run_for(5.0)
    assert seg.masters() == ["H", "L"]
    seg.heal("L")
    seg.run_for(1.0)
    assert seg.masters() == ["H"]
    assert seg.holders() == ["H"]
    assert seg.transitions("L")[-1].reason == f"equal priority advert from higher address {high}"
    seg.run_for(30.0)
    assert seg.masters() == ["H"]


def test_equal_priority_does_not_preempt_a_running_master() -> None:
    seg = Segment(router("L", "10.0.0.1", 100), router("H", "10.0.0.2", 100))
    seg.start("L")
    seg.run_until(10.0)
    seg.start("H")
    seg.run_for(30.0)
    assert seg.masters() == ["L"]


def test_a_healed_split_keeps_the_higher_priority_master() -> None:
    seg = steady()
    seg.cut("A")
    seg.run_until_state("B", State.MASTER)
    assert seg.masters() == ["A", "B"]  # split brain while the cable is out
    seg.heal("A")
    seg.run_for(1.0)
    assert seg.masters() == ["A"]


# ---------------------------------------------------------------------------- v3 intervals


def test_v3_backup_uses_the_masters_interval_not_its_own() -> None:
    seg = Segment(
        router("A", "10.0.0.1", 200, advert_int=0.5), router("B", "10.0.0.2", 100, advert_int=2.0)
    )
    seg.start()
    seg.run_until(10.0)
    assert seg["B"].master_adver_int == pytest.approx(0.5)
    seg.kill("A")
    t = seg.run_until_state("B", State.MASTER)
    assert t == pytest.approx(last_advert(seg, "A") + mdi(100, 0.5))
    assert seg.adverts("B")[0].advert_int == 2.0  # and advertises its own once master


# ---------------------------------------------------------------------------- owner


def test_the_owner_takes_over_at_once_at_startup() -> None:
    seg = Segment(router("O", "10.0.0.1", 255), router("B", "10.0.0.2", 100))
    seg.start("B")
    seg.run_until(10.0)
    seg.start("O")
    assert seg.masters() == ["O"]
    assert seg.transitions("B")[-1].time == 10.0
    assert seg.transitions("B")[-1].new is State.BACKUP


def test_the_owner_ignores_tracker_weights() -> None:
    seg = Segment(router("O", "10.0.0.1", 255), router("B", "10.0.0.2", 254))
    seg.start()
    seg.inject("O", PriorityChanged(-200))
    seg.run_for(30.0)
    assert seg.masters() == ["O"]
    assert {a.priority for a in seg.adverts("O")} == {255}


# ---------------------------------------------------------------------------- fault


def test_fault_on_the_master_hands_over_after_skew_then_preempts_back() -> None:
    seg = steady()
    seg.run_for(0.4)
    t_fault = seg.now
    seg.inject("A", FaultRaised("interface eth1 down"))
    assert seg.adverts("A")[-1].priority == 0
    assert state_of(seg, "A") is State.FAULT
    t = seg.run_until_state("B", State.MASTER)
    assert t == pytest.approx(t_fault + skew(100))
    seg.run_for(5.0)
    assert seg.masters() == ["B"]  # a faulty A stays out
    t_clear = seg.now
    seg.inject("A", FaultCleared("interface eth1 down"))
    assert state_of(seg, "A") is State.BACKUP
    back = seg.run_until_state("A", State.MASTER)
    assert back == pytest.approx(t_clear + mdi(200))
    seg.run_for(5.0)
    assert seg.masters() == ["A"]
    assert seg.holders() == ["A"]


def test_a_vip_removed_under_the_master_hands_over_after_skew_then_preempts_back() -> None:
    seg = steady()
    seg.run_for(0.3)
    t_lost = seg.now
    seg.inject("A", VipRemoved("vip-A"))
    assert seg.actions("A")[-3:] == [
        SendAdvert(0, 1.0), RemoveVips(("vip-A",)),
        StateChanged(State.MASTER, State.BACKUP, "VIP vip-A removed by someone else"),
    ]
    t = seg.run_until_state("B", State.MASTER)
    assert t == pytest.approx(t_lost + skew(100))
    # A is a backup of higher priority again: it preempts back, VIPs and all.
    back = seg.run_until_state("A", State.MASTER)
    assert back == pytest.approx(t_lost + mdi(200))
    seg.run_for(5.0)
    assert seg.masters() == ["A"] and seg.holders() == ["A"]


def test_a_vip_removed_alone_is_retaken_at_the_master_down_interval() -> None:
    seg = Segment(router("A", "10.0.0.1", 200))
    seg.start()
    seg.run_until(10.0)
    t_lost = seg.now
    seg.inject("A", VipRemoved("vip-A"))
    assert state_of(seg, "A") is State.BACKUP and seg.holders() == []
    assert seg.run_until_state("A", State.MASTER) == pytest.approx(t_lost + mdi(200))
    assert seg.holders() == ["A"]


def test_vip_removed_is_ignored_unless_master_and_ours() -> None:
    seg = steady()
    before = len(seg.actions("B")), len(seg.actions("A"))
    seg.inject("B", VipRemoved("vip-B"))  # a backup holds nothing
    seg.inject("A", VipRemoved("vip-other"))  # not one of A's
    assert (len(seg.actions("B")), len(seg.actions("A"))) == before
    assert seg.masters() == ["A"]


def test_source_changed_moves_the_tie_break_address() -> None:
    # Split, both masters at equal priority; A's address changes to one above B's
    # before they hear each other again: now B yields, not A.
    a, b = router("A", "10.0.0.1", 100), router("B", "10.0.0.2", 100)
    seg = Segment(a, b)
    seg.cut("A")
    seg.start()
    seg.run_for(5.0)
    assert seg.masters() == ["A", "B"]
    seg.inject("A", SourceChanged(ip_address("10.0.0.3")))
    assert a.params.primary_ip == ip_address("10.0.0.3") and a.state is State.MASTER
    seg.heal("A")
    seg.run_for(1.0)
    assert seg.masters() == ["A"]
    assert seg.transitions("B")[-1].reason == "equal priority advert from higher address 10.0.0.3"


def test_fault_on_the_backup_leaves_the_master_alone() -> None:
    seg = steady()
    seg.inject("B", FaultRaised("chk"))
    seg.run_for(10.0)
    assert seg.masters() == ["A"]
    assert seg.adverts("B") == []
    seg.kill("A")
    seg.run_for(10.0)
    assert seg.masters() == []  # a backup in FAULT never takes over


# ---------------------------------------------------------------------------- tracking


def test_tracker_lowering_the_master_lets_the_backup_preempt() -> None:
    seg = steady(a_prio=150, b_prio=100)
    seg.run_for(0.2)
    seg.inject("A", PriorityChanged(-60))  # A now 90
    last_accepted = last_advert(seg, "A")
    t = seg.run_until_state("B", State.MASTER)
    assert t == pytest.approx(last_accepted + mdi(100))
    assert seg["A"].state is State.BACKUP
    seg.inject("A", PriorityChanged(0))  # A back to 150: preempts again
    t2 = seg.run_until_state("A", State.MASTER)
    assert t2 == pytest.approx(t + mdi(150))


def test_tracker_raising_a_backup_makes_it_preempt_sooner() -> None:
    seg = steady(a_prio=150, b_prio=100)
    seg.run_for(0.5)
    seg.inject("B", PriorityChanged(+100))  # B now 200
    last_accepted = last_advert(seg, "A")
    t = seg.run_until_state("B", State.MASTER)
    assert t == pytest.approx(last_accepted + mdi(200))


# ---------------------------------------------------------------------------- timing


def test_no_deadline_is_ever_missed_or_early_in_a_long_turbulent_run() -> None:
    """Random restarts, faults, cable cuts and priority changes; the segment checks every
    wake-up (exactly at the deadline, nothing left due afterwards)."""
    rng = random.Random(20261126)
    names = ["A", "B", "C", "D"]
    seg = Segment(
        *[router(n, f"10.0.0.{i + 1}", 50 + 40 * i, advert_int=0.1) for i, n in enumerate(names)]
    )
    seg.start()
    for _ in range(300):
        seg.run_for(rng.uniform(0.0, 1.5))
        who = rng.choice(names)
        roll = rng.random()
        if roll < 0.15:
            seg.shutdown(who)
            seg.start(who)
        elif roll < 0.3:
            seg.inject(who, FaultRaised("f"))
        elif roll < 0.45:
            seg.inject(who, FaultCleared("f"))
        elif roll < 0.55:
            seg.cut(who)
        elif roll < 0.7:
            seg.heal(who)
        else:
            seg.inject(who, PriorityChanged(rng.randint(-60, 60)))
    assert len(seg.fired) > 2000
    # Calm down: everything healthy, connected, at configured priorities.
    for who in names:
        seg.heal(who)
        seg.inject(who, FaultCleared("f"))
        seg.inject(who, PriorityChanged(0))
    seg.run_for(10.0)
    assert seg.masters() == ["D"]
    assert seg.holders() == ["D"]
    times = [a.time for a in seg.adverts("D") if a.time > seg.now - 5.0]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == pytest.approx([0.1] * len(gaps))


def test_every_timer_fires_at_its_exact_deadline() -> None:
    seg = steady(advert_int=0.3)
    seg.kill("A")
    takeover = last_advert(seg, "A") + mdi(100, 0.3)
    seg.run_for(10.0)
    b_fired = [time for time, label in seg.fired if label == "B"]
    expected = [takeover + 0.3 * k for k in range(len(b_fired))]
    assert len(b_fired) == int((seg.now - takeover) / 0.3) + 1
    assert b_fired == pytest.approx(expected)
    assert [a.time for a in seg.adverts("B")] == pytest.approx(expected)


def test_v2_with_ipv6_fails_over_too() -> None:
    seg = Segment(
        Machine(InstanceParams("A", 7, IPv6Address("fe80::1"), 200, version=2, advert_int=2)),
        Machine(InstanceParams("B", 7, IPv6Address("fe80::2"), 100, version=2, advert_int=2)),
    )
    seg.start()
    seg.run_until(20.0)
    seg.kill("A")
    t = seg.run_until_state("B", State.MASTER)
    assert t == pytest.approx(last_advert(seg, "A") + mdi(100, 2, 2))


def test_routers_of_other_vrids_and_families_do_not_interfere() -> None:
    seg = Segment(
        router("A", "10.0.0.1", 200),
        router("B", "10.0.0.2", 100, vrid=52),
        router("C", "fe80::3", 250),
    )
    seg.start()
    seg.run_for(10.0)
    assert seg.masters() == ["A", "B", "C"]
    assert [seg[n].counters.adverts_received for n in "ABC"] == [0, 0, 0]


def _reannounced(seg: Segment, name: str, after: float) -> list[float]:
    return [p.time for p in seg.log
            if p.name == name and p.time >= after and isinstance(p.action, Reannounce)]


def test_a_healed_split_brain_makes_the_winner_reannounce_as_keepalived_does() -> None:
    # Both MASTER while the cable is out; at the heal the lower one's advert reaches the
    # winner, which answers with its own advert (sending the other back) and announces
    # its VIPs again, so clients that followed the loser's ARP come back.
    seg = steady(higher_prio_send_advert=True)
    seg.cut("A")
    seg.run_until_state("B", State.MASTER)
    seg.run_for(3.0)
    healed = seg.now
    seg.heal("A")
    seg.run_for(1.0)
    assert seg.masters() == ["A"]
    times = _reannounced(seg, "A", healed)
    assert times and times[0] - healed <= 1.0  # at the first advert to cross


def test_without_higher_prio_send_advert_only_a_lower_advert_heard_reannounces() -> None:
    seg = steady()
    seg.cut("A")
    seg.run_until_state("B", State.MASTER)
    seg.run_for(2.5)
    healed = seg.now
    seg.heal("A")
    seg.run_for(1.0)
    assert seg.masters() == ["A"]
    b_spoke = [s.time for s in seg.adverts("B") if s.time > healed and s.priority > 0]
    # A re-announces exactly when it heard B as master (B's advert crossed first).
    assert bool(_reannounced(seg, "A", healed)) == bool(b_spoke)
