"""The balancer's work in one process: the dataplane, the load balancer and its status.

`Balancer` owns what the `hacluster.roles.balancer` process runs (and what a
single-process daemon runs in its own loop): the dataplane backend named by
`global_defs.dataplane`, the `LoadBalancer` (checks -> policy -> desired table ->
reconcile) and the status snapshots built from it in slices. It offers the small
interface every role has (`hacluster.roles.interface.Role`: `start`,
`reconfigure(config)`, `stop`, `snapshot`) and what the control API and /metrics read
(`summary`, `virtual_server`, `ipvs`...), so the daemon and the API do not care whether
it runs here or in its own process (`hacluster.roles.balancer.BalancerRole`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hacluster.apitypes import UnknownVirtualServer, normalize_virtual_server
from hacluster.config.model import Config
from hacluster.roles.interface import Outcome, RoleFailed
from hacluster.startuptrace import mark

if TYPE_CHECKING:
    from hacluster.ipvs.backend import Backend
    from hacluster.loadbalancer import LoadBalancer
    from hacluster.metrics import Metrics
    from hacluster.notify import Notifier
    from hacluster.status_snapshot import Snapshot, StatusSnapshots

log = logging.getLogger("hacluster.balancer")

HealthSink = Callable[[str, str, "Handed | None"], None]


class BalancerError(RoleFailed):
    """The balancer cannot run this configuration here; the message says why."""


class LoadBalancerError(ValueError):
    """The configuration's checks cannot be run (every problem, one per line).

    Defined here, not in `hacluster.loadbalancer`, so that the processes which only hand a
    reload on (the supervisor, the VRRP role) can catch it without importing the load
    balancer: that import (checks, policy, dataplane) blocked their event loop for seconds
    on a slow machine, long enough for the VRRP heartbeat and systemd's watchdog to give
    the daemon up during a reload.
    """


@dataclass(frozen=True, slots=True)
class Handed:
    """A real server's checks' states (in their configured order) and its reason, as a
    balancer hands them to its successor.

    Defined here, like `LoadBalancerError`, so that the supervisor, which keeps them in
    its journal, need not import the load balancer (megabytes it would hold unshared)."""

    ups: tuple[bool, ...]
    reason: str


def dataplane_problems(config: Config) -> list[str]:
    """What the configured dataplane cannot carry out (duplicate services aside, which
    the load balancer reports and skips)."""
    if not config.virtual_servers:
        return []
    from hacluster.ipvs.dataplane import config_problems
    from hacluster.policy import conflicts

    servers = config.virtual_servers
    try:
        problems = config_problems(config.global_defs.dataplane, servers)
    except ValueError as exc:
        return [str(exc)]
    skip = set(conflicts(servers))
    return [p for p in problems if p not in skip]


class Balancer:
    """The dataplane, the load balancer of a configuration and its status snapshots."""

    def __init__(self, config: Config, *, metrics: Metrics | None = None,
                 notifier: Notifier | None = None,
                 handed: Mapping[tuple[str, str], Handed] | None = None,
                 on_health: HealthSink | None = None) -> None:
        self.config = config
        self._metrics = metrics
        self._notifier = notifier
        self._handed = handed
        self._on_health = on_health
        self._lb: LoadBalancer | None = None
        self._backend: Backend | None = None
        self._snapshots: StatusSnapshots | None = None
        self._started = False
        #: Told of each status part built (`encode_part`): the role hands it over.
        self.on_status: Callable[[bytes], None] | None = None

    @property
    def load_balancer(self) -> LoadBalancer | None:
        return self._lb

    @property
    def backend(self) -> Backend | None:
        return self._backend

    # ------------------------------------------------------------------ lifecycle

    async def prepare(self) -> None:
        """Open the dataplane and plan every check; BalancerError when it cannot run."""
        config = self.config
        if not config.virtual_servers:
            return
        self._lb = await self._make(config)

    async def start(self) -> None:
        """Start the checks and reconcile the dataplane (after `prepare`): a table left
        by a predecessor is read back and repaired, not rebuilt."""
        self._started = True
        if self._lb is not None:
            await self._lb.start()

    async def checks_running(self) -> None:
        """Return once the check workers run (after `start`); BalancerError when they
        could not be started."""
        if self._lb is None:
            return
        try:
            await self._lb.checks_running()
        except (OSError, RuntimeError) as exc:
            raise BalancerError(f"the health-check workers did not start: {exc}") from None

    async def _make(self, config: Config) -> LoadBalancer:
        from hacluster.ipvs.backend import BackendError, BackendUnavailable
        from hacluster.loadbalancer import (
            LoadBalancer,
            LoadBalancerError,
            backend_for,
            checker_processes,
        )
        from healthchecks import zygote  # workers forked from `hacluster run`'s zygote

        problems = dataplane_problems(config)
        if problems:
            raise BalancerError("dataplane " + config.global_defs.dataplane + ": "
                                + "; ".join(problems))
        try:
            backend = backend_for(config)
            if backend is not None:
                # A dataplane that does not exist here (no IPVS in the kernel) is only
                # found by using it: refuse to start rather than log errors for ever.
                try:
                    await backend.dump()
                    mark("balancer: dataplane read")
                except BackendUnavailable:
                    await backend.close()
                    raise
                except Exception as exc:  # transient: the load balancer retries
                    log.warning("[%s] dataplane not readable yet: %s", backend.name, exc)
        except (BackendError, OSError, ValueError) as exc:
            raise BalancerError(f"dataplane {config.global_defs.dataplane}: {exc}") from exc
        try:
            workers = checker_processes(config)
            lb = LoadBalancer(config, backend, self._notifier, metrics=self._metrics,
                              workers=workers, handed=self._handed,
                              on_health=self._on_health, zygote=zygote.current())
            if workers:
                log.info("health checks run in %d worker process(es)", workers)
        except LoadBalancerError as exc:
            if backend is not None:
                await backend.close()
            raise BalancerError(f"virtual_servers: {exc}") from exc
        self._handed = None
        self._backend = backend
        return lb

    async def reconfigure(self, config: Config) -> Outcome:
        """Switch to `config` by difference; (False, why) keeps the running one (its
        checks cannot run, or a first load balancer cannot run here)."""
        try:
            if self._lb is not None:
                await self._lb.reconfigure(config)
            elif config.virtual_servers:
                self._lb = await self._make(config)
                if self._started:
                    await self._lb.start()
        except (LoadBalancerError, BalancerError) as exc:
            return False, str(exc)
        self.config = config
        self.changed()
        return True, ""

    @property
    def notifier(self) -> Notifier | None:
        return self._notifier

    def set_notifier(self, notifier: Notifier | None) -> None:
        self._notifier = notifier
        if self._lb is not None:
            self._lb.set_notifier(notifier)

    async def stop(self, flush: bool | None = None) -> None:
        """Stop checking (the table is flushed as `lvs_flush_on_stop` says, or `flush`)."""
        if self._snapshots is not None:
            await self._snapshots.close()
            self._snapshots = None
        if self._lb is not None:
            await self._lb.stop(flush)
        await self.close()

    async def close(self) -> None:
        if self._backend is not None:
            from hacluster.loadbalancer import close_backend

            await close_backend(self._backend, log)
            self._backend = None

    # ------------------------------------------------------------------ actions

    async def drain(self, virtual_server: str, real_server: str, on: bool) -> None:
        if self._lb is None:
            raise UnknownVirtualServer(virtual_server)
        if on:
            await self._lb.drain(virtual_server, real_server)
        else:
            await self._lb.undrain(virtual_server, real_server)
        self.changed()

    async def ipvs(self) -> dict[str, Any]:
        """The dataplane's table read now."""
        return {"services": []} if self._lb is None else await self._lb.ipvs()

    async def recent_ipvs(self) -> dict[str, Any]:
        """The table as last listed (at most about a second old)."""
        return {"services": []} if self._lb is None else await self._lb.recent_ipvs()

    # ------------------------------------------------------------------ status

    def summary(self) -> list[dict[str, Any]]:
        """Each virtual server's quorum and real servers up (cheap)."""
        return [] if self._lb is None else self._lb.summary()

    @property
    def dataplane_error(self) -> str | None:
        return None if self._lb is None else self._lb.dataplane_error

    def counters(self) -> dict[str, int]:
        return {} if self._lb is None else dict(self._lb.counters)

    async def status(self, *, table: bool = True) -> dict[str, Any] | None:
        """`LoadBalancer.status()` with fresh check counters (None: no virtual servers)."""
        if self._lb is None:
            return None
        await self._lb.refresh()
        return self._lb.status(table=table)

    async def snapshot(self) -> bytes:
        """The balancer's part of `GET /v1/status` from the latest snapshot (see
        `encode_part`); the first one, or one after a change, is waited for."""
        snapshots = self._status_snapshots()
        if snapshots is None:
            return self.encode_part(None)
        return self.encode_part(await snapshots.latest())

    def encode_part(self, snapshot: Snapshot | None) -> bytes:
        """A status part, ready to be relayed: one JSON line (`built_at` and
        `table_read_at` on the monotonic clock, `dataplane_error`, `counters`), then
        the text that goes into the document's object: `"virtual_servers": [...],
        "ipvs": [...]` (see `hacluster.status_snapshot`)."""
        head = {"built_at": None if snapshot is None else snapshot.built_at,
                "table_read_at": None if snapshot is None else snapshot.table_read_at,
                "dataplane_error": self.dataplane_error, "counters": self.counters()}
        if snapshot is None:
            return json.dumps(head).encode() + b'\n"virtual_servers": [], "ipvs": []'
        return b"".join((
            json.dumps(head).encode(), b'\n"virtual_servers": ',
            snapshot.virtual_servers, b', "ipvs": ', snapshot.ipvs,
        ))

    async def virtual_server(self, name: str) -> dict[str, Any]:
        """One virtual server as the status shows it, with its rows of the table as
        reconcile last read and wrote it; UnknownVirtualServer."""
        lb = self._lb
        name = normalize_virtual_server(name)
        if lb is None:
            raise UnknownVirtualServer(name)
        await lb.refresh()
        row = lb.virtual_server_row(name)
        if row is None:
            raise UnknownVirtualServer(name)
        from hacluster.apitypes import ipvs_rows

        try:  # read back at most about a second ago, and again after any change
            rows = ipvs_rows(await lb.recent_ipvs())
        except Exception as exc:
            row["ipvs"] = []
            row["ipvs_error"] = str(exc)
            return row
        row["ipvs"] = [r for r in rows if r["service"] == name]
        return row

    def prepare_status(self) -> None:
        """Build the first status snapshot now, in the background (the API is up): one,
        kept a while for a first request (`StatusSnapshots.prime`)."""
        snapshots = self._status_snapshots()
        if snapshots is not None:
            snapshots.prime()

    def keep_status_warm(self) -> None:
        """Somebody asks for the status: keep it built (`StatusSnapshots.keep_warm`)."""
        snapshots = self._status_snapshots()
        if snapshots is not None:
            snapshots.keep_warm()

    def changed(self) -> None:
        """A change made through the API or a reload shows in the next status."""
        if self._snapshots is not None:
            self._snapshots.invalidate()

    def _status_snapshots(self) -> StatusSnapshots | None:
        if self._lb is None:
            return None
        if self._snapshots is None:
            from hacluster.status_snapshot import StatusSnapshots

            self._snapshots = StatusSnapshots(self._lb)
            if self.on_status is not None:
                on_status = self.on_status
                self._snapshots.on_built = lambda snap: on_status(self.encode_part(snap))
        return self._snapshots
