"""Reconcile: table-driven cases and the property apply(reconcile(d, a), a) == d."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hacluster.ipvs.backend import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    EditDest,
    EditService,
    Op,
)
from hacluster.ipvs.memory import MemoryBackend, apply_ops
from hacluster.ipvs.model import (
    Destination,
    Forward,
    Protocol,
    Service,
    ServiceFlag,
    Table,
)
from hacluster.ipvs.reconcile import ALL, reconcile

V4 = ipaddress.IPv4Address


def svc(last: int = 1, port: int = 80, **kw: object) -> Service:
    return Service(Protocol.TCP, V4(f"10.0.0.{last}"), port, **kw)  # type: ignore[arg-type]


def dst(last: int, weight: int = 1, **kw: object) -> Destination:
    return Destination(V4(f"10.0.1.{last}"), 80, weight, **kw)  # type: ignore[arg-type]


S1, S2 = svc(1), svc(2)
BASE = Table.of([(S1, [dst(1), dst(2)]), (S2, [dst(3)])])


def test_equal_tables_need_nothing() -> None:
    assert reconcile(BASE, BASE) == []


def test_from_empty_adds_services_then_their_destinations() -> None:
    assert reconcile(BASE, Table()) == [
        AddService(S1),
        AddDest(S1.key, dst(1)),
        AddDest(S1.key, dst(2)),
        AddService(S2),
        AddDest(S2.key, dst(3)),
    ]


@pytest.mark.parametrize(
    ("desired", "expected"),
    [
        pytest.param(
            Table.of([(S1, [dst(1, 5), dst(2)]), (S2, [dst(3)])]),
            [EditDest(S1.key, dst(1, 5))],
            id="weight-change-is-an-edit",
        ),
        pytest.param(
            Table.of([(S1, [dst(1, 0), dst(2)]), (S2, [dst(3)])]),
            [EditDest(S1.key, dst(1, 0))],
            id="drain-to-zero-is-an-edit",
        ),
        pytest.param(
            Table.of([(S1, [dst(1, forward=Forward.DR), dst(2)]), (S2, [dst(3)])]),
            [EditDest(S1.key, dst(1, forward=Forward.DR))],
            id="forwarding-method-is-an-edit",
        ),
        pytest.param(
            Table.of([(S1, [dst(1, u_threshold=100), dst(2)]), (S2, [dst(3)])]),
            [EditDest(S1.key, dst(1, u_threshold=100))],
            id="threshold-is-an-edit",
        ),
        pytest.param(
            Table.of([(svc(1, scheduler="rr"), [dst(1), dst(2)]), (S2, [dst(3)])]),
            [EditService(svc(1, scheduler="rr"))],
            id="scheduler-is-an-edit",
        ),
        pytest.param(
            Table.of([(svc(1, timeout=300, netmask=24), [dst(1), dst(2)]), (S2, [dst(3)])]),
            [EditService(svc(1, timeout=300, netmask=24))],
            id="persistence-is-an-edit",
        ),
        pytest.param(
            Table.of([(svc(1, flags=ServiceFlag.ONEPACKET), [dst(1), dst(2)]), (S2, [dst(3)])]),
            [EditService(svc(1, flags=ServiceFlag.ONEPACKET))],
            id="flags-are-an-edit",
        ),
        pytest.param(
            Table.of([(S1, [dst(2), dst(4)]), (S2, [dst(3)])]),
            [AddDest(S1.key, dst(4)), DelDest(S1.key, dst(1).key)],
            id="replace-adds-before-it-deletes",
        ),
        pytest.param(
            Table.of([(S1, [dst(1), dst(2)])]),
            [],
            id="unmanaged-service-left-alone",
        ),
        pytest.param(
            Table.of([(svc(1, port=443), [dst(1)]), (S2, [dst(3)])]),
            [AddService(svc(1, port=443)), AddDest(svc(1, port=443).key, dst(1))],
            id="new-port-is-a-new-service-old-one-unmanaged",
        ),
    ],
)
def test_single_changes(desired: Table, expected: list[Op]) -> None:
    assert reconcile(desired, BASE) == expected


def test_managed_service_missing_from_desired_is_deleted() -> None:
    desired = Table.of([(S1, [dst(1), dst(2)])])
    assert reconcile(desired, BASE, managed={S2.key}) == [DelService(S2.key)]
    assert reconcile(desired, BASE, managed=ALL) == [DelService(S2.key)]


def test_deleted_service_takes_its_destinations_with_it() -> None:
    ops = reconcile(Table(), BASE, managed=ALL)
    assert ops == [DelService(S1.key), DelService(S2.key)]


def test_hand_added_destination_in_managed_service_is_removed() -> None:
    actual = Table.of([(S1, [dst(1), dst(2), dst(9)]), (S2, [dst(3)])])
    assert reconcile(BASE, actual) == [DelDest(S1.key, dst(9).key)]


def test_fwmark_and_ipv6_services_reconcile() -> None:
    fwm = Service(fwmark=7, family=4, scheduler="sh", timeout=60)
    v6 = Service(Protocol.UDP, ipaddress.IPv6Address("2001:db8::1"), 53)
    d6 = Destination(ipaddress.IPv6Address("2001:db8::11"), 53, 2, Forward.DR)
    desired = Table.of([(fwm, [dst(1, forward=Forward.DR)]), (v6, [d6])])
    table, result = apply_ops(Table(), reconcile(desired, Table()))
    assert result.ok and table == desired


async def test_memory_backend_counts_operations_and_refuses_like_the_kernel() -> None:
    backend = MemoryBackend()
    result = await backend.apply(reconcile(BASE, Table()))
    assert result.ok and result.applied == 5
    assert await backend.dump() == BASE
    assert backend.counts == {"add_service": 2, "add_dest": 3}
    bad = await backend.apply(
        [AddService(S1), DelDest(S2.key, dst(7).key), EditDest(S1.key, dst(1, 9))]
    )
    assert [f.op for f in bad.failed] == [AddService(S1), DelDest(S2.key, dst(7).key)]
    assert "already exists" in bad.failed[0].message and "10.0.0.1:80" in bad.failed[0].message
    assert backend.counts["edit_dest"] == 1
    assert (await backend.dump()).entries[S1.key].destinations[dst(1).key].weight == 9


def test_model_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="port"):
        svc(1, port=70000)
    with pytest.raises(ValueError, match="fwmark"):
        Service(fwmark=1, family=4, protocol=Protocol.TCP)
    with pytest.raises(ValueError, match="family"):
        Service(fwmark=1)
    with pytest.raises(ValueError, match="netmask"):
        svc(1, netmask=33)
    with pytest.raises(ValueError, match="weight"):
        dst(1, -1)
    with pytest.raises(ValueError, match="duplicate"):
        Table.of([(S1, [dst(1), dst(1, 2)])])


def test_model_strips_kernel_bookkeeping_flags() -> None:
    s = svc(1, flags=ServiceFlag.HASHED | ServiceFlag.PERSISTENT | ServiceFlag.SCHED1, timeout=5)
    assert s.flags == ServiceFlag.SCHED1
    assert s.kernel_flags == ServiceFlag.SCHED1 | ServiceFlag.PERSISTENT
    assert s == svc(1, flags=ServiceFlag.SCHED1, timeout=5)


# --- property: reconcile then apply gives the desired table, with the fewest ops ----------

_ip_services = st.builds(
    Service,
    protocol=st.sampled_from(list(Protocol)),
    address=st.sampled_from(
        [V4("10.0.0.1"), V4("10.0.0.2"), ipaddress.IPv6Address("2001:db8::1")]
    ),
    port=st.sampled_from([80, 443]),
    scheduler=st.sampled_from(["rr", "wrr", "sh"]),
    timeout=st.sampled_from([0, 300]),
    flags=st.sampled_from([ServiceFlag.NONE, ServiceFlag.ONEPACKET]),
)
_fwmark_services = st.builds(
    Service,
    fwmark=st.integers(1, 3),
    family=st.sampled_from([4, 6]),
    scheduler=st.sampled_from(["rr", "mh"]),
)
_services = st.one_of(_ip_services, _fwmark_services)
_dests = st.builds(
    Destination,
    address=st.integers(1, 6).map(lambda n: V4(f"10.0.1.{n}")),
    port=st.just(80),
    weight=st.integers(0, 3),
    forward=st.sampled_from(list(Forward)),
)


@st.composite
def tables(draw: st.DrawFn) -> Table:
    services = draw(st.lists(_services, max_size=5, unique_by=lambda s: s.key))
    pairs = []
    for s in services:
        pairs.append((s, draw(st.lists(_dests, max_size=4, unique_by=lambda d: d.key))))
    return Table.of(pairs)


def _minimum(desired: Table, actual: Table) -> int:
    n = len(actual.entries.keys() - desired.entries.keys())
    for key, want in desired.entries.items():
        have = actual.entries.get(key)
        if have is None:
            n += 1 + len(want.destinations)
            continue
        n += have.service != want.service
        for dkey in want.destinations.keys() | have.destinations.keys():
            n += want.destinations.get(dkey) != have.destinations.get(dkey)
    return n


@settings(max_examples=150, deadline=None)
@given(desired=tables(), actual=tables())
def test_apply_of_reconcile_is_desired(desired: Table, actual: Table) -> None:
    ops = reconcile(desired, actual, managed=ALL)
    result_table, result = apply_ops(actual, ops)
    assert result.ok, result.failed
    assert result_table == desired
    assert len(ops) == _minimum(desired, actual)
    assert reconcile(desired, result_table, managed=ALL) == []


@settings(max_examples=75, deadline=None)
@given(desired=tables(), actual=tables())
def test_unmanaged_services_survive(desired: Table, actual: Table) -> None:
    result_table, result = apply_ops(actual, reconcile(desired, actual))
    assert result.ok
    for key, entry in actual.entries.items():
        if key not in desired.entries:
            assert result_table.entries[key] == entry
    for key, entry in desired.entries.items():
        assert result_table.entries[key] == entry
