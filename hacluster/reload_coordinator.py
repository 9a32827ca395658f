"""The reload coordinator: load the file again, refuse it whole or hand it to each role.

`Reloader.reload()` (SIGHUP, the control API, or the supervisor handing a VRRP role its
new file) coordinates; the roles carry the reload out, each through its
`reconfigure(config)` (`hacluster.roles.interface.Role`), planned by a pure function of
(old, new, running):

- the balancer first, the one role that may still refuse: `LoadBalancer.reconfigure`
  (`hacluster.reload_balancer`, `hacluster.reload_checks`): unchanged virtual servers
  get no dataplane operation, unchanged checks keep their health;
- then VRRP: `plan_vrrp_reload` (`hacluster.reload_plan`), carried out by the VRRP part
  (`hacluster.vrrp_reload`), in this process or in the VRRP role's: unchanged units keep
  their machines, timers and VIPs, priority and preemption are taken in place, a
  changed unit is rebuilt keeping the mastership of an instance that is still the
  same router; notify, alerts, tracking and routes take the new file in place;
- then the root's own parts (`ReloadHost.reconfigured`): a first balancer, the
  supervisor's notify outputs, lvs_sync and the API listeners.

Everything that can refuse the file runs before anything is touched: the loader, the
same preflight as `hacluster run`, the single-instance locks, the balancer's checks. A
refused reload changes nothing and says why, one problem per line. Around it: one
reload at a time, systemd told RELOADING then READY, reloads counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from hacluster.config.diff import diff_configs
from hacluster.config.model import Config
from hacluster.daemon_options import DaemonOptions, with_overrides
from hacluster.roles.interface import Outcome, Role, RoleFailed

if TYPE_CHECKING:
    from hacluster.metrics import Metrics
    from hacluster.sdnotify import Notifier as SdNotifier

log = logging.getLogger("hacluster.daemon")


class ReloadRefused(Exception):
    """A new configuration was refused; the message lists every problem, one per line."""


class ReloadHost(Protocol):
    """What the coordinator reads and calls of the composition root it reloads."""

    options: DaemonOptions
    config: Config
    started: asyncio.Event
    stopping: asyncio.Event
    running: bool
    reload_lock: asyncio.Lock
    sd: SdNotifier | None

    @property
    def metrics(self) -> Metrics | None: ...

    @property
    def vrrp(self) -> Role[Any] | None: ...

    @property
    def balancer(self) -> Role[Any] | None: ...

    async def prepare_config(self, config: Config) -> Config: ...

    async def new_balancer(self, config: Config) -> Any: ...

    async def unchanged(self, config: Config) -> None: ...

    async def reconfigured(self, config: Config, balancer: Any) -> None: ...

    def reloaded(self, ok: bool) -> None: ...


class Reloader:
    """Carries out the reloads of one root, one at a time, through its roles."""

    def __init__(self, host: ReloadHost) -> None:
        self.host = host
        self.counts: dict[str, int] = {"ok": 0, "refused": 0}

    async def reload(self, given: Config | None = None) -> Outcome:
        """Load the config file again (or take `given`, already loaded) and switch to it
        by difference: (done, message)."""
        h = self.host
        await self._started()
        async with h.reload_lock:
            if not h.running:
                return False, "the daemon is not running (starting or stopping)"
            sd = h.sd
            if sd is not None:
                sd.reloading()
            started = time.monotonic()
            try:
                message = await self._switch(given)
            except ReloadRefused as exc:
                self._count(False)
                lines = str(exc).splitlines() or ["refused"]
                log.error("reload refused, the running configuration is kept: %d problem(s)",
                          len(lines))
                for line in lines:
                    log.error("reload refused: %s", line)
                ok, message = False, str(exc)
            except Exception as exc:  # a bug: say so, keep running what runs
                log.exception("reload failed part way")
                self._count(False)
                ok, message = False, f"reload failed part way: {type(exc).__name__}: {exc}"
            else:
                self._count(True)
                log.info("%s in %.0f ms: %s",
                         "[vrrp role] reload applied" if h.options.role == "vrrp"
                         else "reload done", (time.monotonic() - started) * 1000,
                         message)
                ok = True
            h.reloaded(ok)
            self._keep_locks()
            if sd is not None:
                sd.ready(status=f"reload {'done' if ok else 'refused'}")
            return ok, message

    def _count(self, ok: bool) -> None:
        self.counts["ok" if ok else "refused"] += 1
        metrics = self.host.metrics
        if metrics is not None:
            metrics.reload(ok)

    async def _started(self) -> None:
        """A reload asked for during start-up (SIGHUP as the roles come up) waits until
        the daemon runs, rather than being lost; one during the stop is refused."""
        h = self.host
        if h.started.is_set() or h.stopping.is_set():
            return
        log.info("reload waits for start-up to finish")
        waits = [asyncio.ensure_future(h.started.wait()),
                 asyncio.ensure_future(h.stopping.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    # ------------------------------------------------------------------ the steps

    async def _load(self, given: Config | None) -> tuple[Config, Mapping[str, int] | None]:
        """The new configuration (and where its keys are), or ReloadRefused."""
        h = self.host
        path = h.options.config_file
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
        return with_overrides(loaded, h.options), lines

    def _check(self, old: Config, new: Config, lines: Mapping[str, int] | None,
               preflight_it: bool) -> None:
        """Everything that can refuse the file, before anything is touched: the same
        preflight as `hacluster run` and `check-config`, then the instance locks."""
        from hacluster.config.errors import Problem

        h = self.host
        problems: list[str] = []
        if new.global_defs.dataplane != old.global_defs.dataplane and h.balancer is not None:
            problems.append(str(Problem(
                str(h.options.config_file), (lines or {}).get("global_defs.dataplane", 0),
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
        h = self.host
        new, lines = await self._load(given)
        # Where VRRP runs, the macvlans are made before the instances (and the diff).
        new = await h.prepare_config(new)
        old = h.config
        diff = diff_configs(old, new)
        if diff.is_empty:
            await h.unchanged(new)
            return "no change"
        self._check(old, new, lines, preflight_it=given is None)
        balancer = h.balancer
        if balancer is None:  # the load balancer logs the same summary
            for line in diff.summary():
                log.info("[reload] %s", line)
        # The balancer first: it is the one role that may still refuse.
        new_balancer = None
        if balancer is not None:
            ok, why = await balancer.reconfigure(new)
            if not ok:
                raise ReloadRefused(why)
        elif new.virtual_servers:
            try:
                new_balancer = await h.new_balancer(new)
            except RoleFailed as exc:
                raise ReloadRefused(str(exc)) from None
        # Nothing below refuses: what fails is logged and the rest carried on with.
        h.config = new
        summary = "VRRP unchanged"
        if h.vrrp is not None:
            ok, summary = await h.vrrp.reconfigure(new)
            if not ok:
                log.error("[reload] the VRRP role: %s", summary)
        await h.reconfigured(new, new_balancer)
        return summary

    # ------------------------------------------------------------------ locks

    def _lock_instances(self, new: Config) -> None:
        """New instances take their single-instance locks (another daemon running one
        of them refuses the reload); instances gone release theirs."""
        locks = self.host.options.locks
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
        h = self.host
        if h.options.locks is not None:
            from hacluster.single_instance import lock_specs

            h.options.locks.keep_only(lock_specs(h.config))
