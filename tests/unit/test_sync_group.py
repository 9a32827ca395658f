"""Sync groups: members move into MASTER, BACKUP and FAULT together (keepalived semantics)."""

from __future__ import annotations

import random
from ipaddress import ip_address
from typing import Any

import pytest

from tests.unit.vrrp_segment import Segment
from vrrp import timing
from vrrp.machine import (
    AdvertReceived,
    FaultCleared,
    FaultRaised,
    InstanceParams,
    Machine,
    PriorityChanged,
    Reannounce,
    RemoveVips,
    SendAdvert,
    Shutdown,
    Startup,
    State,
    StateChanged,
    TimerExpired,
)
from vrrp.sync_group import SyncGroup


def member(name: str, vrid: int, ip: str, priority: int, **kw: Any) -> Machine:
    return Machine(
        InstanceParams(name, vrid, ip_address(ip), priority, vips=(f"vip-{name}",), **kw)
    )


def director(tag: str, last_octet: int, priority: int, **kw: Any) -> SyncGroup:
    """One director: instances {tag}1 on VRID 1 and {tag}2 on VRID 2 in sync group G{tag}."""
    return SyncGroup(
        f"G{tag}",
        [
            member(f"{tag}1", 1, f"10.0.1.{last_octet}", priority, **kw),
            member(f"{tag}2", 2, f"10.0.2.{last_octet}", priority, **kw),
        ],
    )


def group_state(group: SyncGroup) -> State:
    """The state now (a call, so that type narrowing does not outlive the next event)."""
    return group.state


def mdi(priority: int, interval: float = 1.0) -> float:
    return timing.master_down_interval(priority, interval, 3)


def pair() -> Segment:
    """Director A (priority 200) master of both VRIDs, director B (100) backup of both."""
    seg = Segment(director("A", 1, 200), director("B", 2, 100))
    seg.start()
    seg.run_until(10.0)
    assert seg.masters() == ["A1", "A2"]
    return seg


# ---------------------------------------------------------------------------- construction


def test_a_group_needs_distinct_members() -> None:
    with pytest.raises(ValueError, match="at least one"):
        SyncGroup("G", [])
    with pytest.raises(ValueError, match="twice"):
        SyncGroup("G", [member("X", 1, "10.0.0.1", 100), member("X", 2, "10.0.0.1", 100)])
    group = director("A", 1, 100)
    with pytest.raises(KeyError, match="not a member"):
        group.member("nope")


def test_a_one_member_group_moves_as_its_instance_alone() -> None:
    """keepalived warns about a one-member group and runs it: same timeline as the
    instance on its own."""
    alone = Segment(member("A1", 1, "10.0.1.1", 200), member("B1", 1, "10.0.1.2", 100))
    grouped = Segment(SyncGroup("GA", [member("A1", 1, "10.0.1.1", 200)]),
                      SyncGroup("GB", [member("B1", 1, "10.0.1.2", 100)]))
    for seg in (alone, grouped):
        seg.start()
        seg.run_until(10.0)
        assert seg.masters() == ["A1"]
        seg.kill("A1")
        seg.run_until_state("B1", State.MASTER)
    assert ([(t.time, t.name, t.new) for t in alone.transitions()]
            == [(t.time, t.name, t.new) for t in grouped.transitions()])


def test_group_state_summarises_the_members() -> None:
    group = director("A", 1, 100)
    assert group_state(group) is State.INITIALIZE
    group.handle_all(Startup(), 0.0)
    assert group_state(group) is State.BACKUP
    group.handle("A1", FaultRaised("eth0 down"), 1.0)
    assert group_state(group) is State.FAULT


# ---------------------------------------------------------------------------- MASTER


def test_takeover_waits_until_every_member_wants_master() -> None:
    # Alone on the LAN, A2 (priority 200) times out first but is held until A1 (100)
    # times out too; then both become MASTER together.
    group = SyncGroup(
        "G", [member("A1", 1, "10.0.1.1", 100), member("A2", 2, "10.0.2.1", 200)]
    )
    seg = Segment(group)
    seg.start()
    seg.run_until(mdi(200))
    assert seg.masters() == []
    assert group.handle("A2", TimerExpired(), mdi(200)) == {"A1": [], "A2": []}
    assert group.member("A2").takeover_pending
    assert group.member("A2").counters.takeovers_held == 1
    t = seg.run_until_state("A1", State.MASTER)
    assert t == pytest.approx(mdi(100))
    assert seg.masters() == ["A1", "A2"]
    a2 = seg.transitions("A2")[-1]
    assert a2.time == pytest.approx(t)
    assert a2.reason == "sync group G: A1 became MASTER"
    assert seg.holders() == ["A1", "A2"]


def test_a_member_that_becomes_master_brings_the_others_at_once() -> None:
    owner = member("O1", 1, "10.0.1.1", 255)
    other = member("O2", 2, "10.0.2.1", 100)
    out = SyncGroup("G", [owner, other]).handle_all(Startup(), 0.0)
    assert other.state is State.MASTER
    assert out["O2"][0] == StateChanged(State.INITIALIZE, State.BACKUP, "startup")
    assert out["O2"][1] == SendAdvert(100, 1.0)
    assert out["O2"][-1] == StateChanged(
        State.BACKUP, State.MASTER, "sync group G: O1 became MASTER"
    )


def test_the_backup_director_takes_over_both_instances_after_a_crash() -> None:
    seg = pair()
    seg.kill("A1", "A2")
    last = max(seg.adverts("A1")[-1].time, seg.adverts("A2")[-1].time)
    t = seg.run_until_state("B1", State.MASTER)
    assert t == pytest.approx(last + mdi(100))
    assert seg.masters() == ["B1", "B2"]
    assert seg.holders() == ["B1", "B2"]


def test_takeover_happens_when_the_last_member_times_out() -> None:
    # A2's adverts run half a second behind A1's: B1 times out first and is held
    # until B2 times out as well.
    seg = Segment(
        director("B", 2, 100), member("A1", 1, "10.0.1.1", 200), member("A2", 2, "10.0.2.1", 200)
    )
    seg.start("A1", "A2", "B1", "B2")
    seg.run_until(5.0)
    seg.shutdown("A2")
    seg.run_for(0.5)
    seg.start("A2")
    seg.run_until(20.0)
    assert seg.masters() == ["A1", "A2"]
    held_before = seg["B1"].counters.takeovers_held
    seg.kill("A1", "A2")
    last1 = seg.adverts("A1")[-1].time
    last2 = seg.adverts("A2")[-1].time
    assert (last2 - last1) % 1.0 == pytest.approx(0.5)
    t = seg.run_until_state("B1", State.MASTER)
    # B1 timed out first (if A1's last advert was earlier) and waited for B2.
    assert t == pytest.approx(max(last1, last2) + mdi(100))
    assert seg.masters() == ["B1", "B2"]
    assert seg["B1"].counters.takeovers_held == held_before + (last1 < last2)


def test_a_held_takeover_does_not_thrash_while_one_member_still_hears_its_master() -> None:
    seg = pair()
    seg.inject("B1", PriorityChanged(+140))  # B1 (240) now outranks A1 (200)
    seg.run_for(30.0)
    # B1 would preempt A1 on its own, but B2 still hears A2 at 200: the group stays BACKUP.
    assert seg.masters() == ["A1", "A2"]
    assert seg["B1"].takeover_pending
    assert seg.transitions("B1")[-1].new is State.BACKUP
    # When B2 outranks A2 as well, the whole group preempts.
    seg.inject("B2", PriorityChanged(+140))
    seg.run_for(10.0)
    assert seg.masters() == ["B1", "B2"]
    assert seg.holders() == ["B1", "B2"]


# ---------------------------------------------------------------------------- BACKUP


def test_a_member_giving_way_takes_the_other_masters_to_backup() -> None:
    group = director("A", 1, 200)
    group.handle_all(Startup(), 0.0)
    group.handle_timer(mdi(200))
    assert group.state is State.MASTER
    out = group.handle("A1", AdvertReceived(ip_address("10.0.1.9"), 250, 1.0), 5.0)
    a2 = group.member("A2")
    assert a2.state is State.BACKUP
    assert out["A2"] == [
        RemoveVips(("vip-A2",)),
        StateChanged(State.MASTER, State.BACKUP, "sync group GA: A1 went BACKUP"),
    ]
    assert a2.next_deadline() == pytest.approx(5.0 + mdi(200))
    assert group_state(group) is State.BACKUP


# ---------------------------------------------------------------------------- FAULT


def test_a_fault_on_one_member_faults_the_group_and_both_masters_resign() -> None:
    seg = pair()
    seg.run_for(0.25)
    t_fault = seg.now
    seg.inject("A2", FaultRaised("interface eth1 down"))
    assert [seg[n].state for n in ("A1", "A2")] == [State.FAULT, State.FAULT]
    assert [a.priority for a in seg.adverts("A1") if a.time == t_fault] == [0]
    assert [a.priority for a in seg.adverts("A2") if a.time == t_fault] == [0]
    assert seg.transitions("A1")[-1].reason == "fault: sync group GA"
    assert seg.transitions("A2")[-1].reason == "fault: interface eth1 down"
    t = seg.run_until_state("B1", State.MASTER)
    assert t == pytest.approx(t_fault + timing.skew_time(100, 1.0, 3))
    assert seg.masters() == ["B1", "B2"]
    assert seg.holders() == ["B1", "B2"]


def test_the_group_leaves_fault_when_no_member_has_a_fault_of_its_own() -> None:
    seg = pair()
    seg.inject("A1", FaultRaised("a"))
    seg.inject("A2", FaultRaised("b"))
    seg.run_for(5.0)
    seg.inject("A1", FaultCleared("a"))
    assert [seg[n].state for n in ("A1", "A2")] == [State.FAULT, State.FAULT]
    t_clear = seg.now
    seg.inject("A2", FaultCleared("b"))
    assert [seg[n].state for n in ("A1", "A2")] == [State.BACKUP, State.BACKUP]
    # Both back in BACKUP, A (200) preempts B (100) after its master-down interval.
    t = seg.run_until_state("A1", State.MASTER)
    assert t == pytest.approx(t_clear + mdi(200))
    seg.run_for(5.0)
    assert seg.masters() == ["A1", "A2"]
    assert seg.holders() == ["A1", "A2"]


def test_shutdown_of_a_master_group_resigns_every_member() -> None:
    seg = pair()
    t_stop = seg.now
    for name in ("A1", "A2"):
        seg.shutdown(name)
    assert [a.priority for a in seg.adverts() if a.time == t_stop and a.name[0] == "A"] == [0, 0]
    t = seg.run_until_state("B2", State.MASTER)
    assert t == pytest.approx(t_stop + timing.skew_time(100, 1.0, 3))


def test_handle_all_shutdown_returns_each_members_actions() -> None:
    group = director("A", 1, 200)
    group.handle_all(Startup(), 0.0)
    group.handle_timer(mdi(200))
    out = group.handle_all(Shutdown(), 9.0)
    for name in ("A1", "A2"):
        assert out[name][0] == SendAdvert(0, 1.0)
        assert out[name][-1] == StateChanged(State.MASTER, State.INITIALIZE, "shutdown")


def test_groups_survive_a_turbulent_run_and_settle_on_the_best_director() -> None:
    """Random faults, priority changes, cable cuts and restarts on two grouped directors;
    the segment checks every timer, and afterwards one director holds both VRIDs."""
    rng = random.Random(7)
    seg = Segment(director("A", 1, 200, advert_int=0.1), director("B", 2, 100, advert_int=0.1))
    seg.start()
    names = ["A1", "A2", "B1", "B2"]
    for _ in range(200):
        seg.run_for(rng.uniform(0.0, 1.0))
        who = rng.choice(names)
        roll = rng.random()
        if roll < 0.08:
            seg.inject(who, FaultRaised("f"))
        elif roll < 0.4:
            seg.inject(who, FaultCleared("f"))
        elif roll < 0.5:
            seg.cut(who)
        elif roll < 0.65:
            seg.heal(who)
        elif roll < 0.75:
            seg.shutdown(who)
            seg.start(who)
        else:
            seg.inject(who, PriorityChanged(rng.randint(-150, 150)))
        # A group is never split between FAULT and MASTER.
        for tag in "AB":
            states = {seg[f"{tag}1"].state, seg[f"{tag}2"].state}
            assert not {State.FAULT, State.MASTER} <= states
    assert len(seg.fired) > 600
    for who in names:
        seg.heal(who)
        seg.inject(who, FaultCleared("f"))
        seg.inject(who, PriorityChanged(0))
    seg.run_for(10.0)
    assert seg.masters() == ["A1", "A2"]
    assert seg.holders() == ["A1", "A2"]


def test_a_lower_advert_heard_by_one_master_member_reannounces_the_whole_group() -> None:
    seg = pair()
    group = seg.group_of["A1"]
    lower = AdvertReceived(ip_address("10.0.1.2"), 100, 1.0)
    out = group.handle("A1", lower, seg.now)
    assert out["A1"] == [SendAdvert(200, 1.0), Reannounce(("vip-A1",))]
    assert out["A2"] == [Reannounce(("vip-A2",))]  # the partner's clients are told too
    assert seg.masters() == ["A1", "A2"]
