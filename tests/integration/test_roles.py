"""`hacluster run` as a supervisor with a VRRP role process (namespaces, prefix hcro).

- a killed VRRP role is started again: it removes the VIP its predecessor left, becomes
  MASTER again, and the restart is logged and counted in the metrics;
- `kill -9` of the supervisor alone: the role hears of it (PR_SET_PDEATHSIG), resigns
  and releases its VIP, and no process is left;
- a frozen VRRP role (SIGSTOP) stops the systemd WATCHDOG pings; they come back with it;
- a crash of the whole group (frozen, then SIGKILLed) leaves the VIP, as a crash must;
- a file refused for its virtual servers (by the loader, or by the preflight) never runs
  in the VRRP role, which is forked before the file is read: no advert, no VIP, no
  process left.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hacluster.lab.netns import Lab, LabProcess, Netns
from tests.integration.daemon_rig import HACLUSTER, RunningDaemon, wait_for
from tests.integration.proctree import alive

VIP = "10.91.0.100"

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root"),
]


class Director(RunningDaemon):
    def __init__(self, lab: Lab, ns: Netns) -> None:
        super().__init__(lab, lab.workdir / "ctl.sock")
        self.ns = ns
        self.conf = lab.workdir / "c.yaml"
        self.conf.write_text(yaml.safe_dump({
            "global_defs": {"dataplane": "none"},
            "vrrp_instances": {"VI_1": {
                "interface": "d0", "virtual_router_id": 71, "priority": 200,
                "state": "MASTER", "advert_int": 0.1, "version": 3,
                "virtual_ipaddress": [f"{VIP}/32"]}},
        }))

    def start(self, env: dict[str, str] | None = None) -> LabProcess:
        self.proc = self.lab.start(self.ns, [HACLUSTER, "run", "-f", str(self.conf),
                                             "--control-socket", str(self.sock)], env=env)
        wait_for("MASTER", lambda: self.state() == "MASTER", 20, self.output)
        return self.proc

    def state(self) -> str | None:
        try:
            instances = self.api("/v1/status")["instances"]
        except Exception:
            return None
        return instances[0]["state"] if instances else None

    def has_vip(self) -> bool:
        return self.lab.has_address(self.ns, "d0", VIP)

    def role_pid(self) -> int:
        [pid] = self.children_named("hc-vrrp")
        return pid


@pytest.fixture
def director() -> Iterator[Director]:
    with Lab("hcro") as lab:
        ns, peer = lab.namespace("dir"), lab.namespace("peer")
        lab.veth(ns, "d0", peer, "p0")
        lab.add_address(ns, "d0", "10.91.0.1/24")
        lab.add_address(peer, "p0", "10.91.0.2/24")
        d = Director(lab, ns)
        try:
            yield d
        finally:
            if d.proc is not None:
                d.proc.kill()


def test_a_killed_vrrp_role_is_restarted_cleans_its_vip_and_rejoins(director: Director) -> None:
    director.start()
    role = director.role_pid()
    wait_for("the VIP", director.has_vip, 15)
    os.kill(role, signal.SIGKILL)
    wait_for("the restart", lambda: "the VRRP role runs again" in director.output(), 20,
             director.output)
    new = director.role_pid()
    assert new != role
    text = director.output()
    assert "the VRRP role exited" in text
    assert "removed VIPs left behind by a previous run" in text, text
    wait_for("MASTER again", lambda: director.state() == "MASTER", 10, director.output)
    assert director.has_vip()
    metrics = director.metrics()
    assert 'hacluster_role_restarts_total{role="vrrp"} 1.0' in metrics
    assert 'hacluster_vrrp_state{instance="VI_1",state="MASTER"} 1.0' in metrics
    assert director.api("/v1/status")["counters"]["role_restarts"] == {"vrrp": 1}


def test_kill_9_of_the_supervisor_leaves_no_process_and_the_role_resigns(
    director: Director,
) -> None:
    proc = director.start()
    role = director.role_pid()
    wait_for("the VIP", director.has_vip, 15)
    os.kill(proc.pid, signal.SIGKILL)  # the supervisor alone
    proc.popen.wait(5)
    wait_for("the role gone", lambda: not alive(role), 10, director.output)
    assert not director.has_vip()  # it resigned on the way out
    assert "MASTER -> INITIALIZE (shutdown)" in director.output()


def test_a_crash_of_the_whole_group_leaves_the_vip(director: Director) -> None:
    proc = director.start()
    role = director.role_pid()
    wait_for("the VIP", director.has_vip, 15)
    proc.kill()  # frozen, then SIGKILLed: nobody cleans up
    wait_for("the role gone", lambda: not alive(role), 5)
    assert director.has_vip()


def test_a_frozen_vrrp_role_stops_the_watchdog(director: Director) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = director.lab.workdir / "notify.sock"
    listener.bind(str(path))
    listener.settimeout(0.2)
    try:
        director.start(env={**os.environ, "NOTIFY_SOCKET": str(path),
                            "WATCHDOG_USEC": "1000000"})
        role = director.role_pid()

        def pings(seconds: float) -> list[float]:
            seen: list[float] = []
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                try:
                    data = listener.recv(4096)
                except TimeoutError:
                    continue
                if b"WATCHDOG=1" in data:
                    seen.append(time.monotonic())
            return seen

        assert len(pings(2.0)) >= 3  # every 0.5 s while the role answers
        os.kill(role, signal.SIGSTOP)
        try:
            pings(4.0)  # the heartbeat window runs out
            assert pings(2.0) == []
        finally:
            os.kill(role, signal.SIGCONT)
        assert len(pings(3.0)) >= 2  # back with the role
    finally:
        listener.close()


def _advert_listener(lab: Lab, ns: Netns) -> socket.socket:
    """A raw VRRP socket inside `ns` (created there, used from here)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    target = os.open(f"/run/netns/{ns.name}", os.O_RDONLY)
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        assert libc.setns(target, 0x40000000) == 0
        rx = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
    finally:
        assert libc.setns(own, 0x40000000) == 0
        os.close(target)
        os.close(own)
    rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                  socket.inet_aton("224.0.0.18") + socket.inet_aton("10.91.0.2"))
    rx.setblocking(False)
    return rx


def _processes_naming(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmdline:
                found.append(int(entry.name))
    return found


@pytest.mark.parametrize("broken", ["loader", "preflight", "check"])
def test_a_refused_file_never_runs_in_the_vrrp_role(director: Director, broken: str) -> None:
    # The whole file is checked before the VRRP role is released: a mistake in a real
    # server, even the last of thousands, and even in what only the check workers use
    # (planned after the release), keeps VRRP from ever starting.
    conf = yaml.safe_load(director.conf.read_text())
    server: dict[str, Any] = {"ip": "10.91.0.3", "port": 80, "TCP_CHECK": {"connect_timeout": 1}}
    servers = [server]
    if broken == "loader":
        server["weigth"] = 2
    elif broken == "preflight":
        server["notify_up"] = str(director.lab.workdir / "missing.sh")
    else:
        servers = [{"ip": f"10.92.{i // 250}.{i % 250 + 1}", "port": 80,
                    "TCP_CHECK": {"connect_timeout": 1}} for i in range(5000)]
        servers[-1]["TCP_CHECK"]["bindto"] = "fe80::1"  # the checker cannot bind that
    conf["virtual_servers"] = [{"ip": "10.91.0.200", "port": 80, "real_servers": servers}]
    director.conf.write_text(yaml.safe_dump(conf, default_flow_style=None, width=200))
    rx = _advert_listener(director.lab, director.lab.namespaces[1])
    try:
        proc = director.lab.start(director.ns, [HACLUSTER, "run", "-f", str(director.conf)])
        assert proc.popen.wait(20) == 1
        text = proc.output()
        if broken == "check":
            line = next(n for n, t in enumerate(director.conf.read_text().splitlines(), 1)
                        if "fe80::1" in t)
            assert text.splitlines()[0] == (
                f"{director.conf}:{line}: virtual_servers[0].real_servers[4999].TCP_CHECK."
                "bindto: fe80::1 is IPv6 but the check connects to 10.92.19.250 (IPv4)"), text
        assert f"{director.conf}:" in text and "real_servers[" in text, text
        assert "refused" in text or "unknown key" in text or "IPv6" in text, text
        time.sleep(0.3)
        with pytest.raises(BlockingIOError):  # not one advert was sent
            rx.recv(2048)
    finally:
        rx.close()
    assert not director.has_vip()
    assert "MASTER" not in text and "INITIALIZE" not in text, text
    assert _processes_naming(str(director.conf)) == []  # the forked role is gone too
