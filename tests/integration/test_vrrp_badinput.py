"""Malformed and forged adverts sent with scapy at a running daemon: dropped, counted, harmless."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from tests.integration.vrrp_director import (
    PairLab,
    config_yaml,
    instance_yaml,
)

pytestmark = pytest.mark.netns

# Run inside the observer namespace: build each advert with our codec, then spoil it.
SENDER = r"""
import json, sys
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.sendrecv import sendp
from vrrp import packet

frames = []
for spec in json.loads(sys.argv[1]):
    SRC, DST = spec.get("src", "10.9.0.3"), spec.get("dst", "224.0.0.18")
    auth = spec.get("auth")
    advert = packet.Advert(
        version=spec.get("version", 3), vrid=spec["vrid"], priority=spec.get("priority", 254),
        max_advert_int=spec.get("interval", 0.1),
        addresses=tuple(spec.get("addresses", ["10.9.0.100"])),
        auth_type=1 if auth else 0, auth_data=packet.auth_pass_data(auth) if auth else b"")
    data = bytearray(packet.encode(advert, SRC, DST))
    spoil = spec.get("spoil")
    if spoil == "checksum":
        data[7] ^= 0xFF
    elif spoil == "truncate":
        data = data[:6]
    elif spoil == "version":
        data[0] = (4 << 4) | (data[0] & 0x0F)
    ip = IP(src=SRC, dst=DST, proto=112, ttl=spec.get("ttl", 255))
    mac = spec.get("mac", "01:00:5e:00:00:12")
    frames.append(Ether(dst=mac) / ip / Raw(bytes(data)))
for _ in range(int(sys.argv[2])):
    sendp(frames, iface="eth0", verbose=False)
"""

V3 = 51  # VI_1: VRRPv3, 0.1 s
V2 = 52  # VI_2: VRRPv2 with PASS authentication, 1 s
REPEAT = 3

CASES: dict[str, dict[str, object]] = {
    "ttl": {"vrid": V3, "ttl": 254},
    "bad_checksum": {"vrid": V3, "spoil": "checksum"},
    "unknown_vrid": {"vrid": 99},
    "auth": {"vrid": V2, "version": 2, "interval": 1, "auth": "wrong"},
    "truncated": {"vrid": V3, "spoil": "truncate"},
    "bad_version": {"vrid": V3, "spoil": "version"},
    "version_mismatch": {"vrid": V3, "version": 2, "interval": 1},
    "interval_mismatch": {"vrid": V2, "version": 2, "interval": 3, "auth": "s3cret"},
}


def _send(pair: PairLab, specs: list[dict[str, object]], repeat: int) -> None:
    script = pair.lab.workdir / "send_adverts.py"
    script.write_text(SENDER)
    pair.lab.run(pair.obs, [sys.executable, str(script), json.dumps(specs), str(repeat)],
                 env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})


def test_bad_adverts_are_dropped_counted_and_change_nothing(pair: PairLab) -> None:
    auth = "authentication: {auth_type: PASS, auth_pass: s3cret}"
    a = pair.director("a", config_yaml(
        instance_yaml("VI_1", vrid=V3, priority=100),
        instance_yaml("VI_2", vrid=V2, priority=100, version=2, advert_int=1,
                      vips=("10.9.0.102/24",), extra=auth),
    )).start()
    a.wait_state("MASTER", "VI_1")
    a.wait_state("MASTER", "VI_2", timeout=10)
    before = a.fresh_status()

    # Every forged advert claims priority 254: accepted, it would make a step down.
    _send(pair, list(CASES.values()), REPEAT)
    time.sleep(0.3)
    after = a.fresh_status()
    for reason in CASES:
        got = after["dropped"].get(reason, 0) - before["dropped"].get(reason, 0)
        assert got == REPEAT, f"{reason}: counted {got}, sent {REPEAT}\n{after['dropped']}"
    for name in ("VI_1", "VI_2"):
        inst = after["instances"][name]
        assert inst["state"] == "MASTER"
        assert inst["transitions"] == before["instances"][name]["transitions"]
        assert inst["adverts_accepted"] == before["instances"][name]["adverts_accepted"]
    assert a.proc.running()
    assert "dropped advert: ttl" in a.output()  # logged (rate-limited), with the reason

    # Control: the same advert made valid is accepted and does make VI_1 step down.
    # (The forger then falls silent, so VI_1 takes over again: read the log, not the state.)
    _send(pair, [{"vrid": V3}], 1)
    deadline = time.monotonic() + 5
    while ("MASTER", "BACKUP", "higher priority 254 advert from 10.9.0.3") not in [
        t[1:] for t in a.transitions("VI_1")
    ]:
        assert time.monotonic() < deadline, a.output()
        time.sleep(0.05)
    assert a.state("VI_2") == "MASTER"


def test_unicast_accepts_only_peers_and_checks_ttl_per_peer(pair: PairLab) -> None:
    # keepalived sends unicast IPv6 adverts with hop limit 64, so by default a unicast
    # peer's TTL is not required to be 255 (keepalived's per-peer min_ttl/max_ttl
    # semantics); a peer configured with min_ttl: 255 gets the strict check back.
    uni = "unicast_src_ip: 10.9.0.1\nunicast_peers: [{peers}]"
    a = pair.director("a", config_yaml(
        instance_yaml("VI_1", vrid=V3, extra=uni.format(peers="10.9.0.3")
                      + "\ncheck_unicast_src: true"),
        instance_yaml("VI_2", vrid=V2, vips=("10.9.0.102/24",),
                      extra=uni.format(peers="{ip: 10.9.0.3, min_ttl: 255}")),
    )).start()
    a.wait_state("MASTER", "VI_1")
    a.wait_state("MASTER", "VI_2")
    mac = pair.lab.mac(pair.a_ns, "eth0")
    to_a = {"dst": "10.9.0.1", "mac": mac}
    before = a.fresh_status()
    _send(pair, [
        {"vrid": V3, "src": "10.9.0.4", **to_a},  # not a configured peer
        {"vrid": V2, "ttl": 64, **to_a},  # peer with min_ttl 255
    ], REPEAT)
    time.sleep(0.3)
    after = a.fresh_status()
    for reason in ("unknown_peer", "ttl"):
        got = after["dropped"].get(reason, 0) - before["dropped"].get(reason, 0)
        assert got == REPEAT, f"{reason}: {after['dropped']}"
    assert after["instances"]["VI_2"]["transitions"] == before["instances"]["VI_2"]["transitions"]
    assert after["instances"]["VI_1"]["transitions"] == before["instances"]["VI_1"]["transitions"]

    _send(pair, [{"vrid": V3, "ttl": 64, **to_a}], 1)  # the peer, as keepalived sends v6
    deadline = time.monotonic() + 5
    while ("MASTER", "BACKUP", "higher priority 254 advert from 10.9.0.3") not in [
        t[1:] for t in a.transitions("VI_1")
    ]:
        assert time.monotonic() < deadline, a.output()
        time.sleep(0.05)


def _accepted(status: dict[str, object], name: str) -> int:
    return int(status["instances"][name]["adverts_accepted"])  # type: ignore[index]


def test_advert_addresses_are_checked_unless_skipped_for_the_same_master(
    pair: PairLab,
) -> None:
    # keepalived's check (RFC 5798 7.1 MAY): a VIP list that differs from ours drops the
    # advert; vrrp_skip_check_adv_addr skips it for adverts from the last master heard.
    a = pair.director("a", "global_defs: {vrrp_skip_check_adv_addr: true}\n" + config_yaml(
        instance_yaml("VI_1", vrid=V3, priority=100),
        instance_yaml("VI_2", vrid=V2, priority=100, vips=("10.9.0.102/24",),
                      extra="skip_check_adv_addr: false"),
    )).start()
    a.wait_state("MASTER", "VI_1")
    a.wait_state("MASTER", "VI_2")
    before = a.fresh_status()
    _send(pair, [{"vrid": V3, "addresses": ["10.9.0.100", "10.9.0.109"]},  # one too many
                 {"vrid": V3, "addresses": ["10.9.0.109"]},  # not ours
                 {"vrid": V2, "addresses": ["10.9.0.100"]}], REPEAT)
    time.sleep(0.3)
    after = a.fresh_status()
    got = after["dropped"].get("address_mismatch", 0) - before["dropped"].get(
        "address_mismatch", 0)
    assert got == 3 * REPEAT, after["dropped"]
    assert after["instances"]["VI_1"]["state"] == "MASTER"
    assert "dropped advert: address_mismatch" in a.output()

    # the right addresses from 10.9.0.3: accepted (VI_1 steps down), and from then on
    # that master's adverts are not checked, another source's still are
    _send(pair, [{"vrid": V3}], 1)
    _send(pair, [{"vrid": V3, "addresses": ["10.9.0.109"]},
                 {"vrid": V3, "addresses": ["10.9.0.109"], "src": "10.9.0.4"}], REPEAT)
    time.sleep(0.3)
    last = a.fresh_status()
    assert last["dropped"].get("address_mismatch", 0) - after["dropped"].get(
        "address_mismatch", 0) == REPEAT  # only 10.9.0.4's
    assert _accepted(last, "VI_1") - _accepted(after, "VI_1") >= 1 + REPEAT


def test_unicast_adverts_from_others_are_taken_without_check_unicast_src(
    pair: PairLab,
) -> None:
    # keepalived's default: a unicast instance takes adverts from any source; only
    # check_unicast_src (or a peer's min_ttl/max_ttl) limits them to the peers.
    a = pair.director("a", config_yaml(instance_yaml(
        "VI_1", vrid=V3, extra="unicast_src_ip: 10.9.0.1\nunicast_peers: [10.9.0.3]"),
    )).start()
    a.wait_state("MASTER", "VI_1")
    mac = pair.lab.mac(pair.a_ns, "eth0")
    _send(pair, [{"vrid": V3, "src": "10.9.0.4", "dst": "10.9.0.1", "mac": mac}], 1)
    deadline = time.monotonic() + 5
    while ("MASTER", "BACKUP", "higher priority 254 advert from 10.9.0.4") not in [
        t[1:] for t in a.transitions("VI_1")
    ]:
        assert time.monotonic() < deadline, a.output()
        time.sleep(0.05)
