"""Reload: which changes a running instance takes in place (pure planner and machine)."""

from __future__ import annotations

import ipaddress

import pytest

from hacluster.config.loader import parse_config
from hacluster.config.model import Config
from hacluster.reload_in_place import InPlace, in_place_changes
from vrrp.machine import (
    AdvertReceived,
    InstanceParams,
    Machine,
    Reconfigured,
    Startup,
    State,
)

BASE = """
vrrp_scripts:
  chk: {script: /bin/true}
vrrp_instances:
  VI_1:
    interface: eth0
    virtual_router_id: 1
    priority: 100
    virtual_ipaddress: [10.0.0.1/24]
  VI_2: {interface: eth0, virtual_router_id: 2, priority: 100, virtual_ipaddress: [10.0.0.2/24]}
vrrp_sync_groups:
  G: {group: [VI_2]}
"""


def _cfg(text: str) -> Config:
    return parse_config(text, "t.yaml")


def test_priority_and_preemption_are_taken_in_place() -> None:
    old = _cfg(BASE)
    new = _cfg(BASE.replace("    priority: 100\n", "    priority: 120\n    preempt_delay: 5\n"))
    assert in_place_changes(old, new, ("VI_1",), None) == [
        InPlace("VI_1", 120, False, 5.0, old_priority=100)]
    assert in_place_changes(old, new, ("VI_2",), "G") == []
    group = _cfg(BASE.replace("virtual_router_id: 2, priority: 100",
                              "virtual_router_id: 2, priority: 90, nopreempt: true"))
    (change,) = in_place_changes(old, group, ("VI_2",), "G") or []
    assert (change.priority, change.nopreempt) == (90, True)
    assert change.describe() == "VI_2 priority 100 -> 90"


def test_trackers_and_notify_change_in_place_with_nothing_for_the_machine() -> None:
    old = _cfg(BASE)
    new = _cfg(BASE.replace("    priority: 100\n",
                            "    priority: 100\n    track_script: [chk]\n"
                            "    notify_master: /bin/true\n"))
    assert in_place_changes(old, new, ("VI_1",), None) == []


@pytest.mark.parametrize("edit", [
    ("virtual_ipaddress: [10.0.0.1/24]", "virtual_ipaddress: [10.0.0.9/24]"),
    ("virtual_router_id: 1\n", "virtual_router_id: 7\n"),
    ("    priority: 100\n", "    priority: 100\n    advert_int: 2\n"),
    ("    priority: 100\n", "    priority: 255\n"),  # becomes the address owner
])
def test_anything_else_rebuilds(edit: tuple[str, str]) -> None:
    old = _cfg(BASE)
    assert in_place_changes(old, _cfg(BASE.replace(*edit)), ("VI_1",), None) is None


def _machine(priority: int, state: State) -> Machine:
    m = Machine(InstanceParams(name="VI_1", vrid=1, primary_ip=ipaddress.ip_address("10.0.0.5"),
                               priority=priority, advert_int=1.0, vips=("10.0.0.1/24",),
                               initial_state=state))
    m.handle(Startup(), 0.0)
    return m


def test_the_machine_takes_a_new_priority_without_a_transition() -> None:
    master = _machine(100, State.MASTER)
    master.handle_timer(master.next_deadline() or 0.0)
    assert master.state is State.MASTER
    before = master.counters
    assert master.handle(Reconfigured(80, False, 0.0), 5.0) == []
    assert (master.state, master.priority, master.params.priority) == (State.MASTER, 80, 80)
    assert master.counters == before
    # A backup now above its master takes over on its own: the lower adverts are ignored.
    backup = _machine(90, State.BACKUP)
    backup.handle(AdvertReceived(ipaddress.ip_address("10.0.0.6"), 100, 1.0), 0.5)
    assert backup.handle(Reconfigured(110, False, 0.0), 1.0) == []
    assert backup.state is State.BACKUP and backup.priority == 110
    backup.handle(AdvertReceived(ipaddress.ip_address("10.0.0.6"), 100, 1.0), 1.5)
    actions = backup.handle_timer(backup.next_deadline() or 0.0)
    assert backup.state is State.MASTER, actions
    with pytest.raises(ValueError, match="address owner"):
        backup.handle(Reconfigured(255, False, 0.0), 9.0)
