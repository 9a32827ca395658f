"""The state the parts of the load balancer share, and its read-only views."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from hacluster.balancer import Handed
from hacluster.config.model import Config, VirtualServer
from hacluster.ipvs.backend import Backend
from hacluster.ipvs.model import ServiceEntry, ServiceKey, Table
from hacluster.loadbalancer.members import Real, Wanted
from hacluster.policy import HealthKey, ServerHealth
from healthchecks import HttpSessions, Runner, ShardedRunner

if TYPE_CHECKING:
    from hacluster.metrics import Metrics
    from hacluster.notify import Notifier


class BalancerState:
    """What the parts of `LoadBalancer` share: its configuration, the running real servers,
    the policy's results, the dataplane as last known, and the reading of these.

    The attributes are given their values by `LoadBalancer.__init__`.
    """

    _wanted: dict[HealthKey, Wanted]
    _handed: dict[tuple[str, str], Handed]
    on_health: Callable[[str, str, Handed | None], None] | None
    _config: Config
    _backend: Backend | None
    _notifier: Notifier | None
    _metrics: Metrics | None
    _interval_override: float | None
    _coalesce: float
    _sharded: ShardedRunner | None
    _runner: Runner | ShardedRunner
    _runner_start: asyncio.Task[None] | None
    _http: HttpSessions
    _servers: dict[ServiceKey, VirtualServer]
    _reals: dict[HealthKey, Real]
    _members: dict[ServiceKey, list[Real]]
    _health: dict[HealthKey, ServerHealth]  # servers with checks only
    _drained: set[HealthKey]
    _quorum: dict[ServiceKey, bool]
    _entries: dict[ServiceKey, ServiceEntry]  # desired, drains applied
    _dirty: set[ServiceKey]  # services to evaluate again
    _retired: set[ServiceKey]  # removed by a reload, maybe still in the table
    _table: Table | None  # the dataplane as last read or written
    _full_next: bool  # the next pass reads the whole table back
    _flush_first: bool
    _wake: asyncio.Event
    _lock: asyncio.Lock
    _task: asyncio.Task[None] | None
    _seq: Iterator[int]
    _conflicts: set[str]
    _failures: dict[str, str]  # op description -> last message (log once)
    _backend_down: str | None
    _listing: tuple[float, dict[str, Any]] | None  # (when, recent_ipvs())
    _table_read_at: float | None  # the last full read-back (monotonic)
    _listing_task: asyncio.Task[dict[str, Any]] | None
    _started: bool
    _stopped: bool
    counters: Counter[str]

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

    @property
    def dataplane_error(self) -> str | None:
        """Why the dataplane cannot be read or written now (None: it can)."""
        return self._backend_down

    @property
    def table_read_at(self) -> float | None:
        """When (time.monotonic()) the reconcile loop last read the whole table back."""
        return self._table_read_at
