"""`hacluster ipvs list --control-socket` against a real `hacluster run` (nftables dataplane,
in a namespace of prefix hcy): the same text as reading the dataplane directly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from hacluster.lab.netns import Lab, LabProcess, Netns, sweep

PREFIX = "hcy"
HACLUSTER = str(Path(sys.executable).with_name("hacluster"))
VIP = "10.66.0.100"

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("ip") is None,
    reason="needs root, ip and nft",
)


@dataclass
class Director:
    lab: Lab
    ns: Netns
    socket: Path
    daemon: LabProcess

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([HACLUSTER, "ipvs", "list", *args], capture_output=True,
                              text=True, timeout=30)

    def from_daemon(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.cli("--control-socket", str(self.socket), *args)

    def from_dataplane(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.cli("--backend", "nftables", "--netns", self.ns.name, *args)


def _config(socket: Path) -> dict[str, Any]:
    return {
        "global_defs": {"router_id": "hcy-dir", "dataplane": "nftables",
                        "control_socket": str(socket), "reconcile_interval": 1.0},
        "virtual_servers": [
            {"ip": VIP, "port": 80, "protocol": "TCP", "lb_algo": "wrr", "lb_kind": "NAT",
             "delay_loop": 0.5,
             "real_servers": [
                 {"ip": "10.66.1.11", "port": 80, "weight": 3},
                 {"ip": "10.66.1.12", "port": 8080, "weight": 1},
                 # Nothing answers there: checked down, kept with weight 0.
                 {"ip": "127.0.0.1", "port": 9, "weight": 2, "inhibit_on_failure": True,
                  "TCP_CHECK": {"connect_timeout": 1, "retry": 0}},
             ]},
            {"ip": VIP, "port": 53, "protocol": "UDP", "lb_algo": "rr", "lb_kind": "NAT",
             "real_servers": [{"ip": "10.66.1.13", "port": 53}]},
        ],
    }


def _wait(what: str, predicate: Any, detail: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{detail()}")
        time.sleep(0.1)


@pytest.fixture
def director() -> Iterator[Director]:
    sweep(PREFIX)  # what a crashed earlier run of this prefix left behind
    with Lab(PREFIX) as lab:
        ns = lab.namespace("dir")
        sock = lab.workdir / "ctl.sock"
        config = lab.workdir / "hacluster.yaml"
        config.write_text(yaml.safe_dump(_config(sock), sort_keys=False))
        daemon = lab.start(ns, [HACLUSTER, "run", "-f", str(config)], log_name="daemon")
        d = Director(lab, ns, sock, daemon)
        try:
            yield d
        finally:
            if daemon.running():
                daemon.signal(signal.SIGTERM)
                try:
                    daemon.popen.wait(10)
                except subprocess.TimeoutExpired:
                    daemon.kill()


@pytest.mark.netns
@needs_root
def test_listing_from_the_daemon_is_the_dataplane_listing(director: Director) -> None:
    def ready() -> bool:
        if not director.daemon.running():
            raise AssertionError(f"daemon exited:\n{director.daemon.output()}")
        res = director.from_daemon("--json")
        if res.returncode != 0:
            return False
        # Reconciled, and the failing check has set its real server to weight 0.
        weights = {(d["address"], d["port"]): d["weight"]
                   for s in json.loads(res.stdout)["services"] for d in s["destinations"]}
        return weights.get(("127.0.0.1", 9)) == 0

    started = time.monotonic()
    _wait("the daemon's table", ready, director.daemon.output)
    print(f"daemon up, reconciled and checked in {time.monotonic() - started:.1f} s")

    for layout in ([], ["--stats", "--exact"], ["--rate"]):
        via_daemon = director.from_daemon(*layout)
        direct = director.from_dataplane(*layout)
        assert via_daemon.returncode == 0 and direct.returncode == 0, (
            via_daemon.stderr + direct.stderr
        )
        assert via_daemon.stderr == ""
        assert via_daemon.stdout == direct.stdout, layout

    lines = director.from_daemon().stdout.splitlines()
    assert lines[3:] == [
        f"TCP  {VIP}:80 wrr",
        # nftables keeps no per-destination connection counts: "-", not zeros.
        "  -> 10.66.1.11:80                Masq    3      -          -",
        "  -> 10.66.1.12:8080              Masq    1      -          -",
        "  -> 127.0.0.1:9                  Masq    0      -          -",
        f"UDP  {VIP}:53 rr",
        "  -> 10.66.1.13:53                Masq    1      -          -",
    ]
    # --stats: the connections per service are all nftables counts.
    stats = director.from_daemon("--stats").stdout
    print(stats)
    lines = stats.splitlines()
    assert lines[3].split() == ["TCP", f"{VIP}:80", "0", "-", "-", "-", "-"]
    assert lines[4].split() == ["->", "10.66.1.11:80", "-", "-", "-", "-", "-"]
    # Plain `ipvs list -f FILE` on an nftables director asks the running daemon.
    plain = director.cli("-f", str(director.lab.workdir / "hacluster.yaml"))
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == director.from_daemon().stdout

    via_daemon = director.from_daemon("--json")
    direct = director.from_dataplane("--json")
    assert via_daemon.returncode == 0, via_daemon.stderr
    data, expected = json.loads(via_daemon.stdout), json.loads(direct.stdout)
    assert data.pop("control_socket") == str(director.socket)
    assert expected.pop("backend") == f"nftables@{director.ns.name}"
    assert data == expected
    assert [d["weight"] for d in data["services"][0]["destinations"]] == [3, 1, 0]

    # --netns of a namespace that does not exist: a clear error, nothing created.
    missing = f"{PREFIX}-no-such-ns"
    res = director.cli("--netns", missing)
    assert (res.returncode, res.stderr) == (
        1, f"hacluster ipvs list: no network namespace {missing!r} (see `ip netns list`)\n")
    assert not Path(f"/run/netns/{missing}").exists()

    # The daemon stops: the same command says so in one line and exits 1.
    director.daemon.signal(signal.SIGTERM)
    assert director.daemon.popen.wait(15) == 0, director.daemon.output()
    gone = director.from_daemon()
    assert gone.returncode == 1 and gone.stdout == ""
    assert gone.stderr == (
        f"hacluster ipvs list: no daemon answers on {director.socket} "
        "(is `hacluster run` running?)\n"
    )
