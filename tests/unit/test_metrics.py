"""Metrics: what the components record comes back out of the exposition text, parsed."""

from __future__ import annotations

import asyncio
import bisect
from ipaddress import ip_address
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from hacluster.ipvs.backend import (
    AddDest,
    AddService,
    ApplyResult,
    DelDest,
    EditDest,
    Op,
    OpFailure,
)
from hacluster.ipvs.model import Destination, DestKey, Protocol, Service
from hacluster.metrics import Metrics, op_name


def samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = m.render()
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m: Metrics, name: str, **labels: str) -> float | None:
    return samples(m).get((name, tuple(sorted(labels.items()))))


def names(m: Metrics, prefix: str) -> set[tuple[str, Any]]:
    return {k for k in samples(m) if k[0].startswith(prefix)}


def test_private_registry() -> None:
    m = Metrics(version="1.2.3")
    m.vrrp_transition("VI_1", "MASTER")
    assert REGISTRY.get_sample_value("hacluster_vrrp_state",
                                     {"instance": "VI_1", "state": "MASTER"}) is None
    assert value(m, "hacluster_build_info", version="1.2.3") == 1
    assert value(m, "process_start_time_seconds") is not None  # process collector on it


def test_one_state_at_a_time_and_transitions_counted() -> None:
    m = Metrics()
    m.vrrp_transition("VI_1", "BACKUP")
    m.vrrp_transition("VI_1", "MASTER")
    m.vrrp_transition("VI_1", "BACKUP")
    m.vrrp_state("VI_2", "fault")
    states = {s: value(m, "hacluster_vrrp_state", instance="VI_1", state=s)
              for s in ("INITIALIZE", "BACKUP", "MASTER", "FAULT")}
    assert states == {"INITIALIZE": 0, "BACKUP": 1, "MASTER": 0, "FAULT": 0}
    assert value(m, "hacluster_vrrp_state", instance="VI_2", state="FAULT") == 1
    assert value(m, "hacluster_vrrp_transitions_total", instance="VI_1", state="BACKUP") == 2
    assert value(m, "hacluster_vrrp_transitions_total", instance="VI_1", state="MASTER") == 1
    with pytest.raises(ValueError, match="unknown VRRP state 'LEADER'"):
        m.vrrp_state("VI_1", "leader")


def test_adverts_drops_priority_and_forget() -> None:
    m = Metrics()
    m.adverts_sent("VI_1")
    m.adverts_sent("VI_1", 4)
    m.adverts_received("VI_1", 3)
    m.packet_dropped("eth0", "bad_checksum")
    m.packet_dropped("eth0", "bad_checksum")
    m.packet_dropped("eth0", "ttl")
    m.vrrp_priority("VI_1", 130)
    m.vrrp_transition("VI_1", "MASTER")
    assert value(m, "hacluster_vrrp_adverts_sent_total", instance="VI_1") == 5
    assert value(m, "hacluster_vrrp_adverts_received_total", instance="VI_1") == 3
    assert value(m, "hacluster_vrrp_packets_dropped_total",
                 interface="eth0", reason="bad_checksum") == 2
    assert value(m, "hacluster_vrrp_packets_dropped_total", interface="eth0", reason="ttl") == 1
    assert value(m, "hacluster_vrrp_priority", instance="VI_1") == 130
    m.forget_instance("VI_1")
    m.forget_instance("VI_never_seen")  # harmless
    left = {k for k in samples(m) if ("instance", "VI_1") in k[1]}
    assert left == set()


def test_checks_latency_and_real_servers() -> None:
    m = Metrics()
    for seconds in (0.0004, 0.003, 0.2):
        m.check_done("HTTP_GET", "success", seconds)
    m.check_done("TCP_CHECK", "timeout", 3.0)
    assert value(m, "hacluster_checks_total", checker="HTTP_GET", result="success") == 3
    assert value(m, "hacluster_checks_total", checker="TCP_CHECK", result="timeout") == 1
    assert value(m, "hacluster_check_duration_seconds_count", checker="HTTP_GET") == 3
    assert value(m, "hacluster_check_duration_seconds_bucket", checker="HTTP_GET",
                 le="0.005") == 2
    total = value(m, "hacluster_check_duration_seconds_sum", checker="HTTP_GET")
    assert total == pytest.approx(0.2034)
    with pytest.raises(ValueError, match="negative"):
        m.check_done("HTTP_GET", "success", -1.0)

    vs = "10.99.0.100:80/TCP"
    m.real_server(vs, "10.99.0.11:80", up=True, weight=3)
    m.real_server(vs, "10.99.0.12:80", up=False, weight=0)
    assert value(m, "hacluster_real_server_up", virtual_server=vs, real_server="10.99.0.11:80") == 1
    assert value(m, "hacluster_real_server_up", virtual_server=vs, real_server="10.99.0.12:80") == 0
    assert value(m, "hacluster_real_server_weight", virtual_server=vs,
                 real_server="10.99.0.11:80") == 3
    m.forget_virtual_server(vs, ["10.99.0.11:80", "10.99.0.12:80"])
    assert {k for k in samples(m) if ("virtual_server", vs) in k[1]} == set()


def test_dataplane_operations_and_errors() -> None:
    svc = Service(protocol=Protocol.TCP, address=ip_address("10.99.0.100"), port=80)
    dest = Destination(ip_address("10.99.0.11"), 80, weight=3)
    ops: list[Op] = [AddService(svc), AddDest(svc.key, dest), EditDest(svc.key, dest),
           DelDest(svc.key, DestKey(ip_address("10.99.0.12"), 80))]
    assert [op_name(op) for op in ops] == ["add_service", "add_dest", "edit_dest", "del_dest"]
    m = Metrics()
    m.dataplane_applied("netlink", ops, ApplyResult(3, (OpFailure(ops[3], "no such destination"),)))
    m.dataplane_applied("netlink", ops[1:2], ApplyResult(1))
    m.dataplane_error("netlink", "dump")
    m.reconciled("netlink")
    assert value(m, "hacluster_dataplane_operations_total", backend="netlink", op="add_dest") == 2
    assert value(m, "hacluster_dataplane_operations_total", backend="netlink", op="del_dest") == 1
    assert value(m, "hacluster_dataplane_errors_total", backend="netlink", op="del_dest") == 1
    assert value(m, "hacluster_dataplane_errors_total", backend="netlink", op="add_dest") is None
    assert value(m, "hacluster_dataplane_errors_total", backend="netlink", op="dump") == 1
    assert value(m, "hacluster_dataplane_reconciles_total", backend="netlink") == 1


def test_reloads() -> None:
    m = Metrics()
    assert value(m, "hacluster_config_last_reload_successful") == 1
    m.reload(False)
    assert value(m, "hacluster_config_last_reload_successful") == 0
    m.reload(True)
    assert value(m, "hacluster_config_last_reload_successful") == 1
    assert value(m, "hacluster_config_reloads_total", result="refused") == 1
    assert value(m, "hacluster_config_reloads_total", result="ok") == 1


def test_openmetrics_when_asked() -> None:
    m = Metrics(process=False)
    m.adverts_sent("VI_1")
    body, ctype = m.render("application/openmetrics-text; version=1.0.0")
    assert ctype.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
    body, ctype = m.render(None)
    assert ctype.startswith("text/plain") and b"# EOF" not in body


@pytest.mark.parametrize("accept", [None, "application/openmetrics-text; version=1.0.0"])
async def test_render_async_gives_the_same_bytes_in_slices(accept: str | None) -> None:
    m = Metrics(process=False)
    for v in range(3):
        for r in range(450):
            m.real_server(f"10.0.0.{v}:80/TCP", f"10.1.{v}.{r % 250}:{8000 + r}", up=r % 3 > 0,
                          weight=r)
    m.vrrp_transition("VI_1", "MASTER")
    m.check_done("TCP_CHECK", "success", 0.001)
    expected, ctype = m.render(accept)
    loop = asyncio.get_running_loop()
    ticks = 0
    done = False

    def tick() -> None:
        nonlocal ticks
        ticks += 1
        if not done:
            loop.call_soon(tick)

    loop.call_soon(tick)
    got, got_type = await m.render_async(accept, chunk=200)
    done = True
    assert (got, got_type) == (expected, ctype)
    assert ticks >= 2 * 1350 // 200  # the loop ran between the slices
    fams = {f.name: f for f in text_string_to_metric_families(got.decode())}
    if accept is None:
        assert len(fams["hacluster_real_server_up"].samples) == 1350


async def test_render_async_without_real_servers_and_after_forget() -> None:
    m = Metrics(process=False)
    assert await m.render_async() == m.render()
    m.real_server("vs", "rs", up=True, weight=1)
    m.forget_real_server("vs", "rs")
    body, _ = await m.render_async(chunk=1)
    assert body == m.render()[0]
    assert b"hacluster_real_server_up{" not in body
    assert b"# TYPE hacluster_real_server_up gauge" in body


def test_checks_done_in_bulk_equals_observe_per_run() -> None:
    """The batch paths (hand-written bucket counting, and counts made by a worker)
    against prometheus_client's own."""
    import random

    rng = random.Random(20261207)
    runs = [rng.choice([0.0, 1e-5, 0.001, 0.0025, 0.05, 0.5, 1.0, 2.5, 30.0, -0.1])
            * rng.choice([1.0, 0.999, 1.001]) for _ in range(2000)]
    one, bulk = Metrics(process=False), Metrics(process=False)
    for seconds in runs:
        one.check_done("TCP_CHECK", "ok", max(0.0, seconds))
    bulk.checks_done("TCP_CHECK", "ok", runs[:700])
    # As a check worker counts them: by bucket (`healthchecks.sharded.RunBatch`).
    counted = [max(0.0, r) for r in runs[700:]]
    buckets = [0] * (len(bulk.check_buckets) + 1)
    for seconds in counted:
        buckets[bisect.bisect_left(bulk.check_buckets, seconds)] += 1
    bulk.checks_counted("TCP_CHECK", "ok", sum(counted), buckets)
    bulk.checks_done("HTTP_GET", "timeout", [])
    bulk.checks_counted("HTTP_GET", "timeout", 0.0, [0] * len(buckets))
    with pytest.raises(ValueError):
        bulk.checks_counted("HTTP_GET", "timeout", 0.0, [1])

    def samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        out = {}
        for family in text_string_to_metric_families(m.render()[0].decode()):
            if family.name.startswith("hacluster_check"):
                for s in family.samples:
                    if s.labels.get("checker") == "TCP_CHECK":
                        out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    expected, got = samples(one), samples(bulk)
    assert expected and got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key
