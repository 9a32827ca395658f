"""`hacluster run` reloaded as the systemd unit reloads it (prefix hcrw): a good file, then a
bad one, with NOTIFY_SOCKET and WATCHDOG_USEC set. The same processes carry on (no role
restarted), systemd hears RELOADING=1 then READY=1 for each reload and WATCHDOG=1 after
them, and neither the supervisor nor the VRRP role imports the load balancer to hand a
reload on (nor the VRRP role the loader): those imports (checks, policy, dataplane, YAML)
held their event loops for seconds in the QEMU guest, the VRRP heartbeat went unanswered,
the WATCHDOG pings stopped and systemd restarted the service in the middle of a reload.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hacluster.lab.netns import Lab, LabProcess, Netns
from tests.integration.daemon_rig import wait_for
from tests.integration.proctree import children, comm

HACLUSTER = str(Path(sys.executable).with_name("hacluster"))

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root"),
]


def config(priority: int) -> str:
    return yaml.safe_dump({
        "global_defs": {"dataplane": "none"},
        "vrrp_instances": {"VI_1": {
            "interface": "d0", "virtual_router_id": 73, "priority": priority,
            "state": "MASTER", "advert_int": 0.1, "version": 3,
            "virtual_ipaddress": ["10.93.0.100/32"]}},
        "virtual_servers": [{
            "ip": "10.93.0.100", "port": 80, "lb_algo": "rr",
            "real_servers": [{"ip": "10.93.0.11", "port": 80}]}],
    })


class Notifications:
    """systemd's side of NOTIFY_SOCKET: every datagram, with when it came."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.seen: list[tuple[float, str]] = []

    def drain(self) -> list[tuple[float, str]]:
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return self.seen
            self.seen.append((time.monotonic(), data.decode()))

    def fields(self) -> list[str]:
        return [line.partition("=")[0] + "=" + line.partition("=")[2]
                for _, text in self.drain() for line in text.splitlines()
                if line.startswith(("READY=", "RELOADING=", "WATCHDOG="))]


@pytest.fixture
def lab() -> Iterator[tuple[Lab, Netns]]:
    with Lab("hcrw") as lab:
        ns, peer = lab.namespace("dir"), lab.namespace("peer")
        lab.veth(ns, "d0", peer, "p0")
        lab.add_address(ns, "d0", "10.93.0.1/24")
        lab.add_address(peer, "p0", "10.93.0.2/24")
        yield lab, ns


def imported(text: str) -> set[str]:
    """The modules named by -X importtime lines in `text`."""
    return {m.group(1) for m in re.finditer(r"^import time:.*\|\s*(\S+)\s*$", text, re.M)}


def test_a_good_then_a_bad_reload_keep_the_processes_and_the_watchdog(
        lab: tuple[Lab, Netns]) -> None:
    the_lab, ns = lab
    conf = the_lab.workdir / "c.yaml"
    conf.write_text(config(150))
    notify = Notifications(the_lab.workdir / "notify.sock")
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "2000000",
           "PYTHONPROFILEIMPORTTIME": "1"}
    proc: LabProcess = the_lab.start(ns, [HACLUSTER, "run", "-f", str(conf),
                                          "--control-socket",
                                          str(the_lab.workdir / "ctl.sock")], env=env)
    try:
        wait_for("READY=1", lambda: "READY=1" in notify.fields(), 30, proc.output)
        wait_for("the VIP", lambda: the_lab.has_address(ns, "d0", "10.93.0.100"), 20,
                 proc.output)
        roles = {comm(p): p for p in children(proc.pid)}
        assert {"hc-vrrp", "hc-balancer"} <= set(roles), roles
        before = len(proc.output())

        conf.write_text(config(140))
        proc.signal(signal.SIGHUP)
        wait_for("the good reload", lambda: "reload done in" in proc.output(), 30,
                 proc.output)
        conf.write_text(config(300))
        proc.signal(signal.SIGHUP)
        wait_for("the refusal", lambda: "reload refused" in proc.output(), 30, proc.output)
        reloaded_at = time.monotonic()
        wait_for("WATCHDOG=1 after the reloads",
                 lambda: [t for t, text in notify.drain()
                          if t > reloaded_at and "WATCHDOG=1" in text], 10, proc.output)

        out = proc.output()
        after = out[before:]
        assert "priority: must be 1..255, got 300" in after
        assert "exited after" not in after and "starting it again" not in after, after
        assert proc.running()
        assert {comm(p): p for p in children(proc.pid)} == roles
        assert the_lab.has_address(ns, "d0", "10.93.0.100")
        sequence = [f for f in notify.fields() if not f.startswith("WATCHDOG=")]
        assert sequence == ["READY=1", "RELOADING=1", "READY=1", "RELOADING=1", "READY=1"]
        # Only the balancer role runs the load balancer: the processes that hand the
        # reload on import none of it (the balancer role has all of it from its start);
        # the VRRP role is handed its file, so neither the loader, YAML nor the preflight
        # (the supervisor has those from its start).
        late = imported(after)
        heavy = ("hacluster.loadbalancer", "healthchecks", "pyroute2", "hacluster.ipvs",
                 "yaml", "hacluster.config.loader", "hacluster.preflight")
        assert {m for m in late if m.startswith(heavy)} == set(), late
    finally:
        proc.kill()
        notify.sock.close()
