"""A reload carried out on the VRRP part, as `hacluster.reload_plan` planned it.

`apply(part, new)` takes the VRRP part of this process from its configuration to
`new`: units that go or change leave the loop first (a whole unit that goes resigns,
so its STOP runs the scripts it had; the masters of a rebuilt unit that is still the
same router keep their VIPs for its successor), then notify, alerts, tracking, routes
and the no_accept firewall take `new` in place, then the changed and added units are
built and started, and macvlans no longer used go. Priority and preemption changes are
taken in place by the running machines. Nothing here refuses: what fails is logged
and the rest carried on with (the coordinator refused what it could beforehand).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from hacluster import vmac_plan
from hacluster.accept_mode import AcceptFirewall
from hacluster.config.diff import ConfigDiff, diff_configs
from hacluster.config.model import Config, VrrpInstance
from hacluster.reload_plan import VrrpReloadPlan, plan_units, plan_vrrp_reload
from hacluster.roles.interface import RoleFailed
from hacluster.vroutes import RouteFollower

if TYPE_CHECKING:
    from hacluster.vrrp_part import VrrpPart
    from vrrp.addresses import Vip
    from vrrp.driver import Member

log = logging.getLogger("hacluster.daemon")


def _vrrp_side(config: Config) -> Config:
    """What the VRRP units are planned from: the virtual servers are the balancer's."""
    return dataclasses.replace(config, virtual_servers=())


async def apply(part: VrrpPart, new: Config) -> str:
    """Switch `part` to `new` (prepared: `VrrpPart.prepare_config`); a summary."""
    old = part.config
    diff = diff_configs(_vrrp_side(old), _vrrp_side(new))
    part.config = new
    # Instances going away first, so their STOP runs the scripts they had.
    plan = await _retire(part, old, new, diff)
    await part.outputs.reconfigure(new)
    await _in_place(part, new)
    summary = await _start(part, old, new, plan)
    if part.vmacs is not None:
        await part.vmacs.remove_unused({s.ifname for s in vmac_plan.vmac_specs(new)})
    return summary


async def _in_place(part: VrrpPart, new: Config) -> None:
    """Tracking, routes and the no_accept firewall take `new`, keeping what they find."""
    from hacluster import scripts
    from hacluster.tracking import Tracking, plan_watches

    try:
        if part.tracking is not None:
            await part.tracking.reconfigure(new)
        elif plan_watches(new):
            part.tracking = Tracking(new, part.on_track_change)
            await part.tracking.start(wait_first=False)
    except scripts.ScriptError as exc:
        log.error("tracking: %s", exc)
    if part.routes is not None:
        part.routes.reconfigure(new)
    elif RouteFollower.wanted(new):
        part.routes = RouteFollower(new)
        await part.routes.start()
    if part.accept is not None:
        await part.accept.reconfigure(new)
    elif AcceptFirewall.wanted(new):
        part.accept = part.new_accept_firewall(new)
        await part.accept.start()


async def _retire(part: VrrpPart, old: Config, new: Config,
                  diff: ConfigDiff) -> VrrpReloadPlan:
    """Units that go or change leave the loop: a whole unit that goes resigns; the
    others detach, their masters keeping their VIPs for the unit that replaces them."""
    speaker = part.speaker
    units = {} if speaker is None else speaker.units
    running = {name: driver.members[name].machine.state
               for driver in units.values() for name in driver.members}
    plan = plan_vrrp_reload(old, new, running, diff)
    leftovers: list[Vip] = []
    if speaker is not None:
        for key in plan.stop:
            await speaker.stop_unit(key)
        for key, resign in plan.detach.items():
            for name, member in units[key].members.items():
                successor = plan.successor(name)
                if successor in plan.carry:
                    leftovers += dropped_vips(member, new.vrrp_instances[successor])
            await speaker.detach(key, resign)
    if leftovers and speaker is not None and speaker.addresses is not None:
        for vip, why in await speaker.addresses.remove(leftovers):
            log.error("cannot remove VIP %s no longer configured: %s", vip, why)
        log.info("removed VIPs no longer configured: %s",
                 ", ".join(str(v) for v in leftovers))
    for name in plan.forget:
        if name in part.maintenance and name in plan.renamed:  # the same router
            part.maintenance.add(plan.renamed[name])
        part.maintenance.discard(name)
        part.track_delta.pop(name, None)
        part.last_change.pop(name, None)
        part.counters.forget(name)
    return plan


async def _start(part: VrrpPart, old: Config, new: Config, plan: VrrpReloadPlan) -> str:
    """Build and start the changed and added units; a summary of the VRRP reload."""
    speaker = part.speaker
    after = plan_units(new)
    for change in plan.in_place:
        driver = None if speaker is None else speaker.driver_of.get(change.instance)
        if driver is not None:
            driver.reconfigure(change.instance, change.priority, change.nopreempt,
                               change.preempt_delay)
    failed = []
    known = set(old.vrrp_instances) | set(plan.renamed.values())
    for key in plan.changed + plan.added:
        unit = after[key]
        try:
            driver = part.build_unit(new, key, unit, carry=frozenset(plan.carry),
                                     cleanup=not any(n in known for n in unit.names))
        except RoleFailed as exc:
            log.error("%s", exc)
            failed.append(key)
            continue
        if speaker is not None:
            await speaker.ready()
        part.start_unit(driver, plan.carry)
    parts = []
    for what, keys in (("kept", plan.kept), ("rebuilt", plan.changed),
                       ("added", plan.added), ("removed", plan.removed),
                       ("failed", failed)):
        if keys:
            parts.append(f"{what} {', '.join(keys)}")
    if plan.in_place:
        parts.append("changed in place " + ", ".join(c.describe() for c in plan.in_place))
    if plan.renamed:
        parts.append("renamed " + ", ".join(f"{a} -> {b}" for a, b in plan.renamed.items()))
    if plan.carry:
        parts.append(f"mastership kept by {', '.join(sorted(plan.carry))}")
    return "; ".join(parts) or "VRRP unchanged"


def dropped_vips(member: Member, inst: VrrpInstance) -> list[Vip]:
    """A kept master's VIPs that the new settings no longer hold."""
    wanted = {
        (v.address, v.dev or inst.interface)
        for v in (*inst.virtual_ipaddress, *inst.virtual_ipaddress_excluded)
    }
    return [vip for vip in member.vips.values() if (vip.address, vip.dev) not in wanted]
