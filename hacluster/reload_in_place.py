"""Which reload changes a running VRRP instance takes in place. Pure: configs in, a plan out.

A reload that changes only an instance's priority or preemption (`priority`, `nopreempt`,
`preempt_delay`), or its trackers and notify scripts, must not look like a flap: no
state transition, VIPs and announcements untouched, its "since" and counters kept. The
trackers and the notifier take their settings from the new configuration themselves;
the machine takes the rest as one `Reconfigured` event. Anything else that changed in a
unit (interface, VRID, VIPs, advert_int, version, unicast peers, sync group...) means
the unit is rebuilt. Becoming or ceasing to be the address owner (priority 255) is a
rebuild too: an owner holds its VIPs as its own addresses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hacluster.config.model import Config, VrrpInstance

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

OWNER_PRIORITY = 255


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


def _rest(inst: VrrpInstance, like: VrrpInstance) -> VrrpInstance:
    """`inst` with what is taken in place set as in `like` and the trackers' neutral."""
    same = {k: getattr(like, k) for k in MACHINE_IN_PLACE}
    return dataclasses.replace(inst, **TAKEN_BY_OTHERS, **same)


def in_place_changes(
    old: Config, new: Config, names: Sequence[str], group: str | None
) -> list[InPlace] | None:
    """For a unit (the sync group `group` of instances `names`, or one lone instance)
    in both configurations: the machine changes that take it from `old` to `new` in
    place ([] when its machines need none), or None when it must be rebuilt."""
    if group is not None:
        before, after = old.vrrp_sync_groups.get(group), new.vrrp_sync_groups.get(group)
        if before is None or after is None:
            return None
        neutral = {k: v for k, v in TAKEN_BY_OTHERS.items() if hasattr(before, k)}
        if dataclasses.replace(before, **neutral) != dataclasses.replace(after, **neutral):
            return None
    g_old, g_new = old.global_defs, new.global_defs
    if (g_old.vrrp_garp_interval, g_old.vrrp_gna_interval) != (
        g_new.vrrp_garp_interval, g_new.vrrp_gna_interval
    ):
        return None
    changes = []
    for name in names:
        a, b = old.vrrp_instances.get(name), new.vrrp_instances.get(name)
        if a is None or b is None:
            return None
        if _rest(a, a) != _rest(b, a):
            return None
        if (a.priority == OWNER_PRIORITY) != (b.priority == OWNER_PRIORITY):
            return None
        if any(getattr(a, k) != getattr(b, k) for k in MACHINE_IN_PLACE):
            changes.append(InPlace(name, b.priority, b.nopreempt, b.preempt_delay,
                                   a.priority))
    return changes
