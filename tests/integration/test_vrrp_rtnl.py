"""vrrp.rtnl against the kernel, in a namespace of its own: requests, dumps and events,
and the address and link followers built on them, checked against `ip` and pyroute2."""

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

PREFIX = "hrt"
ROOT = Path(__file__).resolve().parents[2]

# Runs inside the namespace (a netlink socket works on the netns of its process).
PROBE = r'''
import asyncio, errno, json, socket, subprocess
from pyroute2 import IPRoute
from vrrp import rtnl
from vrrp.addrwatch import AddressMonitor
from hacluster.tracking import LinkMonitor

def sh(cmd):
    subprocess.run(cmd, shell=True, check=True)

def ip_addrs():
    got = json.loads(subprocess.run(["ip", "-j", "addr"], capture_output=True,
                                    check=True, text=True).stdout)
    return sorted([i["ifindex"], a["local"], a["prefixlen"], a.get("label")]
                  for i in got for a in i["addr_info"])

def ip_links():
    got = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True,
                                    check=True, text=True).stdout)
    return sorted([i["ifindex"], i["ifname"]] for i in got)

def pyroute2_dumps():
    with IPRoute() as ipr:
        addrs = sorted([m["index"], m.get("IFA_LOCAL") or m.get("IFA_ADDRESS"), m["prefixlen"]]
                       for m in ipr.get_addr())
        links = sorted([m["index"], m.get("IFLA_IFNAME"), m["flags"]] for m in ipr.get_links())
    return addrs, links

async def main():
    out = {}
    loop = asyncio.get_running_loop()
    events, lost = [], []
    sock = rtnl.EventSocket(rtnl.RTMGRP_IPV4_IFADDR | rtnl.RTMGRP_IPV6_IFADDR
                            | rtnl.RTMGRP_LINK, events.append, lambda: lost.append(1))
    sock.open(loop)
    addr_events, link_changes = [], []
    monitor = AddressMonitor(addr_events.append, lambda: None)
    await monitor.start()
    links = LinkMonitor(lambda name, up: link_changes.append([name, up]))
    await links.start()
    out["links_at_start"] = {k: v for k, v in links.states.items() if k.startswith("eth")}
    link_changes.clear()  # the starting picture was reported too
    eth0 = socket.if_nametoindex("eth0")
    adds = [rtnl.encode_address("add", "10.66.0.100/24", eth0, label="eth0:v", seq=1),
            rtnl.encode_address("add", "fd00:66::100/64", eth0, seq=2),
            rtnl.encode_address("add", "10.66.0.100/24", eth0, seq=3)]  # again: EEXIST
    codes = rtnl.request(adds)
    out["add"] = [codes[1], codes[2], codes[3] == errno.EEXIST]
    out["present"] = [await monitor.present("eth0", __import__("ipaddress").ip_address(a))
                      for a in ("10.66.0.100", "fd00:66::100", "10.66.0.200")]
    ours = sorted([m.ifindex, m.ip, m.prefixlen, m.label if m.family == socket.AF_INET else None]
                  for m in rtnl.dump(rtnl.RTM_GETADDR))
    theirs = ip_addrs()
    out["dump_equals_ip"] = ours == theirs
    pyr, pyr_links = await asyncio.to_thread(pyroute2_dumps)  # sync IPRoute: no loop
    out["dump_equals_pyroute2"] = [o[:3] for o in ours] == pyr
    our_links = sorted([m.ifindex, m.ifname, m.flags] for m in rtnl.dump(rtnl.RTM_GETLINK))
    out["links_equal_pyroute2"] = our_links == pyr_links
    out["links_equal_ip"] = [o[:2] for o in our_links] == ip_links()
    dels = [rtnl.encode_address("del", "10.66.0.100/24", eth0, seq=4),
            rtnl.encode_address("del", "fd00:66::100/64", eth0, seq=5),
            rtnl.encode_address("del", "10.66.0.100/24", eth0, seq=6)]  # gone already
    codes = rtnl.request(dels)
    out["del"] = [codes[4], codes[5], codes[6] == errno.EADDRNOTAVAIL]
    sh("ip link set eth1 down")
    await asyncio.sleep(0.2)
    sh("ip link set eth1 up")
    sh("ip link add eth9 type veth peer name eth8")
    await asyncio.sleep(0.2)
    sh("ip link del eth9")
    await asyncio.sleep(0.3)
    out["events"] = [
        [type(m).__name__, m.kind, m.ip, m.label, m.ifindex]
        for m in events if isinstance(m, rtnl.AddrMessage)
        and m.ip in ("10.66.0.100", "fd00:66::100")
    ]
    out["eth1_link_events"] = [
        bool(m.flags & 1) for m in events
        if isinstance(m, rtnl.LinkMessage) and m.ifname == "eth1" and not m.deleted
    ]
    out["eth9_deleted"] = any(isinstance(m, rtnl.LinkMessage) and m.deleted
                              and m.ifname == "eth9" for m in events)
    out["addr_events"] = [[e.added, e.ifname, str(e.address)] for e in addr_events
                          if str(e.address) in ("10.66.0.100", "fd00:66::100")]
    out["link_changes"] = [c for c in link_changes if c[0] in ("eth1", "eth0", "eth8", "eth9")]
    out["lost"] = len(lost)
    out["eth0"] = eth0
    sock.close()
    await monitor.stop()
    await links.stop()
    print(json.dumps(out))

asyncio.run(main())
'''


@pytest.fixture
def netns() -> Iterator[tuple[Lab, Netns]]:
    with looped_namespace(PREFIX, "rtnl", "10.66.0.1/24") as lab_ns:
        yield lab_ns


def test_requests_dumps_and_events_against_the_kernel(netns: tuple[Lab, Netns]) -> None:
    lab, ns = netns
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = json.loads(lab.run(ns, [sys.executable, "-c", PROBE], env=env, timeout=60).stdout)
    assert out["add"] == [0, 0, True]
    assert out["present"] == [True, True, False]
    assert out["dump_equals_ip"] and out["dump_equals_pyroute2"]
    assert out["links_equal_ip"] and out["links_equal_pyroute2"]
    assert out["del"] == [0, 0, True]
    eth0 = out["eth0"]
    # One event per change, in order, with what was asked (the label of the IPv4 one).
    assert out["events"] == [
        ["AddrMessage", 20, "10.66.0.100", "eth0:v", eth0],
        ["AddrMessage", 20, "fd00:66::100", None, eth0],
        ["AddrMessage", 21, "10.66.0.100", "eth0:v", eth0],
        ["AddrMessage", 21, "fd00:66::100", None, eth0],
    ]
    assert out["addr_events"] == [[True, "eth0", "10.66.0.100"], [True, "eth0", "fd00:66::100"],
                                  [False, "eth0", "10.66.0.100"],
                                  [False, "eth0", "fd00:66::100"]]
    # Link down and up again, as events and as the follower's states.
    assert out["eth1_link_events"][:1] == [False] and out["eth1_link_events"][-1] is True
    assert out["eth9_deleted"]
    assert out["links_at_start"] == {"eth0": True, "eth1": True}
    changes = out["link_changes"]
    assert changes[:2] == [["eth1", False], ["eth0", False]]  # the veth peer loses carrier
    assert ["eth1", True] in changes[2:] and ["eth0", True] in changes[2:]
    assert ["eth9", False] in changes or ["eth8", False] in changes
    assert out["lost"] == 0
