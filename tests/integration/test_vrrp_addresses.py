"""VIPs over real rtnetlink (synchronous acks, idempotency, errors) and announcement sockets,
in a namespace of its own."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hacluster.lab.netns import Lab, Netns
from tests.integration.looped_netns import looped_namespace

pytestmark = pytest.mark.netns

PREFIX = "hcs"
ROOT = Path(__file__).resolve().parents[2]

# Runs inside the namespace: Addresses works on the netns of the process that opens it.
PROBE = r'''
import asyncio, ipaddress, json, subprocess
from vrrp.addresses import Addresses, Vip

def v(text, dev="eth0"):
    return Vip(ipaddress.ip_interface(text), dev)

def show(dev="eth0"):
    out = subprocess.run(["ip", "-o", "addr", "show", "dev", dev],
                         capture_output=True, text=True, check=True).stdout
    return sorted(line.split()[3] for line in out.splitlines())

def names(vips):
    return [str(x) for x in vips]

async def main():
    out = {}
    a = Addresses()
    v4, v6 = v("10.77.0.100/24"), v("fd00:77::100/64")
    early = a.begin("add", [v4])  # before the socket is open: queued, then sent
    out["early_done_at_once"] = early.done
    await early.wait()
    out["early_changed"] = names(early.changed)
    await a.ready()
    op = a.begin("add", [v4, v6])
    out["add_done_at_once"] = op.done
    out["add"] = [names(op.changed), names(op.unchanged), op.errors]
    out["after_add"] = show()
    bad = a.begin("add", [v("10.77.0.102/24", "nosuch0"), v("fd00:78::1/64", "eth1")])
    await bad.wait()
    out["bad"] = [why for _, why in bad.errors]
    rm = a.begin("del", [v4, v6, v("10.77.0.103/24", "nosuch0")])
    out["del"] = [rm.done, names(rm.changed), names(rm.unchanged), rm.errors]
    out["after_del"] = show()
    many = [v(f"10.78.{i // 250}.{i % 250 + 1}/32") for i in range(600)]
    big = a.begin("add", many)
    await big.wait()
    out["many"] = [len(big.changed), len(show())]
    await a.remove(many)
    subprocess.run(["ip", "addr", "add", "10.77.0.101/24", "dev", "eth0"], check=True)
    out["leftovers"] = names(await a.remove_leftovers([v("10.77.0.101/24"), v4]))
    out["after_leftovers"] = show()
    scoped = [Vip(ipaddress.ip_interface("10.77.9.120/24"), "eth0", 253, "eth0:vip"),
              Vip(ipaddress.ip_interface("10.77.8.121/32"), "eth0", 254)]
    out["scoped_errors"] = [why for _, why in await a.add(scoped)]
    # the kernel wants a secondary address in the scope of its subnet's primary
    clash = Vip(ipaddress.ip_interface("10.77.0.122/24"), "eth0", 253)
    out["clash"] = [why for _, why in await a.add([clash])]
    out["scoped"] = subprocess.run(["ip", "-o", "-4", "addr", "show", "dev", "eth0"],
                                   capture_output=True, text=True, check=True).stdout
    await a.remove(scoped)
    await a.close()
    closed = a.begin("add", [v4])
    out["closed"] = [closed.done, [why for _, why in closed.errors]]
    print(json.dumps(out))

asyncio.run(main())
'''


@pytest.fixture
def netns() -> Iterator[tuple[Lab, Netns]]:
    with looped_namespace(PREFIX, "addr", "10.77.0.1/24") as (lab, ns):
        lab.run(ns, ["sysctl", "-q", "-w", "net.ipv6.conf.eth1.disable_ipv6=1"])
        yield lab, ns


def test_addresses_change_at_once_idempotently_and_report_errors(
    netns: tuple[Lab, Netns],
) -> None:
    lab, ns = netns
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = lab.run(ns, [sys.executable, "-c", PROBE], env=env, timeout=60)
    out = json.loads(res.stdout)
    assert out["early_done_at_once"] is False
    assert out["early_changed"] == ["10.77.0.100/24 dev eth0"]
    # Acked before begin() returned: the kernel applies a request while it is sent.
    assert out["add_done_at_once"] is True
    assert out["add"] == [["fd00:77::100/64 dev eth0"], ["10.77.0.100/24 dev eth0"], []]
    assert "10.77.0.100/24" in out["after_add"] and "fd00:77::100/64" in out["after_add"]
    assert out["bad"] == [
        "interface 'nosuch0' not found",
        # with the kernel's own explanation (extended ack)
        "add fd00:78::1/64 dev eth1: Permission denied (ipv6: IPv6 is disabled on this device)",
    ]
    # Removing: present ones changed, a missing interface is nothing to remove.
    assert out["del"] == [
        True, ["10.77.0.100/24 dev eth0", "fd00:77::100/64 dev eth0"],
        ["10.77.0.103/24 dev nosuch0"], [],
    ]
    assert "10.77.0.100/24" not in out["after_del"]
    assert "fd00:77::100/64" not in out["after_del"]
    assert out["many"] == [600, 600 + len(out["after_del"])]  # more than one send batch
    assert out["leftovers"] == ["10.77.0.101/24 dev eth0"]  # only what was there
    assert "10.77.0.101/24" not in out["after_leftovers"]
    assert out["closed"] == [True, ["address manager is closed"]]
    # scope and label as `ip addr add ... scope link label eth0:vip` would set them
    assert out["scoped_errors"] == []
    lines = out["scoped"].splitlines()
    scoped = {line.split()[3]: line.split("\\")[0].split()[4:] for line in lines}
    assert scoped["10.77.9.120/24"] == ["scope", "link", "eth0:vip"]
    assert scoped["10.77.8.121/32"] == ["scope", "host", "eth0"]
    assert scoped["10.77.0.1/24"][-3:] == ["scope", "global", "eth0"]
    assert out["clash"] == [
        "add 10.77.0.122/24 dev eth0: Invalid argument (ipv4: Invalid scope value)"
    ]


MAC_PROBE = r"""
import json, subprocess
from vrrp.announce import FrameSockets

def sh(cmd):
    subprocess.run(cmd, shell=True, check=True)

fs = FrameSockets()
out = {"first": fs.mac("eth1")}
sh("ip link set eth1 address 02:11:22:33:44:55")
out["changed"] = fs.mac("eth1")
sh("ip link del eth1; ip link add eth1 type veth peer name eth2; "
   "ip link set eth1 address 02:aa:bb:cc:dd:ee; ip link set eth1 up; ip link set eth2 up")
out["recreated"] = fs.mac("eth1")
out["sent"] = fs.send("eth1", bytes.fromhex("ffffffffffff02aabbccddee0806") + bytes(28))
sh("ip link del eth1")
try:
    fs.mac("eth1")
except OSError:
    out["gone"] = True
print(json.dumps(out))
"""


def test_announcement_sockets_follow_the_interface_hardware_address(
    netns: tuple[Lab, Netns],
) -> None:
    lab, ns = netns
    before = lab.mac(ns, "eth1")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = json.loads(lab.run(ns, [sys.executable, "-c", MAC_PROBE], env=env).stdout)
    assert out == {"first": before, "changed": "02:11:22:33:44:55",
                   "recreated": "02:aa:bb:cc:dd:ee", "sent": True, "gone": True}
