"""Control API benchmark: status, drain and /metrics over the unix socket; prints figures.

A controller holding a static status of V virtual servers with R real servers each
answers through a real `ApiServer` on a unix socket in a temporary directory; the
metrics registry holds the series a daemon of that size would keep. A 10 ms timer
on the server's loop shows how long a request keeps the loop (and VRRP) waiting.
Nothing is asserted. Run:

    .venv/bin/python bench/api.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from hacluster.api import (
    ApiServer,
    InstanceStatus,
    Listeners,
    RealServerStatus,
    Status,
    VirtualServerStatus,
)
from hacluster.metrics import Metrics


class StaticController:
    """Answers with a prebuilt status; actions only flip a flag."""

    def __init__(self, vs_count: int, rs_count: int) -> None:
        self.servers: list[VirtualServerStatus] = []
        for v in range(vs_count):
            reals = [
                RealServerStatus(
                    name=f"10.{v // 250}.{v % 250}.{r + 10}:80", up=True, weight=1,
                    effective_weight=1, drained=False,
                    checks=[{"checker": "HTTP_GET", "ok": True, "reason": "200 OK",
                             "age_seconds": 0.5, "duration_seconds": 0.002}],
                )
                for r in range(rs_count)
            ]
            self.servers.append(VirtualServerStatus(
                name=f"10.200.{v // 250}.{v % 250}:80/TCP", lb_algo="wrr", lb_kind="NAT",
                quorum=1, quorum_up=True, sorry_server=None, sorry_server_active=False,
                real_servers=reals,
            ))
        self.instances = [InstanceStatus(
            name=f"VI_{i}", state="MASTER", interface="eth0", virtual_router_id=i + 1,
            base_priority=150, effective_priority=150, master="10.0.0.1",
            virtual_ipaddress=[], maintenance=False, last_transition=None,
        ) for i in range(4)]

    async def status(self) -> Status:
        return Status(router_id="bench", version="0", dataplane="none", uptime_seconds=1.0,
                      config_file=None, instances=self.instances,
                      virtual_servers=self.servers)

    async def ipvs(self) -> dict[str, Any]:
        return {"services": []}

    async def drain(self, virtual_server: str, real_server: str) -> None:
        pass

    async def undrain(self, virtual_server: str, real_server: str) -> None:
        pass

    async def maintenance(self, instance: str, on: bool) -> None:
        pass

    async def reload(self) -> tuple[bool, str]:
        return True, "ok"


def fill(metrics: Metrics, ctl: StaticController) -> None:
    for inst in ctl.instances:
        metrics.vrrp_transition(inst["name"], "MASTER")
        metrics.adverts_sent(inst["name"], 1000)
    for vs in ctl.servers:
        for rs in vs["real_servers"]:
            metrics.real_server(vs["name"], rs["name"], up=True, weight=1)
            metrics.check_done("HTTP_GET", "success", 0.002)
        metrics.real_servers_up(vs["name"], len(vs["real_servers"]), len(vs["real_servers"]))


async def timed(session: aiohttp.ClientSession, method: str, path: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        async with session.request(method, f"http://h{path}") as r:
            await r.read()
            assert r.status == 200, r.status
        out.append(time.perf_counter() - t0)
    return out


def show(label: str, samples: list[float], size: int) -> str:
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return (f"  {label:<16} median {statistics.median(samples) * 1000:7.2f} ms   "
            f"p99 {p99 * 1000:7.2f} ms   {size / 1024:7.1f} KiB")


class Ticker:
    """A 10 ms periodic timer on the server's loop (as a fast VRRP instance would have):
    records how late it fires, i.e. how long the API kept the loop from running."""

    def __init__(self) -> None:
        self.late: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + 0.01
            await asyncio.sleep(0.01)
            self.late.append(loop.time() - due)

    def start(self) -> None:
        self.late.clear()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> float:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return max(self.late, default=0.0)


async def client(sock: str, method: str, path: str, n: int) -> None:
    """`--client` mode, run in its own process so that it does not compete with the
    measured loop for the GIL: prints the timings as JSON."""
    conn = aiohttp.UnixConnector(path=sock)
    async with aiohttp.ClientSession(connector=conn) as session:
        async with session.request(method, f"http://h{path}") as r:
            size = len(await r.read())
        samples = await timed(session, method, path, n)
    print(json.dumps({"size": size, "samples": samples}))


async def run_client(sock: Path, method: str, path: str, n: int) -> tuple[int, list[float]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--client", str(sock), method, path, str(n),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"client for {method} {path} failed ({proc.returncode})")
    data = json.loads(out)
    return int(data["size"]), [float(x) for x in data["samples"]]


async def one(vs_count: int, rs_count: int, n: int) -> None:
    ctl = StaticController(vs_count, rs_count)
    metrics = Metrics()
    fill(metrics, ctl)
    drain = "/v1/servers/10.200.0.0:80/10.0.0.10:80/drain"
    print(f"{vs_count} virtual servers x {rs_count} real servers "
          f"({vs_count * rs_count} real servers), {n} requests each:")
    with tempfile.TemporaryDirectory(prefix="hacluster-bench-") as tmp:
        sock = Path(tmp) / "ctl.sock"
        async with ApiServer(ctl, metrics, Listeners(control_socket=sock)):
            for label, method, path in [("GET /v1/status", "GET", "/v1/status"),
                                        ("GET /metrics", "GET", "/metrics"),
                                        ("POST .../drain", "POST", drain)]:
                ticker = Ticker()
                ticker.start()
                size, samples = await run_client(sock, method, path, n)
                stall = await ticker.stop()
                print(f"{show(label, samples, size)}   loop stall max {stall * 1000:6.1f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and requests")
    parser.add_argument("--client", nargs=4, metavar=("SOCK", "METHOD", "PATH", "N"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        sock, method, path, count = args.client
        await client(sock, method, path, int(count))
        return
    sizes = [(2, 5), (100, 10)] if args.quick else [(2, 5), (100, 10), (1000, 10)]
    n = 50 if args.quick else 200
    for vs_count, rs_count in sizes:
        await one(vs_count, rs_count, n)


if __name__ == "__main__":
    asyncio.run(main())
