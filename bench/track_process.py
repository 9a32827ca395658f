"""vrrp_track_process: what following the kernel's process events costs; prints figures.

Starts a ProcessMonitor (proc connector; needs root in the initial network namespace)
tracking one name, then runs N short processes (/bin/true) and one renamed process,
and prints the events handled, the wall time, the CPU time this process spent, and
how long the tracked state took to follow the rename. Nothing is asserted. Run:

    .venv/bin/python bench/track_process.py [-n 500]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

from hacluster.config.model import Command, VrrpTrackProcess
from hacluster.proc_events import ProcessMonitor


async def main(n: int) -> None:
    name = f"hcbench{os.getpid() % 10000}"
    spec = VrrpTrackProcess(name="p", process=Command((name,), name))
    seen: list[tuple[float, bool]] = []
    monitor = ProcessMonitor({"p": spec}, lambda _n, up: seen.append((time.monotonic(), up)))
    t0 = time.monotonic()
    await monitor.start()
    print(f"mode {monitor.mode}; start (subscribe + /proc scan): "
          f"{(time.monotonic() - t0) * 1000:.1f} ms")
    cpu0, wall0, events0 = time.process_time(), time.monotonic(), monitor.events
    for _ in range(n):
        proc = await asyncio.create_subprocess_exec("/bin/true")
        await proc.wait()
    await asyncio.sleep(0.2)
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    events = monitor.events - events0
    print(f"{n} processes run: {events} events handled in {wall:.2f} s wall, "
          f"{cpu:.2f} s CPU of this process (spawning included)")
    # CLOCK_MONOTONIC is one clock for every process: the child says when it renamed
    child = subprocess.Popen([sys.executable, "-c", "import ctypes, sys, time; "
                              "ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0); "
                              "print(time.monotonic(), flush=True); time.sleep(1)", name],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    renamed_at = float(await asyncio.to_thread(child.stdout.readline))
    while not any(up for _, up in seen):
        await asyncio.sleep(0.0005)
    print(f"rename seen {(seen[-1][0] - renamed_at) * 1000:.2f} ms after the prctl")
    child.wait()
    await monitor.stop()
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=500)
    asyncio.run(main(parser.parse_args().n))
