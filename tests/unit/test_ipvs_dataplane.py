"""Backend choice: config names, nftables limits reported before start, unavailable netlink."""

from __future__ import annotations

import errno
from ipaddress import IPv4Address

import pytest

from hacluster.config.model import HostPort, RealServer, TcpCheck, VirtualServer
from hacluster.ipvs.backend import describe
from hacluster.ipvs.dataplane import config_problems, from_dataplane, is_missing_ipvs, open_backend
from hacluster.ipvs.memory import MemoryBackend
from hacluster.ipvs.nftables import NftablesBackend
from hacluster.ipvs.reconcile import reconcile
from hacluster.policy import evaluate

VIP = IPv4Address("10.99.0.100")


def vs(**kw: object) -> VirtualServer:
    rs = RealServer(IPv4Address("10.99.0.11"), 80, 1, checks=(TcpCheck(),))
    base: dict[str, object] = {"ip": VIP, "port": 80, "lb_algo": "wrr", "real_servers": (rs,)}
    base.update(kw)
    return VirtualServer(**base)  # type: ignore[arg-type]


def test_dataplane_names() -> None:
    assert from_dataplane("ipvs") == "netlink"
    assert from_dataplane("nftables") == "nftables"
    assert from_dataplane("none") is None
    with pytest.raises(ValueError, match="unknown dataplane"):
        from_dataplane("ebpf")


def test_nftables_limits_reported_for_check_config() -> None:
    assert config_problems("nftables", [vs()]) == []
    assert config_problems("ipvs", [vs(lb_algo="lc", lb_kind="DR")]) == []
    problems = config_problems("nftables", [vs(lb_algo="lc"), vs(port=443, lb_kind="DR")])
    assert len(problems) == 2
    assert "TCP 10.99.0.100:80: scheduler 'lc'" in problems[0]
    assert "TCP 10.99.0.100:443: real server 10.99.0.11:80 uses lb_kind DR" in problems[1]
    sorry = vs(sorry_server=HostPort(IPv4Address("10.99.0.50"), 80), sorry_server_lb_kind="TUN")
    (problem,) = config_problems("nftables", [sorry])
    assert "10.99.0.50:80 uses lb_kind TUN" in problem


def test_conflicts_reported_for_every_dataplane() -> None:
    a = VirtualServer(fwmark=3, protocol="TCP", lb_algo="rr")
    b = VirtualServer(fwmark=3, protocol="UDP", lb_algo="rr")
    for dataplane in ("ipvs", "nftables"):
        assert config_problems(dataplane, [a, b]) == [
            "FWM 3/UDP: the same IPVS service as an earlier one"
        ]
    assert config_problems("none", [a, b]) == []


def test_open_backend_by_name() -> None:
    assert isinstance(open_backend("memory"), MemoryBackend)
    nft = open_backend("nftables", netns="hcn-x")
    assert isinstance(nft, NftablesBackend) and nft.name == "nftables@hcn-x"
    with pytest.raises(ValueError, match="namespace"):
        open_backend("nftables", netns="../etc")


def test_missing_ipvs_errors_are_recognised() -> None:
    class FakeNetlinkError(Exception):
        code = errno.ENOENT

    assert is_missing_ipvs(FakeNetlinkError())
    assert is_missing_ipvs(OSError(errno.ENOPROTOOPT, "Protocol not available"))
    assert not is_missing_ipvs(OSError(errno.EPERM, "Operation not permitted"))


def test_ops_describe_themselves_for_logs() -> None:
    ops = reconcile(evaluate([vs()], {}).table, evaluate([], {}).table)
    assert [describe(op) for op in ops] == [
        "add-service TCP 10.99.0.100:80 wrr",
        "add-dest TCP 10.99.0.100:80 -> 10.99.0.11:80 weight 1 NAT",
    ]
