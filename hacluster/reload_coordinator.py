"""The reload coordinator: load the file again, refuse it whole or switch to it role by role.

`Reloader.reload()` (SIGHUP, the control API, or the supervisor handing a VRRP role its
new file) takes one configuration diff (`hacluster.config.diff`) and hands each role the
part it carries out, planned beforehand by a pure function of (old, new, running):

- the balancer: `LoadBalancer.reconfigure` (`hacluster.reload_balancer`,
  `hacluster.reload_checks`): unchanged virtual servers get no dataplane operation,
  unchanged checks keep their health;
- VRRP: `plan_vrrp_reload` (`hacluster.reload_plan`): unchanged units keep their
  machines, timers and VIPs, priority and preemption are taken in place, a changed
  unit is rebuilt keeping the mastership of an instance that is still the same router;
- notify, alerts, tracking, routes, lvs_sync and the API listeners take the new
  configuration in place, each keeping the state of what it still finds.

Everything that can refuse the file runs before anything is touched: the loader, the
same preflight as `hacluster run`, the single-instance locks, the load balancer's
checks. A refused reload changes nothing and says why, one problem per line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from hacluster import vmac_plan
from hacluster.accept_mode import AcceptFirewall
from hacluster.config.diff import ConfigDiff, diff_configs
from hacluster.config.model import Config, VrrpInstance
from hacluster.daemon_options import with_overrides
from hacluster.reload_plan import VrrpReloadPlan, plan_units, plan_vrrp_reload
from hacluster.vroutes import RouteFollower
from vrrp.vmac import Vmacs

if TYPE_CHECKING:
    from hacluster.balancer import Balancer
    from hacluster.daemon import Daemon
    from hacluster.roles.balancer import BalancerRole
    from vrrp.addresses import Vip
    from vrrp.driver import Member

log = logging.getLogger("hacluster.daemon")


class ReloadRefused(Exception):
    """A new configuration was refused; the message lists every problem, one per line."""


class Reloader:
    """Carries out the reloads of one daemon, one at a time, on the daemon's parts (the
    composition root's: the coordinator builds nothing of its own but a replacement)."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.counts: dict[str, int] = {"ok": 0, "refused": 0}

    async def reload(self, given: Config | None = None) -> tuple[bool, str]:
        """Load the config file again (or take `given`, already loaded) and switch to it
        by difference: (done, message)."""
        d = self.daemon
        await self._started()
        async with d._reload_lock:
            if not d._running:
                return False, "the daemon is not running (starting or stopping)"
            sd = d._sd
            if sd is not None:
                sd.reloading()
            started = time.monotonic()
            metrics = d._metrics
            try:
                message = await self._switch(given)
            except ReloadRefused as exc:
                self.counts["refused"] += 1
                if metrics is not None:
                    metrics.reload(False)
                lines = str(exc).splitlines() or ["refused"]
                log.error("reload refused, the running configuration is kept: %d problem(s)",
                          len(lines))
                for line in lines:
                    log.error("reload refused: %s", line)
                ok, message = False, str(exc)
            except Exception as exc:  # a bug: say so, keep running what runs
                log.exception("reload failed part way")
                self.counts["refused"] += 1
                if metrics is not None:
                    metrics.reload(False)
                ok, message = False, f"reload failed part way: {type(exc).__name__}: {exc}"
            else:
                self.counts["ok"] += 1
                if metrics is not None:
                    metrics.reload(True)
                log.info("%s in %.0f ms: %s",
                         "[vrrp role] reload applied" if d.options.role == "vrrp"
                         else "reload done", (time.monotonic() - started) * 1000,
                         message)
                ok = True
                if d.config.global_defs.fifo_write_vrrp_states_on_reload:
                    d.write_states_to_fifos()
            self._keep_locks()
            if sd is not None:
                sd.ready(status=f"reload {'done' if ok else 'refused'}")
            d._schedule_status()
            return ok, message

    async def _started(self) -> None:
        """A reload asked for during start-up (SIGHUP as the roles come up) waits until
        the daemon runs, rather than being lost; one during the stop is refused."""
        d = self.daemon
        if d.started.is_set() or d._stop.is_set():
            return
        log.info("reload waits for start-up to finish")
        waits = [asyncio.ensure_future(d.started.wait()), asyncio.ensure_future(d._stop.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    # ------------------------------------------------------------------ the steps

    async def _load(self, given: Config | None) -> tuple[Config, Mapping[str, int] | None]:
        """The new configuration (and where its keys are), or ReloadRefused."""
        d = self.daemon
        path = d.options.config_file
        if given is not None:
            # (the VRRP role is handed its file: the loader, YAML included, stays out of
            # it, as it stays out of its start; an import here holds the role's loop)
            return given, None
        if path is None:
            raise ReloadRefused("no configuration file to reload from")
        from hacluster.config import ConfigError
        from hacluster.config.loader import load_config_located

        try:
            loaded, lines = load_config_located(path)
        except ConfigError as exc:
            raise ReloadRefused(str(exc)) from None
        return with_overrides(loaded, d.options), lines

    def _check(self, old: Config, new: Config, lines: Mapping[str, int] | None,
               preflight_it: bool) -> None:
        """Everything that can refuse the file, before anything is touched: the same
        preflight as `hacluster run` and `check-config`, then the instance locks."""
        from hacluster.config.errors import Problem

        d = self.daemon
        problems: list[str] = []
        if new.global_defs.dataplane != old.global_defs.dataplane and d.balancer is not None:
            problems.append(str(Problem(
                str(d.options.config_file), (lines or {}).get("global_defs.dataplane", 0),
                "global_defs.dataplane",
                f"{old.global_defs.dataplane} -> {new.global_defs.dataplane} needs a restart",
            )))
        if preflight_it:  # (a config handed over was checked by whoever loaded it)
            from hacluster.preflight import preflight

            problems += [str(finding) for finding in preflight(new, lines)]
        if problems:
            raise ReloadRefused("\n".join(problems))
        self._lock_instances(new)

    async def _switch(self, given: Config | None = None) -> str:
        # (not from hacluster.loadbalancer: see LoadBalancerError's docstring)
        from hacluster.balancer import LoadBalancerError

        d = self.daemon
        new, lines = await self._load(given)
        if d.vrrp_role is None and (d._vmacs is not None or vmac_plan.wanted(new)):
            # Where VRRP runs (not the supervisor): the macvlans before the instances.
            d._vmacs = d._vmacs or Vmacs()
            new = await vmac_plan.prepare(new, d._vmacs)
        old = d.config
        diff = diff_configs(old, new)
        if diff.is_empty:
            if d.vrrp_role is not None and new.global_defs.fifo_write_vrrp_states_on_reload:
                await d.vrrp_role.reload(new)  # (the role writes the states' lines)
            return "no change"
        self._check(old, new, lines, preflight_it=given is None)
        lb = d.balancer
        if lb is None:  # the load balancer logs the same summary
            for line in diff.summary():
                log.info("[reload] %s", line)

        # The load balancer first: it is the one part that may still refuse.
        from hacluster.balancer import BalancerError
        from hacluster.daemon import StartupError

        new_lb: Balancer | BalancerRole | None = None
        if lb is not None:
            try:
                await lb.reconfigure(new)
            except (LoadBalancerError, BalancerError) as exc:
                raise ReloadRefused(str(exc)) from None
        elif new.virtual_servers:
            try:
                new_lb = await d._make_balancer(new)
            except StartupError as exc:
                raise ReloadRefused(str(exc)) from None
        # Nothing below refuses: log what fails and carry on with the rest.
        d.config = new
        role = d.vrrp_role
        if role is not None:
            await self._notify(new)
            if new_lb is not None:  # (a role process, running already)
                d._lb = new_lb
            ok, summary = await role.reload(new)
            if not ok:
                log.error("[reload] the VRRP role: %s", summary)
            await self._api(new)
            return summary
        # Instances going away first, so their STOP runs the scripts they had.
        plan = await self._vrrp_retire(old, new, diff)
        await self._notify(new)
        if new_lb is not None:
            d._lb = new_lb
            await new_lb.start()
        await d._follow_lvs_sync(new)
        await self._tracking(new)
        summary = await self._vrrp_start(old, new, plan)
        if d._vmacs is not None:
            await d._vmacs.remove_unused({s.ifname for s in vmac_plan.vmac_specs(new)})
        await self._api(new)
        return summary

    # ------------------------------------------------------------------ in place

    async def _api(self, new: Config) -> None:
        api = self.daemon._api
        if api is not None:
            from hacluster.api import ApiError, Listeners

            try:
                await api.reconfigure(Listeners.from_global_defs(new.global_defs))
            except ApiError as exc:
                log.error("[api] %s", exc)

    def _lock_instances(self, new: Config) -> None:
        """New instances take their single-instance locks (another daemon running one
        of them refuses the reload); instances gone release theirs."""
        locks = self.daemon.options.locks
        if locks is None:
            return
        from hacluster.single_instance import AlreadyRunning, lock_specs

        specs = lock_specs(new)
        try:
            locks.acquire(specs, wait=0)
        except (AlreadyRunning, OSError) as exc:
            raise ReloadRefused(str(exc)) from None

    def _keep_locks(self) -> None:
        """Hold the locks of the running configuration's instances, no others."""
        d = self.daemon
        if d.options.locks is not None:
            from hacluster.single_instance import lock_specs

            d.options.locks.keep_only(lock_specs(d.config))

    async def _notify(self, new: Config) -> None:
        from hacluster import scripts
        from hacluster.alert_outputs import wanted
        from hacluster.balancer import Balancer
        from hacluster.notify import Notifier, prepare_commands

        d = self.daemon
        alerts = wanted(new.global_defs)
        try:
            if d._notifier is not None:
                d._notifier.reconfigure(new)
            elif prepare_commands(new) or alerts or new.global_defs.event_log is not None:
                d._notifier = Notifier(new)
                if isinstance(d._lb, Balancer):  # (a role's come through here)
                    d._lb.set_notifier(d._notifier)
        except scripts.ScriptError as exc:
            log.error("notify: %s", exc)
        if d._alerts is not None:
            await d._alerts.reconfigure(new)
        elif alerts and d._notifier is not None:
            d._attach_alerts(new)

    async def _tracking(self, new: Config) -> None:
        from hacluster import scripts
        from hacluster.tracking import Tracking, plan_watches

        d = self.daemon
        try:
            if d._tracking is not None:
                await d._tracking.reconfigure(new)
            elif plan_watches(new):
                d._tracking = Tracking(new, d._on_track_change)
                await d._tracking.start(wait_first=False)
        except scripts.ScriptError as exc:
            log.error("tracking: %s", exc)
        if d._routes is not None:
            d._routes.reconfigure(new)
        elif RouteFollower.wanted(new):
            d._routes = RouteFollower(new)
            await d._routes.start()
        if d._accept is not None:
            await d._accept.reconfigure(new)
        elif AcceptFirewall.wanted(new):
            d._accept = d.new_accept_firewall(new)
            await d._accept.start()

    # ------------------------------------------------------------------ VRRP units

    async def _vrrp_retire(self, old: Config, new: Config, diff: ConfigDiff) -> VrrpReloadPlan:
        """Units that go or change leave the loop: a whole unit that goes resigns; the
        others detach, their masters keeping their VIPs for the unit that replaces them."""
        d = self.daemon
        speaker = d._speaker
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
            if name in d._maintenance and name in plan.renamed:  # the same router
                d._maintenance.add(plan.renamed[name])
            d._maintenance.discard(name)
            d._track_delta.pop(name, None)
            d._last_change.pop(name, None)
            if d._metrics is not None:
                d._metrics.forget_instance(name)
        return plan

    async def _vrrp_start(self, old: Config, new: Config, plan: VrrpReloadPlan) -> str:
        """Build and start the changed and added units; a summary of the VRRP reload."""
        from hacluster.daemon import StartupError

        d = self.daemon
        speaker = d._speaker
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
                driver = d._build_unit(new, key, unit, carry=frozenset(plan.carry),
                                       cleanup=not any(n in known for n in unit.names))
            except StartupError as exc:
                log.error("%s", exc)
                failed.append(key)
                continue
            if speaker is not None:
                await speaker.ready()
            d._start_unit(driver, plan.carry)
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

