"""The supervisor (`hacluster run`): the roles in their processes, the API, systemd.

`Supervisor` composes the VRRP role (`hacluster.roles.vrrp.VrrpRole`, forked and
released by `hacluster run` before this is built), the balancer role
(`hacluster.roles.balancer.BalancerRole`, forked once the file is accepted), the
zygote the check workers are forked from, the control API and /metrics (read from the
roles when asked), the notify scripts, FIFOs and mail of the balancer's notifications,
lvs_sync_daemon following the states the VRRP role reports, and sd_notify: READY once
every role runs, WATCHDOG only while the VRRP role answers its heartbeat (a hung VRRP
is the one failure a restart of the whole director should follow; a hung balancer or
check worker is replaced here). Reloads are relayed to the roles
(`hacluster.reload_coordinator`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import TYPE_CHECKING, Any

from hacluster.config.model import Config
from hacluster.daemon import Root, settle_gc
from hacluster.daemon_options import DaemonOptions
from hacluster.lvs_follow import LvsSyncPart
from hacluster.notify_outputs import NotifyOutputs
from hacluster.roles.interface import RoleFailed
from vrrp.machine import State

if TYPE_CHECKING:
    from hacluster.balancer import Balancer
    from hacluster.metrics import Metrics
    from hacluster.roles.balancer import BalancerRole
    from hacluster.roles.vrrp import VrrpRole
    from healthchecks.zygote import Zygote

log = logging.getLogger("hacluster.daemon")


class Supervisor(Root):
    """The roles' processes, and what the director shows and is told from outside."""

    def __init__(self, config: Config, options: DaemonOptions, role: VrrpRole,
                 zygote: Zygote | None = None) -> None:
        super().__init__(config, options)
        self.role = role
        self.vrrp = role
        role.on_restart = self.role_restarted
        role.on_event = self._role_event
        self.zygote = zygote
        if zygote is not None:
            # Check workers are forked from it (the balancer role asks it: see
            # `healthchecks.zygote.current`); one that dies is started again at once.
            zygote.on_restart = lambda: self.role_restarted("zygote")
        self.outputs = NotifyOutputs(metrics=lambda: self._metrics)
        self.lvs_sync = LvsSyncPart()
        self._metrics: Metrics | None = None

    @property
    def metrics(self) -> Metrics | None:
        return self._metrics

    # ------------------------------------------------------------------ running

    async def _start(self, loop: asyncio.AbstractEventLoop) -> int | None:
        from hacluster.vrrp_metrics import new_metrics

        role = self.role
        config = self.config
        self._metrics = metrics = new_metrics(vrrp=False, balancer=False)
        metrics.extra = self._balancer_metrics
        metrics.refresh = self._refresh_vrrp_metrics
        self._handle_signals(loop, None)
        # `hacluster run` blocked these when it released the role (which may be MASTER
        # already): one that came since is delivered now, to the handler, and stops
        # everything gracefully once started (a SIGHUP: reloads once started).
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
        if self.zygote is not None:
            self._spawn(self.zygote.watch(), "zygote")
        # The VRRP role is starting meanwhile: nothing here holds it up. The balancer
        # role starts now too (forked with the file, which it does not need sent).
        balancer = self._fork_balancer(config)
        try:
            self.outputs.start(config)
        except RoleFailed as exc:
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
        try:
            await role.start()
        except RoleFailed as exc:
            log.error("%s", exc)
            if balancer is not None:
                await balancer.stop(flush=False)
            await self._close()
            return 1
        if balancer is not None:
            try:
                await balancer.start()
            except RoleFailed as exc:
                log.error("%s", exc)
                await role.stop()
                await self._close()
                return 1
            self.balancer = balancer
        log.info("hacluster supervisor (pid %d): VRRP role pid %s, balancer pid %s; "
                 "%d virtual server(s), dataplane %s", os.getpid(), role.pid,
                 None if balancer is None else balancer.pid, len(config.virtual_servers),
                 config.global_defs.dataplane)
        await self.lvs_sync.follow(config, self.balancer)
        self.running = True
        await self._start_api()
        settle_gc()
        self.started.set()
        sd = self.sd
        assert sd is not None
        sd.ready(status=f"VRRP instances: {', '.join(config.vrrp_instances) or 'none'}")
        # WATCHDOG only while the VRRP role answers its heartbeat: a hung VRRP is the
        # one failure a restart of the whole director should follow.
        interval = sd.watchdog_interval
        sd.start_watchdog(
            alive=lambda: role.answering(max(2 * (interval or 1.0), 3.0))
        )
        return None

    async def _stop_first(self) -> None:
        await self.role.stop()  # VRRP first: resigning matters most

    async def _stop_parts(self) -> None:
        await self.lvs_sync.stop()
        if self.balancer is not None:
            await self.balancer.stop()
        await self.outputs.close(timeout=self.config.global_defs.notify_timeout)

    # ------------------------------------------------------------------ the roles

    def _fork_balancer(self, config: Config) -> BalancerRole | None:
        """The balancer role of `config`, forked now (None without virtual servers)."""
        if not config.virtual_servers:
            return None
        from hacluster.roles.balancer import BalancerRole

        balancer = BalancerRole(config, on_restart=lambda: self.role_restarted("balancer"),
                                on_event=self._balancer_event)
        balancer.fork()
        return balancer

    def role_restarted(self, role: str = "vrrp") -> None:
        if self._metrics is not None:
            self._metrics.role_restarted(role)

    def role_restarts(self) -> dict[str, int]:
        from hacluster.roles.balancer import BalancerRole

        out: dict[str, int] = {"vrrp": self.role.restarts}
        if isinstance(self.balancer, BalancerRole):
            out["balancer"] = self.balancer.restarts
        if self.zygote is not None:
            out["zygote"] = self.zygote.restarts
        return out

    def _role_event(self, kind: str, args: tuple[Any, ...]) -> None:
        if kind == "state":
            name, label = args
            self.lvs_sync.state(str(name), State[str(label)])

    def _balancer_event(self, kind: str, args: tuple[Any, ...]) -> None:
        """The balancer role's notifications, run here (scripts, FIFOs, mail) in order."""
        if self.outputs.notifier is not None:
            from hacluster.roles.balancer import notify

            notify(self.outputs.notifier, self.config, kind, args)

    async def _balancer_metrics(self, accept: str | None) -> bytes:
        from hacluster.roles.balancer import BalancerRole

        if isinstance(self.balancer, BalancerRole):
            return await self.balancer.metrics_text(accept)
        return b""

    async def _refresh_vrrp_metrics(self) -> None:
        if self._metrics is not None:
            self._metrics.set_foreign(await self.role.metric_families())

    # ------------------------------------------------------------------ reload hooks

    async def new_balancer(self, config: Config) -> Balancer | BalancerRole | None:
        """A balancer role for `config`, running already; RoleFailed."""
        role = self._fork_balancer(config)
        if role is not None:
            await role.start()
        return role

    async def unchanged(self, config: Config) -> None:
        if config.global_defs.fifo_write_vrrp_states_on_reload:
            await self.role.reconfigure(config)  # (the role writes the states' lines)

    async def reconfigured(self, config: Config,
                           balancer: Balancer | BalancerRole | None) -> None:
        await self.outputs.reconfigure(config)
        await super().reconfigured(config, balancer)
        await self.lvs_sync.follow(config, self.balancer)

    async def _close(self) -> None:
        await self.lvs_sync.close()
        await super()._close()

    async def set_maintenance(self, name: str, on: bool) -> bool:
        return await self.role.maintenance(name, on)
