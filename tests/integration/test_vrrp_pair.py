"""Two `hacluster run` directors on a bridge in namespaces: election, failover, hand-over."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from datetime import datetime

import pytest

from hacluster.lab.capture import Frame
from tests.integration.vrrp_director import (
    VIP4,
    VIP6,
    PairLab,
    config_yaml,
    instance_yaml,
)
from vrrp.timing import master_down_interval, skew_time

pytestmark = pytest.mark.netns


def _garp_for(vip: str, mac: str) -> Callable[[Frame], bool]:
    return lambda f: f.kind == "arp" and f.gratuitous and f.target == vip and f.src_mac == mac


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_election_failover_on_sigkill_and_gratuitous_arp(pair: PairLab) -> None:
    a = pair.director("a", config_yaml(instance_yaml(priority=150))).start()
    b = pair.director("b", config_yaml(instance_yaml(priority=100))).start()
    a.wait_state("MASTER")
    b.wait_state("BACKUP")
    time.sleep(0.5)  # a few adverts: b stays BACKUP while a lives
    assert b.state() == "BACKUP"
    a.wait_vip()
    assert not b.has_vip()

    cap = pair.capture()
    cap.wait_for(lambda f: f.is_advert and f.src == "10.9.0.1", timeout=5)
    mark = cap.mark()
    a.proc.kill()
    b.wait_state("MASTER", timeout=5)
    assert b.transitions()[-1][1:3] == ("BACKUP", "MASTER")
    assert "master down timer" in b.transitions()[-1][3]
    garp: Frame = cap.wait_for(_garp_for(VIP4, pair.mac("b")), timeout=5, since=mark)
    assert b.has_vip()  # announced only once added

    # The takeover came after the master-down interval, never before it.
    last_a = [f for f in cap.adverts(src="10.9.0.1", since=0)][-1]
    first_b = cap.wait_for(lambda f: f.is_advert and f.src == "10.9.0.2", timeout=5, since=mark)
    mdi = master_down_interval(100, 0.1, 3)
    gap = first_b.time - last_a.time
    assert gap >= mdi - 0.002, f"took over {mdi - gap:.4f}s early"
    assert gap < mdi + 1.0  # generous: the machine may be loaded
    assert garp.time >= first_b.time
    cap.stop()

    # The killed director left its VIP behind; a new run removes it before anything else.
    assert a.has_vip()
    a.start()
    a.wait_state("MASTER")
    # (first thing, from the state file of the VIPs it added: test_vrrp_restart_leftovers)
    a.wait_log("removed VIPs a crashed run left behind")
    a.wait_log("10.9.0.100/24 dev eth0")
    # ... before its machine started: it never removes a VIP it holds as MASTER.
    out = a.output()
    assert out.index("removed VIPs a crashed run") < out.index("[VI_1] INITIALIZE -> BACKUP")
    assert out.count("removed VIPs") == 1
    b.wait_state("BACKUP", timeout=3)
    b.wait_vip(present=False)


def test_graceful_handover_on_sigterm_then_preemption_back(pair: PairLab) -> None:
    a = pair.director("a", config_yaml(instance_yaml(priority=150))).start()
    b = pair.director("b", config_yaml(instance_yaml(priority=100))).start()
    a.wait_state("MASTER")
    b.wait_state("BACKUP")
    cap = pair.capture()
    mark = cap.mark()
    assert a.proc.stop(timeout=5) == 0  # SIGTERM: exits 0
    assert "[VI_1] MASTER -> INITIALIZE (shutdown)" in a.output()
    assert not a.has_vip()
    b.wait_state("MASTER", timeout=3)
    resign = cap.wait_for(lambda f: f.is_advert and f.src == "10.9.0.1" and f.priority == 0,
                          timeout=3, since=mark)
    first_b = cap.wait_for(lambda f: f.is_advert and f.src == "10.9.0.2", timeout=3, since=mark)
    delay = first_b.time - resign.time
    assert delay >= skew_time(100, 0.1, 3) - 0.002
    assert delay < master_down_interval(100, 0.1, 3)  # skew, not a full master-down wait
    assert "priority 0 from 10.9.0.1" in b.transitions()[-1][3]

    a.start()  # higher priority comes back and preempts
    a.wait_state("MASTER")
    b.wait_state("BACKUP", timeout=3)
    assert "higher priority 150 advert from 10.9.0.1" in b.transitions()[-1][3]
    a.wait_vip()
    b.wait_vip(present=False)
    cap.stop()


def test_nopreempt_keeps_the_running_master(pair: PairLab) -> None:
    b = pair.director("b", config_yaml(instance_yaml(priority=100))).start()
    b.wait_state("MASTER")
    a = pair.director("a", config_yaml(instance_yaml(priority=150, extra="nopreempt: true")))
    a.start()
    a.wait_state("BACKUP")
    time.sleep(1.5)  # several master-down intervals
    assert (a.state(), b.state()) == ("BACKUP", "MASTER")
    b.wait_vip()
    assert not a.has_vip()
    # It still takes over when the master goes.
    b.proc.kill()
    a.wait_state("MASTER", timeout=5)


def test_preempt_delay_waits_before_preempting(pair: PairLab) -> None:
    b = pair.director("b", config_yaml(instance_yaml(priority=100))).start()
    b.wait_state("MASTER")
    a = pair.director("a", config_yaml(instance_yaml(priority=150, extra="preempt_delay: 1.5")))
    a.start()
    a.wait_state("BACKUP")
    a.wait_state("MASTER", timeout=10)
    b.wait_state("BACKUP", timeout=3)
    (t_backup, *_), (t_master, *_) = a.transitions()[-2:]
    waited = _ts(t_master) - _ts(t_backup)
    assert waited >= 1.5 - 0.01, f"preempted after {waited:.3f}s"
    assert waited < 1.5 + 1.0


@pytest.mark.parametrize("family", [4, 6])
def test_unicast_mode_sends_no_multicast(pair: PairLab, family: int) -> None:
    net, vip = ("10.9.0.", f"{VIP4}/24") if family == 4 else ("fd00:9::", f"{VIP6}/64")

    def unicast(src: str, peer: str, prio: int) -> str:
        return config_yaml(instance_yaml(
            priority=prio, vips=(vip,),
            extra=f"unicast_src_ip: {net}{src}\nunicast_peers: [{net}{peer}]"))

    group = "ip proto 112 and dst host 224.0.0.18" if family == 4 else (
        "ip6 proto 112 and dst host ff02::12")
    mcast = pair.capture(bpf=group)
    a = pair.director("a", unicast("1", "2", 150)).start()
    b = pair.director("b", unicast("2", "1", 100)).start()
    a.wait_state("MASTER")
    b.wait_state("BACKUP")
    time.sleep(0.5)
    assert b.state() == "BACKUP"
    status = b.fresh_status()
    assert status["instances"]["VI_1"]["adverts_accepted"] > 0  # b hears a, by unicast
    assert status["instances"]["VI_1"]["master"]["address"] == f"{net}1"
    a.proc.kill()
    b.wait_state("MASTER", timeout=5)
    b.wait_vip(vip.split("/")[0])
    assert mcast.frames() == []  # not one advert went to the multicast group
    mcast.stop()


def test_ipv6_failover_with_neighbour_advertisements(pair: PairLab) -> None:
    vips = (f"{VIP6}/64",)
    a = pair.director("a", config_yaml(instance_yaml(priority=150, vips=vips))).start()
    b = pair.director("b", config_yaml(instance_yaml(priority=100, vips=vips))).start()
    a.wait_state("MASTER")
    b.wait_state("BACKUP")
    a.wait_vip(VIP6)
    assert not b.has_vip(VIP6)
    cap = pair.capture()
    advert = cap.wait_for(lambda f: f.is_advert, timeout=5)
    assert advert.src.startswith("fe80:")  # IPv6 adverts come from the link-local address
    assert advert.ttl == 255 and advert.addresses == (VIP6,)
    mark = cap.mark()
    a.proc.kill()
    b.wait_state("MASTER", timeout=5)
    mac_b = pair.mac("b")
    na = cap.wait_for(lambda f: f.kind == "na" and f.target == VIP6 and f.src_mac == mac_b,
                      timeout=5, since=mark)
    assert na.gratuitous
    assert b.has_vip(VIP6)
    cap.stop()


def test_v2_with_pass_authentication(pair: PairLab) -> None:
    auth = "authentication: {auth_type: PASS, auth_pass: s3cret}"
    a = pair.director("a", config_yaml(instance_yaml(
        priority=150, version=2, advert_int=1, extra=auth))).start()
    b = pair.director("b", config_yaml(instance_yaml(
        priority=100, version=2, advert_int=1, extra=auth))).start()
    a.wait_state("MASTER", timeout=10)
    b.wait_state("BACKUP")
    cap = pair.capture()
    advert = cap.wait_for(lambda f: f.is_advert and f.src == "10.9.0.1", timeout=5)
    assert advert.version == 2 and advert.priority == 150
    status = b.fresh_status()
    assert status["instances"]["VI_1"]["adverts_accepted"] > 0
    assert status["dropped"].get("auth", 0) == 0
    mark = cap.mark()
    a.proc.kill()
    b.wait_state("MASTER", timeout=8)  # v2: 3 s + skew
    cap.wait_for(_garp_for(VIP4, pair.mac("b")), timeout=5, since=mark)
    cap.stop()


def test_json_logs_and_sigint_stop(pair: PairLab) -> None:
    a = pair.director("a", config_yaml(instance_yaml(priority=150))).start("--log-format", "json")
    a.wait_state("MASTER")
    a.wait_vip()
    a.proc.signal(signal.SIGINT)
    assert a.proc.popen.wait(10) == 0
    assert not a.has_vip()
    records = [json.loads(line) for line in a.output().splitlines() if line.strip()]
    changes = [r for r in records if r.get("event") == "state"]
    assert [(r["old"], r["new"]) for r in changes] == [
        ("INITIALIZE", "BACKUP"), ("BACKUP", "MASTER"), ("MASTER", "INITIALIZE")]
    assert all(r["instance"] == "VI_1" and r["level"] == "info" for r in changes)
    assert changes[1]["reason"] == "master down timer"
    assert changes[1]["msg"] == "[VI_1] BACKUP -> MASTER (master down timer) priority 150"
    assert changes[1]["priority"] == 150


def test_track_script_lowers_priority_and_the_peer_preempts(pair: PairLab) -> None:
    flag = pair.lab.workdir / "healthy"
    flag.write_text("")
    scripts = (
        "vrrp_scripts:\n"
        "  chk:\n"
        f"    script: /usr/bin/test -e {flag}\n"
        "    interval: 0.2\n"
        "    weight: -60\n"
    )
    a = pair.director("a", scripts + config_yaml(
        instance_yaml(priority=150, extra="track_script: [chk]"))).start()
    b = pair.director("b", config_yaml(instance_yaml(priority=100))).start()
    a.wait_state("MASTER")
    b.wait_state("BACKUP")
    flag.unlink()  # the check fails: 150 - 60 = 90 < 100
    b.wait_state("MASTER", timeout=5)
    a.wait_state("BACKUP", timeout=3)
    assert a.fresh_status()["instances"]["VI_1"]["priority"] == 90
    assert "higher priority 100 advert from 10.9.0.2" in a.transitions()[-1][3]
    flag.write_text("")  # healthy again: back to 150, preempts
    a.wait_state("MASTER", timeout=5)
    b.wait_state("BACKUP", timeout=3)


def test_failing_check_at_start_means_fault_and_never_master(pair: PairLab) -> None:
    flag = pair.lab.workdir / "healthy"
    scripts = (
        "vrrp_scripts:\n"
        "  chk:\n"
        f"    script: /usr/bin/test -e {flag}\n"
        "    interval: 0.2\n"
        "    weight: 0\n"  # keepalived: weight 0 means FAULT while the check fails
    )
    a = pair.director("a", scripts + config_yaml(
        instance_yaml(priority=150, extra="track_script: [chk]"))).start()
    a.wait_state("FAULT")
    time.sleep(1.0)
    assert a.state() == "FAULT" and not a.has_vip()
    assert [t[2] for t in a.transitions()] == ["FAULT"]  # never MASTER, not even briefly
    flag.write_text("")
    a.wait_state("MASTER", timeout=5)
    a.wait_vip()


def test_notify_scripts_run_in_order_with_keepalived_arguments(pair: PairLab) -> None:
    out = pair.lab.workdir / "notify.out"
    script = pair.lab.workdir / "notify.sh"
    script.write_text(f'#!/bin/sh\necho "$@" >> {out}\n')
    script.chmod(0o755)
    extra = f"notify_master: {script} master\nnotify_backup: {script} backup\nnotify: {script}"
    a = pair.director("a", config_yaml(instance_yaml(priority=150, extra=extra))).start()
    a.wait_state("MASTER")
    assert a.proc.stop(timeout=10) == 0
    assert out.read_text().splitlines() == [
        "backup", "INSTANCE VI_1 BACKUP 150",
        "master", "INSTANCE VI_1 MASTER 150",
        "INSTANCE VI_1 STOP 150",  # run before the daemon exits
    ]


def test_sync_group_members_follow_each_other(pair: PairLab) -> None:
    vip2 = ("10.9.0.102/24",)
    group = "vrrp_sync_groups:\n  G1:\n    group: [VI_1, VI_2]\n"
    # a would win VI_1 alone, but its group partner VI_2 loses to b: the group stays BACKUP.
    a = pair.director("a", group + config_yaml(
        instance_yaml("VI_1", vrid=51, priority=150),
        instance_yaml("VI_2", vrid=52, priority=150, vips=vip2),
    )).start()
    b = pair.director("b", config_yaml(
        instance_yaml("VI_1", vrid=51, priority=100),
        instance_yaml("VI_2", vrid=52, priority=200, vips=vip2),
    )).start()
    b.wait_state("MASTER", "VI_1")
    b.wait_state("MASTER", "VI_2")
    time.sleep(1.0)
    assert (a.state("VI_1"), a.state("VI_2")) == ("BACKUP", "BACKUP")
    assert not a.has_vip()
    b.proc.kill()
    a.wait_state("MASTER", "VI_1", timeout=5)
    a.wait_state("MASTER", "VI_2", timeout=1)
    a.wait_vip()
    a.wait_vip("10.9.0.102")


def test_vip_scope_and_label_are_applied_and_released(pair: PairLab) -> None:
    vips = (f"{VIP4}/24", "10.9.7.7/32 scope host label eth0:ext")
    a = pair.director("a", config_yaml(instance_yaml(priority=150, vips=vips))).start()
    a.wait_state("MASTER")
    a.wait_vip("10.9.7.7")
    shown = pair.lab.run(pair.a_ns, ["ip", "-o", "-4", "addr", "show", "dev", "eth0"]).stdout
    line = next(line for line in shown.splitlines() if " 10.9.7.7/32 " in line)
    assert line.split("\\")[0].split()[4:] == ["scope", "host", "eth0:ext"]
    assert a.proc.stop(timeout=5) == 0  # SIGTERM: VIPs released, whatever their scope
    assert not a.has_vip("10.9.7.7") and not a.has_vip(VIP4)


def test_a_vip_removed_by_hand_makes_the_master_resign_and_the_election_rerun(
    pair: PairLab,
) -> None:
    a = pair.director("a", config_yaml(instance_yaml(priority=150))).start()
    b = pair.director("b", config_yaml(instance_yaml(priority=100))).start()
    a.wait_state("MASTER")
    b.wait_state("BACKUP")
    a.wait_vip()
    cap = pair.capture()
    mark = cap.mark()
    pair.lab.run(pair.a_ns, ["ip", "addr", "del", f"{VIP4}/24", "dev", "eth0"])
    # keepalived's answer: priority 0, BACKUP; b takes over after its skew time ...
    cap.wait_for(lambda f: f.is_advert and f.src == "10.9.0.1" and f.priority == 0,
                 timeout=3, since=mark)
    cap.wait_for(lambda f: f.is_advert and f.src == "10.9.0.2", timeout=3, since=mark)
    # ... and a, of higher priority, preempts back (its master-down interval later) and
    # holds the VIP again.
    cap.wait_for(_garp_for(VIP4, pair.mac("a")), timeout=5, since=mark)
    a.wait_state("MASTER", timeout=5)
    a.wait_vip()
    b.wait_state("BACKUP", timeout=3)
    b.wait_vip(present=False)
    assert [t[1:] for t in a.transitions()][-2:] == [
        ("MASTER", "BACKUP", f"VIP {VIP4}/24 removed by someone else"),
        ("BACKUP", "MASTER", "preempt: lower priority 100 advert from 10.9.0.2"),
    ]
    assert [t[1:3] for t in b.transitions()][-2:] == [("BACKUP", "MASTER"), ("MASTER", "BACKUP")]
    assert "priority 0 from 10.9.0.1" in b.transitions()[-2][3]
    cap.stop()


def test_adverts_follow_the_interface_address_and_wait_in_fault_without_one(
    pair: PairLab,
) -> None:
    lab, ns = pair.lab, pair.a_ns

    def ip(*words: str) -> None:
        lab.run(ns, ["ip", *words])

    lab.run(ns, ["sysctl", "-qw", "net.ipv4.conf.eth0.promote_secondaries=1"])
    ip("addr", "add", "10.9.0.11/24", "dev", "eth0")  # promoted when 10.9.0.1 goes
    a = pair.director("a", config_yaml(instance_yaml(priority=150))).start()
    a.wait_state("MASTER")
    cap = pair.capture()
    cap.wait_for(lambda f: f.is_advert and f.src == "10.9.0.1", timeout=5)
    mark = cap.mark()
    ip("addr", "del", "10.9.0.1/24", "dev", "eth0")
    cap.wait_for(lambda f: f.is_advert and f.src == "10.9.0.11", timeout=5, since=mark)
    a.wait_log("[VI_1] adverts now come from 10.9.0.11 (eth0)")
    assert a.state() == "MASTER"  # nothing else changed
    # Only the VIP left: not an address of our own. FAULT, VIPs released.
    ip("addr", "del", "10.9.0.11/24", "dev", "eth0")
    a.wait_state("FAULT", timeout=5)
    a.wait_vip(present=False)
    assert a.transitions()[-1][1:3] == ("MASTER", "FAULT")
    assert "interface eth0 has no IPv4 address to send from" in a.transitions()[-1][3]
    mark = cap.mark()
    ip("addr", "add", "10.9.0.21/24", "dev", "eth0")
    a.wait_state("MASTER", timeout=5)
    a.wait_vip()
    first = cap.wait_for(lambda f: f.is_advert and f.priority == 150, timeout=5, since=mark)
    assert first.src == "10.9.0.21"
    cap.stop()


def test_an_interface_without_an_address_at_start_waits_in_fault(pair: PairLab) -> None:
    pair.lab.run(pair.a_ns, ["ip", "-4", "addr", "flush", "dev", "eth0"])
    a = pair.director("a", config_yaml(instance_yaml(priority=150))).start()
    a.wait_state("FAULT", timeout=10)
    assert not a.has_vip()
    a.wait_log("[VI_1] interface eth0 has no IPv4 address to send from: FAULT until it has one")
    pair.lab.run(pair.a_ns, ["ip", "addr", "add", "10.9.0.1/24", "dev", "eth0"])
    a.wait_state("MASTER", timeout=5)
    a.wait_vip()
