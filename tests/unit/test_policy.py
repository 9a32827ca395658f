"""Policy: config + health -> desired table, with keepalived's weight/quorum/sorry semantics."""

from __future__ import annotations

from ipaddress import IPv4Address, ip_address

import pytest

from hacluster.config.model import Command, HostPort, MiscCheck, RealServer, TcpCheck, VirtualServer
from hacluster.ipvs.model import Forward, Protocol, ServiceFlag, Table
from hacluster.policy import (
    Conflict,
    PolicyState,
    QuorumDown,
    QuorumUp,
    RealServerDown,
    ServerHealth,
    conflicts,
    evaluate,
    managed_keys,
    on_removal,
    service_of,
)

VIP = IPv4Address("10.99.0.100")
CHECK = (TcpCheck(),)
TRUE = Command(("true",), "true")


def rs(last: int, weight: int = 1, **kw: object) -> RealServer:
    kw.setdefault("checks", CHECK)
    return RealServer(IPv4Address(f"10.99.0.{last}"), 80, weight, **kw)  # type: ignore[arg-type]


def vs(*servers: RealServer, **kw: object) -> VirtualServer:
    base: dict[str, object] = {"ip": VIP, "port": 80, "lb_algo": "wrr"}
    base.update(kw)
    return VirtualServer(real_servers=servers, **base)  # type: ignore[arg-type]


def weights(table: Table) -> dict[str, int]:
    (entry,) = table
    return {f"{d.address}:{d.port}": d.weight for d in entry.destinations.values()}


def health(v: VirtualServer, **states: ServerHealth) -> dict:  # type: ignore[type-arg]
    key = service_of(v).key
    return {(key, (ip_address(f"10.99.0.{k[1:]}"), 80)): h for k, h in states.items()}


UP, DOWN = ServerHealth(True), ServerHealth(False)


def test_service_from_config() -> None:
    v = vs(rs(11), persistence_timeout=300, ops=True, protocol="UDP")
    s = service_of(v)
    assert (s.protocol, s.address, s.port, s.scheduler) == (Protocol.UDP, VIP, 80, "wrr")
    assert s.timeout == 300 and s.flags == ServiceFlag.ONEPACKET
    f = service_of(VirtualServer(fwmark=7, ip_family="inet6", lb_algo="sh"))
    assert f.fwmark == 7 and f.family == 6 and f.protocol is None
    assert managed_keys([v]) == {s.key}


def test_real_server_forwarding_port_and_thresholds() -> None:
    v = vs(
        rs(11, 3, lb_kind="DR", uthreshold=100, lthreshold=10),
        RealServer(IPv4Address("10.99.0.12")),
        lb_kind="TUN",
    )
    (entry,) = evaluate([v], {}).table
    d11, d12 = entry.destinations.values()
    assert (d11.forward, d11.weight, d11.u_threshold, d11.l_threshold) == (Forward.DR, 3, 100, 10)
    assert (d12.port, d12.forward, d12.weight) == (80, Forward.TUN, 1)  # port 0 -> virtual port


@pytest.mark.parametrize(
    ("servers", "states", "expected"),
    [
        pytest.param([rs(11, 3), rs(12, 2)], {}, {"10.99.0.11:80": 3, "10.99.0.12:80": 2},
                     id="unchecked-servers-start-up"),
        pytest.param([rs(11, 3), rs(12, 2)], {"r11": DOWN},
                     {"10.99.0.12:80": 2}, id="down-server-removed"),
        pytest.param([rs(11, 3, inhibit_on_failure=True), rs(12, 2)], {"r11": DOWN},
                     {"10.99.0.11:80": 0, "10.99.0.12:80": 2}, id="inhibit-keeps-weight-0"),
        pytest.param([rs(11, 3), rs(12, 2)], {"r11": ServerHealth(True, 7)},
                     {"10.99.0.11:80": 7, "10.99.0.12:80": 2}, id="misc-dynamic-weight"),
        pytest.param([rs(11, 3, alpha=True), rs(12, 2)], {},
                     {"10.99.0.12:80": 2}, id="alpha-real-server-starts-down"),
        pytest.param([rs(11, 3, checks=(MiscCheck(misc_path=TRUE, alpha=True),)), rs(12)],
                     {}, {"10.99.0.12:80": 1}, id="alpha-check-starts-down"),
        pytest.param([rs(11, 3, alpha=True)], {"r11": UP},
                     {"10.99.0.11:80": 3}, id="alpha-server-up-after-passing"),
        pytest.param([rs(11, 3, checks=())], {"r11": DOWN},
                     {"10.99.0.11:80": 3}, id="no-checker-always-up"),
    ],
)
def test_weights_and_health(
    servers: list[RealServer], states: dict[str, ServerHealth], expected: dict[str, int]
) -> None:
    v = vs(*servers)
    assert weights(evaluate([v], health(v, **states)).table) == expected


def test_vs_level_alpha_and_inhibit_apply_to_all_servers() -> None:
    v = vs(rs(11), rs(12), alpha=True, inhibit_on_failure=True)
    assert weights(evaluate([v], {}).table) == {"10.99.0.11:80": 0, "10.99.0.12:80": 0}


def test_first_evaluation_reports_initial_quorum_state() -> None:
    v = vs(rs(11, 3), quorum=2)
    key = service_of(v).key
    assert evaluate([v], {}).events == (QuorumUp(key, 3, 2),)
    assert evaluate([v], health(v, r11=DOWN)).events == (QuorumDown(key, 0, 2),)


def test_quorum_with_hysteresis_and_sorry_server_timeline() -> None:
    # quorum 4, hysteresis 1: lost below 3, regained at 5.
    sorry = HostPort(IPv4Address("10.99.0.50"), 8080)
    v = vs(rs(11, 2), rs(12, 2), rs(13, 1), quorum=4, hysteresis=1, sorry_server=sorry)
    key = service_of(v).key
    all_up = {"10.99.0.11:80": 2, "10.99.0.12:80": 2, "10.99.0.13:80": 1}

    r = evaluate([v], {})
    assert r.events == (QuorumUp(key, 5, 5),) and weights(r.table) == all_up

    r = evaluate([v], health(v, r13=DOWN), r.state)  # 4: still >= 3
    assert r.events == () and weights(r.table) == {"10.99.0.11:80": 2, "10.99.0.12:80": 2}

    r = evaluate([v], health(v, r13=DOWN, r12=DOWN), r.state)  # 2 < 3: lost
    assert r.events == (QuorumDown(key, 2, 3),)
    assert weights(r.table) == {"10.99.0.50:8080": 1}  # only the sorry server
    assert r.state.quorum[key] is False

    r = evaluate([v], health(v, r13=DOWN), r.state)  # 4: not yet 5
    assert r.events == () and weights(r.table) == {"10.99.0.50:8080": 1}

    r = evaluate([v], {}, r.state)  # 5: regained, sorry server out
    assert r.events == (QuorumUp(key, 5, 5),) and weights(r.table) == all_up


def test_sorry_server_inhibit_and_lb_kind() -> None:
    sorry = HostPort(IPv4Address("10.99.0.50"), 0)
    v = vs(rs(11, 1), sorry_server=sorry, sorry_server_inhibit=True, sorry_server_lb_kind="DR")
    r = evaluate([v], {})
    assert weights(r.table) == {"10.99.0.11:80": 1, "10.99.0.50:80": 0}
    r = evaluate([v], health(v, r11=DOWN), r.state)
    (entry,) = r.table
    sorry_dest = entry.destinations[next(k for k in entry.destinations if k.port == 80
                                         and str(k.address) == "10.99.0.50")]
    assert sorry_dest.weight == 1 and sorry_dest.forward is Forward.DR


def test_quorum_lost_under_inhibit_keeps_live_servers_at_zero() -> None:
    sorry = HostPort(IPv4Address("10.99.0.50"), 80)
    v = vs(rs(11, 1), rs(12, 1), quorum=2, sorry_server=sorry, inhibit_on_failure=True)
    r = evaluate([v], health(v, r12=DOWN))
    assert weights(r.table) == {"10.99.0.11:80": 0, "10.99.0.12:80": 0, "10.99.0.50:80": 1}


def test_quorum_lost_without_sorry_server_keeps_live_servers() -> None:
    v = vs(rs(11, 1), rs(12, 1), quorum=2)
    r = evaluate([v], health(v, r12=DOWN))
    assert isinstance(r.events[0], QuorumDown)
    assert weights(r.table) == {"10.99.0.11:80": 1}


def test_all_weight_zero_loses_quorum_even_with_quorum_zero() -> None:
    v = vs(rs(11, 0), quorum=0)
    assert isinstance(evaluate([v], {}).events[0], QuorumDown)


def test_omega_reports_live_servers_and_quorum_down_on_removal() -> None:
    v = vs(rs(11), rs(12), omega=True)
    key = service_of(v).key
    r = evaluate([v], {})
    assert on_removal(v, health(v, r12=DOWN), r.state) == [
        RealServerDown(key, (IPv4Address("10.99.0.11"), 80)),
        QuorumDown(key, 0, 1),
    ]
    assert on_removal(vs(rs(11)), {}, r.state) == []
    assert on_removal(v, {}, PolicyState()) == [
        RealServerDown(key, (IPv4Address("10.99.0.11"), 80)),
        RealServerDown(key, (IPv4Address("10.99.0.12"), 80)),
    ]


def test_several_virtual_servers_keep_their_own_state() -> None:
    a = vs(rs(11))
    b = vs(rs(12), port=443)
    r = evaluate([a, b], health(a, r11=DOWN))
    assert len(r.table) == 2
    assert r.state.quorum == {service_of(a).key: False, service_of(b).key: True}


def test_entries_that_are_one_ipvs_entry_are_reported_not_fatal() -> None:
    tcp = VirtualServer(fwmark=1, protocol="TCP", real_servers=(rs(11),))
    udp = VirtualServer(fwmark=1, protocol="UDP", real_servers=(rs(12),))
    twice = vs(rs(11), RealServer(IPv4Address("10.99.0.11"), 0, 5))  # port 0: the VS port
    r = evaluate([tcp, udp, twice], {})
    assert len(r.table) == 2
    web = r.table.entries[service_of(twice).key]
    # The first of the two entries wins.
    assert {str(k): d.weight for k, d in web.destinations.items()} == {"10.99.0.11:80": 1}
    assert [e.message for e in r.events if isinstance(e, Conflict)] == [
        "FWM 1/UDP: the same IPVS service as an earlier one",
        "10.99.0.100:80/TCP: real server 10.99.0.11:80 is given twice",
    ]
    assert conflicts([tcp, udp, twice]) == [
        "FWM 1/UDP: the same IPVS service as an earlier one",
        "10.99.0.100:80/TCP: real server 10.99.0.11:80 is given twice",
    ]
