"""Benchmark: reconcile 1,000 services x 10 destinations, from empty and after a 1% weight change.

Prints, per backend, the time to compute the operations (reconcile), to apply them, and
how many operations were issued. The goal: a 1% change costs 1% of the operations and
nothing that did not change is rewritten.

    .venv/bin/python bench/ipvs_reconcile.py                     # memory + nftables (root)
    .venv/bin/python bench/ipvs_reconcile.py --backend netlink   # the kernel's IPVS
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import random
import subprocess
import time
from collections import Counter

from hacluster.ipvs.backend import Backend, Op
from hacluster.ipvs.memory import MemoryBackend, op_name
from hacluster.ipvs.model import Destination, Protocol, Service, Table
from hacluster.ipvs.reconcile import reconcile

VIP_BASE = ipaddress.IPv4Address("10.100.0.0")
REAL_BASE = ipaddress.IPv4Address("10.200.0.0")


def build(services: int, dests: int, seed: int = 1) -> Table:
    rng = random.Random(seed)
    pairs = []
    for i in range(services):
        vip = ipaddress.IPv4Address(int(VIP_BASE) + i)
        svc = Service(Protocol.TCP, vip, 80, scheduler="wrr")
        pairs.append(
            (
                svc,
                [
                    Destination(
                        ipaddress.IPv4Address(int(REAL_BASE) + i * 16 + j),
                        8080,
                        rng.randint(1, 10),
                    )
                    for j in range(dests)
                ],
            )
        )
    return Table.of(pairs)


def change_weights(table: Table, fraction: float, seed: int = 2) -> Table:
    rng = random.Random(seed)
    all_dests = [(e.service, d) for e in table for d in e.destinations.values()]
    chosen = {(s.key, d.key) for s, d in rng.sample(all_dests, int(len(all_dests) * fraction))}
    pairs = []
    for entry in table:
        dests = []
        for dest in entry.destinations.values():
            if (entry.service.key, dest.key) in chosen:
                dest = Destination(dest.address, dest.port, dest.weight % 10 + 11)
            dests.append(dest)
        pairs.append((entry.service, dests))
    return Table.of(pairs)


def kinds(ops: list[Op]) -> str:
    counts = Counter(op_name(op) for op in ops)
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


async def run(backend: Backend, desired: Table, changed: Table) -> None:
    print(f"--- {backend.name}")
    for label, target in (("from empty", desired), ("1% of weights changed", changed)):
        t0 = time.perf_counter()
        actual = await backend.dump()
        t1 = time.perf_counter()
        ops = reconcile(target, actual, managed=target.entries.keys())
        t2 = time.perf_counter()
        result = await backend.apply(ops)
        t3 = time.perf_counter()
        assert result.ok, result.failed[:3]
        print(
            f"{label:>24}: dump {1e3 * (t1 - t0):8.1f} ms  reconcile {1e3 * (t2 - t1):7.1f} ms"
            f"  apply {1e3 * (t3 - t2):8.1f} ms  ops {len(ops):6d} ({kinds(ops)})"
        )
    t0 = time.perf_counter()
    final = await backend.dump()
    t1 = time.perf_counter()
    mine = Table({k: e for k, e in final.entries.items() if k in changed.entries})
    assert mine == changed, "backend does not hold the desired table"
    print(f"{'read back':>24}: dump {1e3 * (t1 - t0):8.1f} ms, equal to desired")
    names = ("transactions", "full_rewrites")
    extra = {k: getattr(backend, k) for k in names if hasattr(backend, k)}
    if extra:
        print(f"{'':>24}  {extra}")


async def bench_nftables(desired: Table, changed: Table) -> None:
    from hacluster.ipvs.nftables import NftablesBackend, full_script

    ns = f"hcn-bench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        backend = NftablesBackend(netns=ns)
        await run(backend, desired, changed)
        script, _state = full_script(changed)
        t0 = time.perf_counter()
        await backend.transact(script)
        t1 = time.perf_counter()
        print(
            f"{'whole-table rewrite':>24}: {1e3 * (t1 - t0):8.1f} ms "
            f"({len(script.splitlines())} nft commands, one transaction)"
        )
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--dests", type=int, default=10)
    parser.add_argument(
        "--backend", choices=["all", "memory", "nftables", "netlink"], default="all"
    )
    args = parser.parse_args()
    desired = build(args.services, args.dests)
    changed = change_weights(desired, 0.01)
    print(
        f"{len(desired)} services x {args.dests} destinations = "
        f"{desired.destination_count()} destinations; 1% = "
        f"{desired.destination_count() // 100} weights changed"
    )
    if args.backend in ("all", "memory"):
        await run(MemoryBackend(), desired, changed)
    if args.backend in ("all", "nftables"):
        if os.geteuid() != 0:
            print("--- nftables: skipped (needs root for a network namespace)")
        else:
            await bench_nftables(desired, changed)
    if args.backend == "netlink":
        from hacluster.ipvs.dataplane import open_backend

        backend = open_backend("netlink")
        try:
            await run(backend, desired, changed)
        finally:
            # Remove only the benchmark's services; anything else in the table stays.
            ours = desired.entries.keys()
            await backend.apply(reconcile(Table(), await backend.dump(), managed=ours))
            await backend.close()


if __name__ == "__main__":
    asyncio.run(main())
