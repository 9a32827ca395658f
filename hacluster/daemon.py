"""The hacluster daemon: wires VRRP, tracking, notify, the load balancer and the control API.

`Daemon.run()` builds everything a configuration holds and runs it until SIGTERM/SIGINT:

- VRRP instances and sync groups (one `vrrp.driver.Driver` per lone instance or group),
  trackers (`hacluster.tracking`), notify scripts (`hacluster.notify`);
- the load balancer (`hacluster.loadbalancer`): health checks, policy and the dataplane
  named by `global_defs.dataplane`, reconciled at start (so a restart after a crash
  finds its table and duplicates nothing), on every health change and periodically;
- the control API and Prometheus metrics (`hacluster.api`, `hacluster.metrics`);
- systemd notification: READY after start, WATCHDOG pings, RELOADING, STOPPING.

Reload (SIGHUP or the API) loads and validates the file again, and refuses it — every
problem logged, nothing changed — when it does not load, when a notify or track script
cannot be used, when a check cannot be run, when the dataplane cannot carry out a
virtual server, when an interface is missing, or when it changes `dataplane` (a
restart). Otherwise it works by difference: a lone instance or sync group whose settings
did not change keeps its machine, timers and VIPs (changed tracking or notify settings
are taken in place by the trackers and the notifier); a changed one is rebuilt, and
keeps its mastership when its identity (interface, VRID, family, version) is the same —
keepalived's reload keeps the state of an instance it still finds by name — with no
BACKUP/MASTER notification, VIPs it no longer has removed and new ones added; one whose
identity changed resigns (priority 0, VIPs released) and starts again as configured.
Removed instances resign, release their VIPs and notify STOP; new ones start. Real
servers and checks are matched by the load balancer itself, so unchanged ones keep
their health and their dataplane entries are not rewritten.

Maintenance (`Controller.maintenance`) lowers an instance's effective priority to 1
through a priority delta added to the trackers' one: a backup with a higher priority
and preemption takes over after its master-down interval, and with no such peer the
instance stays master (it never leaves the group without one, as a fault would).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from hacluster import vmac_plan
from hacluster.accept_mode import AcceptFirewall
from hacluster.apitypes import (
    InstanceStatus,
    Status,
    Transition,
    UnknownInstance,
    UnknownVirtualServer,
)
from hacluster.balancer import dataplane_problems  # noqa: F401  (known here by callers)
from hacluster.config.model import Config, VrrpInstance
from hacluster.daemon_options import DaemonOptions, with_overrides
from hacluster.logs import setup_logging
from hacluster.reload_plan import (  # noqa: F401  (names the daemon's callers know)
    _ReloadPlan,
    _Unit,
    identity,
    plan_units,
    plan_vrrp_reload,
)
from hacluster.vroutes import RouteFollower
from vrrp.machine import State, StateChanged
from vrrp.sync_group import SyncGroup
from vrrp.vmac import Vmacs

if TYPE_CHECKING:
    from hacluster.alert_outputs import AlertOutputs
    from hacluster.api import ApiServer
    from hacluster.balancer import Balancer
    from hacluster.ipvs.backend import Backend
    from hacluster.lvs_sync import SyncFollower
    from hacluster.metrics import Metrics
    from hacluster.notify import Notifier
    from hacluster.roles.balancer import BalancerRole
    from hacluster.roles.vrrp import VrrpRole
    from hacluster.sdnotify import Notifier as SdNotifier
    from hacluster.tracking import TrackChange, Tracking
    from vrrp.addresses import Addresses, Vip
    from vrrp.addrwatch import AddressEvent, AddressMonitor
    from vrrp.announce import FrameSockets
    from vrrp.driver import Driver, Member
    from vrrp.transport import Endpoint, ReceivedAdvert, Transport

log = logging.getLogger("hacluster.daemon")

#: Seconds between two pushes of VRRP counters (adverts, drops, priority) to the metrics.
METRICS_INTERVAL = 1.0


def _settle_gc() -> None:
    """Start-up is over: what is alive now lives as long as the process, and full
    collections need not walk it again (see healthchecks.gcsettle)."""
    from healthchecks.gcsettle import settle  # imported here, as the checkers are

    settle()


class StartupError(Exception):
    """The configuration cannot be run on this machine (missing interface, no address...)."""


class ReloadRefused(Exception):
    """A new configuration was refused; the message lists every problem, one per line."""


def state_label(state: State) -> str:
    """The state as the API and metrics name it: as the logs do (INITIALIZE...)."""
    return str(state)


@dataclass(frozen=True, slots=True)
class _LastChange:
    change: StateChanged
    at: float  # monotonic
    wall: float


class Daemon:
    """Owns the kernel-facing parts, one driver per instance or sync group, and the rest."""

    def __init__(self, config: Config, options: DaemonOptions) -> None:
        self.options = options
        self.config = with_overrides(config, options)
        self._units: dict[str, Driver] = {}
        self._driver_of: dict[str, Driver] = {}
        self._endpoints: dict[str, Endpoint] = {}
        # instance -> the fault raised while its interface has no address to send from
        self._no_source: dict[str, str] = {}
        self._address_monitor: AddressMonitor | None = None
        self._transport: Transport | None = None
        self._addresses: Addresses | None = None
        self._frames: FrameSockets | None = None
        self._tracking: Tracking | None = None
        self._routes: RouteFollower | None = None  # virtual_routes/rules, static_*
        self._accept: AcceptFirewall | None = None  # no_accept: drop traffic to VIPs
        self._vmacs: Vmacs | None = None  # use_vmac macvlans
        self._notifier: Notifier | None = None
        self._alerts: AlertOutputs | None = None
        self._lvs_sync: SyncFollower | None = None
        self._lb: Balancer | BalancerRole | None = None
        self._backend: Backend | None = None  # lvs_sync_daemon's (the balancer has its own)
        self._api: ApiServer | None = None
        self._metrics: Metrics | None = None
        self._sd: SdNotifier | None = None
        self._group_states: dict[str, State] = {}
        self._last_change: dict[str, _LastChange] = {}
        self._track_delta: dict[str, int] = {}
        self._maintenance: set[str] = set()
        self._quiet: set[str] = set()  # instances whose transitions are not news (reload)
        self._preparing: list[Coroutine[Any, Any, None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reload_lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._running = False
        self._status_generation = 0
        self._status_pending = False
        self._started = time.monotonic()
        self._pushed: dict[tuple[str, str], int] = {}
        self.reloads: dict[str, int] = {"ok": 0, "refused": 0}
        self._vrrp_role: VrrpRole | None = None  # the supervisor's VRRP role
        #: Told of every instance state change (the VRRP role tells its supervisor).
        self.on_state_change: Callable[[str, State], None] | None = None
        self._role_states: dict[str, State] = {}  # the VRRP role's instances, as it said
        self.started = asyncio.Event()  # set once the instances run

    @property
    def drivers(self) -> list[Driver]:
        return list(self._units.values())

    @property
    def balancer(self) -> Balancer | BalancerRole | None:
        """The balancer: in this process (`--single-process`) or its role process."""
        return self._lb

    @property
    def vrrp_role(self) -> VrrpRole | None:
        return self._vrrp_role

    @property
    def started_at(self) -> float:
        """When this daemon was built (monotonic)."""
        return self._started

    # ------------------------------------------------------------------ building VRRP

    def _open_vrrp(self, loop: asyncio.AbstractEventLoop) -> None:
        from vrrp.addresses import Addresses
        from vrrp.announce import FrameSockets
        from vrrp.transport import Transport
        from vrrp.vipstate import VipRecord

        state = self.options.vip_state_file
        self._addresses = Addresses(None if state is None else VipRecord(state))
        self._transport = Transport(loop)
        self._frames = FrameSockets()

    def _build_unit(
        self,
        config: Config,
        key: str,
        unit: _Unit,
        *,
        carry: frozenset[str] = frozenset(),
        cleanup: bool = True,
    ) -> Driver:
        """Build (not start) the driver of one unit; StartupError names the instance."""
        from vrrp.driver import Driver
        from vrrp.transport import TransportError

        assert self._addresses is not None
        from hacluster.config.lower import unsupported_instance

        members: list[Member] = []
        try:
            for name in unit.names:
                for note in unsupported_instance(config.vrrp_instances[name]):
                    log.warning("[%s] %s", name, note)
                members.append(self._member(config, name, config.vrrp_instances[name],
                                            master=name in carry, cleanup=cleanup))
        except (TransportError, ValueError, StartupError) as exc:
            for name in unit.names:
                endpoint = self._endpoints.pop(name, None)
                if endpoint is not None:
                    endpoint.close()
            if isinstance(exc, StartupError):
                raise
            raise StartupError(f"[{name}] {exc}") from exc
        driver = Driver(members, self._addresses, group=unit.group, on_state=self._on_state,
                        loop=asyncio.get_running_loop())
        self._units[key] = driver
        for name in unit.names:
            self._driver_of[name] = driver
        return driver

    def _member(
        self, config: Config, name: str, inst: VrrpInstance, *, master: bool, cleanup: bool
    ) -> Member:
        from hacluster.config.lower import lower_instance
        from vrrp.announce import Announcer
        from vrrp.driver import Member
        from vrrp.machine import Machine

        assert self._transport is not None and self._frames is not None
        plan = lower_instance(config, name)
        endpoint = self._transport.register(
            plan.interface, plan.binding, lambda rx: self._on_advert(name, rx)
        )
        self._endpoints[name] = endpoint
        params = plan.params
        self._no_source.pop(name, None)
        if endpoint.source is None:
            # keepalived's way: the instance waits in FAULT until the interface has an
            # address (followed from rtnetlink events); the placeholder until then.
            self._no_source[name] = _no_source_cause(inst.interface, inst.family)
        else:
            params = dataclasses.replace(params, primary_ip=endpoint.source)
        vips = dict(plan.vips)
        announcer = Announcer(name, plan.announce, self._frames)
        self._preparing.append(announcer.prepare(list(vips.values())))
        return Member(
            machine=Machine(params),
            sender=endpoint,
            template=plan.template,
            vips=vips,
            announcer=announcer,
            # An address owner's VIPs are its own addresses: never remove them; a
            # master kept across a reload holds them.
            cleanup_at_start=cleanup and not plan.owner and not master,
        )

    def _start_unit(self, driver: Driver, carry: Iterable[str] = ()) -> None:
        """Bring a built driver's machines up to date with tracking and maintenance,
        start it, and put the members that were MASTER before a reload back there."""
        for name in driver.members:
            if self._tracking is not None:
                for change in self._tracking.replay(name):
                    self._on_track_change(change)
            if name in self._maintenance:
                self._push_delta(name)
            cause = self._no_source.get(name)
            if cause is not None:
                log.warning("[%s] %s: FAULT until it has one", name, cause)
                driver.raise_fault(name, cause)
        carried = [n for n in carry if n in driver.members]
        self._quiet.update(carried)
        try:
            driver.start()
            for name in carried:
                driver.force_master(name, "reload: mastership kept")
        finally:
            self._quiet.difference_update(carried)

    async def _detach(self, key: str, resign: Iterable[str]) -> Driver:
        """Take a unit off the loop without touching the rest of its members' state:
        those in `resign` shut down (a master sends priority 0 and releases its VIPs),
        the others keep their VIPs for the unit that replaces them."""
        driver = self._units.pop(key)
        await driver.detach(resign=resign)
        self._forget_members(driver)
        return driver

    def _forget_members(self, driver: Driver) -> None:
        for name in driver.members:
            if self._driver_of.get(name) is driver:
                del self._driver_of[name]
                self._no_source.pop(name, None)
                endpoint = self._endpoints.pop(name, None)
                if endpoint is not None:
                    endpoint.close()

    # ------------------------------------------------------------------ events

    def _on_advert(self, name: str, rx: ReceivedAdvert) -> None:
        driver = self._driver_of.get(name)
        if driver is None:
            return
        a = rx.advert
        driver.advert_received(name, rx.src, a.priority, a.max_advert_int, rx.age)

    def _on_state(self, name: str, change: StateChanged) -> None:
        if self._routes is not None:
            self._routes.on_state(name, change.old, change.new)
        if self._accept is not None:
            self._accept.on_state(name, change.new is State.MASTER)
        self._last_change[name] = _LastChange(change, time.monotonic(), time.time())
        self._schedule_status()
        if name in self._quiet:
            return
        if self._metrics is not None:
            self._metrics.vrrp_transition(name, state_label(change.new))
        if self._lvs_sync is not None:
            self._lvs_sync.vrrp_state(name, change.new)
        if self.on_state_change is not None:
            self.on_state_change(name, change.new)
        notifier = self._notifier
        if notifier is None:
            return
        driver = self._driver_of[name]
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

    # ------------------------------------------------------------------ addresses

    def _on_address(self, event: AddressEvent) -> None:
        """An address came or went: sources follow it, a master's VIP gone is checked."""
        if not self._running:
            return
        for name, endpoint in list(self._endpoints.items()):
            if (endpoint.channel.ifname == event.ifname
                    and endpoint.binding.family == event.address.version):
                self._refresh_source(name)
        if not event.added:
            self._check_masters_vips(
                lambda vip: vip.dev == event.ifname and vip.address.ip == event.address
            )

    def _on_addresses_lost(self) -> None:
        """Address events were lost: read every source again, check every master's VIPs."""
        if not self._running:
            return
        for name in list(self._endpoints):
            self._refresh_source(name)
        self._check_masters_vips(lambda vip: True)

    def _check_masters_vips(self, suspect: Callable[[Vip], bool]) -> None:
        """Check whether the suspect VIPs of every MASTER are still there."""
        for name, driver in list(self._driver_of.items()):
            member = driver.members[name]
            if member.machine.state is State.MASTER:
                for label, vip in member.vips.items():
                    if suspect(vip):
                        self._spawn(self._check_vip_gone(name, label, vip), f"vip-check {name}")

    def _our_vips(self, ifname: str) -> set[Any]:
        return {
            vip.address.ip
            for driver in self._units.values()
            for member in driver.members.values()
            for vip in member.vips.values()
            if vip.dev == ifname
        }

    def _refresh_source(self, name: str) -> None:
        """Adverts come from the interface's address as it is now; none: FAULT."""
        endpoint = self._endpoints.get(name)
        driver = self._driver_of.get(name)
        if endpoint is None or driver is None or not endpoint.follows_interface:
            return
        ifname, family = endpoint.channel.ifname, endpoint.binding.family
        new = endpoint.refresh_source()
        member = driver.members[name]
        cause = self._no_source.get(name)
        if cause is None and new == member.machine.params.primary_ip:
            return  # the common case (e.g. our own VIPs coming and going): nothing to do
        if new is not None and new in self._our_vips(ifname):
            new = None  # only a VIP left on the interface: not an address of our own
        if new is None:
            if cause is None:
                cause = self._no_source[name] = _no_source_cause(ifname, family)
                log.warning("[%s] %s", name, cause)
                driver.raise_fault(name, cause)
            return
        if new != member.machine.params.primary_ip:
            log.info("[%s] adverts now come from %s (%s)", name, new, ifname)
            driver.source_changed(name, new)
        if cause is not None:
            del self._no_source[name]
            driver.clear_fault(name, cause)

    async def _check_vip_gone(self, name: str, label: str, vip: Vip) -> None:
        driver = self._driver_of.get(name)
        monitor = self._address_monitor
        if driver is None or monitor is None:
            return
        await driver.drain()  # our own address changes first: the event may be theirs
        if await monitor.present(vip.dev, vip.address.ip):
            return
        member = driver.members.get(name)
        if (self._driver_of.get(name) is driver and member is not None
                and member.machine.state is State.MASTER and label in member.vips):
            log.warning("[%s] VIP %s was removed by someone else: resigning so the "
                        "election runs again", name, vip)
            driver.vip_removed(name, label)

    def _on_track_change(self, change: TrackChange) -> None:
        from hacluster.tracking import deliver
        from vrrp.machine import PriorityChanged

        name = change.instance
        if isinstance(change.event, PriorityChanged):
            self._track_delta[name] = change.event.delta
        driver = self._driver_of.get(name)
        if driver is None:  # being rebuilt: its new machine gets a replay
            return
        if isinstance(change.event, PriorityChanged):
            self._push_delta(name)
        else:
            deliver(change, driver)
        self._schedule_status()

    def _push_delta(self, name: str) -> None:
        """The machine's priority delta: the trackers' plus maintenance's (down to 1)."""
        driver = self._driver_of.get(name)
        if driver is None:
            return
        delta = self._track_delta.get(name, 0)
        if name in self._maintenance:
            delta = -1000  # clamped to priority 1 by the machine
        from hacluster.notify import priority_notified

        machine = driver.members[name].machine
        before = machine.priority
        driver.set_priority_delta(name, delta)
        inst = self.config.vrrp_instances.get(name)
        if (machine.priority != before and inst is not None and priority_notified(inst)
                and self._notifier is not None):
            self._notifier.vrrp_priority(name, machine.state is State.MASTER, machine.priority)

    def _schedule_status(self) -> None:
        if self.options.status_file is None or self._status_pending:
            return
        self._status_pending = True
        asyncio.get_running_loop().call_soon(self._write_status)

    # ------------------------------------------------------------------ status

    def status_dump(self) -> dict[str, Any]:
        """Everything a status dump shows: instance states and every counter."""
        instances: dict[str, Any] = {}
        for driver in self._units.values():
            instances.update(driver.status())
        for name, endpoint in self._endpoints.items():
            if name in instances:
                instances[name]["adverts_sent_on_wire"] = endpoint.sent
                instances[name]["adverts_accepted"] = endpoint.received
                instances[name]["interface"] = endpoint.channel.ifname
                instances[name]["source"] = str(endpoint.source)
                instances[name]["maintenance"] = name in self._maintenance
        transport = self._transport
        frames = self._frames
        out: dict[str, Any] = {
            "pid": os.getpid(),
            "generation": self._status_generation,
            "uptime": round(time.monotonic() - self._started, 3),
            "instances": instances,
            "transport": {} if transport is None else transport.stats(),
            "dropped": {} if transport is None else {
                k: v for k, v in transport.totals().items()
                if k not in ("received", "accepted", "sent")
            },
            "announce_errors": {} if frames is None else dict(frames.counts),
            "tracked": [] if self._tracking is None else [
                {"kind": o.kind, "name": o.name, "up": o.up, "value": o.value}
                for o in self._tracking.objects()
            ],
            "reloads": dict(self.reloads),
        }
        local = getattr(self._lb, "load_balancer", None)  # (in this process)
        if local is not None:
            out["load_balancer"] = local.status()
        return out

    def _write_status(self) -> None:
        self._status_pending = False
        path = self.options.status_file
        if path is None:
            return
        self._status_generation += 1
        data = json.dumps(self.status_dump(), indent=1, sort_keys=True, default=str)
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(data + "\n")
            tmp.replace(path)
        except OSError as exc:
            log.error("cannot write the status file %s: %s", path, exc)

    def _dump(self) -> None:
        """SIGUSR1: log every instance and counter, and refresh the status file."""
        from hacluster.status_text import dump_lines

        for line in dump_lines(self.status_dump()):
            log.info("%s", line)
        self._write_status()

    def instance_status(self, name: str) -> InstanceStatus:
        driver = self._driver_of.get(name)
        inst = self.config.vrrp_instances.get(name)
        if driver is None or inst is None:
            raise UnknownInstance(name)
        member = driver.members[name]
        machine = member.machine
        master = machine.master
        last = self._last_change.get(name)
        transition: Transition | None = None
        if last is not None:
            transition = Transition(
                previous=state_label(last.change.old),
                state=state_label(last.change.new),
                reason=last.change.reason,
                age_seconds=round(time.monotonic() - last.at, 3),
                at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last.wall)),
            )
        counters = {k: v for k, v in dataclasses.asdict(machine.counters).items()
                    if isinstance(v, int)}
        endpoint = self._endpoints.get(name)
        if endpoint is not None:
            counters["adverts_sent_on_wire"] = endpoint.sent
            counters["adverts_accepted"] = endpoint.received
        counters["transitions"] = member.transitions
        return InstanceStatus(
            name=name,
            state=state_label(machine.state),
            interface=inst.interface,
            virtual_router_id=inst.virtual_router_id,
            base_priority=inst.priority,
            effective_priority=machine.priority,
            master=None if master is None else str(master.address),
            virtual_ipaddress=[str(v) for v in
                               (*inst.virtual_ipaddress, *inst.virtual_ipaddress_excluded)],
            maintenance=name in self._maintenance,
            last_transition=transition,
            sync_group=driver.group,
            faults=list(machine.faults),
            counters=counters,
        )

    def role_status(self) -> dict[str, Any]:
        """What the VRRP role tells the supervisor: instances and VRRP counters."""
        transport = self._transport
        return {
            "instances": [self.instance_status(n) for n in self.config.vrrp_instances
                          if n in self._driver_of],
            "transport": {} if transport is None else transport.stats(),
            "dropped": {} if transport is None else {
                k: v for k, v in transport.totals().items()
                if k not in ("received", "accepted", "sent")
            },
        }

    def vrrp_metric_families(self) -> list[Any]:
        """The VRRP metric families, as plain data for the supervisor's /metrics."""
        if self._metrics is None:
            return []
        self._push_metrics()
        return (self._metrics.families("hacluster_vrrp_")
                + self._metrics.families("hacluster_alert_mails"))

    async def role_maintenance(self, name: str, on: bool) -> bool:
        try:
            await self.maintenance(name, on)
        except UnknownInstance:
            return False
        return True

    def api_status(self, vrrp: dict[str, Any], lb: dict[str, Any] | None) -> Status:
        """Status from what the VRRP part and the balancer said (`vrrp`: `role_status()`;
        `lb`: its `virtual_servers`, `dataplane_error` and `counters`)."""
        from hacluster import __version__

        g = self.config.global_defs
        counters: dict[str, Any] = {
            "transport": vrrp["transport"],
            "dropped": vrrp["dropped"],
            "reloads": dict(self.reloads),
        }
        restarts = self.role_restarts()
        if restarts:
            counters["role_restarts"] = restarts
        if lb is not None:
            counters["load_balancer"] = lb["counters"]
        return Status(
            router_id=g.router_id or socket.gethostname(),
            version=__version__,
            dataplane=g.dataplane,
            uptime_seconds=round(time.monotonic() - self._started, 3),
            config_file=str(self.options.config_file) if self.options.config_file else None,
            instances=vrrp["instances"],
            virtual_servers=lb["virtual_servers"] if lb is not None else [],
            dataplane_error=lb["dataplane_error"] if lb is not None else None,
            counters=counters,
        )

    def role_restarts(self) -> dict[str, int]:
        """Restarts of each role process (none when everything runs in this one)."""
        from hacluster.roles.balancer import BalancerRole

        out: dict[str, int] = {}
        if self._vrrp_role is not None:
            out["vrrp"] = self._vrrp_role.restarts
        if isinstance(self._lb, BalancerRole):
            out["balancer"] = self._lb.restarts
        return out

    # ------------------------------------------------------------------ metrics

    def _push_metrics(self) -> None:
        """Forward the VRRP counters kept by the drivers and the transport (as deltas)."""
        metrics = self._metrics
        if metrics is None:
            return
        for name, driver in list(self._driver_of.items()):
            metrics.vrrp_priority(name, driver.members[name].machine.priority)
            endpoint = self._endpoints.get(name)
            if endpoint is None:
                continue
            for what, value, inc in (("sent", endpoint.sent, metrics.adverts_sent),
                                     ("received", endpoint.received, metrics.adverts_received)):
                key = (f"{name}/{id(endpoint)}", what)
                delta = value - self._pushed.get(key, 0)
                if delta > 0:
                    inc(name, delta)
                self._pushed[key] = value
        if self._transport is not None:
            for channel, counts in self._transport.stats().items():
                ifname = channel.rsplit("/", 1)[0]
                for reason, value in counts.items():
                    if reason in ("received", "accepted", "sent"):
                        continue
                    key = (f"drop {channel}", reason)
                    delta = value - self._pushed.get(key, 0)
                    if delta > 0:
                        metrics.packet_dropped(ifname, reason, delta)
                    self._pushed[key] = value

    async def _metrics_loop(self) -> None:
        while True:
            await asyncio.sleep(METRICS_INTERVAL)
            try:
                self._push_metrics()
            except Exception:
                log.exception("metrics update failed")

    # ------------------------------------------------------------------ running

    async def _wait_for_sources(self, config: Config, timeout: float = 5.0) -> None:
        """Give interfaces a moment to get the address adverts come from (an IPv6
        link-local address stays tentative during DAD for about a second after link-up)."""
        from vrrp.transport import interface_source

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for inst in config.vrrp_instances.values():
            if inst.is_unicast or inst.mcast_src_ip is not None:
                continue
            if not os.path.exists(f"/sys/class/net/{inst.interface}"):
                continue  # a missing interface is reported at once
            while interface_source(inst.interface, inst.family) is None:
                if loop.time() > deadline:
                    return  # _member reports it, naming the instance
                await asyncio.sleep(0.05)

    async def run(self) -> int:
        from hacluster import __version__
        from hacluster.metrics import Metrics
        from hacluster.sdnotify import Notifier as SdNotifier

        loop = asyncio.get_running_loop()
        self._sd = SdNotifier.from_env()
        if self._vrrp_role is not None:
            self._metrics = Metrics(version=__version__, vrrp=False, balancer=False)
            self._metrics.extra = self._balancer_metrics
            return await self._run_supervisor()
        self._metrics = Metrics(version=__version__)
        config = self.config
        if vmac_plan.wanted(config):
            self._vmacs = Vmacs()
            self.config = config = await vmac_plan.prepare(config, self._vmacs)
        await self._wait_for_sources(config)
        try:
            self._open_vrrp(loop)
            for key, unit in plan_units(config).items():
                self._build_unit(config, key, unit)
            self._start_notify()
            self._lb = await self._make_balancer(config)
        except StartupError as exc:
            log.error("%s", exc)
            await self._close()
            return 1
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._request_stop, sig)
        loop.add_signal_handler(signal.SIGUSR1, self._dump)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        try:
            await self._start_tracking()
            if RouteFollower.wanted(config):
                self._routes = RouteFollower(config)
                await self._routes.start()
            if AcceptFirewall.wanted(config):
                self._accept = AcceptFirewall(config)
                await self._accept.start()
        except StartupError as exc:
            log.error("%s", exc)
            await self._close()
            return 1
        await self._ready()
        names = ", ".join(config.vrrp_instances) or "none"
        log.info("hacluster started (pid %d): VRRP instances %s; %d virtual server(s), "
                 "dataplane %s", os.getpid(), names, len(config.virtual_servers),
                 config.global_defs.dataplane)
        if self._lb is not None:
            # The table is reconciled before any VIP can arrive: a restart after a
            # crash finds what it left and repairs it rather than adding twice.
            await self._lb.start()
        await self._follow_lvs_sync(config)  # as backup before any instance can be master
        self._running = True
        await self._start_address_monitor()
        for driver in self._units.values():
            self._start_unit(driver)
        for name, driver in self._driver_of.items():
            self._metrics.vrrp_state(name, state_label(driver.members[name].machine.state))
        if self.options.role != "vrrp":
            await self._start_api()
        self._spawn(self._metrics_loop(), "metrics")
        self._schedule_status()
        _settle_gc()
        self.started.set()
        self._sd.ready(status=f"VRRP instances: {names}")
        self._sd.start_watchdog()
        await self._stop.wait()
        await self._shutdown()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        log.info("hacluster stopped")
        return 0

    async def _run_supervisor(self) -> int:
        """The supervisor: the VRRP role (forked already), load balancer, API, systemd."""
        from hacluster.sdnotify import Notifier as SdNotifier

        role = self._vrrp_role
        assert role is not None and self._metrics is not None
        self._metrics.refresh = self._refresh_vrrp_metrics
        loop = asyncio.get_running_loop()
        config = self.config
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._request_stop, sig)
        # `hacluster run` blocked these when it released the role (which may be MASTER
        # already): one that came since is delivered now, to the handler, and stops
        # everything gracefully once started.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
        # The VRRP role is starting meanwhile: nothing here holds it up. The balancer
        # role starts now too (forked with the file, which it does not need sent).
        balancer = self._balancer_role(config)
        try:
            self._start_notify()
        except StartupError as exc:
            log.error("%s", exc)
            await role.stop()
            if balancer is not None:
                await balancer.stop(flush=False)
            await self._close()
            return 1
        loop.add_signal_handler(signal.SIGUSR1, role.signal, signal.SIGUSR1)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        if not await role.start():
            log.error("the VRRP role could not start")
            if balancer is not None:
                await balancer.stop(flush=False)
            await self._close()
            return 1
        if balancer is not None:
            try:
                await self._start_balancer_role(balancer)
            except StartupError as exc:
                log.error("%s", exc)
                await role.stop()
                await self._close()
                return 1
            self._lb = balancer
        log.info("hacluster supervisor (pid %d): VRRP role pid %s, balancer pid %s; "
                 "%d virtual server(s), dataplane %s", os.getpid(), role.pid,
                 None if balancer is None else balancer.pid, len(config.virtual_servers),
                 config.global_defs.dataplane)
        await self._follow_lvs_sync(config)
        if self._lvs_sync is not None:  # what the role said before the follower was there
            for name, state in self._role_states.items():
                self._lvs_sync.vrrp_state(name, state)
        self._running = True
        await self._start_api()
        _settle_gc()
        self.started.set()
        sd = self._sd
        assert sd is not None
        sd.ready(status=f"VRRP instances: {', '.join(config.vrrp_instances) or 'none'}")
        # WATCHDOG only while the VRRP role answers its heartbeat: a hung VRRP is the
        # one failure a restart of the whole director should follow.
        interval = sd.watchdog_interval
        sd.start_watchdog(
            alive=lambda: role.answering(max(2 * (interval or 1.0), 3.0))
        )
        del SdNotifier
        await self._stop.wait()
        await self._shutdown()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        log.info("hacluster stopped")
        return 0

    def attach_vrrp_role(self, role: VrrpRole) -> None:
        """Run as the supervisor of `role` (forked already) rather than VRRP itself."""
        self._vrrp_role = role
        role.on_event = self._role_event

    def _role_event(self, kind: str, args: tuple[Any, ...]) -> None:
        if kind == "state":
            name, label = args
            state = State[str(label)]
            self._role_states[str(name)] = state
            if self._lvs_sync is not None:
                self._lvs_sync.vrrp_state(str(name), state)

    def role_restarted(self, role: str = "vrrp") -> None:
        if self._metrics is not None:
            self._metrics.role_restarted(role)

    # ------------------------------------------------------------------ the balancer

    def _balancer_role(self, config: Config) -> BalancerRole | None:
        """The balancer role of `config`, forked now (None without virtual servers)."""
        if not config.virtual_servers:
            return None
        from hacluster.roles.balancer import BalancerRole

        balancer = BalancerRole(config, on_restart=lambda: self.role_restarted("balancer"),
                                on_event=self._balancer_event)
        balancer.fork()
        return balancer

    @staticmethod
    async def _start_balancer_role(balancer: BalancerRole) -> None:
        """Wait until it runs; StartupError with its reason when it cannot."""
        from hacluster.roles.balancer import BalancerFailed

        try:
            await balancer.start()
        except BalancerFailed as exc:
            raise StartupError(str(exc)) from None

    async def _make_balancer(self, config: Config) -> Balancer | BalancerRole | None:
        """The balancer of `config` (None without virtual servers), ready to start: in
        this process, or a role process already running (supervisor); StartupError."""
        if not config.virtual_servers:
            return None
        if self._vrrp_role is not None:
            role = self._balancer_role(config)
            assert role is not None
            await self._start_balancer_role(role)
            return role
        from hacluster.balancer import Balancer, BalancerError

        balancer = Balancer(config, metrics=self._metrics, notifier=self._notifier)
        try:
            await balancer.prepare()
        except BalancerError as exc:
            raise StartupError(str(exc)) from None
        return balancer

    def _balancer_event(self, kind: str, args: tuple[Any, ...]) -> None:
        """The balancer role's notifications, run here (scripts, FIFOs, mail) in order."""
        if self._notifier is not None:
            from hacluster.roles.balancer import notify

            notify(self._notifier, self.config, kind, args)

    async def _balancer_metrics(self, accept: str | None) -> bytes:
        from hacluster.roles.balancer import BalancerRole

        if isinstance(self._lb, BalancerRole):
            return await self._lb.metrics_text(accept)
        return b""

    async def _refresh_vrrp_metrics(self) -> None:
        if self._vrrp_role is not None and self._metrics is not None:
            self._metrics.set_foreign(await self._vrrp_role.metric_families())

    async def _shutdown(self) -> None:
        assert self._sd is not None
        self._sd.stopping()
        log.info("stopping: masters resign with priority 0 and release their VIPs")
        if self._vrrp_role is not None:  # VRRP first: resigning matters most
            await self._vrrp_role.stop()
        # A reload in flight finishes first: it may be half way through a unit.
        async with self._reload_lock:
            self._running = False
            if self._tracking is not None:
                await self._tracking.stop()
            if self._address_monitor is not None:
                await self._address_monitor.stop()
                self._address_monitor = None
            await asyncio.gather(*(d.stop() for d in self._units.values()))
            if self._routes is not None:
                await self._routes.stop()
            if self._accept is not None:
                await self._accept.stop()
            if self._vmacs is not None:
                await self._vmacs.remove_all()
            if self._lvs_sync is not None:
                await self._lvs_sync.stop()
            if self._lb is not None:
                await self._lb.stop()
            if self._notifier is not None:  # the STOP notifications run before we exit
                await self._notifier.close(timeout=self.config.global_defs.notify_timeout)
            if self._alerts is not None:  # queued mail gets a few seconds
                await self._alerts.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._api is not None:
            await self._api.stop()
            self._api = None
        self._write_status()
        await self._sd.close()
        await self._close()

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _start_api(self) -> None:
        from hacluster.api import ApiError, ApiServer, Listeners
        from hacluster.controller import DaemonController

        assert self._metrics is not None
        controller = DaemonController(self)
        api = ApiServer(controller, self._metrics,
                        Listeners.from_global_defs(self.config.global_defs))
        try:
            await api.start()
        except ApiError as exc:
            # VRRP and the dataplane matter more than the control API: keep serving.
            log.error("[api] control API not available: %s", exc)
            return
        self._api = api
        controller.prepare_status()

    async def _ready(self, timeout: float = 20.0) -> None:
        """Wait until a takeover could be carried out in full: netlink open and the
        announcement frames built. Doing this before the instances start keeps the
        libraries' imports from stalling the VRRP timers, and keeps a takeover soon
        after start from waiting for them."""
        assert self._addresses is not None
        preparing, self._preparing = self._preparing, []
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(self._addresses.ready(), *preparing)
        except TimeoutError:
            log.warning("netlink or announcement set-up still pending after %gs; "
                        "starting anyway", timeout)
        except Exception as exc:
            log.error("netlink set-up failed: %s", exc)

    def _start_notify(self) -> None:
        """notify_* scripts and the event log, if the config has any."""
        from hacluster import scripts
        from hacluster.notify import Notifier, prepare_commands

        try:
            has_commands = bool(prepare_commands(self.config))
        except scripts.ScriptError as exc:
            raise StartupError(f"notify: {exc}") from exc
        from hacluster.alert_outputs import wanted

        alerts = wanted(self.config.global_defs)
        if has_commands or alerts or self.config.global_defs.event_log is not None:
            self._notifier = Notifier(self.config)
        if alerts:
            self._attach_alerts(self.config)

    async def _follow_lvs_sync(self, config: Config) -> None:
        """global_defs.lvs_sync_daemon on an IPVS dataplane (hacluster.lvs_sync)."""
        if self._lvs_sync is not None:
            self._lvs_sync.reconfigure(config)
            return
        if config.global_defs.lvs_sync_daemon is None or self._lb is None:
            return
        backend = getattr(self._lb, "backend", None) or self._backend
        if backend is None and config.global_defs.dataplane != "none":
            # The balancer role has its dataplane: the sync daemon gets a handle here.
            from hacluster.loadbalancer import backend_for

            try:
                backend = self._backend = backend_for(config)
            except Exception as exc:
                log.error("lvs_sync_daemon: cannot open the dataplane: %s", exc)
                return
        if not hasattr(backend, "follow_sync_role"):
            return
        from hacluster.lvs_sync import SyncBackend, SyncFollower

        self._lvs_sync = SyncFollower(cast(SyncBackend, backend), config)
        await self._lvs_sync.start()

    def _attach_alerts(self, config: Config) -> None:
        """Alert mail and notify FIFOs, fed by the notifier (hacluster.alert_outputs)."""
        from hacluster.alert_outputs import AlertOutputs

        assert self._notifier is not None and self._metrics is not None
        # One process runs the FIFOs' reader scripts: the supervisor, or this daemon when
        # it runs alone. The VRRP role only writes its lines (two readers would share out
        # the bytes of one FIFO between them).
        self._alerts = AlertOutputs(config, on_mail_count=self._metrics.alert_mail,
                                    readers=self.options.role != "vrrp")
        self._alerts.start()
        self._notifier.add_observer(self._alerts.observe)

    async def _start_tracking(self) -> None:
        """Start track_script / track_interface / track_file, if the config has any.

        Their starting picture (priority deltas, faults) reaches the machines before
        the instances start, so an instance whose check fails never becomes MASTER.
        """
        from hacluster.tracking import plan_watches

        if not plan_watches(self.config):
            return
        from hacluster import scripts
        from hacluster.tracking import Tracking

        try:
            self._tracking = Tracking(self.config, self._on_track_change)
        except scripts.ScriptError as exc:
            raise StartupError(f"tracking: {exc}") from exc
        await self._tracking.start()

    async def _start_address_monitor(self) -> None:
        from vrrp.addrwatch import AddressMonitor

        monitor = AddressMonitor(self._on_address, self._on_addresses_lost)
        try:
            await monitor.start()
        except Exception as exc:  # without it sources are read once, as before
            log.error("cannot follow address changes: %s", exc)
            return
        self._address_monitor = monitor

    def _request_stop(self, sig: signal.Signals) -> None:
        if not self._stop.is_set():
            log.info("%s received", sig.name)
            self._stop.set()

    def request_stop(self) -> None:
        self._stop.set()

    async def _close(self) -> None:
        for coro in self._preparing:  # built but never awaited when start-up failed
            coro.close()
        self._preparing = []
        if self._backend is not None:
            try:
                await self._backend.close()
            except Exception as exc:
                log.error("closing the dataplane failed: %s", exc)
            self._backend = None
        if self._frames is not None:
            self._frames.close()
        if self._transport is not None:
            self._transport.close()
        if self._addresses is not None:
            await self._addresses.close()

    # ------------------------------------------------------------------ control

    async def maintenance(self, name: str, on: bool) -> None:
        if self._vrrp_role is not None:
            if not await self._vrrp_role.maintenance(name, on):
                raise UnknownInstance(name)
            return
        if name not in self._driver_of:
            raise UnknownInstance(name)
        if on == (name in self._maintenance):
            return
        if on:
            self._maintenance.add(name)
        else:
            self._maintenance.discard(name)
        log.info("[%s] maintenance %s: effective priority %s", name, "on" if on else "off",
                 "1" if on else "restored", extra={"instance": name, "event": "maintenance"})
        self._push_delta(name)
        self._schedule_status()

    async def drain(self, virtual_server: str, real_server: str, on: bool) -> None:
        if self._lb is None:
            raise UnknownVirtualServer(virtual_server)
        await self._lb.drain(virtual_server, real_server, on)
        self._schedule_status()

    async def ipvs(self) -> dict[str, Any]:
        if self._lb is None:
            return {"services": []}
        return await self._lb.ipvs()

    # ------------------------------------------------------------------ reload

    def _on_sighup(self) -> None:
        log.info("SIGHUP received: reloading %s", self.options.config_file)
        self._spawn(self.reload(), "reload")

    async def reload(self, given: Config | None = None) -> tuple[bool, str]:
        """Load the config file again (or take `given`, already loaded) and switch to it
        by difference: (done, message)."""
        async with self._reload_lock:
            if not self._running:
                return False, "the daemon is not running (starting or stopping)"
            sd = self._sd
            if sd is not None:
                sd.reloading()
            started = time.monotonic()
            try:
                message = await self._reload(given)
            except ReloadRefused as exc:
                self.reloads["refused"] += 1
                if self._metrics is not None:
                    self._metrics.reload(False)
                lines = str(exc).splitlines() or ["refused"]
                log.error("reload refused, the running configuration is kept: %d problem(s)",
                          len(lines))
                for line in lines:
                    log.error("reload refused: %s", line)
                ok, message = False, str(exc)
            except Exception as exc:  # a bug: say so, keep running what runs
                log.exception("reload failed part way")
                self.reloads["refused"] += 1
                if self._metrics is not None:
                    self._metrics.reload(False)
                ok, message = False, f"reload failed part way: {type(exc).__name__}: {exc}"
            else:
                self.reloads["ok"] += 1
                if self._metrics is not None:
                    self._metrics.reload(True)
                log.info("%s in %.0f ms: %s",
                         "[vrrp role] reload applied" if self.options.role == "vrrp"
                         else "reload done", (time.monotonic() - started) * 1000,
                         message)
                ok = True
            self._keep_locks()
            if sd is not None:
                sd.ready(status=f"reload {'done' if ok else 'refused'}")
            self._schedule_status()
            return ok, message

    async def _reload(self, given: Config | None = None) -> str:
        from hacluster.config import ConfigError
        from hacluster.config.diff import diff_configs
        from hacluster.config.errors import Problem
        from hacluster.config.loader import load_config_located
        from hacluster.loadbalancer import LoadBalancerError
        from hacluster.preflight import preflight

        path = self.options.config_file
        lines: Mapping[str, int] | None = None
        if given is not None:
            new = given
        elif path is None:
            raise ReloadRefused("no configuration file to reload from")
        else:
            try:
                loaded, lines = load_config_located(path)
            except ConfigError as exc:
                raise ReloadRefused(str(exc)) from None
            new = with_overrides(loaded, self.options)
        if self._vrrp_role is None and (self._vmacs is not None or vmac_plan.wanted(new)):
            # Where VRRP runs (not the supervisor): the macvlans before the instances.
            self._vmacs = self._vmacs or Vmacs()
            new = await vmac_plan.prepare(new, self._vmacs)
        old = self.config
        diff = diff_configs(old, new)
        if diff.is_empty:
            return "no change"
        # Everything that can refuse the file, before anything is touched: the same
        # preflight as `hacluster run` and `check-config`.
        problems: list[str] = []
        if new.global_defs.dataplane != old.global_defs.dataplane and self._lb is not None:
            problems.append(str(Problem(
                str(path), (lines or {}).get("global_defs.dataplane", 0),
                "global_defs.dataplane",
                f"{old.global_defs.dataplane} -> {new.global_defs.dataplane} needs a restart",
            )))
        if given is None:  # (a config handed over was checked by whoever loaded it)
            problems += [str(finding) for finding in preflight(new, lines)]
        if problems:
            raise ReloadRefused("\n".join(problems))
        self._lock_instances(new)
        if self._lb is None:  # the load balancer logs the same summary
            for line in diff.summary():
                log.info("[reload] %s", line)

        # The load balancer first: it is the one part that may still refuse.
        from hacluster.balancer import BalancerError

        new_lb: Balancer | BalancerRole | None = None
        if self._lb is not None:
            try:
                await self._lb.reconfigure(new)
            except (LoadBalancerError, BalancerError) as exc:
                raise ReloadRefused(str(exc)) from None
        elif new.virtual_servers:
            try:
                new_lb = await self._make_balancer(new)
            except StartupError as exc:
                raise ReloadRefused(str(exc)) from None
        # Nothing below refuses: log what fails and carry on with the rest.
        self.config = new
        if self._vrrp_role is not None:
            await self._reload_notify(new)
            if new_lb is not None:  # (a role process, running already)
                self._lb = new_lb
            ok, summary = await self._vrrp_role.reload(new)
            if not ok:
                log.error("[reload] the VRRP role: %s", summary)
            await self._reload_api(new)
            return summary
        # Instances going away first, so their STOP runs the scripts they had.
        plan = await self._vrrp_retire(old, new)
        await self._reload_notify(new)
        if new_lb is not None:
            self._lb = new_lb
            await new_lb.start()
        await self._follow_lvs_sync(new)
        await self._reload_tracking(new)
        summary = await self._vrrp_start(old, new, plan)
        if self._vmacs is not None:
            await self._vmacs.remove_unused({s.ifname for s in vmac_plan.vmac_specs(new)})
        await self._reload_api(new)
        return summary

    async def _reload_api(self, new: Config) -> None:
        if self._api is not None:
            from hacluster.api import ApiError, Listeners

            try:
                await self._api.reconfigure(Listeners.from_global_defs(new.global_defs))
            except ApiError as exc:
                log.error("[api] %s", exc)

    def _lock_instances(self, new: Config) -> None:
        """New instances take their single-instance locks (another daemon running one
        of them refuses the reload); instances gone release theirs."""
        locks = self.options.locks
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
        if self.options.locks is not None:
            from hacluster.single_instance import lock_specs

            self.options.locks.keep_only(lock_specs(self.config))

    async def _reload_notify(self, new: Config) -> None:
        from hacluster import scripts
        from hacluster.alert_outputs import wanted
        from hacluster.balancer import Balancer
        from hacluster.notify import Notifier, prepare_commands

        alerts = wanted(new.global_defs)
        try:
            if self._notifier is not None:
                self._notifier.reconfigure(new)
            elif prepare_commands(new) or alerts or new.global_defs.event_log is not None:
                self._notifier = Notifier(new)
                if isinstance(self._lb, Balancer):  # (a role's come through here)
                    self._lb.set_notifier(self._notifier)
        except scripts.ScriptError as exc:
            log.error("notify: %s", exc)
        if self._alerts is not None:
            await self._alerts.reconfigure(new)
        elif alerts and self._notifier is not None:
            self._attach_alerts(new)

    async def _reload_tracking(self, new: Config) -> None:
        from hacluster import scripts
        from hacluster.tracking import Tracking, plan_watches

        try:
            if self._tracking is not None:
                await self._tracking.reconfigure(new)
            elif plan_watches(new):
                self._tracking = Tracking(new, self._on_track_change)
                await self._tracking.start(wait_first=False)
        except scripts.ScriptError as exc:
            log.error("tracking: %s", exc)
        if self._routes is not None:
            self._routes.reconfigure(new)
        elif RouteFollower.wanted(new):
            self._routes = RouteFollower(new)
            await self._routes.start()
        if self._accept is not None:
            await self._accept.reconfigure(new)
        elif AcceptFirewall.wanted(new):
            self._accept = AcceptFirewall(new)
            await self._accept.start()

    async def _vrrp_retire(self, old: Config, new: Config) -> _ReloadPlan:
        """Units that go or change leave the loop: a whole unit that goes resigns; the
        others detach, their masters keeping their VIPs for the unit that replaces them."""
        running = {name: driver.members[name].machine.state
                   for name, driver in self._driver_of.items()}
        plan = plan_vrrp_reload(old, new, running)
        for key in plan.stop:
            driver = self._units.pop(key)
            await driver.stop()
            self._forget_members(driver)
        leftovers: list[Vip] = []
        for key, resign in plan.detach.items():
            for name, member in self._units[key].members.items():
                if name in plan.carry:
                    leftovers += self._dropped_vips(member, new.vrrp_instances[name])
            await self._detach(key, resign)
        if leftovers and self._addresses is not None:
            for vip, why in await self._addresses.remove(leftovers):
                log.error("cannot remove VIP %s no longer configured: %s", vip, why)
            log.info("removed VIPs no longer configured: %s",
                     ", ".join(str(v) for v in leftovers))
        for name in plan.forget:
            self._maintenance.discard(name)
            self._track_delta.pop(name, None)
            self._last_change.pop(name, None)
            if self._metrics is not None:
                self._metrics.forget_instance(name)
        return plan

    async def _vrrp_start(self, old: Config, new: Config, plan: _ReloadPlan) -> str:
        """Build and start the changed and added units; a summary of the VRRP reload."""
        after = plan_units(new)
        for change in plan.in_place:
            driver = self._driver_of.get(change.instance)
            if driver is not None:
                driver.reconfigure(change.instance, change.priority, change.nopreempt,
                                   change.preempt_delay)
        failed = []
        for key in plan.changed + plan.added:
            unit = after[key]
            try:
                driver = self._build_unit(new, key, unit, carry=frozenset(plan.carry),
                                          cleanup=not any(n in old.vrrp_instances
                                                          for n in unit.names))
            except StartupError as exc:
                log.error("%s", exc)
                failed.append(key)
                continue
            await self._ready()
            self._start_unit(driver, plan.carry)
        parts = []
        for what, keys in (("kept", plan.kept), ("rebuilt", plan.changed),
                           ("added", plan.added), ("removed", plan.removed),
                           ("failed", failed)):
            if keys:
                parts.append(f"{what} {', '.join(keys)}")
        if plan.in_place:
            parts.append("changed in place " + ", ".join(c.describe() for c in plan.in_place))
        if plan.carry:
            parts.append(f"mastership kept by {', '.join(sorted(plan.carry))}")
        return "; ".join(parts) or "VRRP unchanged"

    @staticmethod
    def _dropped_vips(member: Member, inst: VrrpInstance) -> list[Vip]:
        """A kept master's VIPs that the new settings no longer hold."""
        wanted = {
            (v.address, v.dev or inst.interface)
            for v in (*inst.virtual_ipaddress, *inst.virtual_ipaddress_excluded)
        }
        return [vip for vip in member.vips.values() if (vip.address, vip.dev) not in wanted]


def _no_source_cause(ifname: str, family: int) -> str:
    what = "IPv4 address" if family == 4 else "IPv6 link-local address"
    return f"interface {ifname} has no {what} to send from"


def run_daemon(config: Config, options: DaemonOptions, role: VrrpRole | None = None) -> int:
    """Run the daemon until SIGTERM/SIGINT; the exit status (0 after a graceful stop).
    A supervisor runs `role` (forked and released already: `hacluster run` does that
    as early as it can, see `hacluster.roles.vrrp`), else forks and releases one now."""
    setup_logging(options.log_format, options.log_level)
    for level, line in options.leftovers:  # what `hacluster run` did before logging
        log.log(logging.getLevelName(level.upper()), "%s", line)
    # The event loop shares the interpreter with the netlink and scapy worker threads:
    # let it win the GIL back within 1 ms (default 5 ms) when a VRRP timer is due.
    sys.setswitchinterval(0.001)
    if options.role == "supervisor":
        from hacluster.roles.vrrp import VrrpRole, release

        # The VRRP role writes the status file (its instances are what it shows).
        daemon = Daemon(config, dataclasses.replace(options, status_file=None))
        if role is None:
            role = VrrpRole()
            role.fork()
            release(role, config, options)
        role.on_restart = daemon.role_restarted
        daemon.attach_vrrp_role(role)
    else:
        daemon = Daemon(config, options)
    try:
        return asyncio.run(daemon.run())
    except KeyboardInterrupt:
        return 0
    except Exception:
        log.exception("hacluster failed")
        return 1
