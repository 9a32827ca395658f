"""Which reload changes a running VRRP instance takes in place. Pure: a config diff in, a plan out.

A reload that changes only an instance's priority or preemption (`priority`, `nopreempt`,
`preempt_delay`), or its trackers and notify scripts, must not look like a flap: no
state transition, VIPs and announcements untouched, its "since" and counters kept. The
trackers and the notifier take their settings from the new configuration themselves;
the machine takes the rest as one `Reconfigured` event. Anything else that changed in a
unit (interface, VRID, VIPs, advert_int, version, unicast peers, sync group...) means
the unit is rebuilt. Becoming or ceasing to be the address owner (priority 255) is a
rebuild too: an owner holds its VIPs as its own addresses. What changed is read from
the one configuration diff (`hacluster.config.diff`), field by field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hacluster.config.diff import ConfigDiff, diff_configs
from hacluster.config.model import Config

#: Settings that the trackers and the notifier take in place, and their neutral values.
TAKEN_BY_OTHERS: dict[str, Any] = {
    "track_interface": (),
    "track_script": (),
    "track_file": (),
    "track_process": (),
    "virtual_routes": (),  # hacluster.vroutes follows them
    "virtual_rules": (),
    "notify_master": None,
    "notify_backup": None,
    "notify_fault": None,
    "notify_stop": None,
    "notify": None,
    "smtp_alert": None,  # read by the alert outputs at each event
}
#: Settings the running state machine takes in place (`vrrp.machine.Reconfigured`).
MACHINE_IN_PLACE: tuple[str, ...] = ("priority", "nopreempt", "preempt_delay")
#: The global settings a VRRP unit is built from (`hacluster.config.lower.lower_instance`).
VRRP_GLOBAL_DEFS: frozenset[str] = frozenset({
    "vrrp_garp_interval", "vrrp_gna_interval", "vrrp_mcast_group4", "vrrp_mcast_group6"})

OWNER_PRIORITY = 255

_ELSEWHERE = frozenset(TAKEN_BY_OTHERS)
_IN_PLACE = _ELSEWHERE | frozenset(MACHINE_IN_PLACE)


@dataclass(frozen=True, slots=True)
class InPlace:
    """The new priority and preemption settings of one instance, to hand its machine."""

    instance: str
    priority: int
    nopreempt: bool
    preempt_delay: float
    old_priority: int

    def describe(self) -> str:
        if self.priority != self.old_priority:
            return f"{self.instance} priority {self.old_priority} -> {self.priority}"
        return f"{self.instance} preemption"


def in_place_changes(
    old: Config,
    new: Config,
    names: Sequence[str],
    group: str | None,
    diff: ConfigDiff | None = None,
) -> list[InPlace] | None:
    """For a unit (the sync group `group` of instances `names`, or one lone instance)
    in both configurations: the machine changes that take it from `old` to `new` in
    place ([] when its machines need none), or None when it must be rebuilt. `diff` is
    `diff_configs(old, new)`, when the caller has it already."""
    d = diff if diff is not None else diff_configs(old, new)
    if VRRP_GLOBAL_DEFS.intersection(d.global_defs):
        return None
    if group is not None:
        if group not in old.vrrp_sync_groups or group not in new.vrrp_sync_groups:
            return None
        for g in d.vrrp_sync_groups.changed:
            if g.new.name == group and not _ELSEWHERE.issuperset(g.fields):
                return None
    changed = {c.new.name: c for c in d.vrrp_instances.changed}
    changes = []
    for name in names:
        if name not in old.vrrp_instances or name not in new.vrrp_instances:
            return None
        c = changed.get(name)
        if c is None:
            continue
        if not _IN_PLACE.issuperset(c.fields):
            return None
        a, b = c.old, c.new
        if (a.priority == OWNER_PRIORITY) != (b.priority == OWNER_PRIORITY):
            return None
        if any(f in MACHINE_IN_PLACE for f in c.fields):
            changes.append(InPlace(name, b.priority, b.nopreempt, b.preempt_delay,
                                   a.priority))
    return changes
