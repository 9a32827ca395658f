"""The VRRP part of a process: instances, sync groups, trackers, routes, VRRP notify.

`VrrpPart` is what the VRRP role's process runs (and a `--single-process` daemon beside
its balancer): the `vrrp.speaker.Speaker` (sockets, VIPs, address following, one driver
per sync group or lone instance), the trackers (`hacluster.tracking`), virtual routes
and rules (`hacluster.vroutes`), the no_accept firewall (`hacluster.accept_mode`),
vmac macvlans, maintenance and the priority deltas, the state changes told to the
notifier (`hacluster.notify_outputs`, its root's) and to whoever listens, the status
(`hacluster.vrrp_status`) and the VRRP metrics (`hacluster.vrrp_metrics`). It has the
interface every role has (`hacluster.roles.interface`); its `reconfigure` carries out
the VRRP reload plan (`hacluster.vrrp_reload`).

Maintenance lowers an instance's effective priority to 1 through a priority delta
added to the trackers' one: a backup with a higher priority and preemption takes over
after its master-down interval, and with no such peer the instance stays master (it
never leaves the group without one, as a fault would).

The VRRP role imports this module before its release: what only some configs use
(vmac, accept mode, routes, tracking, notify) is imported where it is used, see
`hacluster.vrrp_extras`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from hacluster import vrrp_extras
from hacluster.config.model import Config
from hacluster.daemon_options import DaemonOptions
from hacluster.notify_outputs import NotifyOutputs
from hacluster.roles.interface import Outcome, RoleFailed
from hacluster.vrrp_metrics import VrrpMetrics
from hacluster.vrrp_status import LastChange, StatusFile, role_status, status_dump
from vrrp.machine import State, StateChanged
from vrrp.sync_group import SyncGroup

if TYPE_CHECKING:
    from hacluster.accept_mode import AcceptFirewall
    from hacluster.metrics import Metrics
    from hacluster.reload_plan import _Unit
    from hacluster.tracking import TrackChange, Tracking
    from hacluster.vroutes import RouteFollower
    from vrrp.driver import Driver
    from vrrp.speaker import Speaker
    from vrrp.transport import Endpoint, Transport
    from vrrp.vmac import Vmacs

log = logging.getLogger("hacluster.daemon")


class VrrpPart:
    """The VRRP instances of a configuration and everything that follows their states."""

    def __init__(self, config: Config, options: DaemonOptions, outputs: NotifyOutputs,
                 metrics: Metrics | None = None) -> None:
        self.config = config
        self.options = options
        self.outputs = outputs  # the notifier: its root's (a balancer may share it)
        self.speaker: Speaker | None = None
        self.tracking: Tracking | None = None
        self.routes: RouteFollower | None = None  # virtual_routes/rules, static_*
        self.accept: AcceptFirewall | None = None  # no_accept: drop traffic to VIPs
        self.vmacs: Vmacs | None = None  # use_vmac macvlans
        self.maintenance: set[str] = set()
        self.track_delta: dict[str, int] = {}
        self.last_change: dict[str, LastChange] = {}
        self._group_states: dict[str, State] = {}
        #: The VRRP counters pushed to the metrics (built late when `metrics` is None).
        self.counters = VrrpMetrics(metrics)
        self.status_file = StatusFile(options.status_file, self.status_dump)
        #: Told of every instance state change (the VRRP role tells its supervisor).
        self.on_state_change: Callable[[str, State], None] | None = None
        #: What the status file adds (the reloads; a load balancer in this process).
        self.status_extra: Callable[[], dict[str, Any]] | None = None
        self.started_at = time.monotonic()

    # The VRRP parts live in the Speaker (vrrp.speaker); these read them.
    @property
    def drivers(self) -> list[Driver]:
        return [] if self.speaker is None else list(self.speaker.units.values())

    @property
    def driver_of(self) -> dict[str, Driver]:
        return {} if self.speaker is None else self.speaker.driver_of

    @property
    def endpoints(self) -> dict[str, Endpoint]:
        return {} if self.speaker is None else self.speaker.endpoints

    @property
    def transport(self) -> Transport | None:
        return None if self.speaker is None else self.speaker.transport

    # ------------------------------------------------------------------ the role

    async def prepare_config(self, config: Config) -> Config:
        """`config` with its vmac macvlans made (the instances run on them)."""
        if self.vmacs is None and not vrrp_extras.vmacs(config):
            return config
        from hacluster import vmac_plan
        from vrrp.vmac import Vmacs

        self.vmacs = self.vmacs or Vmacs()
        return await vmac_plan.prepare(config, self.vmacs)

    async def prepare(self) -> None:
        """Open the sockets, build every unit, start tracking, routes and the no_accept
        firewall, and wait until a takeover could be carried out in full; nothing sends
        an advert yet. RoleFailed names what cannot run here."""
        from hacluster import accept_mode
        from hacluster.reload_plan import plan_units
        from vrrp.speaker import Speaker, wait_for_sources
        from vrrp.vipstate import VipRecord

        config = self.config
        # Give the interfaces adverts come from a moment to get their address.
        await wait_for_sources(
            ((inst.interface, inst.family) for inst in config.vrrp_instances.values()
             if not inst.is_unicast and inst.mcast_src_ip is None), 5.0)
        state = self.options.vip_state_file
        self.speaker = Speaker(self._on_state,
                               vip_record=None if state is None else VipRecord(state))
        self.speaker.open(asyncio.get_running_loop())
        for key, unit in plan_units(config).items():
            self.build_unit(config, key, unit)
        await self._start_tracking()
        if vrrp_extras.routes(config):
            from hacluster.vroutes import RouteFollower

            self.routes = RouteFollower(config)
            await self.routes.start()
        if accept_mode.wanted(config):
            self.accept = self.new_accept_firewall(config)
            await self.accept.start()
        await self.speaker.ready(20.0)

    async def start(self) -> None:
        """Follow addresses and start every unit (after `prepare`)."""
        if self.speaker is None:
            await self.prepare()
        assert self.speaker is not None
        await self.speaker.follow_addresses()
        for driver in self.drivers:
            self.start_unit(driver)
        self.counters.start(self.speaker)
        self.schedule_status()

    async def reconfigure(self, config: Config) -> Outcome:
        """Carry out the VRRP reload plan (`hacluster.vrrp_reload`): never refused."""
        from hacluster import vrrp_reload

        return True, await vrrp_reload.apply(self, config)

    async def stop(self) -> None:
        """Masters resign with priority 0 and release their VIPs; the trackers, routes,
        the no_accept firewall and the macvlans go."""
        if self.tracking is not None:
            await self.tracking.stop()
        if self.speaker is not None:
            await self.speaker.stop()
        if self.routes is not None:
            await self.routes.stop()
        if self.accept is not None:
            await self.accept.stop()
        if self.vmacs is not None:
            await self.vmacs.remove_all()
        await self.counters.stop()

    async def close(self) -> None:
        """The last status written, the sockets closed (after `stop`, or a failed start)."""
        self.status_file.write()
        if self.speaker is not None:
            await self.speaker.close()

    async def snapshot(self) -> dict[str, Any]:
        """The instances and VRRP counters, as the control API shows them."""
        return role_status(self)

    # ------------------------------------------------------------------ building

    def new_accept_firewall(self, config: Config) -> AcceptFirewall:
        """The no_accept table's keeper, recording the table in the VIP state file."""
        from hacluster.accept_mode import AcceptFirewall

        record = None if self.speaker is None else self.speaker.vip_record
        return AcceptFirewall(config, record=record)

    def build_unit(self, config: Config, key: str, unit: _Unit, *,
                   carry: frozenset[str] = frozenset(), cleanup: bool = True) -> Driver:
        """Build (not start) the driver of one unit; RoleFailed names the instance."""
        from hacluster.config.lower_vrrp import lower_instance, unsupported_instance
        from vrrp.speaker import SpeakerError

        assert self.speaker is not None
        plans = []
        for name in unit.names:
            inst = config.vrrp_instances[name]
            for note in unsupported_instance(inst):
                log.warning("[%s] %s", name, note)
            try:
                plans.append(lower_instance(config, name))
            except ValueError as exc:
                raise RoleFailed(f"[{name}] {exc}") from exc
        try:
            return self.speaker.build_unit(key, unit.group, plans, carry=carry,
                                           cleanup=cleanup)
        except SpeakerError as exc:
            raise RoleFailed(str(exc)) from exc

    def start_unit(self, driver: Driver, carry: Iterable[str] = ()) -> None:
        """Bring a built driver's machines up to date with tracking and maintenance,
        start it, and put the members that were MASTER before a reload back there."""
        assert self.speaker is not None
        for name in driver.members:
            if self.tracking is not None:
                for change in self.tracking.replay(name):
                    self.on_track_change(change)
            if name in self.maintenance:
                self._push_delta(name)
        self.speaker.start_unit(driver, carry)

    async def _start_tracking(self) -> None:
        """Start track_script / track_interface / track_file, if the config has any.

        Their starting picture (priority deltas, faults) reaches the machines before
        the instances start, so an instance whose check fails never becomes MASTER.
        """
        if not vrrp_extras.tracking(self.config):
            return
        from hacluster.tracking import plan_watches

        if not plan_watches(self.config):
            return
        from hacluster import scripts
        from hacluster.tracking import Tracking

        try:
            self.tracking = Tracking(self.config, self.on_track_change)
        except scripts.ScriptError as exc:
            raise RoleFailed(f"tracking: {exc}") from exc
        await self.tracking.start()

    # ------------------------------------------------------------------ events

    def _on_state(self, name: str, change: StateChanged) -> None:
        if self.routes is not None:
            self.routes.on_state(name, change.old, change.new)
        if self.accept is not None:
            self.accept.on_state(name, change.new is State.MASTER)
        self.last_change[name] = LastChange(change, time.monotonic(), time.time())
        self.schedule_status()
        if self.speaker is not None and self.speaker.is_quiet(name):
            return
        self.counters.transition(name, str(change.new))
        if self.on_state_change is not None:
            self.on_state_change(name, change.new)
        notifier = self.outputs.notifier
        if notifier is None:
            return
        driver = self.driver_of[name]
        priority = driver.members[name].machine.priority
        notifier.vrrp_state(name, change.new, priority, change.reason)
        group = driver.group
        core = driver.core
        if group is not None and isinstance(core, SyncGroup):
            # keepalived notifies a group when the group as a whole changes state
            # (INITIALIZE once running means it stops: notified as STOP).
            state, last = core.state, self._group_states.get(group)
            if state is not last:
                self._group_states[group] = state
                if not (state is State.INITIALIZE and last is None):
                    notifier.sync_group_state(group, state, change.reason)

    def on_track_change(self, change: TrackChange) -> None:
        from hacluster.tracking import deliver
        from vrrp.machine import PriorityChanged

        name = change.instance
        if isinstance(change.event, PriorityChanged):
            self.track_delta[name] = change.event.delta
        driver = self.driver_of.get(name)
        if driver is None:  # being rebuilt: its new machine gets a replay
            return
        if isinstance(change.event, PriorityChanged):
            self._push_delta(name)
        else:
            deliver(change, driver)
        self.schedule_status()

    def _push_delta(self, name: str) -> None:
        """The machine's priority delta: the trackers' plus maintenance's (down to 1)."""
        driver = self.driver_of.get(name)
        if driver is None:
            return
        delta = self.track_delta.get(name, 0)
        if name in self.maintenance:
            delta = -1000  # clamped to priority 1 by the machine
        machine = driver.members[name].machine
        before = machine.priority
        driver.set_priority_delta(name, delta)
        inst = self.config.vrrp_instances.get(name)
        notifier = self.outputs.notifier
        if notifier is None or machine.priority == before or inst is None:
            return
        from hacluster.notify import priority_notified  # imported with the notifier

        if priority_notified(inst):
            notifier.vrrp_priority(name, machine.state is State.MASTER, machine.priority)

    # ------------------------------------------------------------------ control

    async def set_maintenance(self, name: str, on: bool) -> bool:
        """Maintenance on or off for instance `name`; False: no such instance."""
        if name not in self.driver_of:
            return False
        if on == (name in self.maintenance):
            return True
        if on:
            self.maintenance.add(name)
        else:
            self.maintenance.discard(name)
        log.info("[%s] maintenance %s: effective priority %s", name, "on" if on else "off",
                 "1" if on else "restored", extra={"instance": name, "event": "maintenance"})
        self._push_delta(name)
        self.schedule_status()
        return True

    def write_states(self) -> None:
        """fifo_write_vrrp_states_on_reload: each instance's and group's state."""
        alerts = self.outputs.alerts
        if alerts is None:
            return
        from hacluster.alert_outputs import state_events

        instances = {name: (d.members[name].machine.state, d.members[name].machine.priority)
                     for name, d in self.driver_of.items()}
        groups = {d.group: d.core.state for d in self.drivers
                  if d.group is not None and isinstance(d.core, SyncGroup)}
        alerts.write_states(state_events(self.config, instances, groups))

    # ------------------------------------------------------------------ status

    def status_dump(self, generation: int = 0) -> dict[str, Any]:
        """Everything a status dump shows (`hacluster.vrrp_status.status_dump`)."""
        return status_dump(self, generation)

    def schedule_status(self) -> None:
        self.status_file.schedule()

    def dump(self) -> None:
        """SIGUSR1: log every instance and counter, and refresh the status file."""
        self.status_file.dump()

    async def metric_families(self) -> list[Any]:
        """The VRRP metric families (built first if they are late)."""
        await self.counters.ready()
        return self.counters.families(self.speaker)
