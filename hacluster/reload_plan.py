"""Reload plans, pure: which VRRP units a new configuration keeps, changes, adds and removes.

`plan_vrrp_reload(old, new, running)` takes the two configurations and the state each
running instance is in, and says what a reload does, before anything is touched: units
kept as they run (or reconfigured in place: priority, preemption), units stopped (their
masters resign), units taken off the loop to be rebuilt (with the masters that keep
their mastership and VIPs, and those that resign), units added, instances forgotten.
The daemon's VRRP part carries the plan out. Does no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hacluster.config.model import Config, VrrpInstance, VrrpSyncGroup
from hacluster.reload_in_place import TAKEN_BY_OTHERS, InPlace, in_place_changes
from vrrp.machine import State


@dataclass(slots=True)
class _ReloadPlan:
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


@dataclass(frozen=True, slots=True)
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


#: Settings carried out by tracking and notify, which take a new config in place: a
#: change to these alone does not rebuild a unit.
_IN_PLACE: dict[str, Any] = TAKEN_BY_OTHERS


def unit_settings(config: Config, unit: _Unit) -> tuple[Any, ...]:
    """Everything a unit's machines are built from: equal settings mean the unit is kept
    as it runs (tracking and notify settings are not among them: they change in place)."""
    g = config.global_defs
    group: VrrpSyncGroup | None = (
        config.vrrp_sync_groups.get(unit.group) if unit.group is not None else None
    )
    return (
        None if group is None else _without_in_place(group),
        tuple(_without_in_place(config.vrrp_instances[n]) for n in unit.names),
        g.vrrp_garp_interval,
        g.vrrp_gna_interval,
    )


def _without_in_place(obj: VrrpSyncGroup | VrrpInstance) -> Any:
    """`obj` with the settings taken in place blanked (those its class has)."""
    names = {f.name for f in dataclasses.fields(obj)}
    return dataclasses.replace(obj, **{k: v for k, v in _IN_PLACE.items() if k in names})


def identity(inst: VrrpInstance) -> tuple[Any, ...]:
    """What makes an instance the same virtual router: a change is a new router."""
    return (inst.interface, inst.virtual_router_id, inst.family, inst.version)


def plan_vrrp_reload(old: Config, new: Config, running: Mapping[str, State]) -> _ReloadPlan:
    """What a reload from `old` to `new` does to the VRRP units, `running` being the state
    of each running instance (by name)."""
    before, after = plan_units(old), plan_units(new)
    plan = _ReloadPlan(
        kept=[k for k in after if k in before
              and unit_settings(old, before[k]) == unit_settings(new, after[k])],
        removed=[k for k in before if k not in after],
        added=[k for k in after if k not in before],
    )
    plan.changed = [k for k in after if k in before and k not in plan.kept]
    # Only priority or preemption changed: the running machines take it in place.
    for key in list(plan.changed):
        unit = after[key]
        changes = in_place_changes(old, new, unit.names, unit.group)
        if changes is not None and before[key] == unit:
            plan.changed.remove(key)
            plan.kept.append(key)
            plan.in_place += changes
    # Instances moving between units (into or out of a sync group) are rebuilt.
    moved = {n for k in plan.added for n in after[k].names if n in old.vrrp_instances}
    for key in plan.removed + plan.changed:
        names = before[key].names
        if key in plan.removed and not any(n in moved for n in names):
            plan.stop.append(key)
            continue
        resign = []
        for name in names:
            inst = new.vrrp_instances.get(name)
            same = inst is not None and identity(inst) == identity(old.vrrp_instances[name])
            if same and running.get(name) is State.MASTER:
                plan.carry.add(name)
            else:
                resign.append(name)
        plan.detach[key] = tuple(resign)
    plan.forget = sorted(set(old.vrrp_instances) - set(new.vrrp_instances))
    return plan
