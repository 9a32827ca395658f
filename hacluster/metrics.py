"""Prometheus metrics on a private registry; the only module that imports prometheus_client.

The daemon creates one `Metrics` and passes it to what it wires; components call its
small methods with plain values (names, states, counts, seconds). `vrrp/` and
`healthchecks/` never import it: the daemon forwards their counters and events.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import re
import threading
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hacluster.ipvs.backend import ApplyResult, Op

log = logging.getLogger("hacluster.metrics")

VRRP_STATES: tuple[str, ...] = ("INITIALIZE", "BACKUP", "MASTER", "FAULT")
"""Every state an instance can report (as the logs and the API name them); exactly one
of them is 1 per instance."""

# A `_created` series per counter and histogram child doubles the series for nothing a
# dashboard uses (the process start time says when counting began).
disable_created_metrics()  # type: ignore[no-untyped-call]

CHECK_RESULTS: tuple[str, ...] = ("success", "failure", "timeout", "error")
"""The usual check results; any other short word is accepted too."""

# Check latencies span sub-millisecond TCP connects to multi-second HTTP timeouts.
CHECK_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

RENDER_CHUNK = 500
"""Samples formatted between two yields to the event loop (a few ms of work)."""


_OP_NAME = re.compile(r"(?<!^)(?=[A-Z])")


def op_name(op: Op) -> str:
    """The label for one IPVS operation: `AddService` -> `add_service`."""
    return _OP_NAME.sub("_", type(op).__name__).lower()


class Metrics:
    """Every hacluster metric, registered on its own `CollectorRegistry`."""

    def __init__(self, *, version: str = "", process: bool = True, vrrp: bool = True,
                 balancer: bool = True, base: bool = True) -> None:
        """`vrrp` False: the VRRP families come from a role process (`set_foreign`).
        `balancer` False: the checks', dataplane's and real servers' families come from
        the balancer role as text (`extra`). `base` False: only those families (the
        balancer role's own registry)."""
        self.registry = CollectorRegistry(auto_describe=True)
        main = self.registry
        aside = CollectorRegistry(auto_describe=True)  # families nobody renders here
        r = main if base else aside
        #: Awaited before each `render_async()` (the supervisor reads its roles' values).
        self.refresh: Callable[[], Awaitable[None]] | None = None
        #: Exposition text appended to `render_async()`'s (the balancer role's families).
        self.extra: Callable[[str | None], Awaitable[bytes]] | None = None
        self._foreign = _Foreign()
        if process and base:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
        self._info = Gauge(
            "hacluster_build_info", "hacluster version (always 1)", ["version"], registry=r
        )
        self._info.labels(version=version or "unknown").set(1)

        self._role_restarts = Counter(
            "hacluster_role_restarts",
            "Role processes started again by the supervisor after they died, by role",
            ["role"],
            registry=r,
        )
        self._role_restarts.labels(role="vrrp")  # 0 from the start: rate() sees the first
        if not balancer:
            self._role_restarts.labels(role="balancer")
        # VRRP (on a registry nobody renders when a role process reports them)
        if not vrrp:
            if base:
                r.register(self._foreign)
            r = aside
        self._state = Gauge(
            "hacluster_vrrp_state",
            "1 for the state a VRRP instance is in, 0 for the others",
            ["instance", "state"],
            registry=r,
        )
        self._priority = Gauge(
            "hacluster_vrrp_priority",
            "Effective priority of a VRRP instance (base plus tracking)",
            ["instance"],
            registry=r,
        )
        self._transitions = Counter(
            "hacluster_vrrp_transitions",
            "VRRP state transitions, by the state entered",
            ["instance", "state"],
            registry=r,
        )
        self._adverts_sent = Counter(
            "hacluster_vrrp_adverts_sent", "VRRP adverts sent", ["instance"], registry=r
        )
        self._adverts_received = Counter(
            "hacluster_vrrp_adverts_received",
            "VRRP adverts received and accepted",
            ["instance"],
            registry=r,
        )
        self._dropped = Counter(
            "hacluster_vrrp_packets_dropped",
            "VRRP packets dropped, by interface and reason",
            ["interface", "reason"],
            registry=r,
        )

        r = main if base else aside
        # Control API
        self._api_bad_requests = Counter(
            "hacluster_api_bad_requests",
            "Malformed HTTP requests refused by the control API, by listener and kind",
            ["listener", "kind"],
            registry=r,
        )

        # Health checks (and the dataplane, and the real servers' gauges): the balancer's
        r = main if balancer else aside
        self._checks = Counter(
            "hacluster_checks",
            "Health checks run, by checker kind and result",
            ["checker", "result"],
            registry=r,
        )
        self._check_latency = Histogram(
            "hacluster_check_duration_seconds",
            "Time a health check took, by checker kind",
            ["checker"],
            buckets=CHECK_BUCKETS,
            registry=r,
        )
        self._check_children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        # Dataplane (IPVS over netlink, or nftables): the backend label names which.
        self._dp_ops = Counter(
            "hacluster_dataplane_operations",
            "Dataplane operations applied, by backend (netlink, nftables) and operation",
            ["backend", "op"],
            registry=r,
        )
        self._dp_errors = Counter(
            "hacluster_dataplane_errors",
            "Dataplane operations that failed, by backend and operation",
            ["backend", "op"],
            registry=r,
        )
        self._reconciles = Counter(
            "hacluster_dataplane_reconciles",
            "Reconcile passes (desired table compared with the dataplane), by backend",
            ["backend"],
            registry=r,
        )

        r = main if base else aside
        # Alerts
        # Both the supervisor (checker alerts) and the VRRP role (VRRP alerts) send mail:
        # one family, the role's counts added to the supervisor's (`_AlertMails`).
        self._alert_mails = _AlertMails(self._foreign)
        r.register(self._alert_mails)

        # Config
        self._reloads = Counter(
            "hacluster_config_reloads",
            "Configuration reloads, by result (ok, refused)",
            ["result"],
            registry=r,
        )
        self._reload_ok = Gauge(
            "hacluster_config_last_reload_successful",
            "1 when the last reload succeeded (or none happened yet), 0 when it was refused",
            registry=r,
        )
        self._reload_ok.set(1)

        # Registered last: render_async() appends these after everything else.
        self._real_servers = _RealServerGauges()
        (main if balancer else aside).register(self._real_servers)
        self._render_real_servers = balancer

    # ------------------------------------------------------------------ VRRP

    def vrrp_state(self, instance: str, state: str) -> None:
        """Record the state an instance is in now (one of `VRRP_STATES`)."""
        state = state.upper()
        if state not in VRRP_STATES:
            raise ValueError(f"unknown VRRP state {state!r} (expected one of {VRRP_STATES})")
        for name in VRRP_STATES:
            self._state.labels(instance=instance, state=name).set(1 if name == state else 0)

    def vrrp_transition(self, instance: str, state: str) -> None:
        """An instance entered `state`: count it and set the state gauge."""
        self.vrrp_state(instance, state)
        self._transitions.labels(instance=instance, state=state.upper()).inc()

    def vrrp_priority(self, instance: str, priority: int) -> None:
        self._priority.labels(instance=instance).set(priority)

    def adverts_sent(self, instance: str, count: int = 1) -> None:
        self._adverts_sent.labels(instance=instance).inc(count)

    def adverts_received(self, instance: str, count: int = 1) -> None:
        self._adverts_received.labels(instance=instance).inc(count)

    def packet_dropped(self, interface: str, reason: str, count: int = 1) -> None:
        """A VRRP packet was dropped; `reason` is a short fixed word (bad_checksum, ttl...)."""
        self._dropped.labels(interface=interface, reason=reason).inc(count)

    def forget_instance(self, instance: str) -> None:
        """Remove an instance's series (it left the configuration)."""
        for name in VRRP_STATES:
            _remove(self._state, instance, name)
            _remove(self._transitions, instance, name)
        for metric in (self._priority, self._adverts_sent, self._adverts_received):
            _remove(metric, instance)

    def api_bad_request(self, listener: str, kind: str) -> None:
        """A malformed HTTP request reached `listener` (unix, tcp, metrics); `kind` is the
        parser's error class (BadStatusLine, LineTooLong, InvalidHeader...)."""
        self._api_bad_requests.labels(listener=listener, kind=kind).inc()

    # ------------------------------------------------------------------ health checks

    def check_done(self, checker: str, result: str, seconds: float) -> None:
        """One health check finished: `checker` is its kind (HTTP_GET, TCP_CHECK...)."""
        if seconds < 0:
            raise ValueError(f"check duration cannot be negative: {seconds}")
        # Thousands of checks a second: the labelled children are looked up once per
        # (kind, result), not per check (labels() costs a lock and a dict walk each).
        children = self._check_children.get((checker, result))
        if children is None:
            children = self._check_children[(checker, result)] = (
                self._checks.labels(checker=checker, result=result),
                self._check_latency.labels(checker=checker),
            )
        children[0].inc()
        children[1].observe(seconds)

    def checks_done(self, checker: str, result: str, seconds: Sequence[float]) -> None:
        """Many runs of one kind with one result (a check worker's batch): the same
        counts as `check_done` per run.

        Hand-written hot path: prometheus_client's `Histogram.observe` walks the buckets
        and takes a lock per run, and 10,000 runs a second held the balancer's loop for
        ~30 ms per batch. Here each run's bucket is found by bisection and every bucket
        is added to once (tests/unit/test_metrics.py keeps it equal to observe())."""
        children = self._check_series(checker, result)
        histogram = children[1]
        bounds = histogram._upper_bounds
        counts = [0] * len(bounds)
        total = 0.0
        for value in seconds:
            value = max(0.0, value)
            counts[bisect_left(bounds, value)] += 1
            total += value
        children[0].inc(len(seconds))
        histogram._sum.inc(total)
        for index, count in enumerate(counts):
            if count:
                histogram._buckets[index].inc(count)

    def _check_series(self, checker: str, result: str) -> tuple[Counter, Histogram]:
        """The run counter and the duration histogram of one kind and result (cached)."""
        children = self._check_children.get((checker, result))
        if children is None:
            children = self._check_children[(checker, result)] = (
                self._checks.labels(checker=checker, result=result),
                self._check_latency.labels(checker=checker),
            )
        return children

    @property
    def check_buckets(self) -> tuple[float, ...]:
        """The check duration histogram's bucket bounds (`checks_counted` counts by them)."""
        return CHECK_BUCKETS

    def checks_counted(self, checker: str, result: str, seconds: float,
                       buckets: Sequence[int]) -> None:
        """Many runs of one kind with one result, counted by a check worker: their
        durations summed, and how many fell in each of `CHECK_BUCKETS` (the last: above
        them all). The same counts as `checks_done` of those durations."""
        children = self._check_series(checker, result)
        histogram = children[1]
        if len(buckets) != len(histogram._upper_bounds):
            raise ValueError(f"{len(buckets)} bucket counts for "
                             f"{len(histogram._upper_bounds)} buckets")
        children[0].inc(sum(buckets))
        histogram._sum.inc(seconds)
        for index, count in enumerate(buckets):
            if count:
                histogram._buckets[index].inc(count)

    def real_server(self, virtual_server: str, real_server: str, *, up: bool, weight: int) -> None:
        """A real server's health and its weight in the dataplane now."""
        self._real_servers.set(virtual_server, real_server, int(up), weight)

    def forget_real_server(self, virtual_server: str, real_server: str) -> None:
        self._real_servers.remove(virtual_server, real_server)

    def forget_virtual_server(self, virtual_server: str, real_servers: Iterable[str] = ()) -> None:
        for rs in real_servers:
            self.forget_real_server(virtual_server, rs)

    # ------------------------------------------------------------------ dataplane

    def dataplane_applied(self, backend: str, ops: Sequence[Op], result: ApplyResult) -> None:
        """Count what a `Backend.apply(ops)` call did: each op, and each one that failed."""
        for op in ops:
            self._dp_ops.labels(backend=backend, op=op_name(op)).inc()
        for failure in result.failed:
            self._dp_errors.labels(backend=backend, op=op_name(failure.op)).inc()

    def dataplane_error(self, backend: str, op: str) -> None:
        """A dataplane call failed outside `apply` (`op` names it: dump, stats, flush...)."""
        self._dp_errors.labels(backend=backend, op=op).inc()

    def reconciled(self, backend: str) -> None:
        self._reconciles.labels(backend=backend).inc()

    # ------------------------------------------------------------------ config

    def alert_mail(self, result: str) -> None:
        self._alert_mails.inc(result)

    def reload(self, ok: bool) -> None:
        self._reloads.labels(result="ok" if ok else "refused").inc()
        self._reload_ok.set(int(ok))

    # ------------------------------------------------------------------ roles

    def role_restarted(self, role: str) -> None:
        self._role_restarts.labels(role=role).inc()

    def families(self, prefix: str) -> list[Any]:
        """The families named `prefix...` as plain data, for another process to render."""
        out = []
        for family in self.registry.collect():
            if family.name.startswith(prefix):
                out.append((family.name, family.documentation, family.type, [
                    (sample.name, dict(sample.labels), sample.value)
                    for sample in family.samples
                ]))
        return out

    def set_foreign(self, families: list[Any]) -> None:
        """Families another process rendered with `families()`: shown from now on."""
        self._foreign.families = families

    # ------------------------------------------------------------------ exposition

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition text (Prometheus, or OpenMetrics when `accept` asks) and its type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    async def render_async(
        self, accept: str | None = None, *, chunk: int = RENDER_CHUNK
    ) -> tuple[bytes, str]:
        """`render()` in slices of about `chunk` samples, yielding to the event loop between
        them: a scrape of 10,000 real servers must not hold up VRRP timers. Same bytes.

        Only gauges are cut (counters and histograms stay whole with their family); they
        are the metrics whose size grows with the real servers.
        """
        if self.refresh is not None:
            try:
                await self.refresh()
            except Exception:
                log.exception("reading the roles' metrics failed")
        encoder, content_type = choose_encoder(accept or "")
        parts: list[bytes] = []
        pending = 0
        skip = _SKIP_REAL_SERVERS.set(True)  # this task only: they come in slices below
        try:
            for family in self.registry.collect():
                samples = family.samples
                if family.type == "gauge" and len(samples) > chunk:
                    for start in range(0, len(samples), chunk):
                        piece = Metric(family.name, family.documentation, family.type, family.unit)
                        piece.samples = samples[start : start + chunk]
                        parts.append(_body(encoder(_Families([piece])), headers=start == 0))
                        await asyncio.sleep(0)
                    continue
                parts.append(_body(encoder(_Families([family])), headers=True))
                pending += len(samples)
                if pending >= chunk:
                    pending = 0
                    await asyncio.sleep(0)
        finally:
            _SKIP_REAL_SERVERS.reset(skip)
        if self._render_real_servers:
            for piece, first in self._real_servers.pieces(chunk):
                parts.append(_body(encoder(_Families([piece])), headers=first))
                await asyncio.sleep(0)
        if self.extra is not None:
            try:
                parts.append(await self.extra(accept))
            except Exception:
                log.exception("reading the balancer's metrics failed")
        if content_type.startswith("application/openmetrics-text"):
            parts.append(b"# EOF\n")
        return b"".join(parts), content_type


_SKIP_REAL_SERVERS: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "hacluster_skip_real_servers", default=False
)

_RS_LABELS = ("virtual_server", "real_server")
_RS_GAUGES = (
    ("hacluster_real_server_up", "1 when a real server is up (health checks pass), else 0"),
    ("hacluster_real_server_weight",
     "Weight a real server has in the dataplane now (0: drained or inhibited)"),
)


class _Foreign(Collector):
    """Families handed over as plain data by a role process (`Metrics.families`)."""

    def __init__(self) -> None:
        self.families: list[Any] = []

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        for name, doc, kind, samples in self.families:
            if name == _AlertMails.NAME:
                continue  # added into the local family by _AlertMails
            family = Metric(name, doc, kind)
            for sample_name, labels, value in samples:
                family.add_sample(sample_name, labels, value)
            yield family


class _AlertMails(Collector):
    """`hacluster_alert_mails_total{result}`: this process's counts plus those a role
    process handed over (`_Foreign`), so that /metrics shows one family."""

    NAME = "hacluster_alert_mails"
    HELP = "Alert mail by outcome: sent, failed (an attempt), given_up, dropped (queue full)"

    def __init__(self, foreign: _Foreign) -> None:
        self._counts: dict[str, float] = {}
        self._foreign = foreign

    def inc(self, result: str) -> None:
        self._counts[result] = self._counts.get(result, 0.0) + 1

    def describe(self) -> Iterable[Metric]:
        return [CounterMetricFamily(self.NAME, self.HELP, labels=["result"])]

    def collect(self) -> Iterable[Metric]:
        totals = dict(self._counts)
        for name, _doc, _kind, samples in self._foreign.families:
            if name == self.NAME:
                for sample_name, labels, value in samples:
                    if sample_name.endswith("_total") and "result" in labels:
                        totals[labels["result"]] = totals.get(labels["result"], 0.0) + value
        family = CounterMetricFamily(self.NAME, self.HELP, labels=["result"])
        for result in sorted(totals):
            family.add_metric([result], totals[result])
        yield family


class _RealServerGauges(Collector):
    """The per-real-server gauges, which can run to tens of thousands of series.

    Kept as plain values rather than labelled Gauges so that a scrape can take them in
    slices (`pieces`) instead of building every series at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, str], tuple[int, int]] = {}

    def set(self, virtual_server: str, real_server: str, up: int, weight: int) -> None:
        with self._lock:
            self._values[(virtual_server, real_server)] = (up, weight)

    def remove(self, virtual_server: str, real_server: str) -> None:
        with self._lock:
            self._values.pop((virtual_server, real_server), None)

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(name, doc, labels=_RS_LABELS) for name, doc in _RS_GAUGES]

    def collect(self) -> Iterable[Metric]:
        if _SKIP_REAL_SERVERS.get():
            return []
        return [piece for piece, _ in self.pieces(None)]

    def pieces(self, size: int | None) -> Iterator[tuple[Metric, bool]]:
        """Each gauge in families of at most `size` series (None: whole), and whether the
        piece is the family's first."""
        with self._lock:
            items = list(self._values.items())
        step = size or max(1, len(items))
        for index, (name, doc) in enumerate(_RS_GAUGES):
            for start in range(0, max(1, len(items)), step):
                piece = GaugeMetricFamily(name, doc, labels=_RS_LABELS)
                for labels, values in items[start : start + step]:
                    piece.add_metric(labels, values[index])
                yield piece, start == 0


class _Families(Collector):
    """A fixed list of metric families, for encoding a slice of the registry."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def _body(text: bytes, *, headers: bool) -> bytes:
    """One encoded slice without its `# EOF`, and without HELP/TYPE/UNIT unless `headers`."""
    keep = []
    for line in text.splitlines(keepends=True):
        if line == b"# EOF\n" or (not headers and line.startswith(b"# ")):
            continue
        keep.append(line)
    return b"".join(keep)


def _remove(metric: Counter | Gauge, *labels: str) -> None:
    with contextlib.suppress(KeyError):  # never set: nothing to remove
        metric.remove(*labels)
