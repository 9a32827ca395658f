"""Keep a backend's table equal to the desired one: dump, reconcile, apply, log what changed.

The daemon calls `sync(desired)` on every health or config change and every
`reconcile_interval` seconds, so a hand-typed `ipvsadm` or a restart is put right.
`TableSync` remembers which services it owns (every service it was ever asked for and
has not yet deleted), so a virtual server that a reload removed is deleted from the
dataplane, while services nobody configured in hacluster are left alone (unless
`flush_unknown`, keepalived's `lvs_flush`, asks to clear them on the first sync).
Errors from the backend are reported, never raised: the next sync tries again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hacluster.ipvs.backend import (
    ApplyResult,
    Backend,
    BackendError,
    DelService,
    Op,
    OpFailure,
    describe,
)
from hacluster.ipvs.model import ServiceKey, Table
from hacluster.ipvs.reconcile import ALL, Managed, reconcile

log = logging.getLogger("hacluster.ipvs")


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What one sync did: the operations issued, those refused, or why it could not run."""

    ops: tuple[Op, ...] = ()
    failed: tuple[OpFailure, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failed

    @property
    def changed(self) -> bool:
        return len(self.ops) > len(self.failed)


class TableSync:
    """One backend, kept equal to the desired table on every `sync`."""

    def __init__(
        self,
        backend: Backend,
        *,
        flush_unknown: bool = False,
        logger: logging.Logger | None = None,
    ) -> None:
        self.backend = backend
        self._flush_unknown = flush_unknown
        self._managed: frozenset[ServiceKey] = frozenset()
        self._log = logger or log
        self.syncs = 0

    @property
    def managed(self) -> frozenset[ServiceKey]:
        """The services this sync owns (and would delete when no longer desired)."""
        return self._managed

    async def sync(self, desired: Table) -> SyncReport:
        """Make the backend hold `desired` on every owned service."""
        self.syncs += 1
        try:
            actual = await self.backend.dump()
        except BackendError as exc:
            self._log.warning("%s: cannot read the table: %s", self.backend.name, exc)
            return SyncReport(error=str(exc))
        managed: Managed = ALL if self._flush_unknown else self._managed | desired.entries.keys()
        ops = reconcile(desired, actual, managed=managed)
        result = ApplyResult(0)
        if ops:
            try:
                result = await self.backend.apply(ops)
            except BackendError as exc:
                self._log.warning("%s: cannot apply changes: %s", self.backend.name, exc)
                return SyncReport(tuple(ops), error=str(exc))
        refused = {id(f.op) for f in result.failed}
        for op in ops:
            if id(op) not in refused:
                self._log.info("[%s] %s", self.backend.name, describe(op))
        for failure in result.failed:
            self._log.warning(
                "[%s] %s refused: %s", self.backend.name, describe(failure.op), failure.message
            )
        # Still owned: what is desired, and what we failed to delete (retried next time).
        undeleted = {f.op.key for f in result.failed if isinstance(f.op, DelService)}
        self._managed = frozenset(desired.entries.keys() | undeleted)
        self._flush_unknown = False
        return SyncReport(tuple(ops), result.failed)

    async def remove_managed(self) -> SyncReport:
        """Delete every owned service (at stop, when configured to clean up)."""
        self._flush_unknown = False  # never delete what is not ours on the way out
        return await self.sync(Table())
