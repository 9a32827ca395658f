"""Reload plans, pure: which VRRP units a new configuration keeps, changes, adds and removes.

`plan_vrrp_reload(old, new, running)` takes the two configurations and the state each
running instance is in, and says what a reload does, before anything is touched: units
kept as they run (or reconfigured in place: priority, preemption), units stopped (their
masters resign), units taken off the loop to be rebuilt (with the masters that keep
their mastership and VIPs, and those that resign), units added, instances forgotten.
What changed is read from the one configuration diff (`hacluster.config.diff`).

An instance keeps its mastership across a rebuild when it is still the same virtual
router (interface, VRID, family, version), and so does one renamed with nothing else
changed: like keepalived, which finds an instance of the old configuration in the new
one by its router, not by its name. `hacluster.vrrp_reload` carries the plan out. Does
no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hacluster.config.model import Config, VrrpInstance
from vrrp.machine import State
from vrrp.slotted import slotted

# The VRRP role imports this module (`plan_units`) before its first advert: the diff's
# modules, a reload's alone, are imported by `plan_vrrp_reload`.
if TYPE_CHECKING:
    from hacluster.config.diff import ConfigDiff
    from hacluster.reload_in_place import InPlace


@slotted
class VrrpReloadPlan:
    """How a reload sorts the VRRP units (keys of `plan_units`)."""

    kept: list[str]
    removed: list[str]
    added: list[str]
    changed: list[str] = dataclasses.field(default_factory=list)
    carry: set[str] = dataclasses.field(default_factory=set)  # masters that stay masters
    in_place: list[InPlace] = dataclasses.field(default_factory=list)  # kept, reconfigured
    stop: list[str] = dataclasses.field(default_factory=list)  # removed units that resign
    # units leaving the loop to be rebuilt -> their instances that resign (the others
    # are in `carry`, keeping mastership and VIPs)
    detach: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    forget: list[str] = dataclasses.field(default_factory=list)  # instances gone
    # old name -> new name: the same virtual router under another name (`carry` holds
    # the new name of a master among them)
    renamed: dict[str, str] = dataclasses.field(default_factory=dict)

    def successor(self, name: str) -> str:
        """The name an instance of the old configuration goes on under."""
        return self.renamed.get(name, name)


@slotted(frozen=True)
class _Unit:
    """What one driver runs: a sync group (by name) or a lone instance."""

    group: str | None
    names: tuple[str, ...]


def plan_units(config: Config) -> dict[str, _Unit]:
    """One unit per sync group and per instance in none, keyed `group G` / `instance I`."""
    units: dict[str, _Unit] = {}
    grouped: set[str] = set()
    for gname, group in config.vrrp_sync_groups.items():
        units[f"group {gname}"] = _Unit(gname, tuple(group.group))
        grouped.update(group.group)
    for name in config.vrrp_instances:
        if name not in grouped:
            units[f"instance {name}"] = _Unit(None, (name,))
    return units


def identity(inst: VrrpInstance) -> tuple[Any, ...]:
    """What makes an instance the same virtual router: a change is a new router."""
    return (inst.interface, inst.virtual_router_id, inst.family, inst.version)


def renames(diff: ConfigDiff) -> dict[str, str]:
    """Instances removed whose virtual router an added instance is (old -> new name)."""
    added: dict[tuple[Any, ...], str] = {}
    for inst in diff.vrrp_instances.added:
        added.setdefault(identity(inst), inst.name)
    out: dict[str, str] = {}
    for inst in diff.vrrp_instances.removed:
        new = added.pop(identity(inst), None)
        if new is not None:
            out[inst.name] = new
    return out


def plan_vrrp_reload(
    old: Config, new: Config, running: Mapping[str, State], diff: ConfigDiff | None = None
) -> VrrpReloadPlan:
    """What a reload from `old` to `new` does to the VRRP units, `running` being the state
    of each running instance (by name); `diff` is `diff_configs(old, new)` if known."""
    from hacluster.config.diff import diff_configs
    from hacluster.reload_in_place import in_place_changes

    d = diff if diff is not None else diff_configs(old, new)
    before, after = plan_units(old), plan_units(new)
    plan = VrrpReloadPlan(
        kept=[],
        removed=[k for k in before if k not in after],
        added=[k for k in after if k not in before],
        renamed=renames(d),
    )
    for key, unit in after.items():
        if key not in before:
            continue
        changes = in_place_changes(old, new, unit.names, unit.group, d)
        if changes is not None and before[key] == unit:
            plan.kept.append(key)
            plan.in_place += changes
        else:
            plan.changed.append(key)
    # Instances moving between units (into or out of a sync group, or renamed) are
    # rebuilt: their old unit is detached, not stopped.
    moved = {n for k in plan.added for n in after[k].names if n in old.vrrp_instances}
    moved |= set(plan.renamed)
    for key in plan.removed + plan.changed:
        names = before[key].names
        if key in plan.removed and not any(n in moved for n in names):
            plan.stop.append(key)
            continue
        resign = []
        for name in names:
            successor = plan.successor(name)
            inst = new.vrrp_instances.get(successor)
            same = inst is not None and identity(inst) == identity(old.vrrp_instances[name])
            if same and running.get(name) is State.MASTER:
                plan.carry.add(successor)
            else:
                resign.append(name)
        plan.detach[key] = tuple(resign)
    plan.forget = sorted(set(old.vrrp_instances) - set(new.vrrp_instances))
    return plan
