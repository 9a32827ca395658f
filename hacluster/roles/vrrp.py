"""The VRRP role: instances, sync groups, trackers and VRRP notify in a process of their own.

keepalived's shape: the supervisor (`hacluster run`) forks this role before it even
reads the file, so the health checks, the dataplane, the control API and status never
share a loop with VRRP timers, and VRRP does not wait for the checks' plan. The role
imports what it runs while the supervisor loads and checks the file, then waits for the
supervisor's release (the accepted file, over the socketpair) before it touches
anything: a file `hacluster run` refuses never runs here, not even briefly. The role
runs the VRRP part (`hacluster.vrrp_part.VrrpPart`, under its root
`hacluster.vrrp_root.VrrpRoot`: no virtual servers, no API) and answers the supervisor
over a socketpair (`roles.channel`):
`ready`, `ping`, `status`, `metrics`, `maintenance`, `reload` (with the new config as
plain data), `modules` (the top-level packages it has imported), `stop`.

The child gets PR_SET_PDEATHSIG (SIGTERM): a killed supervisor makes it resign and
release its VIPs; a lost channel does the same. The supervisor restarts a role that
died, with backoff, logs and counts it; the new role cleans the VIPs the old one left
and rejoins the election as a restarted keepalived child does, and is handed the
instances in maintenance.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import logging
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

# `hacluster run` forks the role first thing: this module imports little, so the fork
# comes early and the role imports what it needs itself while the supervisor loads the
# file. Except the config model, which both need: imported once, before the fork, it
# costs ~45 ms of CPU less than imported by each. Measured, exec -> first advert: at
# load 9, 655-783 ms against 803-946 ms when each process imported it; on an idle
# machine (SCHED_FIFO) 198 against 193 ms. asyncio, which the supervisor needs only
# after the release, is imported by the role alone.
from hacluster.config.model import Config
from hacluster.roles.process import RoleProcess, begin_child
from hacluster.startuptrace import mark

if TYPE_CHECKING:

    from hacluster.config.model import GlobalDefs
    from hacluster.daemon_options import DaemonOptions
    from hacluster.vrrp_root import VrrpRoot

log = logging.getLogger("hacluster.roles")

#: Seconds between two heartbeats, and how long an answer is waited for. A late answer
#: still counts (`answering` judges by when the last one came): on a loaded or emulated
#: machine a working role may take seconds to answer, and must not pass for hung.
#: Restarts back off as `roles.process.BACKOFF` says.
HEARTBEAT = 1.0
HEARTBEAT_TIMEOUT = 30.0


def vrrp_config(config: Config) -> Config:
    """What the VRRP role is given: everything but the virtual servers."""
    return dataclasses.replace(config, virtual_servers=())


def release(role: VrrpRole, config: Config, options: DaemonOptions) -> None:
    """Release a forked `role` with the file the supervisor accepted and its command
    line: the overrides applied; the locks stay with the supervisor (a copy released in
    the role would release them for both), which has logged the leftovers already."""
    from hacluster.daemon_options import with_overrides

    role.release(with_overrides(config, options),
                 dataclasses.replace(options, locks=None, leftovers=()))


# --------------------------------------------------------------------------- child side

#: RLIMIT_RTTIME with vrrp_rt_priority when vrrp_rlimit_rttime is not set (microseconds).
DEFAULT_RLIMIT_RTTIME = 1_000_000
_MCL_CURRENT, _MCL_FUTURE = 1, 2


def apply_process_settings(g: GlobalDefs) -> list[str]:
    """vrrp_priority, vrrp_rt_priority (+ vrrp_rlimit_rttime) and vrrp_no_swap for this
    process; what was done or refused, one line each (a refusal is not fatal)."""
    done: list[str] = []
    if g.vrrp_priority:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, g.vrrp_priority)
            done.append(f"nice {g.vrrp_priority}")
        except OSError as exc:
            done.append(f"vrrp_priority {g.vrrp_priority} refused: {exc.strerror}")
    if g.vrrp_rt_priority is not None:
        limit = g.vrrp_rlimit_rttime or DEFAULT_RLIMIT_RTTIME
        try:
            # A runaway real-time loop would starve the machine: the kernel stops it
            # after `limit` microseconds of CPU without blocking.
            resource.setrlimit(resource.RLIMIT_RTTIME, (limit, limit))
            os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(g.vrrp_rt_priority))
            done.append(f"SCHED_RR priority {g.vrrp_rt_priority}, RLIMIT_RTTIME {limit} us")
        except OSError as exc:
            done.append(f"vrrp_rt_priority {g.vrrp_rt_priority} refused: {exc.strerror}")
    if g.vrrp_no_swap:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.mlockall(_MCL_CURRENT | _MCL_FUTURE) == 0:
            done.append("memory locked (mlockall)")
        else:
            done.append(f"vrrp_no_swap refused: {os.strerror(ctypes.get_errno())}")
    return done



#: What the role imports while the supervisor loads and checks the file: the modules
#: the start path of every VRRP-only config imports after the release (never pyroute2
#: nor scapy: vrrp.rtnl and vrrp.frames do what VRRP needs of them). What only some
#: configs use (notify scripts, alerts, FIFOs, tracking, routes, vmac, accept mode) is
#: imported after the release when the config uses it (`hacluster.vrrp_extras`); the
#: metrics and reload after start (`hacluster.vrrp_metrics`, `Root._reloader`).
PREPARE = (
    "hacluster.daemon", "hacluster.vrrp_part", "hacluster.vrrp_root", "hacluster.logs",
    "hacluster.sdnotify",
    "hacluster.config.lower_vrrp", "hacluster.reload_plan",
    "vrrp.transport", "vrrp.addresses", "vrrp.announce", "vrrp.driver", "vrrp.vipstate",
    "vrrp.addrwatch", "vrrp.speaker", "hacluster.roles.channel",
)


def _prepare() -> None:
    """Import what the role's start path needs, one module after the other on this
    thread (a second importing thread would only contend for the GIL)."""
    import importlib

    for name in PREPARE:
        importlib.import_module(name)
    from hacluster.roles.constructors import prepare_vrrp_role

    prepare_vrrp_role()


def _released(sock: socket.socket) -> tuple[Config, DaemonOptions] | None:
    """Block until the supervisor releases the role with the file it accepted; None when
    it refused the file (the channel closed first)."""
    from hacluster.daemon_options import DaemonOptions
    from hacluster.roles.codec import CODEC
    from healthchecks.wire import WireError

    def exactly(size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            chunk = sock.recv(size - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    head = exactly(4)
    body = None if head is None else exactly(int.from_bytes(head, "big"))
    if body is None:
        return None
    try:
        message = CODEC.decode(body)
    except WireError as exc:
        log.error("the supervisor's release could not be read: %s", exc)
        return None
    match message:
        case ("release", Config() as config, tuple() as fields):
            return config, DaemonOptions(*fields)
    log.error("the supervisor sent something other than a release; not starting")
    return None


def _child(sock: socket.socket, parent: int) -> int:
    """The role's process, from fork to exit (never returns into the parent's code)."""
    # Importing frees next to nothing: the collector's passes would only slow it (~2 ms).
    gc.disable()
    begin_child(parent, "hc-vrrp")
    import asyncio

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    # A status dump asked for before the loop handles it is not a reason to die.
    for sig in (signal.SIGHUP, signal.SIGUSR1):
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1, signal.SIGHUP})
    # The supervisor is loading and checking the file meanwhile: get ready, but touch
    # nothing (no VIP, no advert, no script) before it has accepted the file, so that
    # a file `hacluster run` refuses never runs here, not even briefly.
    mark("role: started")
    _prepare()
    gc.enable()
    mark("role: prepared")
    released = _released(sock)
    if released is None:
        return 0
    mark("role: released")
    config, options = released
    from hacluster.logs import setup_logging
    from hacluster.vrrp_root import VrrpRoot

    # As run_daemon does for the supervisor (this role was forked before): the loop wins
    # the GIL back within 1 ms from a thread (the metrics are imported in one after start).
    sys.setswitchinterval(0.001)
    if logging.getLogger().handlers == []:  # forked at start-up, before logging was set up
        setup_logging(options.log_format, options.log_level)
    for line in apply_process_settings(config.global_defs):
        log.info("[vrrp role] %s", line)
    root = VrrpRoot(vrrp_config(config), dataclasses.replace(options, role="vrrp"))
    try:
        return asyncio.run(_serve(root, sock))
    except KeyboardInterrupt:
        return 0
    except Exception:
        log.exception("the VRRP role failed")
        return 1


async def _serve(root: VrrpRoot, sock: socket.socket) -> int:
    import asyncio

    from hacluster.roles.channel import send_event, serve

    reader, writer = await asyncio.open_unix_connection(sock=sock)
    part = root.part

    async def handle(method: str, args: tuple[Any, ...]) -> Any:
        match method:
            case "ready":
                await root.started.wait()
                return os.getpid()
            case "ping":
                return "pong"
            case "modules":  # what the role has imported (its start path is kept lean)
                return sorted({name.partition(".")[0] for name in sys.modules})
            case "status":
                return await part.snapshot()
            case "metrics":
                return await part.metric_families()
            case "maintenance":
                return await part.set_maintenance(str(args[0]), bool(args[1]))
            case "reload":
                (new,) = args
                if not isinstance(new, Config):
                    raise TypeError("reload takes a Config")
                return await root.reload(new)
            case "stop":
                root.request_stop()
                return None
        raise ValueError(f"unknown request {method!r}")

    # State changes go to the supervisor as they happen (lvs_sync_daemon follows them).
    part.on_state_change = lambda name, state: send_event(writer, "state", name, state.name)
    server = asyncio.get_running_loop().create_task(serve(reader, writer, handle))
    running = asyncio.get_running_loop().create_task(root.started.wait())
    running.add_done_callback(lambda _: mark("role: instances running"))
    # The supervisor gone (channel closed): stop gracefully, resigning as masters.
    server.add_done_callback(lambda _: root.request_stop())
    try:
        return await root.run()
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await server
        writer.close()


# --------------------------------------------------------------------------- supervisor side


class VrrpRole(RoleProcess):
    """The supervisor's handle on the VRRP role: fork, ask, heartbeat, restart; the
    interface every role has (`hacluster.roles.interface.Role`)."""

    label = "the VRRP role"

    def __init__(self, on_restart: Callable[[], None] | None = None,
                 on_event: Callable[[str, tuple[Any, ...]], None] | None = None) -> None:
        super().__init__(on_restart, on_event)
        self.config: Config | None = None  # what it was released with (then reloaded to)
        self.options: DaemonOptions | None = None
        self._maintenance: set[str] = set()
        self._released = False

    # -- lifecycle -------------------------------------------------------------------

    def fork(self) -> None:
        """Start the role's process: it prepares, then waits for `release` (call first
        thing in `hacluster run`, before the file is loaded, and on restart)."""
        self._fork(_child)
        self._released = False

    def release(self, config: Config, options: DaemonOptions) -> None:
        """Let the forked role run `config` (the supervisor has loaded and accepted it)."""
        from hacluster.roles.codec import CODEC

        assert self._sock is not None
        self.config, self.options = config, options
        fields = tuple(getattr(options, f.name) for f in dataclasses.fields(options))
        message = ("release", vrrp_config(config), fields)
        self._sock.sendall(CODEC.frame(message))
        self._released = True

    def abandon(self) -> None:
        """The file was refused: a forked role that was never released exits unseen."""
        if self._released or self._sock is None:
            return
        self._sock.close()
        self._sock = None
        self._reap(block=True)

    async def start(self) -> None:
        """Open the channel and wait until the role's instances run; RoleFailed if it
        died first."""
        from hacluster.roles.interface import RoleFailed

        await self._connect()
        if not await self._wait_ready():
            raise RoleFailed("the VRRP role could not start")
        self._supervise_from_now()

    async def _wait_ready(self) -> bool:
        from hacluster.roles.channel import RoleError, RoleGone

        assert self._channel is not None
        try:
            await self._channel.call("ready", timeout=None)
        except (RoleGone, RoleError):
            self._reap(block=True)
            return False
        self._last_answer = time.monotonic()
        self._ready.set()
        return True

    async def stop(self, timeout: float = 30.0) -> None:
        """Ask the role to stop (masters resign first) and wait for it to exit."""
        await self._stop(timeout=timeout)

    # -- supervision -------------------------------------------------------------------

    async def _restarted(self) -> bool:
        assert self.config is not None and self.options is not None
        self.fork()
        self.release(self.config, self.options)
        await self._connect()
        if await self._wait_ready():
            log.info("the VRRP role runs again (pid %s)", self.pid)
            for name in sorted(self._maintenance):
                with contextlib.suppress(Exception):
                    await self.maintenance(name, True)
        return True

    def _heartbeat_period(self) -> float:
        return HEARTBEAT

    async def _beat(self) -> None:
        # Answered or not gates the systemd watchdog (Supervisor: `answering`).
        channel = self._channel
        if channel is None or not self._ready.is_set():
            return
        with contextlib.suppress(Exception):
            await channel.call("ping", timeout=HEARTBEAT_TIMEOUT)
            self._last_answer = time.monotonic()

    # -- requests ------------------------------------------------------------------------

    async def call(self, method: str, *args: Any, timeout: float | None = 10.0) -> Any:
        from hacluster.roles.channel import RoleGone

        if self._channel is None:
            raise RoleGone(method)
        return await self._channel.call(method, *args, timeout=timeout)

    async def snapshot(self) -> dict[str, Any] | None:
        """The role's instances and counters (None while it is not there)."""
        from hacluster.roles.channel import RoleError, RoleGone

        try:
            value = await self.call("status", timeout=5)
        except (RoleGone, RoleError, TimeoutError):
            return None
        return value if isinstance(value, dict) else None

    async def metric_families(self) -> list[Any]:
        from hacluster.roles.channel import RoleError, RoleGone

        try:
            value = await self.call("metrics", timeout=5)
        except (RoleGone, RoleError, TimeoutError):
            return []
        return value if isinstance(value, list) else []

    async def maintenance(self, name: str, on: bool) -> bool:
        """False: no such instance."""
        known = bool(await self.call("maintenance", name, on))
        if known:
            (self._maintenance.add if on else self._maintenance.discard)(name)
        return known

    async def reconfigure(self, config: Config) -> tuple[bool, str]:
        """Have the role reload to `config` (its VRRP part: `hacluster.vrrp_reload`)."""
        old, self.config = self.config, config
        value = await self.call("reload", vrrp_config(config), timeout=60)
        ok, message = value
        if ok and old is not None and self._maintenance:
            # What a restarted role is handed back: instances gone are not, and one
            # renamed (the same router, `hacluster.reload_plan.renames`) is by its name.
            from hacluster.config.diff import diff_configs
            from hacluster.reload_plan import renames

            moved = renames(diff_configs(old, config))
            self._maintenance = {moved.get(n, n) for n in self._maintenance
                                 if moved.get(n, n) in config.vrrp_instances}
        return bool(ok), str(message)

    def signal(self, sig: int) -> None:
        self._kill(sig)
