"""LoadBalancer end to end with the real nftables dataplane in a network-namespace lab.

client (10.97.1.2) -> director (VIP 10.97.0.100:8080, nftables DNAT) -> s1..s3 (10.97.1N.2)

Each real server is Python's own `http.server` in its namespace; the director runs the
LoadBalancer (this file run as a program) with HTTP_GET checks. A real server is
killed: its DNAT entry disappears within delay_loop plus the check's timeouts, the
client's requests stop reaching it; it comes back and is re-added; SIGTERM with
`lvs_flush_on_stop` leaves no service behind.

Run as a program (inside the director's namespace): `python THIS director CONFIG`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hacluster.lab.netns import Lab, LabProcess, Netns, sweep

HERE = Path(__file__).resolve()
PREFIX = "hcl"
VIP = "10.97.0.100"
PORT = 8080
DELAY_LOOP = 0.5
CONNECT_TIMEOUT = 1.0
RETRY = 1
DELAY_BEFORE_RETRY = 0.2


# --------------------------------------------------------------------------- the director


async def _director(config_path: str) -> None:
    from hacluster.config.loader import load_config
    from hacluster.ipvs.nftables import NftablesBackend
    from hacluster.loadbalancer import LoadBalancer
    from hacluster.notify import Notifier

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = load_config(config_path)
    backend = NftablesBackend()
    notifier = Notifier(config)
    lb = LoadBalancer(config, backend, notifier)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await lb.start()
    print("ready", flush=True)
    await stop.wait()
    await lb.stop()
    await notifier.close()
    await backend.close()
    print("stopped", flush=True)


# --------------------------------------------------------------------------- the lab

pytestmark = pytest.mark.netns


@pytest.fixture(scope="module", autouse=True)
def _sweep_leftovers() -> None:
    if os.geteuid() == 0 and shutil.which("ip"):
        sweep(PREFIX)


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab(PREFIX) as the_lab:
        yield the_lab


def _serve(lab: Lab, ns: Netns, name: str, address: str) -> LabProcess:
    root = lab.workdir / f"www-{name}"
    root.mkdir(exist_ok=True)
    (root / "health").write_text("ok\n")
    (root / "name").write_text(f"{name}\n")
    return lab.start(ns, [sys.executable, "-m", "http.server", str(PORT), "--bind", address,
                          "--directory", str(root)], log_name=f"http-{name}")


CLIENT = f"""
import collections, json, sys, urllib.request
names = collections.Counter()
for _ in range(int(sys.argv[1])):
    try:
        with urllib.request.urlopen("http://{VIP}:{PORT}/name", timeout=3) as r:
            names[r.read().decode().strip()] += 1
    except OSError as exc:
        names["error:" + type(exc).__name__] += 1
print(json.dumps(names))
"""


def _requests(lab: Lab, client: Netns, n: int) -> dict[str, int]:
    out = lab.run(client, [sys.executable, "-c", CLIENT, str(n)], timeout=60).stdout
    result: dict[str, int] = json.loads(out)
    return result


def _dests(lab: Lab, director: Netns) -> dict[str, int]:
    """The director's nftables table, read from outside with the backend's own parser."""
    from hacluster.ipvs.nftables import NftablesBackend

    table = asyncio.run(NftablesBackend(netns=director.name).dump())
    return {str(d.key): d.weight for entry in table for d in entry.destinations.values()}


def _wait(pred: object, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not pred():  # type: ignore[operator]
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout:.1f}s")
        time.sleep(0.05)
    return time.monotonic() - start


def test_killed_real_server_leaves_the_nftables_table(lab: Lab) -> None:
    if shutil.which("nft") is None:
        pytest.fail("nft is not installed (deploy/install-deps.sh installs nftables)")
    client = lab.namespace("client")
    director = lab.namespace("lb")
    lab.veth(client, "eth0", director, "cl0")
    lab.add_address(client, "eth0", "10.97.1.2/24")
    lab.add_address(director, "cl0", "10.97.1.1/24")
    lab.add_address(director, "cl0", f"{VIP}/32")
    lab.run(client, ["ip", "route", "add", "default", "via", "10.97.1.1"])
    lab.run(director, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
    servers: dict[str, tuple[Netns, str]] = {}
    procs: dict[str, LabProcess] = {}
    for i in (1, 2, 3):
        name = f"s{i}"
        ns = lab.namespace(name)
        lab.veth(director, f"rs{i}", ns, "eth0")
        lab.add_address(director, f"rs{i}", f"10.97.1{i}.1/24")
        lab.add_address(ns, "eth0", f"10.97.1{i}.2/24")
        lab.run(ns, ["ip", "route", "add", "default", "via", f"10.97.1{i}.1"])
        servers[name] = (ns, f"10.97.1{i}.2")
        procs[name] = _serve(lab, ns, name, f"10.97.1{i}.2")

    events = lab.workdir / "events.jsonl"
    check = {"url": [{"path": "/health", "status_code": 200}], "connect_timeout": CONNECT_TIMEOUT,
             "retry": RETRY, "delay_before_retry": DELAY_BEFORE_RETRY}
    config = {
        "global_defs": {"dataplane": "nftables", "event_log": str(events),
                        "lvs_flush_on_stop": True, "reconcile_interval": 2},
        "virtual_servers": [{
            "ip": VIP, "port": PORT, "protocol": "TCP", "lb_algo": "wrr", "lb_kind": "NAT",
            "delay_loop": DELAY_LOOP,
            "real_servers": [
                {"ip": address, "port": PORT, "weight": 1, "HTTP_GET": check}
                for _, address in servers.values()
            ],
        }],
    }
    config_path = lab.workdir / "director.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    proc = lab.start(director, [sys.executable, str(HERE), "director", str(config_path)],
                     log_name="director")
    assert proc.log_path is not None
    log_path = proc.log_path
    _wait(lambda: "ready" in log_path.read_text() or not proc.running(), 20, "director start")
    assert proc.running(), proc.output()

    all3 = {f"{address}:{PORT}": 1 for _, address in servers.values()}
    assert _dests(lab, director) == all3
    # Servers answer (http.server may take a moment to bind); traffic reaches all three.
    _wait(lambda: set(_requests(lab, client, 3)) <= {"s1", "s2", "s3"}, 10, "servers up")
    seen = _requests(lab, client, 30)
    assert set(seen) == {"s1", "s2", "s3"}, seen

    # Kill s2: its DNAT entry goes within delay_loop + the check's timeouts.
    s2 = f"{servers['s2'][1]}:{PORT}"
    procs["s2"].kill()
    bound = DELAY_LOOP + (RETRY + 1) * CONNECT_TIMEOUT + RETRY * DELAY_BEFORE_RETRY
    # Generous bounds: the figure is printed; a loaded machine must not fail the test.
    took = _wait(lambda: s2 not in _dests(lab, director), 3 * bound + 5.0, "s2 removed")
    print(f"\nkilled real server left the nftables table after {took * 1000:.0f} ms "
          f"(bound {bound:.1f} s)")
    seen = _requests(lab, client, 30)
    assert set(seen) == {"s1", "s3"}, seen  # no errors, nothing sent to s2

    # It comes back: re-added.
    procs["s2"] = _serve(lab, servers["s2"][0], "s2", servers["s2"][1])
    took = _wait(lambda: _dests(lab, director) == all3, 3 * bound + 15.0, "s2 re-added")
    print(f"restarted real server back in the table after {took * 1000:.0f} ms")

    # SIGTERM: lvs_flush_on_stop removes our services.
    proc.signal(signal.SIGTERM)
    _wait(lambda: not proc.running(), 10, "director stop")
    assert proc.popen.returncode == 0, proc.output()
    assert _dests(lab, director) == {}
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert [(e["kind"], e["name"].split()[0], e["state"]) for e in lines
            if e["kind"] == "real_server"] == [
        ("real_server", s2, "DOWN"), ("real_server", s2, "UP")]


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["director", config_file]:
            asyncio.run(_director(config_file))
        case _:
            raise SystemExit(__doc__)
