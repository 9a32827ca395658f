"""The namespace lab, keepalived peer and capture helpers against the real kernel and keepalived."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hacluster.lab.capture import Capture
from hacluster.lab.keepalived import KeepalivedInstance, KeepalivedPeer, render_config
from hacluster.lab.netns import NETNS_DIR, Lab, LabError, Netns, list_namespaces, ping, sweep


def test_hacluster_config_from_lab_loads(tmp_path: Path) -> None:
    from hacluster.config.loader import load_config
    from hacluster.lab.speaker import render_hacluster_config

    text = render_hacluster_config((
        KeepalivedInstance(version=2, auth_pass="secret", virtual_ipaddress=("10.1.1.1/24",),
                           unicast_src_ip="10.1.1.2", unicast_peers=("10.1.1.3",),
                           unicast_min_ttl=64, state="MASTER", priority=200),
        KeepalivedInstance(name="VI_6", virtual_router_id=52, advert_int=0.05,
                           virtual_ipaddress=("fd00::100/64",), nopreempt=True),
    ), router_id="t", control_socket=tmp_path / "ctl.sock")
    path = tmp_path / "h.yaml"
    path.write_text(text)
    config = load_config(path)
    vi1, vi6 = config.vrrp_instances["VI_1"], config.vrrp_instances["VI_6"]
    assert (vi1.version, vi1.priority, vi1.state, vi1.is_unicast) == (2, 200, "MASTER", True)
    assert vi1.unicast_peers[0].min_ttl == 64
    assert vi1.authentication is not None and vi1.authentication.auth_pass == "secret"
    assert (vi6.version, vi6.advert_int, vi6.nopreempt, vi6.family) == (3, 0.05, True, 6)


def test_capture_reads_a_growing_pcap(tmp_path: Path) -> None:
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import ICMPv6ND_NA, IPv6
    from scapy.layers.l2 import ARP, Ether
    from scapy.layers.vrrp import VRRP, VRRPv3
    from scapy.utils import PcapWriter

    frames = [
        Ether(src="02:00:00:00:00:01") / IP(src="10.0.0.1", dst="224.0.0.18", ttl=255)
        / VRRPv3(vrid=7, priority=200, adv=10, addrlist=["10.0.0.100"]),
        Ether(src="02:00:00:00:00:02") / IP(src="10.0.0.2", dst="224.0.0.18", ttl=255)
        / VRRP(vrid=8, priority=0, adv=1, addrlist=["10.0.0.101"]),
        Ether(src="02:00:00:00:00:02", dst="ff:ff:ff:ff:ff:ff")
        / ARP(op=1, psrc="10.0.0.100", pdst="10.0.0.100"),
        Ether(src="02:00:00:00:00:03") / IPv6(src="fe80::3", dst="ff02::1", hlim=255)
        / ICMPv6ND_NA(tgt="fd00::100", R=0, S=0, O=1),
        Ether(src="02:00:00:00:00:03") / IPv6(src="fe80::3", dst="ff02::12", hlim=64)
        / VRRPv3(vrid=9, priority=50, adv=1, ipcount=1, addrlist=["fd00::100"]),
        Ether(src="02:00:00:00:00:03") / IPv6(src="fe80::3", dst="ff02::1") / b"not ours",
    ]
    times = [100.000000001, 100.25, 100.5, 101.0, 101.5, 102.0]
    with Lab("hck", workdir=tmp_path) as lab:
        cap = Capture(lab, Netns("unused", "obs"), "eth0")
        writer = PcapWriter(str(cap.path), nano=True, sync=True)
        for pkt, t in zip(frames, times, strict=True):
            pkt.time = t
        writer.write(frames[0])
        assert [f.kind for f in cap.poll()] == ["vrrp"]
        # A half-written record is left for the next poll.
        with cap.path.open("ab") as f:
            f.write(b"\x00" * 7)
        assert len(cap.poll()) == 1
        cap.path.write_bytes(cap.path.read_bytes()[:-7])
        for pkt in frames[1:]:
            writer.write(pkt)
        writer.close()
        got = cap.frames()
    assert [f.kind for f in got] == ["vrrp", "vrrp", "arp", "na", "vrrp"]
    v3, v2, arp, na, v6 = got
    assert (v6.version, v6.vrid, v6.priority, v6.ttl, v6.src) == (3, 9, 50, 64, "fe80::3")
    assert v6.addresses == ("fd00::100",) and v6.advert_int == 0.01
    assert (v3.version, v3.vrid, v3.priority, v3.advert_int, v3.ttl) == (3, 7, 200, 0.1, 255)
    assert v3.addresses == ("10.0.0.100",) and v3.src_mac == "02:00:00:00:00:01"
    assert abs(v3.time - 100.000000001) < 1e-9
    assert (v2.version, v2.priority, v2.advert_int) == (2, 0, 1.0)
    assert arp.gratuitous and arp.target == "10.0.0.100"
    assert na.gratuitous and na.target == "fd00::100" and na.kind == "na"


@pytest.mark.netns
def test_lab_links_namespaces_and_removes_everything() -> None:
    with Lab("hck") as lab:
        sw = lab.namespace("sw")
        lab.bridge(sw)
        a, b = lab.namespace("a"), lab.namespace("b")
        lab.attach(a, "eth0", sw, "br0", ["10.77.0.1/24", "fd77::1/64"])
        lab.attach(b, "eth0", sw, "br0", ["10.77.0.2/24", "fd77::2/64"])
        assert lab.has_address(a, "eth0", "fd77::1")
        assert lab.link_local(b, "eth0").startswith("fe80:")
        assert ping(lab, a, "10.77.0.2")
        assert ping(lab, a, "fd77::2")
        assert not ping(lab, a, "10.77.0.3", timeout=1)
        proc = lab.start(a, ["sleep", "60"])
        names = [ns.name for ns in lab.namespaces]
        assert all((NETNS_DIR / n).exists() for n in names)
        # The host namespace never sees lab interfaces.
        for port in ("p0a", "p1b"):
            assert subprocess.run(["ip", "link", "show", port], capture_output=True).returncode
            assert lab.run(sw, ["ip", "link", "show", port]).returncode == 0
    assert not proc.running()
    assert not any((NETNS_DIR / n).exists() for n in names)


@pytest.mark.netns
def test_lab_removes_namespaces_when_the_body_fails() -> None:
    names: list[str] = []
    with pytest.raises(RuntimeError, match="boom"), Lab("hck") as lab:
        names.append(lab.namespace("x").name)
        raise RuntimeError("boom")
    assert not (NETNS_DIR / names[0]).exists()


@pytest.mark.netns
def test_sweep_removes_only_dead_runs_of_its_prefix() -> None:
    # A pid that cannot be alive: above the kernel's pid_max.
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    dead = f"hck-{pid_max + 1}-1-old"
    alive = f"hck-{os.getpid()}-999-live"
    other = f"hckx-{pid_max + 1}-1-other"
    for name in (dead, alive, other):
        subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        removed = sweep("hck")
        assert dead in removed
        assert alive not in removed and other not in removed
        assert alive in list_namespaces("hck")
    finally:
        for name in (dead, alive, other):
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)


@pytest.mark.netns
def test_lab_rejects_bad_names() -> None:
    with pytest.raises(ValueError):
        Lab("HC K")
    with Lab("hck") as lab, pytest.raises(ValueError):
        lab.namespace("bad role")
    with Lab("hck") as lab, pytest.raises(LabError, match="exited"):
        lab.run(lab.namespace("r"), ["false"])


def test_keepalived_config_is_accepted_by_keepalived(tmp_path: Path) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text(render_config([
        KeepalivedInstance(version=2, auth_pass="secret", virtual_ipaddress=("10.1.1.1/24",),
                           unicast_src_ip="10.1.1.2", unicast_peers=("10.1.1.3",)),
        KeepalivedInstance(name="VI_6", virtual_router_id=52, advert_int=0.05,
                           virtual_ipaddress=("fd00::100/64",), nopreempt=True),
    ]))
    res = subprocess.run(["keepalived", "-t", "-f", str(conf)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    with pytest.raises(ValueError, match="VRRPv2 only"):
        KeepalivedInstance(version=3, auth_pass="x")


@pytest.mark.netns
@pytest.mark.keepalived
def test_keepalived_pair_fails_over_and_capture_sees_it() -> None:
    with Lab("hck") as lab:
        sw = lab.namespace("sw")
        lab.bridge(sw)
        ns = {r: lab.namespace(r) for r in ("a", "b", "obs")}
        for i, role in enumerate(("a", "b", "obs"), start=1):
            lab.attach(ns[role], "eth0", sw, "br0", [f"10.78.0.{i}/24"])
        cap = Capture(lab, ns["obs"], "eth0")
        cap.start()
        vip = ("10.78.0.100/24",)
        a = KeepalivedPeer(lab, ns["a"], (KeepalivedInstance(
            priority=200, advert_int=0.1, virtual_ipaddress=vip),), name="a")
        b = KeepalivedPeer(lab, ns["b"], (KeepalivedInstance(
            priority=100, advert_int=0.1, virtual_ipaddress=vip),), name="b")
        a.start()
        b.start()
        a.wait_state("MASTER")
        b.wait_state("BACKUP")
        assert a.has_vips() and not b.has_vips()
        first = cap.wait_for(lambda f: f.is_advert and f.src == "10.78.0.1", 3)
        assert (first.version, first.vrid, first.priority, first.advert_int) == (3, 51, 200, 0.1)
        assert first.ttl == 255 and first.addresses == ("10.78.0.100",)
        mark = cap.mark()
        a.crash()
        assert not a.process or not a.process.running()
        taken = cap.wait_for(lambda f: f.is_advert and f.src == "10.78.0.2", 3, since=mark)
        garp = cap.wait_for(lambda f: f.kind == "arp" and f.gratuitous
                            and f.target == "10.78.0.100", 3, since=mark)
        b.wait_state("MASTER")
        assert b.has_vips()
        last = cap.adverts(src="10.78.0.1")[-1]
        gap = taken.time - last.time
        # Master-down interval 3 * 0.1 + 156/256 * 0.1 = 0.361 s; generous protocol bound.
        assert 0.3 < gap < 1.5
        assert garp.src_mac == lab.mac(ns["b"], "eth0")
        assert 0 <= garp.time - taken.time < 1.0
        # Graceful stop: priority 0 advert, then a restart of a preempts back.
        a.start()
        a.wait_state("MASTER")
        mark = cap.mark()
        a.stop()
        zero = cap.wait_for(lambda f: f.is_advert and f.priority == 0, 3, since=mark)
        assert zero.src == "10.78.0.1"
