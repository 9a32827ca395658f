"""The load balancer: its parts started, stopped and drained as one."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from hacluster.apitypes import (
    UnknownRealServer,
    UnknownVirtualServer,
    normalize_real_server,
    normalize_virtual_server,
)
from hacluster.balancer import Handed
from hacluster.config.model import Config
from hacluster.ipvs.backend import Backend
from hacluster.loadbalancer.members import Real
from hacluster.loadbalancer.prepare import prepare
from hacluster.loadbalancer.reload import ReloadPart
from hacluster.loadbalancer.status import StatusPart
from hacluster.policy import PolicyState, on_removal
from hacluster.startuptrace import mark
from healthchecks import HttpSessions, Runner, ShardedRunner

if TYPE_CHECKING:
    from hacluster.metrics import Metrics
    from hacluster.notify import Notifier
    from healthchecks.zygote import Zygote


log = logging.getLogger("hacluster.loadbalancer")

#: How long a health change waits for others before the reconcile it triggers, so a
#: burst of changes (a switch port dies under ten servers) makes one reconcile.
DEFAULT_COALESCE = 0.02
#: How long `stop()` waits for a reconcile in flight before cancelling it.
STOP_GRACE = 10.0


class LoadBalancer(ReloadPart, StatusPart):
    """Health checks, policy and the dataplane of one configuration, kept in step.

    `backend` None runs the checks and notifications without a dataplane
    (`dataplane: none`). The backend is the caller's: `stop()` does not close it.

    Cost: a health change re-evaluates only its own virtual server and, between the
    periodic passes, reconciles only that service against the table as last read or
    written (so it does not read the whole dataplane back); the periodic pass, the
    first one, and any pass after a dataplane error read the whole table and compare
    all of it.

    Its parts, each in a module of its own: the real servers and their checks
    (`HealthPart`), the policy (`PolicyPart`), the reconcile loop (`ReconcilePart`),
    reloads (`ReloadPart`) and status (`StatusPart`); here, what ties them together:
    starting, stopping, and the operator's drain.
    """

    def __init__(
        self,
        config: Config,
        backend: Backend | None,
        notifier: Notifier | None = None,
        *,
        metrics: Metrics | None = None,
        reconcile_interval: float | None = None,
        coalesce: float = DEFAULT_COALESCE,
        max_concurrency: int = 4096,
        workers: int = 0,
        handed: Mapping[tuple[str, str], Handed] | None = None,
        on_health: Callable[[str, str, Handed | None], None] | None = None,
        zygote: Zygote | None = None,
    ) -> None:
        self._wanted = prepare(config)  # refuse a configuration we cannot run, at once
        # A restarted balancer's checks start in the state its predecessor reported
        # (`handed`, by virtual and real server name), so a server that was down stays
        # out and one with alpha that had come up stays in; `on_health` hears every
        # server's checks' states as they change, to hand them on again.
        self._handed = dict(handed or {})
        self.on_health = on_health
        self._config = config
        self._backend = backend
        self._notifier = notifier
        self._metrics = metrics
        self._interval_override = reconcile_interval
        self._coalesce = coalesce
        # With workers, checks run in worker processes (so no amount of checking delays
        # this process's loop) and their outcomes come back as data; forked from
        # `zygote` if given, so that they share its imported pages.
        self._sharded = None
        if workers:
            self._runner = self._sharded = ShardedRunner(
                workers, max_concurrency=max_concurrency, on_change=self._on_change,
                on_results=self._on_results, zygote=zygote,
                result_buckets=metrics.check_buckets if metrics is not None else (),
            )
        else:
            self._runner = Runner(max_concurrency=max_concurrency, on_change=self._on_change)
        self._runner_start = None
        self._http = HttpSessions()
        self._servers = {}
        self._reals = {}
        self._members = {}
        self._health = {}
        self._drained = set()
        self._quorum = {}
        self._entries = {}
        self._dirty = set()
        self._retired = set()
        self._table = None
        self._full_next = True
        self._flush_first = config.global_defs.lvs_flush
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task = None
        self._seq = itertools.count(1)
        self._conflicts = set()
        self._failures = {}
        self._backend_down = None
        self._listing = None
        self._table_read_at = None
        self._listing_task = None
        self._started = False
        self._stopped = False
        self.counters = Counter()

    def server_up(self, virtual_server: str, real_server: str) -> bool:
        """Whether a real server is up now (its checks pass)."""
        return self._find(virtual_server, real_server).up

    async def start(self) -> None:
        """Start every check, reconcile the dataplane once, then keep it reconciled."""
        if self._started or self._stopped:
            raise RuntimeError("a LoadBalancer starts once")
        self._started = True
        now = asyncio.get_running_loop().time()
        self._servers = self._service_map(self._config)
        for i, (key, want) in enumerate(self._wanted.items()):
            self._add_real(key, want, now)
            if i % 256 == 255:
                await asyncio.sleep(0)  # thousands of checks: let VRRP timers run meanwhile
        self._regroup()
        self._dirty = set(self._servers)
        if self._sharded is not None:
            # Worker processes take a moment to start: the first reconcile (from the
            # starting states) and the caller need not wait for them.
            self._runner_start = asyncio.get_running_loop().create_task(self._runner.start())
        else:
            await self._runner.start()
        mark("balancer: checks started")
        await self._apply_timeouts(self._config)
        await self.reconcile("start")
        mark("balancer: first reconcile")
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="loadbalancer-reconcile"
        )
        log.info(
            "load balancer started: %d virtual server(s), %d real server(s), %d check(s), "
            "dataplane %s", len(self._servers), len(self._reals),
            sum(len(r.checks) for r in self._reals.values()),
            self._backend.name if self._backend is not None else "none",
        )

    async def stop(self, flush: bool | None = None) -> None:
        """Stop checking; remove our services from the dataplane when `flush` is true.

        `flush` None follows `global_defs.lvs_flush_on_stop`. Virtual servers with
        `omega` report their live real servers down and their quorum down.
        """
        if not self._started:
            return
        self._started = False
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            # Let a reconcile in flight finish (a dataplane transaction is not cut in
            # half), but do not wait for a hung backend for ever.
            locked = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_GRACE):
                    locked = await self._lock.acquire()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if locked:
                self._lock.release()
        state = PolicyState(dict(self._quorum))
        for vs in self._servers.values():
            self._handle_events(on_removal(vs, self._health, state), "stopping")
        if self._runner_start is not None:
            with contextlib.suppress(Exception):
                await self._runner_start
        await self._runner.stop()
        if self._listing_task is not None:
            self._listing_task.cancel()
            with contextlib.suppress(BaseException):
                await self._listing_task
        await self._http.close()
        if flush is None:
            flush = self._config.global_defs.lvs_flush_on_stop
        if flush and self._backend is not None:
            await self._flush()
        log.info("load balancer stopped (IPVS entries %s)", "flushed" if flush else "left")

    async def checks_running(self) -> None:
        """Return once the check workers run, each with its checks (at once when the
        checks run in this process); what starting them raised, raised here."""
        if self._runner_start is not None:
            await asyncio.shield(self._runner_start)

    async def drain(self, virtual_server: str, real_server: str) -> None:
        """Weight 0 for a real server (connections stay) until `undrain`, across reloads."""
        await self._set_drained(virtual_server, real_server, "drain")

    async def undrain(self, virtual_server: str, real_server: str) -> None:
        """Give a drained real server its weight back (as its health allows)."""
        await self._set_drained(virtual_server, real_server, "undrain")

    async def _set_drained(self, virtual_server: str, real_server: str, how: str) -> None:
        real = self._find(virtual_server, real_server)
        drain = how == "drain"
        if (real.key in self._drained) != drain:
            if drain:
                self._drained.add(real.key)
            else:
                self._drained.discard(real.key)
            log.info("[%s] real server %s %s", real.vs, real.rs,
                     "drained" if drain else "undrained")
        self._dirty.add(real.key[0])
        if self._started:
            await self.reconcile(how, full=False)

    def drained(self, virtual_server: str, real_server: str) -> bool:
        return self._find(virtual_server, real_server).key in self._drained

    def _find(self, virtual_server: str, real_server: str) -> Real:
        """The real server named as the control API names it; Unknown* errors otherwise."""
        vs_name = normalize_virtual_server(virtual_server)
        rs_name = normalize_real_server(real_server)
        for skey, vs in self._servers.items():
            if str(vs) == vs_name:
                for real in self._members.get(skey, []):
                    if str(real.rs) == rs_name:
                        return real
                raise UnknownRealServer(vs_name, rs_name)
        raise UnknownVirtualServer(vs_name)
