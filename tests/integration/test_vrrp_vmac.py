"""use_vmac: two `hacluster run` in namespaces put the VIP on a macvlan with the virtual
MAC 00:00:5e:00:01:VRID; a client's neighbour entry for the VIP keeps that MAC across a
failover, and the sysctls keepalived sets are set (and put back at stop)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from hacluster.lab.netns import Netns
from tests.integration.vrrp_director import (
    VIP4,
    VIP6,
    Director,
    PairLab,
    config_yaml,
    instance_yaml,
)

pytestmark = pytest.mark.netns

VMAC = "00:00:5e:00:01:33"  # VRID 51


def ip(ns: Netns, *args: str) -> str:
    return subprocess.run(["ip", "-n", ns.name, *args], capture_output=True, text=True,
                          check=True).stdout


def sysctl(ns: Netns, key: str) -> str:
    return subprocess.run(["ip", "netns", "exec", ns.name, "sysctl", "-n", key],
                          capture_output=True, text=True, check=True).stdout.strip()


# A UDP datagram to a closed port of the VIP: the client resolves the VIP's MAC, and the
# director holding it answers with ICMP port unreachable (ECONNREFUSED on the socket).
PROBE = """
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect((sys.argv[1], 9))
s.send(b"x")
try:
    s.recv(16)
except ConnectionRefusedError:
    print("answered")
except OSError as exc:
    print("no answer", exc)
"""


def probe(pair: PairLab, vip: str = VIP4) -> bool:
    out = subprocess.run(["ip", "netns", "exec", pair.obs.name, sys.executable, "-c", PROBE,
                          vip], capture_output=True, text=True)
    return "answered" in out.stdout


def client_mac(pair: PairLab, vip: str = VIP4) -> str | None:
    """Reach the VIP from the client once, then read its neighbour entry's MAC."""
    probe(pair, vip)
    m = re.search(r"lladdr (\S+)", ip(pair.obs, "neigh", "show", vip))
    return m.group(1) if m else None


def wait(check: Callable[[], bool], d: Director, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{d.name}: {what} not so after {timeout}s\n{d.output()}")
        time.sleep(0.1)


def test_the_client_keeps_the_virtual_mac_across_a_failover(pair: PairLab) -> None:
    a = pair.director("a", config_yaml(instance_yaml(priority=150, extra="use_vmac: true")))
    b = pair.director("b", config_yaml(instance_yaml(priority=100, extra="use_vmac: true")))
    a.start()
    b.start()
    a.wait_state("MASTER")
    b.wait_state("BACKUP")
    for ns in (pair.a_ns, pair.b_ns):
        link = ip(ns, "-d", "link", "show", "vrrp.51")
        assert VMAC in link and "macvlan mode private" in link, link
        assert sysctl(ns, "net.ipv4.conf.vrrp/51.arp_ignore") == "1"
        assert sysctl(ns, "net.ipv4.conf.vrrp/51.accept_local") == "1"
        assert sysctl(ns, "net.ipv4.conf.vrrp/51.rp_filter") == "0"
        assert sysctl(ns, "net.ipv4.conf.eth0.arp_ignore") == "1"
        assert sysctl(ns, "net.ipv4.conf.eth0.arp_filter") == "1"
        assert "inet6" not in ip(ns, "addr", "show", "dev", "vrrp.51")
    wait(lambda: VIP4 in ip(pair.a_ns, "addr", "show", "dev", "vrrp.51"), a, "VIP on vrrp.51")
    assert VIP4 not in ip(pair.b_ns, "addr", "show")
    assert client_mac(pair) == VMAC

    a.proc.kill()  # failover
    b.wait_state("MASTER", timeout=5)
    wait(lambda: VIP4 in ip(pair.b_ns, "addr", "show", "dev", "vrrp.51"), b, "VIP moved")
    assert client_mac(pair) == VMAC  # same entry, same MAC: nothing to relearn
    assert probe(pair)  # and b answers behind it

    b.proc.signal(signal.SIGTERM)  # graceful stop: the macvlan goes, sysctls come back
    wait(lambda: not b.proc.running(), b, "b stopped")
    assert "vrrp.51" not in ip(pair.b_ns, "link")
    assert sysctl(pair.b_ns, "net.ipv4.conf.eth0.arp_ignore") == "0"
    assert sysctl(pair.b_ns, "net.ipv4.conf.eth0.arp_filter") == "0"


def test_ipv6_the_client_keeps_the_virtual_mac_across_a_failover(pair: PairLab) -> None:
    vmac6 = "00:00:5e:00:02:33"
    extra = "use_vmac: true"
    a = pair.director("a", config_yaml(instance_yaml(priority=150, vips=(f"{VIP6}/64",),
                                                     extra=extra)))
    b = pair.director("b", config_yaml(instance_yaml(priority=100, vips=(f"{VIP6}/64",),
                                                     extra=extra)))
    a.start()
    b.start()
    a.wait_state("MASTER")
    b.wait_state("BACKUP")  # the adverts leave vrrp6.51 from the base's link-local
    assert vmac6 in ip(pair.a_ns, "link", "show", "vrrp6.51")
    wait(lambda: VIP6 in ip(pair.a_ns, "addr", "show", "dev", "vrrp6.51"), a, "VIP on vmac")
    assert client_mac(pair, VIP6) == vmac6
    a.proc.kill()
    b.wait_state("MASTER", timeout=5)
    wait(lambda: VIP6 in ip(pair.b_ns, "addr", "show", "dev", "vrrp6.51"), b, "VIP moved")
    assert client_mac(pair, VIP6) == vmac6
    assert probe(pair, VIP6)


def test_a_reload_without_use_vmac_removes_the_macvlan(pair: PairLab) -> None:
    a = pair.director("a", config_yaml(instance_yaml(priority=150, extra="use_vmac: true")))
    a.start()
    a.wait_state("MASTER")
    wait(lambda: VIP4 in ip(pair.a_ns, "addr", "show", "dev", "vrrp.51"), a, "VIP on vmac")
    a.config.write_text(config_yaml(instance_yaml(priority=150)))
    a.proc.signal(signal.SIGHUP)
    a.wait_log("vmac vrrp.51 on eth0 removed")
    wait(lambda: VIP4 in ip(pair.a_ns, "addr", "show", "dev", "eth0"), a, "VIP on eth0")
    assert "vrrp.51" not in ip(pair.a_ns, "link")
    assert sysctl(pair.a_ns, "net.ipv4.conf.eth0.arp_ignore") == "0"
    a.wait_state("MASTER")
