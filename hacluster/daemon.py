"""The hacluster daemon: builds the VRRP instances and sync groups of a config and runs them."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hacluster.config.model import Config, VrrpInstance
from vrrp.machine import State, StateChanged
from vrrp.sync_group import SyncGroup

if TYPE_CHECKING:
    from hacluster.notify import Notifier
    from hacluster.tracking import TrackChange, Tracking
    from vrrp.addresses import Addresses, Vip
    from vrrp.announce import FrameSockets
    from vrrp.driver import Driver, Member
    from vrrp.transport import Endpoint, ReceivedAdvert, Transport

log = logging.getLogger("hacluster.daemon")


class _HumanFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created))
        line = f"{ts}.{int(record.msecs):03d} {record.levelname:<7} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("instance", "event", "old", "new", "reason"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(log_format: str, level: str) -> None:
    """Log to stderr, one line per record, as human text or JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if log_format == "json" else _HumanFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    """Command-line choices that are not part of the configuration file."""

    log_format: str = "human"  # human | json
    log_level: str = "info"
    status_file: Path | None = None


class StartupError(Exception):
    """The configuration cannot be run on this machine (missing interface, no address...)."""


class Daemon:
    """Owns the shared kernel-facing parts and one driver per instance or sync group."""

    def __init__(self, config: Config, options: DaemonOptions) -> None:
        self.config = config
        self.options = options
        self.drivers: list[Driver] = []
        self._driver_of: dict[str, Driver] = {}
        self._endpoints: dict[str, Endpoint] = {}
        self._transport: Transport | None = None
        self._addresses: Addresses | None = None
        self._frames: FrameSockets | None = None
        self._tracking: Tracking | None = None
        self._notifier: Notifier | None = None
        self._group_states: dict[str, State] = {}
        self._preparing: list[Coroutine[Any, Any, None]] = []
        self._stop = asyncio.Event()
        self._status_generation = 0
        self._status_pending = False
        self._started = time.monotonic()

    # ------------------------------------------------------------------ building

    def _build(self, loop: asyncio.AbstractEventLoop) -> None:
        from vrrp import announce
        from vrrp.addresses import Addresses
        from vrrp.announce import FrameSockets
        from vrrp.driver import Driver
        from vrrp.transport import Transport, TransportError

        self._addresses = Addresses()
        # pyroute2 and scapy take ~0.5 s each to import: start both now, in threads,
        # while the sockets are set up; run() waits for them before the instances start.
        self._addresses.warm_up()
        announce.preload()
        self._transport = Transport(loop)
        self._frames = FrameSockets()

        cfg = self.config
        members: dict[str, Member] = {}
        for name, inst in cfg.vrrp_instances.items():
            try:
                members[name] = self._member(name, inst)
            except (TransportError, ValueError) as exc:
                raise StartupError(f"[{name}] {exc}") from exc
        grouped: set[str] = set()
        for gname, group in cfg.vrrp_sync_groups.items():
            driver = Driver([members[n] for n in group.group], self._addresses,
                            group=gname, on_state=self._on_state, loop=loop)
            self.drivers.append(driver)
            for n in group.group:
                self._driver_of[n] = driver
                grouped.add(n)
        for name, member in members.items():
            if name not in grouped:
                driver = Driver([member], self._addresses, on_state=self._on_state, loop=loop)
                self.drivers.append(driver)
                self._driver_of[name] = driver

    def _member(self, name: str, inst: VrrpInstance) -> Member:
        from vrrp import packet
        from vrrp.addresses import Vip
        from vrrp.announce import AnnounceParams, Announcer
        from vrrp.driver import Member
        from vrrp.machine import InstanceParams, Machine, State
        from vrrp.transport import Binding, Peer

        assert self._transport is not None and self._frames is not None
        family = inst.family
        auth = inst.authentication
        binding = Binding(
            vrid=inst.virtual_router_id,
            version=inst.version,
            family=family,
            unicast_src=inst.unicast_src_ip if inst.is_unicast else (inst.mcast_src_ip),
            peers=tuple(
                Peer(p.ip, 0 if p.min_ttl is None else p.min_ttl,
                     255 if p.max_ttl is None else p.max_ttl)
                for p in inst.unicast_peers
            ),
            group=inst.mcast_dst_ip,
            unicast_ttl=inst.unicast_ttl,
            auth_type=1 if auth is not None else 0,
            auth_pass=auth.auth_pass if auth is not None else "",
            advert_int=inst.advert_int,
            pseudo_header=inst.checksum_pseudo_header,
        )
        endpoint = self._transport.register(
            inst.interface, binding, lambda rx: self._on_advert(name, rx)
        )
        self._endpoints[name] = endpoint
        primary = endpoint.source
        if primary is None:
            what = "IPv4 address" if family == 4 else "IPv6 link-local address"
            raise StartupError(f"[{name}] interface {inst.interface} has no {what} to send from")
        # virtual_ipaddress_excluded: held and released like the others, but not carried
        # in adverts (keepalived's way to have more VIPs, or another family, than fit).
        vips: dict[str, Vip] = {}
        for v in (*inst.virtual_ipaddress, *inst.virtual_ipaddress_excluded):
            vips[str(v)] = Vip(v.address, v.dev or inst.interface)
        params = InstanceParams(
            name=name,
            vrid=inst.virtual_router_id,
            primary_ip=primary,
            priority=inst.priority,
            version=inst.version,
            advert_int=inst.advert_int,
            initial_state=State.MASTER if inst.state == "MASTER" else State.BACKUP,
            nopreempt=inst.nopreempt,
            preempt_delay=inst.preempt_delay,
            vips=tuple(vips),
            down_timer_adverts=inst.down_timer_adverts,
        )
        template = packet.Advert(
            version=inst.version,
            vrid=inst.virtual_router_id,
            priority=inst.priority,
            max_advert_int=inst.advert_int,
            addresses=tuple(v.address.ip for v in inst.virtual_ipaddress),
            auth_type=binding.auth_type,
            auth_data=packet.auth_pass_data(binding.auth_pass) if auth is not None else b"",
        )
        g = self.config.global_defs
        announce_params = AnnounceParams(
            delay=inst.garp_master_delay,
            repeat=inst.garp_master_repeat,
            refresh=inst.garp_master_refresh,
            refresh_repeat=inst.garp_master_refresh_repeat,
            interval=g.vrrp_garp_interval if family == 4 else g.vrrp_gna_interval,
        )
        announcer = Announcer(name, announce_params, self._frames)
        self._preparing.append(announcer.prepare(list(vips.values())))
        return Member(
            machine=Machine(params),
            sender=endpoint,
            template=template,
            vips=vips,
            announcer=announcer,
            # An address owner's VIPs are its own addresses: never remove them.
            cleanup_at_start=not inst.is_owner,
        )

    # ------------------------------------------------------------------ events

    def _on_advert(self, name: str, rx: ReceivedAdvert) -> None:
        a = rx.advert
        self._driver_of[name].advert_received(name, rx.src, a.priority, a.max_advert_int)

    def _on_state(self, name: str, change: StateChanged) -> None:
        self._schedule_status()
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

    def _schedule_status(self) -> None:
        if self.options.status_file is None or self._status_pending:
            return
        self._status_pending = True
        asyncio.get_running_loop().call_soon(self._write_status)

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        """Everything a status dump shows: instance states and every counter."""
        instances: dict[str, Any] = {}
        for driver in self.drivers:
            instances.update(driver.status())
        for name, endpoint in self._endpoints.items():
            if name in instances:
                instances[name]["adverts_sent_on_wire"] = endpoint.sent
                instances[name]["adverts_accepted"] = endpoint.received
                instances[name]["interface"] = endpoint.channel.ifname
                instances[name]["source"] = str(endpoint.source)
        transport = self._transport
        frames = self._frames
        return {
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
        }

    def _write_status(self) -> None:
        self._status_pending = False
        path = self.options.status_file
        if path is None:
            return
        self._status_generation += 1
        data = json.dumps(self.status(), indent=1, sort_keys=True)
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(data + "\n")
            tmp.replace(path)
        except OSError as exc:
            log.error("cannot write the status file %s: %s", path, exc)

    def _dump(self) -> None:
        """SIGUSR1: log every instance and counter, and refresh the status file."""
        status = self.status()
        for name, inst in status["instances"].items():
            log.info("[%s] %s priority %s master %s; counters %s", name, inst["state"],
                     inst["priority"], inst["master"], inst["counters"])
        log.info("transport counters: %s", status["transport"])
        self._write_status()

    # ------------------------------------------------------------------ running

    async def _wait_for_sources(self, timeout: float = 5.0) -> None:
        """Give interfaces a moment to get the address adverts come from (an IPv6
        link-local address stays tentative during DAD for about a second after link-up)."""
        from vrrp.transport import interface_source

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for inst in self.config.vrrp_instances.values():
            if inst.is_unicast or inst.mcast_src_ip is not None:
                continue
            if not os.path.exists(f"/sys/class/net/{inst.interface}"):
                continue  # a missing interface is reported at once
            while interface_source(inst.interface, inst.family) is None:
                if loop.time() > deadline:
                    return  # _member reports it, naming the instance
                await asyncio.sleep(0.05)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        await self._wait_for_sources()
        try:
            self._build(loop)
        except StartupError as exc:
            log.error("%s", exc)
            await self._close()
            return 1
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._request_stop, sig)
        loop.add_signal_handler(signal.SIGUSR1, self._dump)
        loop.add_signal_handler(signal.SIGHUP, self._reload)
        try:
            self._start_notify()
            await self._start_tracking()
        except StartupError as exc:
            log.error("%s", exc)
            await self._close()
            return 1
        await self._ready()
        names = ", ".join(self.config.vrrp_instances) or "none"
        log.info("hacluster started (pid %d): VRRP instances %s", os.getpid(), names)
        if self.config.virtual_servers:
            log.warning("%d virtual_servers configured: this daemon runs VRRP only so far; "
                        "health checks and the IPVS table are not driven yet",
                        len(self.config.virtual_servers))
        for driver in self.drivers:
            driver.start()
        self._schedule_status()
        await self._stop.wait()
        log.info("stopping: masters resign with priority 0 and release their VIPs")
        if self._tracking is not None:
            await self._tracking.stop()
        await asyncio.gather(*(d.stop() for d in self.drivers))
        if self._notifier is not None:  # the STOP notifications run before we exit
            await self._notifier.close(timeout=self.config.global_defs.notify_timeout)
        self._write_status()
        await self._close()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        log.info("hacluster stopped")
        return 0

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
        if has_commands or self.config.global_defs.event_log is not None:
            self._notifier = Notifier(self.config)

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

    def _on_track_change(self, change: TrackChange) -> None:
        from hacluster.tracking import deliver

        driver = self._driver_of.get(change.instance)
        if driver is not None:
            deliver(change, driver)
            self._schedule_status()

    def _request_stop(self, sig: signal.Signals) -> None:
        if not self._stop.is_set():
            log.info("%s received", sig.name)
            self._stop.set()

    def _reload(self) -> None:
        log.warning("SIGHUP: configuration reload is not implemented yet; keeping the "
                    "running configuration")

    async def _close(self) -> None:
        for coro in self._preparing:  # built but never awaited when start-up failed
            coro.close()
        self._preparing = []
        if self._frames is not None:
            self._frames.close()
        if self._transport is not None:
            self._transport.close()
        if self._addresses is not None:
            await self._addresses.close()

    def request_stop(self) -> None:
        self._stop.set()


def run_daemon(config: Config, options: DaemonOptions) -> int:
    """Run the daemon until SIGTERM/SIGINT; the exit status (0 after a graceful stop)."""
    setup_logging(options.log_format, options.log_level)
    # The event loop shares the interpreter with the netlink and scapy worker threads:
    # let it win the GIL back within 1 ms (default 5 ms) when a VRRP timer is due.
    sys.setswitchinterval(0.001)
    daemon = Daemon(config, options)
    try:
        return asyncio.run(daemon.run())
    except KeyboardInterrupt:
        return 0
    except Exception:
        log.exception("hacluster failed")
        return 1
