"""The hacluster daemon: wires VRRP, tracking, notify, the load balancer and the control API.

`Daemon.run()` builds everything a configuration holds and runs it until SIGTERM/SIGINT:

- VRRP instances and sync groups (one `vrrp.driver.Driver` per lone instance or group),
  trackers (`hacluster.tracking`), notify scripts (`hacluster.notify`);
- the load balancer (`hacluster.loadbalancer`): health checks, policy and the dataplane
  named by `global_defs.dataplane`, reconciled at start (so a restart after a crash
  finds its table and duplicates nothing), on every health change and periodically;
- the control API and Prometheus metrics (`hacluster.api`, `hacluster.metrics`);
- systemd notification: READY after start, WATCHDOG pings, RELOADING, STOPPING.

Reload (SIGHUP or the API) is carried out by `hacluster.reload_coordinator.Reloader` on
the parts built here: one config diff, a pure plan per role, nothing touched when the
file is refused.

Maintenance (`Controller.maintenance`) lowers an instance's effective priority to 1
through a priority delta added to the trackers' one: a backup with a higher priority
and preemption takes over after its master-down interval, and with no such peer the
instance stays master (it never leaves the group without one, as a fault would).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from hacluster import vrrp_extras
from hacluster.config.model import Config
from hacluster.daemon_options import DaemonOptions, with_overrides
from hacluster.logs import setup_logging
from vrrp.machine import State, StateChanged
from vrrp.sync_group import SyncGroup

# The VRRP role imports this module before its release: what only some configs use
# (vmac, accept mode, routes, reload, API types) is imported where it is used, see
# `hacluster.vrrp_extras`.
if TYPE_CHECKING:
    from hacluster.accept_mode import AcceptFirewall
    from hacluster.alert_outputs import AlertOutputs
    from hacluster.api import ApiServer
    from hacluster.apitypes import InstanceStatus, Status, Transition
    from hacluster.balancer import Balancer
    from hacluster.ipvs.backend import Backend
    from hacluster.lvs_sync import SyncFollower
    from hacluster.metrics import Metrics
    from hacluster.notify import Notifier
    from hacluster.reload_coordinator import Reloader
    from hacluster.reload_plan import _Unit
    from hacluster.roles.balancer import BalancerRole
    from hacluster.roles.vrrp import VrrpRole
    from hacluster.sdnotify import Notifier as SdNotifier
    from hacluster.tracking import TrackChange, Tracking
    from hacluster.vroutes import RouteFollower
    from healthchecks.zygote import Zygote
    from vrrp.addresses import Addresses
    from vrrp.announce import FrameSockets
    from vrrp.driver import Driver
    from vrrp.speaker import Speaker
    from vrrp.transport import Endpoint, Transport
    from vrrp.vmac import Vmacs

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
        # VRRP itself: sockets, VIPs, address following, the drivers (made by run())
        self._speaker: Speaker | None = None
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
        self._metrics_built: asyncio.Task[None] | None = None  # the VRRP role's, late
        self._early_transitions: list[tuple[str, str]] | None = None  # before they exist
        self._sd: SdNotifier | None = None
        self._group_states: dict[str, State] = {}
        self._last_change: dict[str, _LastChange] = {}
        self._track_delta: dict[str, int] = {}
        self._maintenance: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reload_lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._running = False
        self._status_generation = 0
        self._status_pending = False
        self._started = time.monotonic()
        self._pushed: dict[tuple[str, str], int] = {}
        self._reloader_made: Reloader | None = None  # made on the first reload
        self._vrrp_role: VrrpRole | None = None  # the supervisor's VRRP role
        self._zygote: Zygote | None = None  # forks the check workers
        #: Told of every instance state change (the VRRP role tells its supervisor).
        self.on_state_change: Callable[[str, State], None] | None = None
        self._role_states: dict[str, State] = {}  # the VRRP role's instances, as it said
        self.started = asyncio.Event()  # set once the instances run

    @property
    def drivers(self) -> list[Driver]:
        return list(self._units.values())

    # The VRRP parts live in the Speaker (vrrp.speaker); these read them (empty in the
    # supervisor, whose VRRP runs in the role).
    @property
    def _units(self) -> dict[str, Driver]:
        return {} if self._speaker is None else self._speaker.units

    @property
    def _driver_of(self) -> dict[str, Driver]:
        return {} if self._speaker is None else self._speaker.driver_of

    @property
    def _endpoints(self) -> dict[str, Endpoint]:
        return {} if self._speaker is None else self._speaker.endpoints

    @property
    def _transport(self) -> Transport | None:
        return None if self._speaker is None else self._speaker.transport

    @property
    def _frames(self) -> FrameSockets | None:
        return None if self._speaker is None else self._speaker.frames

    @property
    def _addresses(self) -> Addresses | None:
        return None if self._speaker is None else self._speaker.addresses

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
        from vrrp.speaker import Speaker
        from vrrp.vipstate import VipRecord

        state = self.options.vip_state_file
        self._speaker = Speaker(self._on_state,
                                vip_record=None if state is None else VipRecord(state))
        self._speaker.open(loop)

    def new_accept_firewall(self, config: Config) -> AcceptFirewall:
        """The no_accept table's keeper, recording the table in the VIP state file."""
        from hacluster.accept_mode import AcceptFirewall

        record = None if self._speaker is None else self._speaker.vip_record
        return AcceptFirewall(config, record=record)

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
        from hacluster.config.lower_vrrp import lower_instance, unsupported_instance
        from vrrp.speaker import SpeakerError

        assert self._speaker is not None
        plans = []
        for name in unit.names:
            inst = config.vrrp_instances[name]
            for note in unsupported_instance(inst):
                log.warning("[%s] %s", name, note)
            try:
                plans.append(lower_instance(config, name))
            except ValueError as exc:
                raise StartupError(f"[{name}] {exc}") from exc
        try:
            return self._speaker.build_unit(key, unit.group, plans, carry=carry,
                                            cleanup=cleanup)
        except SpeakerError as exc:
            raise StartupError(str(exc)) from exc

    def _start_unit(self, driver: Driver, carry: Iterable[str] = ()) -> None:
        """Bring a built driver's machines up to date with tracking and maintenance,
        start it, and put the members that were MASTER before a reload back there."""
        assert self._speaker is not None
        for name in driver.members:
            if self._tracking is not None:
                for change in self._tracking.replay(name):
                    self._on_track_change(change)
            if name in self._maintenance:
                self._push_delta(name)
        self._speaker.start_unit(driver, carry)

    # ------------------------------------------------------------------ events

    def _on_state(self, name: str, change: StateChanged) -> None:
        if self._routes is not None:
            self._routes.on_state(name, change.old, change.new)
        if self._accept is not None:
            self._accept.on_state(name, change.new is State.MASTER)
        self._last_change[name] = _LastChange(change, time.monotonic(), time.time())
        self._schedule_status()
        if self._speaker is not None and self._speaker.is_quiet(name):
            return
        if self._metrics is not None:
            self._metrics.vrrp_transition(name, state_label(change.new))
        elif self._early_transitions is not None:
            self._early_transitions.append((name, state_label(change.new)))
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
        machine = driver.members[name].machine
        before = machine.priority
        driver.set_priority_delta(name, delta)
        inst = self.config.vrrp_instances.get(name)
        if self._notifier is None or machine.priority == before or inst is None:
            return
        from hacluster.notify import priority_notified  # imported with the notifier

        if priority_notified(inst):
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
        import json

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
        from hacluster.apitypes import InstanceStatus, Transition, UnknownInstance

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
        from hacluster.apitypes import UnknownInstance

        try:
            await self.maintenance(name, on)
        except UnknownInstance:
            return False
        return True

    def api_status(self, vrrp: dict[str, Any], lb: dict[str, Any] | None) -> Status:
        """Status from what the VRRP part and the balancer said (`vrrp`: `role_status()`;
        `lb`: its `virtual_servers`, `dataplane_error` and `counters`)."""
        from hacluster import __version__
        from hacluster.apitypes import Status

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
        if self._zygote is not None:
            out["zygote"] = self._zygote.restarts
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

    def _count_states(self, metrics: Metrics) -> None:
        for name, driver in self._driver_of.items():
            metrics.vrrp_state(name, state_label(driver.members[name].machine.state))

    async def _build_metrics(self) -> None:
        """The VRRP role's metrics, built once its instances run: imported in a thread,
        so that the loop keeps its timers meanwhile (the loop imports none of it)."""
        await asyncio.to_thread(_import_metrics)
        metrics = _new_metrics()
        for name, label in self._early_transitions or ():
            metrics.vrrp_transition(name, label)
        self._early_transitions = None
        self._metrics = metrics
        self._count_states(metrics)
        self._spawn(self._metrics_loop(), "metrics")

    async def metrics_ready(self) -> None:
        """Return once the metrics exist (the VRRP role builds them after start)."""
        if self._metrics_built is not None:
            await asyncio.shield(self._metrics_built)

    async def _metrics_loop(self) -> None:
        while True:
            await asyncio.sleep(METRICS_INTERVAL)
            try:
                self._push_metrics()
            except Exception:
                log.exception("metrics update failed")

    # ------------------------------------------------------------------ running

    async def _wait_for_sources(self, config: Config, timeout: float = 5.0) -> None:
        """Give the interfaces adverts come from a moment to get their address."""
        from vrrp.speaker import wait_for_sources

        await wait_for_sources(
            ((inst.interface, inst.family) for inst in config.vrrp_instances.values()
             if not inst.is_unicast and inst.mcast_src_ip is None),
            timeout,
        )

    async def run(self) -> int:
        from hacluster.sdnotify import Notifier as SdNotifier

        loop = asyncio.get_running_loop()
        self._sd = SdNotifier.from_env()
        if self._vrrp_role is not None:
            self._metrics = _new_metrics(vrrp=False, balancer=False)
            self._metrics.extra = self._balancer_metrics
            return await self._run_supervisor()
        config = self.config
        if self.options.role == "vrrp" and not _metrics_at_start(config):
            # A measured hot path: prometheus_client, the dataplane types it counts and
            # the package metadata cost the VRRP role ~50 ms of its start-up (more under
            # load). Its counters are plain attributes until asked for, so the metrics
            # are built once the instances run (transitions before are kept for them).
            self._early_transitions = []
        else:
            self._metrics = _new_metrics()
        if vrrp_extras.vmacs(config):
            from hacluster import vmac_plan
            from vrrp.vmac import Vmacs

            self._vmacs = Vmacs()
            self.config = config = await vmac_plan.prepare(config, self._vmacs)
        await self._wait_for_sources(config)
        from hacluster import accept_mode
        from hacluster.reload_plan import plan_units

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
            if vrrp_extras.routes(config):
                from hacluster.vroutes import RouteFollower

                self._routes = RouteFollower(config)
                await self._routes.start()
            if accept_mode.wanted(config):
                self._accept = self.new_accept_firewall(config)
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
        if self._metrics is not None:
            self._count_states(self._metrics)
        if self.options.role != "vrrp":
            await self._start_api()
        self._schedule_status()
        self.started.set()
        self._sd.ready(status=f"VRRP instances: {names}")
        self._sd.start_watchdog()
        if self._metrics is None:
            self._metrics_built = self._spawn(self._build_metrics(), "metrics-build")
        else:
            self._spawn(self._metrics_loop(), "metrics")
        _settle_gc()
        return await self._until_stopped(loop)

    async def _until_stopped(self, loop: asyncio.AbstractEventLoop) -> int:
        """Run until asked to stop, then stop everything and take the handlers off."""
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
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        # `hacluster run` blocked these when it released the role (which may be MASTER
        # already): one that came since is delivered now, to the handler, and stops
        # everything gracefully once started (a SIGHUP: reloads once started).
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
        if self._zygote is not None:
            self._spawn(self._zygote.watch(), "zygote")
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
        # (blocked by `hacluster run` with the others: a status dump asked for
        # meanwhile is relayed now)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
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
        return await self._until_stopped(loop)

    def attach_vrrp_role(self, role: VrrpRole) -> None:
        """Run as the supervisor of `role` (forked already) rather than VRRP itself."""
        self._vrrp_role = role
        role.on_event = self._role_event

    def attach_zygote(self, zygote: Zygote) -> None:
        """Check workers are forked from `zygote` (the balancer role asks it: see
        `healthchecks.zygote.current`); one that dies is started again at once, and
        counted as a role's restart."""
        self._zygote = zygote
        zygote.on_restart = lambda: self.role_restarted("zygote")

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
            if self._speaker is not None:  # masters resign, VIPs are released
                await self._speaker.stop()
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
        """Wait until a takeover could be carried out in full (`Speaker.ready`)."""
        assert self._speaker is not None
        await self._speaker.ready(timeout)

    def _start_notify(self) -> None:
        """notify_* scripts and the event log, if the config has any."""
        if not vrrp_extras.notify(self.config):
            return  # nothing would be prepared: none of it is imported
        from hacluster import scripts
        from hacluster.notify import Notifier, prepare_commands

        try:
            has_commands = bool(prepare_commands(self.config))
        except scripts.ScriptError as exc:
            raise StartupError(f"notify: {exc}") from exc
        alerts = vrrp_extras.alerts(self.config.global_defs)
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
        if not vrrp_extras.tracking(self.config):
            return
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
        assert self._speaker is not None
        await self._speaker.follow_addresses()

    def _request_stop(self, sig: signal.Signals) -> None:
        if not self._stop.is_set():
            log.info("%s received", sig.name)
            self._stop.set()

    def request_stop(self) -> None:
        self._stop.set()

    async def _close(self) -> None:
        if self._backend is not None:
            from hacluster.loadbalancer import close_backend

            await close_backend(self._backend, log)
            self._backend = None
        if self._speaker is not None:
            await self._speaker.close()

    # ------------------------------------------------------------------ control

    async def maintenance(self, name: str, on: bool) -> None:
        from hacluster.apitypes import UnknownInstance

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
        from hacluster.apitypes import UnknownVirtualServer

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
        by difference (`hacluster.reload_coordinator`): (done, message)."""
        return await self._reloader().reload(given)

    @property
    def reloads(self) -> dict[str, int]:
        """Reloads done and refused so far."""
        if self._reloader_made is None:  # none yet
            return {"ok": 0, "refused": 0}
        return self._reloader_made.counts

    def _reloader(self) -> Reloader:
        if self._reloader_made is None:
            from hacluster.reload_coordinator import Reloader

            self._reloader_made = Reloader(self)
        return self._reloader_made

    def write_states_to_fifos(self) -> None:
        """fifo_write_vrrp_states_on_reload, where the instances run."""
        from hacluster.alert_outputs import state_events

        if self._alerts is None or self._vrrp_role is not None:
            return
        instances = {name: (d.members[name].machine.state, d.members[name].machine.priority)
                     for name, d in self._driver_of.items()}
        groups = {d.group: d.core.state for d in self._units.values()
                  if d.group is not None and isinstance(d.core, SyncGroup)}
        self._alerts.write_states(state_events(self.config, instances, groups))


def _import_metrics() -> None:
    import hacluster
    import hacluster.apitypes  # the control requests'
    import hacluster.metrics
    import hacluster.reload_coordinator  # a reload's, kept off the loop

    _ = hacluster.__version__  # read from the package metadata: the metrics carry it


def _new_metrics(**kwargs: bool) -> Metrics:
    from hacluster import __version__
    from hacluster.metrics import Metrics

    return Metrics(version=__version__, **kwargs)


def _metrics_at_start(config: Config) -> bool:
    """Whether something counted in the metrics runs from the start (alert mail)."""
    return vrrp_extras.alerts(config.global_defs)


def run_daemon(config: Config, options: DaemonOptions, role: VrrpRole | None = None,
               zygote: Zygote | None = None) -> int:
    """Run the daemon until SIGTERM/SIGINT; the exit status (0 after a graceful stop).
    A supervisor runs `role` (forked and released already: `hacluster run` does that
    as early as it can, see `hacluster.roles.vrrp`), else forks and releases one now.
    Check workers are forked from `zygote` (`healthchecks.zygote`), if given."""
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
    if zygote is not None:
        daemon.attach_zygote(zygote)
    try:
        return asyncio.run(daemon.run())
    except KeyboardInterrupt:
        return 0
    except Exception:
        log.exception("hacluster failed")
        return 1
