"""TableSync: ownership across reloads, lvs_flush, drift repair, errors reported not raised."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence

import pytest

from hacluster.ipvs.backend import ApplyResult, BackendError, DelService, Op, OpFailure
from hacluster.ipvs.memory import MemoryBackend
from hacluster.ipvs.model import Destination, Protocol, Service, Table
from hacluster.ipvs.reconcile import reconcile
from hacluster.ipvs.sync import TableSync


def svc(last: int) -> Service:
    return Service(Protocol.TCP, ipaddress.IPv4Address(f"10.0.0.{last}"), 80, scheduler="rr")


def dst(last: int, weight: int = 1) -> Destination:
    return Destination(ipaddress.IPv4Address(f"10.0.1.{last}"), 80, weight)


A, B, OTHER = svc(1), svc(2), svc(9)
FOREIGN = Table.of([(OTHER, [dst(9)])])  # someone else's service


async def test_reload_removes_what_we_own_and_leaves_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = MemoryBackend(FOREIGN)
    sync = TableSync(backend)
    caplog.set_level(logging.INFO, logger="hacluster.ipvs")
    report = await sync.sync(Table.of([(A, [dst(1)]), (B, [dst(2)])]))
    assert report.ok and report.changed and len(report.ops) == 4
    assert "[memory] add-dest TCP 10.0.0.1:80 -> 10.0.1.1:80 weight 1 NAT" in caplog.text
    # A reload drops B: it is deleted; OTHER was never ours and stays.
    report = await sync.sync(Table.of([(A, [dst(1)])]))
    assert report.ops == (DelService(B.key),)
    assert (await backend.dump()) == Table.of([(OTHER, [dst(9)]), (A, [dst(1)])])
    assert sync.managed == {A.key}


async def test_periodic_sync_repairs_drift_and_is_quiet_otherwise() -> None:
    desired = Table.of([(A, [dst(1, 3), dst(2)])])
    backend = MemoryBackend()
    sync = TableSync(backend)
    await sync.sync(desired)
    assert (await sync.sync(desired)).ops == ()
    # A hand edit changes a weight and adds a destination.
    await backend.apply(reconcile(Table.of([(A, [dst(1, 9), dst(2), dst(3)])]), desired))
    report = await sync.sync(desired)
    assert len(report.ops) == 2 and report.ok
    assert await backend.dump() == desired


async def test_flush_unknown_clears_foreign_services_on_first_sync_only() -> None:
    backend = MemoryBackend(FOREIGN)
    sync = TableSync(backend, flush_unknown=True)
    await sync.sync(Table.of([(A, [dst(1)])]))
    assert await backend.dump() == Table.of([(A, [dst(1)])])
    await backend.apply(reconcile(FOREIGN, Table()))  # the other tool adds its service back
    await sync.sync(Table.of([(A, [dst(1)])]))
    assert OTHER.key in (await backend.dump()).entries


async def test_remove_managed_at_stop() -> None:
    backend = MemoryBackend(FOREIGN)
    sync = TableSync(backend)
    await sync.sync(Table.of([(A, [dst(1)]), (B, [])]))
    report = await sync.remove_managed()
    assert set(report.ops) == {DelService(A.key), DelService(B.key)}
    assert await backend.dump() == FOREIGN


class FlakyBackend(MemoryBackend):
    """Refuses deletions once, and can fail to read the table."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse_delete = True
        self.broken = False

    async def dump(self) -> Table:
        if self.broken:
            raise BackendError("netlink socket closed")
        return await super().dump()

    async def apply(self, ops: Sequence[Op]) -> ApplyResult:
        if self.refuse_delete:
            bad = [op for op in ops if isinstance(op, DelService)]
            if bad:
                self.refuse_delete = False
                good = [op for op in ops if not isinstance(op, DelService)]
                result = await super().apply(good)
                return ApplyResult(
                    result.applied, tuple(OpFailure(op, "device busy") for op in bad)
                )
        return await super().apply(ops)


async def test_refused_deletion_is_retried_and_errors_are_reported() -> None:
    backend = FlakyBackend()
    sync = TableSync(backend)
    await sync.sync(Table.of([(A, []), (B, [])]))
    report = await sync.sync(Table.of([(A, [])]))
    assert not report.ok and report.failed[0].message == "device busy"
    assert B.key in sync.managed  # still ours: deleted on the next sync
    report = await sync.sync(Table.of([(A, [])]))
    assert report.ops == (DelService(B.key),) and report.ok
    backend.broken = True
    report = await sync.sync(Table.of([(A, [])]))
    assert report.error == "netlink socket closed" and not report.ok
