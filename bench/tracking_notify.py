"""Benchmark: notify delivery rate and latency, and track_interface reaction time (root).

Prints:
- notify: N events through one instance's queue and through 10 queues at once, each
  running /bin/true and the generic notify; events per second and the latency from
  queuing an event to the end of its last script (median, p95);
- track_interface: the time from starting `ip link set ... down/up` (a process spawn
  included) to the tracker's change callback, over a real veth pair in a network
  namespace created for the run.

    .venv/bin/python bench/tracking_notify.py [--events 200] [--toggles 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from hacluster.config.loader import parse_config
from hacluster.lab.netns import Lab
from hacluster.notify import Delivery, Notifier
from hacluster.tracking import TrackChange, Tracking
from vrrp.machine import State


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def bench_notify(events: int, queues: int) -> None:
    instances = "".join(
        f"  VI_{i}:\n    interface: eth0\n    virtual_router_id: {i}\n"
        f"    virtual_ipaddress: [10.0.0.{i}/24]\n"
        f"    notify_master: /bin/true\n    notify_backup: /bin/true\n    notify: /bin/true\n"
        for i in range(1, queues + 1)
    )
    done: dict[int, float] = {}
    queued: dict[int, float] = {}

    def on_result(d: Delivery) -> None:
        done[d.event.seq] = time.monotonic()

    notifier = Notifier(parse_config("vrrp_instances:\n" + instances), on_result=on_result)
    start = time.monotonic()
    for n in range(events):
        inst = f"VI_{n % queues + 1}"
        ev = notifier.vrrp_state(inst, State.MASTER if n % 2 else State.BACKUP, 100)
        queued[ev.seq] = time.monotonic()
    await notifier.drain()
    elapsed = time.monotonic() - start
    lat = [done[s] - queued[s] for s in queued]
    print(
        f"notify  {events} events over {queues:>2} queue(s): {events / elapsed:7.1f} events/s "
        f"({2 * events / elapsed:7.1f} scripts/s); queued->done median {statistics.median(lat):.3f}"
        f" s, p95 {pct(lat, 0.95):.3f} s (a burst: later events wait for earlier ones)"
    )


CHILD_ARG = "--child"


async def child(toggles: int) -> None:
    """Runs inside the namespace: toggles hctb and times the tracker's reaction on hcta."""
    cfg = parse_config(
        "vrrp_instances:\n  VI_1:\n    interface: hcta\n    virtual_router_id: 1\n"
        "    virtual_ipaddress: [10.0.0.1/24]\n    track_interface: [hcta]\n"
    )
    seen: asyncio.Queue[tuple[float, TrackChange]] = asyncio.Queue()
    tracking = Tracking(cfg, lambda c: seen.put_nowait((time.monotonic(), c)))
    await tracking.start()
    delays: list[float] = []
    try:
        for i in range(toggles):
            state = "down" if i % 2 == 0 else "up"
            issued = time.monotonic()
            proc = await asyncio.create_subprocess_exec("ip", "link", "set", "dev", "hctb", state)
            await proc.wait()
            at, _ = await asyncio.wait_for(seen.get(), 10)
            delays.append(at - issued)
    finally:
        await tracking.stop()
    ms = [d * 1000 for d in delays]
    print(
        f"track_interface: {toggles} link changes; `ip link set` started -> change callback "
        f"median {statistics.median(ms):.2f} ms, p95 {pct(ms, 0.95):.2f} ms, max {max(ms):.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--toggles", type=int, default=20)
    parser.add_argument(CHILD_ARG, action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args.toggles))
        return
    asyncio.run(bench_notify(args.events, 1))
    asyncio.run(bench_notify(args.events, 10))
    if os.geteuid() != 0:
        print("track_interface: skipped (needs root for a network namespace)")
        return
    with Lab("hct") as lab:
        ns = lab.namespace("bench")
        lab.veth(ns, "hcta", ns, "hctb")
        time.sleep(0.2)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        subprocess.run(
            ["ip", "netns", "exec", ns.name, sys.executable, __file__, CHILD_ARG,
             "--toggles", str(args.toggles)],
            check=True, env=env, timeout=120,
        )


if __name__ == "__main__":
    main()
