"""The load-balancing side of the daemon: health checks -> policy -> desired table -> dataplane.

`LoadBalancer` runs every configured check (through `healthchecks.Runner`), turns
health changes into the desired IPVS table (`hacluster.policy`), and keeps the
dataplane equal to it (`hacluster.ipvs.reconcile` against `Backend.dump()`):

- on every health change, coalesced: a burst of changes makes one reconcile, and it
  compares only the services that changed with the table as last read or written;
- periodically (`global_defs.reconcile_interval`), reading the whole table back, so a
  hand-typed `ipvsadm` or a dataplane restart is put right (an operation refused on a
  partial pass, a sign the table is not what we think, brings a full pass at once);
- at start, so a restart after a crash finds the table it left and duplicates nothing
  (with `lvs_flush` the first pass owns the whole table and removes anything else).

Real-server `notify_up`/`notify_down` are queued when a server's state changes, and
`quorum_up`/`quorum_down` when the policy reports them (the first evaluation of a
virtual server reports its initial quorum state), so a server's notification always
comes before the quorum change it causes. Backend errors are logged with the service
they concern and counted; they never stop the loop.

A reload (`reconfigure`) carries out the pure plan of `hacluster.reload_balancer`, built
from the one config diff: real servers are matched by (service, ip, port) and checks by
their runnable form (`hacluster.config.lower.CheckPlan`); what did not change keeps its
health, timers and rise/fall state, and an unchanged virtual server is not evaluated
again (no dataplane operation). A check that changed is replaced by a new one
that starts in the state the server is in (so nothing flaps), then the old one is
removed. `drain`/`undrain` is an operator override (weight 0, connections stay) kept
across reloads as long as the real server stays configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import os
import shlex
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from hacluster import scripts
from hacluster.apitypes import (
    UnknownRealServer,
    UnknownVirtualServer,
    normalize_real_server,
    normalize_virtual_server,
)
from hacluster.balancer import Handed as Handed  # (light to import)
from hacluster.balancer import LoadBalancerError as LoadBalancerError  # (light to import)
from hacluster.config.diff import ConfigDiff, diff_configs
from hacluster.config.lower import CheckConfigError, CheckPlan, plan, unsupported, where
from hacluster.config.model import Config, RealServer, VirtualServer
from hacluster.ipvs.backend import (
    Backend,
    BackendError,
    DelService,
    Op,
    describe,
    op_service,
)
from hacluster.ipvs.dataplane import from_dataplane, open_backend
from hacluster.ipvs.listing import to_json
from hacluster.ipvs.memory import apply_ops
from hacluster.ipvs.model import (
    Destination,
    DestKey,
    ServiceEntry,
    ServiceKey,
    Table,
    TableStats,
    Timeouts,
)
from hacluster.ipvs.reconcile import ALL, Managed, reconcile
from hacluster.policy import (
    Conflict,
    HealthKey,
    PolicyEvent,
    PolicyState,
    QuorumDown,
    QuorumUp,
    RealServerDown,
    ServerHealth,
    evaluate_one,
    on_removal,
    service_of,
)
from hacluster.reload_balancer import (
    REPLANNED,
    BalancerPlan,
    plan_balancer_reload,
    real_servers_of,
    same_context,
)
from hacluster.reload_checks import RunningServer, ServerChecks
from hacluster.startuptrace import mark
from healthchecks import (
    CheckResult,
    CheckSpec,
    HealthChanged,
    HttpSessions,
    Runner,
    ShardedRunner,
    make_checker,
)
from healthchecks.params import MiscCheckParams
from healthchecks.result import result_label

if TYPE_CHECKING:
    from hacluster.metrics import Metrics
    from hacluster.notify import Notifier
    from healthchecks.base import Checker
    from healthchecks.zygote import Zygote

log = logging.getLogger("hacluster.loadbalancer")

#: How long a health change waits for others before the reconcile it triggers, so a
#: burst of changes (a switch port dies under ten servers) makes one reconcile.
DEFAULT_COALESCE = 0.02
#: How long `stop()` waits for a reconcile in flight before cancelling it.
STOP_GRACE = 10.0
#: Checks a second one worker process is given at most when their number is derived
#: (a TCP_CHECK worker does ~10,000/s on a core, an HTTP_GET one a few thousand).
CHECKS_PER_WORKER = 2500.0


# --------------------------------------------------------------------------- checks


@dataclass(slots=True)
class LastResult:
    """The latest result of one check, with when it ended and how long it took."""

    ok: bool
    reason: str
    at: float  # monotonic
    duration: float


class _Measured:
    """Wraps a checker to remember its last result and report each run's duration."""

    __slots__ = ("inner", "last", "report")

    def __init__(self, inner: Checker, report: Callable[[str, CheckResult, float], None]) -> None:
        self.inner = inner
        self.last: LastResult | None = None
        self.report = report

    @property
    def kind(self) -> str:
        return self.inner.kind

    @property
    def timeout(self) -> float:
        return self.inner.timeout

    def _record(self, result: CheckResult, started: float) -> None:
        now = time.monotonic()
        self.last = LastResult(result.ok, result.reason, now, now - started)
        self.report(self.inner.kind, result, now - started)

    async def check(self) -> CheckResult:
        started = time.monotonic()
        try:
            result = await self.inner.check()
        except Exception as exc:
            self._record(CheckResult.down(f"checker raised {type(exc).__name__}: {exc}"), started)
            raise
        if isinstance(result, CheckResult):
            self._record(result, started)
        return result

    async def close(self) -> None:
        await self.inner.close()


class _MeasuredLaunch(_Measured):
    """The same, for a checker with the callback-only `launch` fast path (TCP_CHECK)."""

    __slots__ = ()

    def launch(self, on_done: Callable[[CheckResult], None]) -> Callable[[], None]:
        return self.launch_on(asyncio.get_running_loop(), on_done)

    def launch_on(
        self, loop: asyncio.AbstractEventLoop, on_done: Callable[[CheckResult], None]
    ) -> Callable[[], None]:
        # The runner names its loop: the inner checker is spared a loop lookup per run.
        started = time.monotonic()

        def done(result: CheckResult) -> None:
            self._record(result, started)
            on_done(result)

        launch_on = getattr(self.inner, "launch_on", None)
        if launch_on is not None:
            return cast("Callable[[], None]", launch_on(loop, done))
        return cast("Callable[[], None]", self.inner.launch(done))  # type: ignore[attr-defined]


@dataclass(slots=True, eq=False)
class _Check:
    check_id: str
    plan: CheckPlan
    checker: _Measured


@dataclass(slots=True, eq=False)
class _Real:
    vs: VirtualServer
    rs: RealServer
    key: HealthKey
    plans: tuple[CheckPlan, ...]
    checks: list[_Check] = field(default_factory=list)
    up: bool = True
    reason: str = "no checks"
    since: float = 0.0
    name: str = ""  # as the API names it (str(rs)), computed once

    def __post_init__(self) -> None:
        self.name = str(self.rs)



@dataclass(frozen=True, slots=True)
class _Wanted:
    """One real server of a configuration, ready to run."""

    vs: VirtualServer
    rs: RealServer
    plans: tuple[CheckPlan, ...]


STATUS_PIECE = 20
"""Real servers a piece of `LoadBalancer.status_pieces`."""


def _dest_key(vs: VirtualServer, rs: RealServer) -> DestKey:
    port = rs.port if rs.port or vs.fwmark is not None else (vs.port or 0)
    return DestKey(rs.ip, port)


def secure_check(p: CheckPlan, config: Config, what: str) -> CheckPlan:
    """A MISC_CHECK's program found in PATH and checked as `enable_script_security` says."""
    params = p.params
    if not isinstance(params, MiscCheckParams):
        return p
    g = config.global_defs
    try:
        script = scripts.prepare(
            params.argv,
            user=params.script_user,
            group=params.script_group,
            security=g.enable_script_security,
            what=what,
        )
    except scripts.ScriptError as exc:
        raise CheckConfigError(str(exc)) from None
    resolved = MiscCheckParams(
        misc_path=shlex.join(script.argv),
        misc_timeout=params.misc_timeout,
        misc_dynamic=params.misc_dynamic,
        script_user=params.script_user,
        script_group=params.script_group,
    )
    return CheckPlan(p.kind, resolved, p.timing)


def prepare(
    config: Config,
    previous: Mapping[HealthKey, _Wanted] | None = None,
    diff: ConfigDiff | None = None,
) -> dict[HealthKey, _Wanted]:
    """Every real server of `config` with its runnable checks; LoadBalancerError if any fails.

    A virtual server with the same IPVS service as an earlier one, and a real server
    given twice in one virtual server, are skipped (the policy reports them). With
    `previous` (the result for the running configuration) and `diff` (from it to
    `config`), the plans of a real server whose context the diff finds unchanged are
    reused, except MISC_CHECK's, whose program is looked up and checked again (a reload
    is when an operator expects that).
    """
    same = same_context(diff) if diff is not None and previous is not None else None
    wanted: dict[HealthKey, _Wanted] = {}
    problems: list[str] = []
    for key, (vs, rs) in real_servers_of(config).items():
        old = previous.get(key) if same is not None and previous is not None else None
        reuse = old is not None and same is not None and same(vs, rs)
        plans: list[CheckPlan] = []
        for i, check in enumerate(rs.checks):
            if reuse and old is not None and old.plans[i].kind not in REPLANNED:
                plans.append(old.plans[i])
                continue
            what = where(vs, rs, check)
            try:
                planned = plan(check, vs, rs, config.global_defs, config.vrrp_track_files)
                plans.append(secure_check(planned, config, what))
            except CheckConfigError as exc:
                problems.append(str(exc))
                continue
            for note in unsupported(check):
                log.warning("[%s] %s", what, note)
        wanted[key] = _Wanted(vs, rs, tuple(plans))
    if problems:
        raise LoadBalancerError("\n".join(problems))
    return wanted


def checker_processes(config: Config, cpus: int | None = None) -> int:
    """How many health-check worker processes `config` asks for (0: none, in-process)."""
    configured = config.global_defs.checker_processes
    if configured is not None:
        return configured
    rate = sum(
        1.0 / check.delay_loop
        for vs in config.virtual_servers for rs in vs.real_servers for check in rs.checks
    )
    if not rate:
        return 0
    cpus = cpus or os.cpu_count() or 1
    return max(1, min(cpus, math.ceil(rate / CHECKS_PER_WORKER)))


def _server_reason(reason: str, checks: list[dict[str, Any]]) -> str:
    """Why a real server is up or down now: its checks' latest reasons once any has run
    (the reason of its last up/down change otherwise: "not checked yet", "no checks")."""
    ran = [c for c in checks if c.get("age_seconds") is not None or c.get("runs")]
    if not ran:
        return reason
    return "; ".join(f"{c['checker']}: {c['reason']}" for c in ran)


# --------------------------------------------------------------------------- the component


class LoadBalancer:
    """Health checks, policy and the dataplane of one configuration, kept in step.

    `backend` None runs the checks and notifications without a dataplane
    (`dataplane: none`). The backend is the caller's: `stop()` does not close it.

    Cost: a health change re-evaluates only its own virtual server and, between the
    periodic passes, reconciles only that service against the table as last read or
    written (so it does not read the whole dataplane back); the periodic pass, the
    first one, and any pass after a dataplane error read the whole table and compare
    all of it.
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
        self._sharded: ShardedRunner | None = None
        self._runner: Runner | ShardedRunner
        if workers:
            self._runner = self._sharded = ShardedRunner(
                workers, max_concurrency=max_concurrency, on_change=self._on_change,
                on_results=self._on_results, zygote=zygote,
            )
        else:
            self._runner = Runner(max_concurrency=max_concurrency, on_change=self._on_change)
        self._runner_start: asyncio.Task[None] | None = None
        self._http = HttpSessions()
        self._servers: dict[ServiceKey, VirtualServer] = {}
        self._reals: dict[HealthKey, _Real] = {}
        self._members: dict[ServiceKey, list[_Real]] = {}
        self._health: dict[HealthKey, ServerHealth] = {}  # servers with checks only
        self._drained: set[HealthKey] = set()
        self._quorum: dict[ServiceKey, bool] = {}
        self._entries: dict[ServiceKey, ServiceEntry] = {}  # desired, drains applied
        self._dirty: set[ServiceKey] = set()  # services to evaluate again
        self._retired: set[ServiceKey] = set()  # removed by a reload, maybe still in the table
        self._table: Table | None = None  # the dataplane as last read or written
        self._full_next = True  # the next pass reads the whole table back
        self._flush_first = config.global_defs.lvs_flush
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._seq = itertools.count(1)
        self._conflicts: set[str] = set()
        self._failures: dict[str, str] = {}  # op description -> last message (log once)
        self._backend_down: str | None = None
        self._listing: tuple[float, dict[str, Any]] | None = None  # (when, recent_ipvs())
        self._table_read_at: float | None = None  # the last full read-back (monotonic)
        self._listing_task: asyncio.Task[dict[str, Any]] | None = None
        self._started = False
        self._stopped = False
        self.counters: Counter[str] = Counter()

    # ------------------------------------------------------------------ properties

    @property
    def config(self) -> Config:
        return self._config

    @property
    def backend(self) -> Backend | None:
        return self._backend

    @property
    def desired(self) -> Table:
        """The table the policy asks for as of the last pass (drains applied)."""
        return Table(dict(self._entries))

    @property
    def table(self) -> Table | None:
        """The dataplane's table as last read or written (None: unknown)."""
        return self._table

    @property
    def reconcile_interval(self) -> float:
        if self._interval_override is not None:
            return self._interval_override
        return self._config.global_defs.reconcile_interval

    def server_up(self, virtual_server: str, real_server: str) -> bool:
        """Whether a real server is up now (its checks pass)."""
        return self._find(virtual_server, real_server).up

    # ------------------------------------------------------------------ lifecycle

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

    async def _flush(self) -> None:
        assert self._backend is not None
        async with self._lock:
            try:
                actual = await self._backend.dump()
            except Exception as exc:
                self._backend_error("dump", exc)
                return
            managed = set(self._servers) | self._retired
            ops: list[Op] = [DelService(k) for k in actual.entries if k in managed]
            if ops:
                await self._apply(ops, actual)

    # ------------------------------------------------------------------ reload

    def set_notifier(self, notifier: Notifier | None) -> None:
        """Report real server and quorum changes to `notifier` from now on (None: to nobody)."""
        self._notifier = notifier

    async def reconfigure(self, config: Config) -> None:
        """Switch to `config`, touching only what changed; LoadBalancerError keeps the old one."""
        changes = diff_configs(self._config, config)
        wanted = prepare(config, self._wanted, changes)  # raises before anything is touched
        if not self._started:  # nothing runs yet: start() builds from this one
            self._wanted, self._config = wanted, config
            self._flush_first = config.global_defs.lvs_flush
            return
        for line in changes.summary():
            log.info("[reload] %s", line)
        running = {key: RunningServer(self._runner.server_up(key), real.plans)
                   for key, real in self._reals.items()}
        p = plan_balancer_reload(self._config, config, running, diff=changes,
                                 after={k: w.plans for k, w in wanted.items()})
        await self._carry_out(p, config, wanted)

    async def _carry_out(
        self, p: BalancerPlan, config: Config, wanted: dict[HealthKey, _Wanted]
    ) -> None:
        """Carry out a reload plan (`hacluster.reload_balancer`)."""
        now = asyncio.get_running_loop().time()
        servers = self._service_map(config)
        state = PolicyState(dict(self._quorum))
        # Virtual servers that went away: omega reports, then their real servers go.
        for skey in p.services_removed:
            self._handle_events(on_removal(self._servers[skey], self._health, state),
                                "removed")
            self._retired.add(skey)
        # Real servers that went away (from kept or removed services).
        gone: dict[HealthKey, _Real] = {}
        for key in p.servers_removed:
            real = gone[key] = self._reals.pop(key)
            self._health.pop(key, None)
            self._drained.discard(key)
            for check in real.checks:
                self._runner.remove(check.check_id)
            if key[0] in servers and real.vs.omega and real.up:
                self._notify_real(real, False, "removed from the configuration")
            self._hand_on(real, gone=True)
            log.info("[%s] real server %s removed", real.vs, real.rs)
        for key in p.servers_added:
            want = wanted[key]
            origin = gone.get(p.moved.get(key, key))
            self._add_real(key, want, now, carried=p.checks.carried.get(key),
                           since=None if origin is None else origin.since)
            if origin is not None and key in p.checks.carried:
                log.info("[%s] real server %s added, moved from %s with its health (%s)",
                         want.vs, want.rs, origin.vs, "up" if origin.up else "down")
            else:
                log.info("[%s] real server %s added", want.vs, want.rs)
        for change in p.checks.changed:
            self._update_real(self._reals[change.server], wanted[change.server], change)
        for key in p.checks.kept:
            real, want = self._reals[key], wanted[key]
            real.vs, real.rs = want.vs, want.rs
        self._servers = servers
        self._retired -= set(servers)
        self._quorum = {k: v for k, v in self._quorum.items() if k in servers}
        # Keep the configuration's order; evaluate again what was added or changed.
        self._entries = {k: self._entries[k] for k in servers if k in self._entries}
        self._regroup()
        self._dirty |= {k for k in servers if k in p.touched or k not in self._entries}
        self._wanted = wanted
        self._config = config
        if p.timeouts:
            await self._apply_timeouts(config)
        await self.reconcile("reload", full=False)

    async def _apply_timeouts(self, config: Config) -> None:
        """global_defs.lvs_timeouts, on a dataplane that has them (IPVS); logged, not fatal."""
        wanted, backend = config.global_defs.lvs_timeouts, self._backend
        if wanted is None or backend is None:
            return
        setter = getattr(backend, "set_timeouts", None)
        if setter is None:
            log.warning("[%s] lvs_timeouts does not apply to this dataplane (IPVS only)",
                        backend.name)
            return
        timeouts = Timeouts(wanted.tcp, wanted.tcpfin, wanted.udp)
        try:
            await setter(timeouts)
        except BackendError as exc:
            log.error("[%s] lvs_timeouts: %s", backend.name, exc)
            return
        log.info("[%s] lvs_timeouts set: %s (0: unchanged)", backend.name, timeouts)

    def _update_real(self, real: _Real, want: _Wanted, change: ServerChecks) -> None:
        """A kept real server whose checks changed: new checks first, starting in the
        server's present state, then the old ones go: the server's state never passes
        through a value it does not have."""
        real.vs, real.rs = want.vs, want.rs
        running = real.checks
        keep = [(j, running[i]) for i, j in change.kept]
        for j in change.added:
            keep.append((j, self._add_check(real, want.plans[j], alpha=not change.up)))
        real.checks = [c for _, c in sorted(keep, key=lambda jc: jc[0])]
        real.plans = want.plans
        for i in change.removed:
            self._runner.remove(running[i].check_id)
        self._refresh_health(real)
        now_up = self._runner.server_up(real.key)
        if now_up != real.up:  # e.g. the only failing check was removed
            self._notify_real(real, now_up, "check removed by reload")
        self._hand_on(real)
        log.info("[%s] real server %s: %d check(s) kept, %d replaced or added, %d removed",
                 real.vs, real.rs, len(change.kept), len(change.added), len(change.removed))

    def _regroup(self) -> None:
        members: dict[ServiceKey, list[_Real]] = {k: [] for k in self._servers}
        for real in self._reals.values():
            members.setdefault(real.key[0], []).append(real)
        self._members = members


    # ------------------------------------------------------------------ drain

    async def drain(self, virtual_server: str, real_server: str) -> None:
        """Weight 0 for a real server (connections stay) until `undrain`, across reloads."""
        real = self._find(virtual_server, real_server)
        if real.key not in self._drained:
            self._drained.add(real.key)
            log.info("[%s] real server %s drained", real.vs, real.rs)
        self._dirty.add(real.key[0])
        if self._started:
            await self.reconcile("drain", full=False)

    async def undrain(self, virtual_server: str, real_server: str) -> None:
        """Give a drained real server its weight back (as its health allows)."""
        real = self._find(virtual_server, real_server)
        if real.key in self._drained:
            self._drained.discard(real.key)
            log.info("[%s] real server %s undrained", real.vs, real.rs)
        self._dirty.add(real.key[0])
        if self._started:
            await self.reconcile("undrain", full=False)

    def drained(self, virtual_server: str, real_server: str) -> bool:
        return self._find(virtual_server, real_server).key in self._drained

    def _find(self, virtual_server: str, real_server: str) -> _Real:
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

    # ------------------------------------------------------------------ status

    @property
    def dataplane_error(self) -> str | None:
        """Why the dataplane cannot be read or written now (None: it can)."""
        return self._backend_down

    def summary(self) -> list[dict[str, Any]]:
        """Each virtual server's quorum and how many of its real servers are up (cheap:
        no checks, no table)."""
        rows = []
        for skey, vs in self._servers.items():
            reals = self._members.get(skey, [])
            quorum_up = self._quorum.get(skey)
            rows.append({
                "name": str(vs),
                "quorum_up": bool(quorum_up),
                "sorry_server_active": vs.sorry_server is not None and quorum_up is False,
                "real_servers_up": sum(1 for r in reals if r.up),
                "real_servers": len(reals),
            })
        return rows

    def status(self, *, table: bool = True) -> dict[str, Any]:
        """Virtual servers with their real servers and checks, the table, and counters.

        `virtual_servers` rows have the shape of `hacluster.api.VirtualServerStatus`;
        `ipvs` is the dataplane's table as last read or written (`listing.to_json`;
        None with `table` false, as the API reads the table itself).
        """
        now = time.monotonic()
        current = self._table
        rows: list[dict[str, Any]] = []
        for skey, vs in self._servers.items():
            entry = current.entries.get(skey) if current is not None else None
            row = self._service_row(skey, vs)
            row["real_servers"] = [self._real_row(vs, real, entry, now)
                                   for real in self._members.get(skey, [])]
            rows.append(row)
        return {
            "virtual_servers": rows,
            "dataplane": self._backend.name if self._backend is not None else "none",
            "dataplane_error": self._backend_down,
            "ipvs": to_json(current) if current is not None and table else None,
            "counters": dict(self.counters),
        }

    def virtual_server_row(self, name: str) -> dict[str, Any] | None:
        """The `status()` row of the virtual server named `name` (None: no such one)."""
        now = time.monotonic()
        current = self._table
        for skey, vs in self._servers.items():
            if str(vs) == name:
                entry = current.entries.get(skey) if current is not None else None
                row = self._service_row(skey, vs)
                row["real_servers"] = [self._real_row(vs, real, entry, now)
                                       for real in self._members.get(skey, [])]
                return row
        return None

    def status_pieces(self) -> Iterator[str]:
        """The `virtual_servers` of `status()` as JSON text (`json.dumps`'s), a piece per
        `STATUS_PIECE` real servers, for a caller that yields to the event loop between
        pieces. Walks a copy of the membership: a reload between two pieces does no harm."""
        now = time.monotonic()
        current = self._table
        yield "["
        for index, (skey, vs) in enumerate(list(self._servers.items())):
            entry = current.entries.get(skey) if current is not None else None
            head = json.dumps(self._service_row(skey, vs))
            yield ("" if index == 0 else ", ") + head[:-1] + ', "real_servers": ['
            reals = list(self._members.get(skey, []))
            for start in range(0, len(reals), STATUS_PIECE):
                # A few rows a dumps() call: one call a row spent much on the call itself.
                text = json.dumps([self._real_row(vs, real, entry, now)
                                   for real in reals[start:start + STATUS_PIECE]])[1:-1]
                yield text if start == 0 else ", " + text
            yield "]}"
        yield "]"

    @property
    def table_read_at(self) -> float | None:
        """When (time.monotonic()) the reconcile loop last read the whole table back."""
        return self._table_read_at

    def _service_row(self, skey: ServiceKey, vs: VirtualServer) -> dict[str, Any]:
        """A virtual server's status row, without its real servers."""
        quorum_up = self._quorum.get(skey)
        sorry = vs.sorry_server
        return {
            "name": str(vs),
            "lb_algo": vs.lb_algo,
            "lb_kind": vs.lb_kind,
            "quorum": vs.quorum,
            "quorum_up": bool(quorum_up),
            "sorry_server": str(sorry) if sorry is not None else None,
            "sorry_server_active": sorry is not None and quorum_up is False,
        }

    def _real_row(self, vs: VirtualServer, real: _Real, entry: ServiceEntry | None,
                  now: float) -> dict[str, Any]:
        dest = entry.destinations.get(_dest_key(vs, real.rs)) if entry else None
        checks = [self._check_row(c, now) for c in real.checks]
        return {
            "name": real.name,
            "up": real.up,
            "weight": real.rs.weight,
            "effective_weight": dest.weight if dest is not None else None,
            "drained": real.key in self._drained,
            "reason": _server_reason(real.reason, checks),
            "checks": checks,
        }

    def _check_row(self, check: _Check, now: float) -> dict[str, Any]:
        last = check.checker.last
        row: dict[str, Any] = {
            "checker": check.plan.kind,
            "ok": last.ok if last is not None else None,
            "reason": last.reason if last is not None else "not checked yet",
            "age_seconds": round(now - last.at, 3) if last is not None else None,
            "duration_seconds": round(last.duration, 6) if last is not None else None,
        }
        try:
            st = self._runner.status(check.check_id)
        except KeyError:  # stopped
            return row
        counters = self._sharded.counters(check.check_id) if self._sharded else None
        if counters is not None and counters.last_ok is not None:
            row.update(ok=counters.last_ok, age_seconds=round(counters.last_age or 0.0, 3),
                       duration_seconds=round(counters.last_duration or 0.0, 6))
        # The tracker's view: its state, and the reason of its last result (which also
        # covers a run the runner gave up on, which the checker never reported).
        row.update(up=st.up, reason=st.reason, last_failure=st.last_failure, runs=st.runs,
                   failures=st.failures)
        if row["ok"] is None and st.runs == 0:
            row["ok"] = st.up
        return row

    async def recent_ipvs(self, max_age: float = 1.0) -> dict[str, Any]:
        """The dataplane's table as last listed, at once: read again in the background
        when the listing is older than `max_age` (reading 10,000 destinations back from
        nftables takes seconds; a status page asked for twice a second need not wait)."""
        loop = asyncio.get_running_loop()
        cached = self._listing
        stale = cached is None or loop.time() - cached[0] > max_age
        if stale and (self._listing_task is None or self._listing_task.done()):
            self._listing_task = loop.create_task(self._list_again(), name="ipvs-listing")
        if cached is None:
            assert self._listing_task is not None
            return await asyncio.shield(self._listing_task)
        return cached[1]

    async def _list_again(self) -> dict[str, Any]:
        listing = await self.ipvs()
        self._listing = (asyncio.get_running_loop().time(), listing)
        return listing

    async def ipvs(self, *, stats: bool = True) -> dict[str, Any]:
        """The dataplane's table read now (with statistics), as `listing.to_json` gives it."""
        if self._backend is None:
            return {"services": []}
        table = await self._backend.dump()
        table_stats = await self._backend.stats() if stats else TableStats()
        # The listing's first line (IPVS version, table size) where the backend knows it.
        info_fn = getattr(self._backend, "info", None)
        info = await info_fn() if info_fn is not None else None
        return to_json(table, table_stats, info=info)

    # ------------------------------------------------------------------ health

    def _add_real(
        self, key: HealthKey, want: _Wanted, now: float,
        carried: bool | None = None, since: float | None = None,
    ) -> _Real:
        """A new real server; `carried`: the health it carries on (moved by a reload)."""
        real = _Real(want.vs, want.rs, key, want.plans, since=now if since is None else since)
        # State before any check runs: as a reload carried it over, or as a predecessor
        # handed it over, else up unless a check starts down (alpha).
        handed = self._handed.pop((str(want.vs), real.name), None) if self._handed else None
        if carried is not None:
            alphas = [not carried for _ in want.plans]
            real.reason = "carried over by reload"
        elif handed is not None and len(handed.ups) == len(want.plans):
            alphas = [not up for up in handed.ups]
            real.reason = handed.reason
        else:
            alphas = [p.timing.alpha for p in want.plans]
            real.reason = "not checked yet" if want.plans else "no checks"
        real.up = not any(alphas) if carried is None else carried
        self._reals[key] = real
        for p, alpha in zip(want.plans, alphas, strict=True):
            real.checks.append(self._add_check(real, p, alpha=alpha))
        self._refresh_health(real)
        if carried is not None:
            self._hand_on(real)
        return real

    def _hand_on(self, real: _Real, gone: bool = False) -> None:
        """Tell `on_health` the states of a real server's checks (None: it is gone)."""
        if self.on_health is None:
            return
        handed = None if gone else Handed(
            tuple(self._runner.status(c.check_id).up for c in real.checks), real.reason)
        self.on_health(str(real.vs), real.name, handed)

    def _add_check(self, real: _Real, p: CheckPlan, *, alpha: bool) -> _Check:
        check_id = f"{real.vs} {real.rs} {p.kind}#{next(self._seq)}"
        inner = make_checker(p.params, p.timing, http=self._http)
        wrapper_cls = _MeasuredLaunch if hasattr(inner, "launch") else _Measured
        checker = wrapper_cls(inner, self._report)
        timing = p.timing
        if timing.alpha != alpha:
            timing = type(timing)(
                timing.delay_loop, timing.retry, timing.delay_before_retry, timing.warmup,
                alpha, timing.rise, timing.fall,
            )
        check = _Check(check_id, p, checker)
        # A worker process rebuilds the checker from its parameters: it gets the bare one.
        self._runner.add(CheckSpec(check_id, real.key,
                                   inner if self._sharded is not None else checker, timing))
        return check

    def _refresh_health(self, real: _Real) -> None:
        """What the policy is told about a server: the runner's view of its checks."""
        if not real.checks:
            self._health.pop(real.key, None)
            return
        weight = None
        for check in real.checks:
            w = self._runner.status(check.check_id).weight
            if w is not None:
                weight = w
        self._health[real.key] = ServerHealth(self._runner.server_up(real.key), weight)

    def _report(self, kind: str, result: CheckResult, seconds: float) -> None:
        self.counters["checks"] += 1
        if self._metrics is not None:
            self._metrics.check_done(kind, result_label(result), max(0.0, seconds))

    def _on_results(self, batches: list[tuple[str, str, list[float]]]) -> None:
        """Outcomes of the runs done in the worker processes since their last batch."""
        for kind, label, seconds in batches:
            self.counters["checks"] += len(seconds)
            if self._metrics is not None:
                self._metrics.checks_done(kind, label, seconds)

    async def refresh(self, max_age: float = 1.0) -> None:
        """Read the checks' counters from the worker processes, when the last reading is
        older than `max_age` (status asked for twice a second reads them once)."""
        if self._sharded is not None and self._started:
            await self._sharded.refresh(max_age)

    def _on_change(self, event: HealthChanged) -> None:
        real = self._reals.get(cast(HealthKey, event.server))
        if real is None or not any(c.check_id == event.check_id for c in real.checks):
            # A check being added to a server during a reload; it is accounted for
            # once the reload has finished with the server.
            if real is not None:
                self._dirty.add(real.key[0])
            return
        self._refresh_health(real)
        if real.up != event.up:
            kind = next((c.plan.kind for c in real.checks if c.check_id == event.check_id), None)
            self._notify_real(real, event.up, event.reason, kind)
        self._hand_on(real)
        self._dirty.add(real.key[0])
        self._wake.set()

    def _notify_real(self, real: _Real, up: bool, reason: str, check: str | None = None) -> None:
        real.up = up
        real.reason = reason
        with contextlib.suppress(RuntimeError):
            real.since = asyncio.get_running_loop().time()
        self.counters["real_server_up" if up else "real_server_down"] += 1
        log.info("[%s] real server %s %s (%s)", real.vs, real.rs, "UP" if up else "DOWN", reason)
        if self._notifier is not None:
            try:
                self._notifier.real_server(real.vs, real.rs, up, reason, check)
            except Exception:
                log.exception("[%s] notify for %s failed", real.vs, real.rs)

    # ------------------------------------------------------------------ policy

    def _service_map(self, config: Config) -> dict[ServiceKey, VirtualServer]:
        servers: dict[ServiceKey, VirtualServer] = {}
        for vs in config.virtual_servers:
            key = service_of(vs).key
            first = servers.setdefault(key, vs)
            if first is not vs:
                message = f"{vs}: the same IPVS service as {first}; the later one is ignored"
                if message not in self._conflicts:
                    self._conflicts.add(message)
                    log.warning("[%s] %s", key, message)
        return servers

    def _evaluate(self, keys: Iterable[ServiceKey]) -> None:
        """Evaluate the policy again for these services: desired entries, quorum, events."""
        for skey in keys:
            vs = self._servers.get(skey)
            if vs is None:
                self._entries.pop(skey, None)
                continue
            service, dests, up, events = evaluate_one(vs, self._health, self._quorum.get(skey))
            self._quorum[skey] = up
            drained = {
                _dest_key(vs, real.rs)
                for real in self._members.get(skey, [])
                if real.key in self._drained
            }
            by_key: dict[DestKey, Destination] = {}
            for dest in dests:
                if dest.weight and dest.key in drained:
                    dest = Destination(dest.address, dest.port, 0, dest.forward,
                                       dest.u_threshold, dest.l_threshold)
                by_key[dest.key] = dest
            self._entries[skey] = ServiceEntry(service, by_key)
            self._handle_events(events, "health")

    def _handle_events(self, events: Sequence[PolicyEvent], why: str) -> None:
        for event in events:
            match event:
                case QuorumUp() | QuorumDown():
                    vs = self._servers.get(event.service)
                    if vs is None:
                        continue
                    up = isinstance(event, QuorumUp)
                    reason = f"weight {event.weight_sum}, threshold {event.threshold}"
                    self.counters["quorum_up" if up else "quorum_down"] += 1
                    log.log(
                        logging.INFO if up else logging.WARNING,
                        "[%s] quorum %s (%s)", vs, "UP" if up else "DOWN", reason,
                    )
                    if self._notifier is not None:
                        try:
                            self._notifier.quorum(
                                vs, up, reason, weight_sum=event.weight_sum,
                                threshold=event.threshold,
                            )
                        except Exception:
                            log.exception("[%s] quorum notify failed", vs)
                case RealServerDown():
                    real = self._reals.get((event.service, event.server))
                    if real is not None and real.up:
                        self._notify_real(real, False, why)
                case Conflict():
                    if event.message not in self._conflicts:
                        self._conflicts.add(event.message)
                        log.warning("[%s] %s", event.service, event.message)

    # ------------------------------------------------------------------ reconcile

    def request_reconcile(self) -> None:
        """Ask for a reconcile soon (coalesced with any other request)."""
        self._wake.set()

    async def reconcile(self, reason: str = "requested", *, full: bool = True) -> int:
        """Make the dataplane equal to the desired table now; the number of ops issued.

        `full` reads the whole table back and compares all of it; otherwise only the
        services that changed since the last pass are compared, against the table as
        last read or written (the next full pass catches anything else).
        """
        async with self._lock:
            dirty, self._dirty = self._dirty, set()
            self._evaluate(dirty)
            self.counters["reconciles"] += 1
            backend = self._backend
            if backend is None:
                self._table = self.desired
                self._update_metrics(None)
                return 0
            full = full or self._full_next or self._table is None
            if full:
                try:
                    base = await backend.dump()
                except Exception as exc:
                    self._backend_error("dump", exc)
                    self._dirty |= dirty  # still to be carried out
                    self._full_next = True
                    return 0
                self._table_read_at = time.monotonic()
                if self._backend_down is not None:
                    log.info("[%s] dataplane readable again", backend.name)
                    self._backend_down = None
                managed: Managed = (
                    ALL if self._flush_first else set(self._servers) | self._retired
                )
                ops = reconcile(self.desired, base, managed=managed)
                keys: set[ServiceKey] | None = None
            else:
                assert self._table is not None
                keys = dirty | self._retired
                have, wanted = self._table.entries, self._entries
                base = Table({k: have[k] for k in keys if k in have})
                want = Table({k: wanted[k] for k in keys if k in wanted})
                ops = reconcile(want, base, managed=keys)
            if self._metrics is not None:
                self._metrics.reconciled(backend.name)
            if ops:
                # Ops that only retry what the dataplane refused last time are not news.
                retry = all(describe(op) in self._failures for op in ops)
                drift = reason == "periodic" and not retry
                level = logging.DEBUG if retry else logging.WARNING if drift else logging.INFO
                log.log(level, "[%s] %s: %d operation(s)%s", backend.name, reason, len(ops),
                        " to repair drift" if drift else "")
                for op in ops:
                    log.debug("[%s] %s", op_service(op), describe(op))
                after = await self._apply(ops, base)
                if self._full_next and keys is not None:
                    self._wake.set()  # refused on a partial pass: read everything back now
            else:
                after = base
                self._full_next = False
            if after is not None:
                if keys is None:
                    self._table = after
                else:
                    assert self._table is not None
                    merged = dict(self._table.entries)
                    for k in keys:
                        merged.pop(k, None)
                    merged.update(after.entries)
                    self._table = Table(merged)
                self._flush_first = False
                self._retired = {k for k in self._retired if k in self._table.entries}
            self._update_metrics(keys)
            return len(ops)

    async def _apply(self, ops: list[Op], base: Table) -> Table | None:
        """Apply `ops` to the dataplane holding `base`; what it holds after (None: unknown)."""
        backend = self._backend
        assert backend is not None
        self._listing = None  # the table changes: a recent listing is read again
        try:
            result = await backend.apply(ops)
        except Exception as exc:
            self._backend_error("apply", exc)
            self._full_next = True
            return None
        self.counters["ops"] += len(ops)
        self.counters["op_errors"] += len(result.failed)
        if self._metrics is not None:
            self._metrics.dataplane_applied(backend.name, ops, result)
        failing: dict[str, str] = {}
        for failure in result.failed:
            what = describe(failure.op)
            failing[what] = failure.message
            if self._failures.get(what) != failure.message:
                log.error("[%s] %s failed: %s", op_service(failure.op), what, failure.message)
            else:
                log.debug("[%s] %s failed again: %s", op_service(failure.op), what,
                          failure.message)
        self._failures = failing
        # A refused op may mean the table is not what we think: read it next time.
        self._full_next = bool(result.failed)
        failed_ids = {id(f.op) for f in result.failed}
        return apply_ops(base, [op for op in ops if id(op) not in failed_ids])[0]

    def _backend_error(self, call: str, exc: BaseException) -> None:
        backend = self._backend
        name = backend.name if backend is not None else "none"
        message = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
        self.counters["backend_errors"] += 1
        if self._metrics is not None:
            self._metrics.dataplane_error(name, call)
        if self._backend_down != message:
            log.error("[%s] %s failed: %s", name, call, message)
        self._backend_down = message

    def _update_metrics(self, keys: set[ServiceKey] | None) -> None:
        """Real-server gauges, for the services in `keys` (None: all of them)."""
        metrics = self._metrics
        if metrics is None:
            return
        table = self._table
        for skey in self._servers if keys is None else keys:
            vs = self._servers.get(skey)
            if vs is None:
                continue
            vs_name = str(vs)
            entry = table.entries.get(skey) if table is not None else None
            reals = self._members.get(skey, [])
            for real in reals:
                dest = entry.destinations.get(_dest_key(vs, real.rs)) if entry else None
                metrics.real_server(vs_name, real.name, up=real.up,
                                    weight=dest.weight if dest is not None else 0)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            reason = "periodic"
            try:
                async with asyncio.timeout(self.reconcile_interval):
                    await self._wake.wait()
                reason = "health change"
                if self._coalesce > 0:
                    await asyncio.sleep(self._coalesce)
            except TimeoutError:
                pass
            self._wake.clear()
            started = loop.time()
            try:
                await self.reconcile(reason, full=reason == "periodic")
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not stop the dataplane being kept
                log.exception("reconcile (%s) failed", reason)
                self.counters["reconcile_crashes"] += 1
                self._full_next = True
            log.debug("reconcile (%s) took %.1f ms", reason, (loop.time() - started) * 1000)


def backend_for(config: Config, *, netns: str | None = None) -> Backend | None:
    """The dataplane `global_defs.dataplane` names (None for `none`).

    Raises `hacluster.ipvs.backend.BackendUnavailable` with advice when it cannot run
    here (e.g. no IPVS in the kernel: use `dataplane: nftables`).
    """
    name = from_dataplane(config.global_defs.dataplane)
    return None if name is None else open_backend(name, netns=netns)


async def close_backend(backend: Backend, logger: logging.Logger) -> None:
    """Close a dataplane `backend_for` opened; a failure is logged to `logger`, not raised."""
    try:
        await backend.close()
    except Exception as exc:
        logger.error("closing the dataplane failed: %s", exc)


def servers_of(status: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """`status()["virtual_servers"]` as {"VS RS": real server row}, for tests and tools."""
    out: dict[str, dict[str, Any]] = {}
    for vs in status.get("virtual_servers", []):
        for rs in vs.get("real_servers", []):
            out[f"{vs['name']} {rs['name']}"] = rs
    return out


__all__ = [
    "DEFAULT_COALESCE",
    "STOP_GRACE",
    "Handed",
    "LastResult",
    "LoadBalancer",
    "LoadBalancerError",
    "backend_for",
    "close_backend",
    "prepare",
    "result_label",
    "servers_of",
]
