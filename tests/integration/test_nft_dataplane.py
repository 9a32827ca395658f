"""nftables dataplane against real nftables and real TCP traffic in network namespaces."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from hacluster.ipvs.model import Destination, Protocol, Service, ServiceFlag, Table
from hacluster.ipvs.nftables import NftablesBackend
from hacluster.ipvs.reconcile import ALL, reconcile
from hacluster.lab.netns import Lab, sweep
from tests.integration import nft_lab
from tests.integration.nft_lab import PORT, VIP, VIP6, VIP_FWMARK, DirectorLab

pytestmark = pytest.mark.netns

SERVICE = Service(Protocol.TCP, ipaddress.IPv4Address(VIP), PORT, scheduler="wrr")


@pytest.fixture(scope="module", autouse=True)
def _sweep_hcn_leftovers() -> None:
    sweep("hcn")  # namespaces a crashed earlier run left behind (their pid is gone)


@pytest.fixture(scope="module")
def director_lab() -> Iterator[DirectorLab]:
    """Client, director and three real servers, shared by this module's tests."""
    with Lab("hcn") as raw:
        yield nft_lab.build(raw, n_servers=3, client_sources=4)


@pytest.fixture
def lab(director_lab: DirectorLab) -> DirectorLab:
    """The shared lab with an empty nftables ruleset on the director."""
    director_lab.lab.run(director_lab.director, ["nft", "flush", "ruleset"])
    return director_lab


def table(env: DirectorLab, service: Service = SERVICE, **weights: int) -> Table:
    dests = [
        Destination(ipaddress.IPv4Address(env.servers[name]), PORT, weight)
        for name, weight in weights.items()
    ]
    return Table.of([(service, dests)])


async def converge(backend: NftablesBackend, desired: Table) -> None:
    result = await backend.apply(reconcile(desired, await backend.dump(), managed=ALL))
    assert result.ok, result.failed
    assert await backend.dump() == desired


def count(env: DirectorLab, n: int, *sources: str, vip: str = VIP) -> dict[str, Any]:
    argv = [sys.executable, str(nft_lab.HERE), "count", vip, str(PORT), str(n), *sources]
    out = env.lab.run(env.client, argv, timeout=120).stdout
    data: dict[str, Any] = json.loads(out)
    return data


async def test_connections_follow_the_weights(lab: DirectorLab) -> None:
    backend = NftablesBackend(netns=lab.director.name)
    await converge(backend, table(lab, s1=1, s2=2, s3=3))
    names = count(lab, 600)["names"]
    assert sum(names.values()) == 600, names  # no errors
    for name, expected in (("s1", 100), ("s2", 200), ("s3", 300)):
        assert abs(names.get(name, 0) - expected) <= 50, names
    stats = await backend.stats()
    assert stats.services[SERVICE.key].conns == 600
    # The operator's view: `hacluster ipvs list` reads the same table back.
    cli = [sys.executable, "-m", "hacluster.cli", "ipvs", "list", "--backend", "nftables",
           "--netns", lab.director.name]
    plain = subprocess.run(cli, capture_output=True, text=True, check=True).stdout.splitlines()
    # nftables keeps no per-destination connection counts: shown as '-', not as 0.
    assert plain[3:] == [
        f"TCP  {VIP}:{PORT} wrr",
        "  -> 10.98.11.2:8080              Masq    1      -          -",
        "  -> 10.98.12.2:8080              Masq    2      -          -",
        "  -> 10.98.13.2:8080              Masq    3      -          -",
    ]
    stats_out = subprocess.run(
        [*cli, "--stats"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert stats_out[3].split() == ["TCP", f"{VIP}:{PORT}", "600", "-", "-", "-", "-"]


async def test_round_robin_is_exact_and_drain_moves_new_connections(lab: DirectorLab) -> None:
    backend = NftablesBackend(netns=lab.director.name)
    rr = Service(Protocol.TCP, ipaddress.IPv4Address(VIP), PORT, scheduler="rr")
    await converge(backend, table(lab, rr, s1=1, s2=5, s3=1))
    assert count(lab, 90)["names"] == {"s1": 30, "s2": 30, "s3": 30}
    # Drain s2 (weight 0): it stays configured but gets no new connections.
    await converge(backend, table(lab, rr, s1=1, s2=0, s3=1))
    names = count(lab, 60)["names"]
    assert names == {"s1": 30, "s3": 30}
    # No live server at all: connections are refused, not sent to the director itself.
    await converge(backend, table(lab, rr, s1=0, s2=0, s3=0))
    assert count(lab, 3)["names"] == {"error:ConnectionRefusedError": 3}


async def test_source_hash_keeps_each_client_on_one_server(lab: DirectorLab) -> None:
    backend = NftablesBackend(netns=lab.director.name)
    sh = Service(Protocol.TCP, ipaddress.IPv4Address(VIP), PORT, scheduler="sh")
    await converge(backend, table(lab, sh, s1=1, s2=1, s3=1))
    sources = [f"10.98.1.{2 + i}" for i in range(4)]
    first = count(lab, 40, *sources)["by_source"]
    assert all(len(names) == 1 for names in first.values()), first
    assert count(lab, 40, *sources)["by_source"] == first
    # sh-port spreads one client's connections by source port as well.
    sh_port = Service(
        Protocol.TCP, ipaddress.IPv4Address(VIP), PORT, scheduler="sh", flags=ServiceFlag.SCHED2
    )
    await converge(backend, table(lab, sh_port, s1=1, s2=1, s3=1))
    spread = count(lab, 60, sources[0])["by_source"][sources[0]]
    assert len(spread) == 3, spread


async def test_updates_under_continuous_traffic_lose_no_connection(lab: DirectorLab) -> None:
    backend = NftablesBackend(netns=lab.director.name)
    await converge(backend, table(lab, s1=1, s2=1))
    churn = lab.lab.start(
        lab.client, [sys.executable, str(nft_lab.HERE), "churn", VIP, str(PORT), "3"]
    )
    await asyncio.sleep(0.3)
    steps = [
        {"s1": 1, "s2": 1, "s3": 1},
        {"s1": 3, "s2": 1, "s3": 1},
        {"s1": 0, "s2": 1, "s3": 2},
        {"s2": 1, "s3": 2},
        {"s1": 1, "s2": 1, "s3": 1},
    ]
    updates = 0
    # At least ten updates, as many as 2.2 s of the churn's 3 s allow (on a busy machine
    # the last ones may come after the churn: the count is not a timing figure).
    deadline = asyncio.get_running_loop().time() + 2.2
    while updates < 10 or asyncio.get_running_loop().time() < deadline:
        weights = steps[updates % len(steps)]
        await converge(backend, table(lab, SERVICE, **weights))
        updates += 1
    assert churn.popen.wait(timeout=15) == 0, churn.output()
    summary = json.loads(churn.output().strip().splitlines()[-1])
    # On a failure, say what the dataplane did meanwhile.
    said = (summary, f"updates={updates}", f"full_rewrites={backend.full_rewrites}")
    assert summary["errors"] == [], said
    assert summary["long_ok"] == [True, True, True], said
    assert summary["ok"] > 100
    assert backend.full_rewrites == 1  # the first build only; every update was incremental


async def test_whole_table_rewrites_under_traffic_lose_no_connection(lab: DirectorLab) -> None:
    # A rewrite of the whole table (after damage, say) is done in place: base chains and
    # their NAT hooks stay, the new maps are committed first. Deleting and re-adding the
    # table instead refused about one new connection in 80 rewrites here.
    backend = NftablesBackend(netns=lab.director.name)
    await converge(backend, table(lab, s1=1, s2=1))
    churn = lab.lab.start(
        lab.client, [sys.executable, str(nft_lab.HERE), "churn", VIP, str(PORT), "2.5"]
    )
    await asyncio.sleep(0.3)
    steps = [{"s1": 1, "s2": 1, "s3": 1}, {"s1": 0, "s2": 1, "s3": 2}, {"s2": 1, "s3": 2}]
    rewrites = 0
    deadline = asyncio.get_running_loop().time() + 1.8
    while asyncio.get_running_loop().time() < deadline:
        before = backend.transactions
        await backend.replace(table(lab, SERVICE, **steps[rewrites % len(steps)]))
        assert backend.transactions == before + 2  # in place: maps, then the switch
        rewrites += 1
    assert churn.popen.wait(timeout=15) == 0, churn.output()
    summary = json.loads(churn.output().strip().splitlines()[-1])
    assert summary["errors"] == [], (summary, f"rewrites={rewrites}")
    assert summary["long_ok"] == [True, True, True]
    assert summary["ok"] > 100 and rewrites >= 10
    assert await backend.dump() == table(lab, SERVICE, **steps[(rewrites - 1) % len(steps)])


async def test_ipv6_and_fwmark_services_carry_traffic(lab: DirectorLab) -> None:
    backend = NftablesBackend(netns=lab.director.name)
    v6 = Service(Protocol.TCP, ipaddress.IPv6Address(VIP6), PORT, scheduler="rr")
    fwm = Service(fwmark=7, family=4, scheduler="rr")
    desired = Table.of(
        [
            (v6, [Destination(ipaddress.IPv6Address(a), PORT) for a in lab.servers6.values()]),
            # A fwmark service keeps the client's destination port.
            (fwm, [Destination(ipaddress.IPv4Address(lab.servers["s3"]), 0)]),
        ]
    )
    await converge(backend, desired)
    assert count(lab, 30, vip=VIP6)["names"] == {"s1": 10, "s2": 10, "s3": 10}
    # Nothing marks packets yet: the fwmark VIP reaches no service (refused by the director).
    assert count(lab, 2, vip=VIP_FWMARK)["names"] == {"error:ConnectionRefusedError": 2}
    marker = (
        "table ip hcnmark {\n chain pre {\n"
        "  type filter hook prerouting priority mangle;\n"
        f"  ip daddr {VIP_FWMARK} tcp dport {PORT} meta mark set 7\n }}\n}}\n"
    )
    lab.lab.run(lab.director, ["nft", "-f", "-"], input=marker)
    assert count(lab, 5, vip=VIP_FWMARK)["names"] == {"s3": 5}


async def test_unsupported_service_is_refused_and_the_rest_applied(lab: DirectorLab) -> None:
    backend = NftablesBackend(netns=lab.director.name)
    lc = Service(Protocol.TCP, ipaddress.IPv4Address(VIP), 9000, scheduler="lc")
    desired = Table.of([*((e.service, e.destinations.values()) for e in table(lab, s1=1)),
                        (lc, [])])
    result = await backend.apply(reconcile(desired, await backend.dump()))
    assert [type(f.op).__name__ for f in result.failed] == ["AddService"]
    assert "scheduler 'lc' is not available with dataplane nftables" in result.failed[0].message
    assert await backend.dump() == table(lab, s1=1)
    assert count(lab, 5)["names"] == {"s1": 5}


CONFIG = f"""
global_defs:
  dataplane: nftables
virtual_servers:
  - ip: {VIP}
    port: {PORT}
    protocol: TCP
    lb_algo: wrr
    real_servers:
      - {{ip: 10.98.11.2, port: {PORT}, weight: 3}}
      - {{ip: 10.98.12.2, port: {PORT}, weight: 1}}
"""


async def test_apply_puts_a_config_file_into_nftables(lab: DirectorLab) -> None:
    config = lab.lab.workdir / "apply.yaml"
    config.write_text(CONFIG)
    cli = [sys.executable, "-m", "hacluster.cli", "ipvs", "apply", "-f", str(config),
           "--netns", lab.director.name]
    dry = subprocess.run([*cli, "--dry-run"], capture_output=True, text=True, check=True)
    assert dry.stdout.splitlines() == [
        f"add-service TCP {VIP}:{PORT} wrr",
        f"add-dest TCP {VIP}:{PORT} -> 10.98.11.2:{PORT} weight 3 NAT",
        f"add-dest TCP {VIP}:{PORT} -> 10.98.12.2:{PORT} weight 1 NAT",
        "3 operations (dry run: nothing changed)",
    ]
    assert await NftablesBackend(netns=lab.director.name).dump() == Table()
    where = f"nftables@{lab.director.name}"
    done = subprocess.run(cli, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == f"3 of 3 operations applied to {where}"
    names = count(lab, 200)["names"]
    assert names.keys() == {"s1", "s2"} and names["s1"] > names["s2"] > 0
    again = subprocess.run(cli, capture_output=True, text=True, check=True)
    assert again.stdout.splitlines() == [f"0 of 0 operations applied to {where}"]


async def test_hand_edit_is_put_right_by_full_rewrite(lab: DirectorLab) -> None:
    backend = NftablesBackend(netns=lab.director.name)
    desired = table(lab, s1=1, s2=1)
    await converge(backend, desired)
    # Someone flushes every rule of our table (base chains included) behind our back.
    lab.lab.run(lab.director, ["nft", "flush", "table", "inet", "hacluster"])
    assert count(lab, 3)["names"] == {"error:ConnectionRefusedError": 3}
    fresh = NftablesBackend(netns=lab.director.name)
    assert await fresh.dump() != desired
    await converge(fresh, desired)
    assert fresh.full_rewrites == 1
    names = count(lab, 20)["names"]
    assert names.keys() == {"s1", "s2"} and sum(names.values()) == 20
    # At stop (when configured to clean up) the whole table goes.
    await fresh.remove()
    tables = lab.lab.run(lab.director, ["nft", "list", "tables"]).stdout
    assert "hacluster" not in tables
    assert await fresh.dump() == Table()
