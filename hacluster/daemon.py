"""The daemon's composition roots: what each shape shares, and `run_daemon` choosing one.

`hacluster run` runs one of three shapes, each a small root composing roles that have
the same interface (`hacluster.roles.interface.Role`):

- the supervisor (`hacluster.supervisor.Supervisor`, the default): the VRRP role and
  the balancer role in processes of their own, the check workers' zygote, the control
  API, systemd notification;
- the VRRP role's process (`hacluster.vrrp_root.VrrpRoot`): the VRRP part
  (`hacluster.vrrp_part.VrrpPart`) and its notify scripts;
- `--single-process` (`hacluster.single.SingleProcess`): the VRRP part, the balancer
  (`hacluster.balancer.Balancer`) and the control API in one process.

`Root` is what they share: the configuration and command line, signal wiring (SIGTERM
and SIGINT stop, SIGHUP reloads, SIGUSR1 dumps), the stop sequence, reloads (carried
out by `hacluster.reload_coordinator.Reloader` through the roles' interface), the
control API (`hacluster.controller` reads the roots' roles).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from hacluster.config.model import Config
from hacluster.daemon_options import DaemonOptions, with_overrides
from hacluster.logs import setup_logging
from hacluster.roles.interface import Role

# The VRRP role imports this module before its release: what only some shapes use is
# imported where it is used.
if TYPE_CHECKING:
    from hacluster.api import ApiServer
    from hacluster.balancer import Balancer
    from hacluster.metrics import Metrics
    from hacluster.reload_coordinator import Reloader
    from hacluster.roles.balancer import BalancerRole
    from hacluster.roles.vrrp import VrrpRole
    from hacluster.sdnotify import Notifier as SdNotifier
    from healthchecks.zygote import Zygote

log = logging.getLogger("hacluster.daemon")

def settle_gc() -> None:
    """Start-up is over: what is alive now lives as long as the process, and full
    collections need not walk it again (see healthchecks.gcsettle)."""
    from healthchecks.gcsettle import settle  # imported here, as the checkers are

    settle()


class Root:
    """What every shape shares (see the module's docstring). A shape supplies `_start`
    (everything up to running: None, or the exit status of a failed start) and
    `_stop_parts` (its roles stopped, VRRP first), and the reload hooks it needs."""

    def __init__(self, config: Config, options: DaemonOptions) -> None:
        self.options = options
        self.config = with_overrides(config, options)
        #: The VRRP part (here) or role (its process), and the balancer (either).
        self.vrrp: Role[dict[str, Any] | None] | None = None
        self.balancer: Balancer | BalancerRole | None = None
        self.sd: SdNotifier | None = None
        self.api: ApiServer | None = None
        self.started = asyncio.Event()  # set once the instances run
        self.stopping = asyncio.Event()
        self.running = False
        self.reload_lock = asyncio.Lock()
        self.started_at = time.monotonic()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reloader_made: Reloader | None = None  # made on the first reload

    @property
    def metrics(self) -> Metrics | None:
        """What /metrics shows of this process (None until built)."""
        return None

    # ------------------------------------------------------------------ running

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT (or `request_stop`); the exit status."""
        from hacluster.sdnotify import Notifier as SdNotifier

        loop = asyncio.get_running_loop()
        self.sd = SdNotifier.from_env()
        failed = await self._start(loop)
        if failed is not None:
            return failed
        await self.stopping.wait()
        await self._shutdown()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        log.info("hacluster stopped")
        return 0

    async def _start(self, loop: asyncio.AbstractEventLoop) -> int | None:
        raise NotImplementedError

    def _handle_signals(self, loop: asyncio.AbstractEventLoop,
                        dump: Callable[[], None] | None) -> None:
        """SIGTERM/SIGINT stop, SIGHUP reloads, SIGUSR1 calls `dump` (if given)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._request_stop, sig)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        if dump is not None:
            loop.add_signal_handler(signal.SIGUSR1, dump)

    def _request_stop(self, sig: signal.Signals) -> None:
        if not self.stopping.is_set():
            log.info("%s received", sig.name)
            self.stopping.set()

    def request_stop(self) -> None:
        self.stopping.set()

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ stopping

    async def _shutdown(self) -> None:
        """The stop sequence every shape shares: VRRP first (masters resign), a reload
        in flight finished, the rest stopped, then the API and systemd told."""
        assert self.sd is not None
        self.sd.stopping()
        log.info("stopping: masters resign with priority 0 and release their VIPs")
        await self._stop_first()
        # A reload in flight finishes first: it may be half way through a unit.
        async with self.reload_lock:
            self.running = False
            await self._stop_parts()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.api is not None:
            await self.api.stop()
            self.api = None
        await self.sd.close()
        await self._close()

    async def _stop_first(self) -> None:
        """What stops before a reload in flight is waited for (a VRRP role)."""

    async def _stop_parts(self) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        """Last: what is closed once everything has stopped."""

    # ------------------------------------------------------------------ shared parts

    async def _start_api(self) -> None:
        """The control API and /metrics (an API that cannot listen is logged)."""
        from hacluster.api import ApiError, ApiServer, Listeners
        from hacluster.controller import DaemonController

        metrics = self.metrics
        assert metrics is not None
        controller = DaemonController(self)
        api = ApiServer(controller, metrics, Listeners.from_global_defs(self.config.global_defs))
        try:
            await api.start()
        except ApiError as exc:
            # VRRP and the dataplane matter more than the control API: keep serving.
            log.error("[api] control API not available: %s", exc)
            return
        self.api = api
        controller.prepare_status()

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

    # The coordinator's hooks (`hacluster.reload_coordinator.ReloadHost`).

    async def prepare_config(self, config: Config) -> Config:
        """`config` as the roles here run it (the VRRP part makes its macvlans)."""
        return config

    async def new_balancer(self, config: Config) -> Balancer | BalancerRole | None:
        """A balancer for `config`, the first with virtual servers; RoleFailed."""
        return None

    async def unchanged(self, config: Config) -> None:
        """A reload of the same file."""

    async def reconfigured(self, config: Config,
                           balancer: Balancer | BalancerRole | None) -> None:
        """After the roles took `config`: a new balancer (ready) runs, the API
        listeners follow."""
        if balancer is not None:
            self.balancer = balancer
        if self.api is not None:
            from hacluster.api import ApiError, Listeners

            try:
                await self.api.reconfigure(Listeners.from_global_defs(config.global_defs))
            except ApiError as exc:
                log.error("[api] %s", exc)

    def reloaded(self, ok: bool) -> None:
        """A reload is over (done or refused)."""

    # ------------------------------------------------------------------ the API's

    async def set_maintenance(self, name: str, on: bool) -> bool:
        """Maintenance on or off for instance `name`; False: no such instance."""
        return False

    def changed(self) -> None:
        """Something the status file shows changed (a drain)."""

    def role_restarts(self) -> dict[str, int]:
        """Restarts of each role process (none when everything runs in this one)."""
        return {}


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
    root: Root
    if options.role == "supervisor":
        from hacluster.roles.vrrp import VrrpRole, release
        from hacluster.supervisor import Supervisor

        if role is None:
            role = VrrpRole()
            role.fork()
            release(role, config, options)
        # The VRRP role writes the status file (its instances are what it shows).
        root = Supervisor(config, dataclasses.replace(options, status_file=None), role,
                          zygote)
    else:
        from hacluster.single import SingleProcess

        root = SingleProcess(config, options)
    try:
        return asyncio.run(root.run())
    except KeyboardInterrupt:
        return 0
    except Exception:
        log.exception("hacluster failed")
        return 1
