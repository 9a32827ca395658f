"""global_defs.lvs_sync_daemon at run time: the IPVS connection-sync daemon follows VRRP.

As keepalived: with an `instance`, the kernel runs the master sync daemon while that
instance is MASTER and the backup one otherwise (vrrp.c: ipvs_syncd_master / _backup),
starting as backup; without one, both run from the start (check_daemon.c,
IPVS_MASTER_BACKUP). At stop both are stopped. The syncid defaults to the instance's
VRID (0 without an instance). Changes are carried out by one task, latest wish first,
so a flapping instance never queues kernel calls; a refusal is logged and tried again
at the next change or reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from hacluster.config.model import Config, LvsSyncDaemon
from hacluster.ipvs.backend import BackendError
from hacluster.ipvs.netlink import SyncDaemon, SyncState
from vrrp.machine import State

log = logging.getLogger("hacluster.ipvs")


class SyncBackend(Protocol):
    """The part of the netlink backend that drives sync daemons."""

    async def sync_daemons(self) -> list[SyncDaemon]: ...

    async def start_sync_daemon(self, daemon: SyncDaemon) -> None: ...

    async def stop_sync_daemon(self, state: SyncState) -> bool: ...

    async def follow_sync_role(self, daemon: SyncDaemon) -> None: ...


def daemon_for(cfg: LvsSyncDaemon, state: SyncState, vrid: int | None) -> SyncDaemon:
    """The kernel daemon `cfg` asks for in `state` (syncid: given, else the VRID, else 0)."""
    syncid = cfg.syncid if cfg.syncid is not None else (vrid or 0)
    return SyncDaemon(state, cfg.interface, syncid, cfg.maxlen or 0, cfg.group, cfg.port,
                      cfg.ttl)


def wanted(cfg: LvsSyncDaemon, vrid: int | None, master: bool) -> tuple[SyncDaemon, ...]:
    """The daemons to run: both without an instance, else the one of the VRRP role."""
    if cfg.instance is None:
        return (daemon_for(cfg, SyncState.MASTER, vrid), daemon_for(cfg, SyncState.BACKUP, vrid))
    return (daemon_for(cfg, SyncState.MASTER if master else SyncState.BACKUP, vrid),)


def _vrid(config: Config) -> int | None:
    cfg = config.global_defs.lvs_sync_daemon
    if cfg is None or cfg.instance is None:
        return None
    inst = config.vrrp_instances.get(cfg.instance)
    return inst.virtual_router_id if inst is not None else None


class SyncFollower:
    """Keeps the kernel's sync daemons as `config` and the followed instance's state say."""

    def __init__(self, backend: SyncBackend, config: Config) -> None:
        self._backend = backend
        self._config = config
        self._master = False
        self._want: tuple[SyncDaemon, ...] = ()
        self._applied: tuple[SyncDaemon, ...] | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._want = self._compute()

    def _compute(self) -> tuple[SyncDaemon, ...]:
        cfg = self._config.global_defs.lvs_sync_daemon
        if cfg is None:
            return ()
        return wanted(cfg, _vrid(self._config), self._master)

    @property
    def want(self) -> tuple[SyncDaemon, ...]:
        return self._want

    @property
    def settled(self) -> bool:
        """Whether the kernel was last brought to what is wanted now."""
        return self._applied == self._want and not self._wake.is_set()

    async def start(self) -> None:
        """Bring the kernel to the starting picture (backup, or both) and keep following."""
        await self._apply()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="lvs-sync")

    def vrrp_state(self, instance: str, state: State) -> None:
        """A VRRP instance changed state; only the followed one matters."""
        cfg = self._config.global_defs.lvs_sync_daemon
        if cfg is None or cfg.instance != instance:
            return
        master = state is State.MASTER
        if master != self._master:
            self._master = master
            self._set_want()

    def reconfigure(self, config: Config) -> None:
        """Follow `config` from now on (a changed daemon is restarted)."""
        self._config = config
        self._set_want()

    def _set_want(self) -> None:
        want = self._compute()
        if want != self._want:
            self._want = want
            self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._apply()

    async def _apply(self) -> None:
        want = self._want
        if want == self._applied:
            return
        try:
            if len(want) == 1:
                await self._backend.follow_sync_role(want[0])
            else:
                running = {d.state for d in await self._backend.sync_daemons()}
                for state in SyncState:
                    if state in running and not any(d.state is state for d in want):
                        await self._backend.stop_sync_daemon(state)
                for daemon in want:
                    if daemon.state in running:
                        await self._backend.stop_sync_daemon(daemon.state)
                    await self._backend.start_sync_daemon(daemon)
        except BackendError as exc:
            log.error("lvs_sync_daemon: %s", exc)
            self._applied = None
            return
        self._applied = want
        roles = " and ".join(d.state.name.lower() for d in want) or "none"
        log.info("lvs_sync_daemon: %s sync daemon on %s (syncid %s)", roles,
                 want[0].interface if want else "-", want[0].syncid if want else "-")

    async def stop(self) -> None:
        """Stop following, and stop the kernel's sync daemons we ran."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._applied:
            for daemon in self._applied:
                try:
                    await self._backend.stop_sync_daemon(daemon.state)
                except BackendError as exc:
                    log.error("lvs_sync_daemon: %s", exc)
        self._applied = None
