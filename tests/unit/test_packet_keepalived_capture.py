"""The codec against real keepalived adverts captured on a veth pair between two namespaces.

keepalived (the Debian package) runs one v2 PASS instance, a v3 multicast and a v3 unicast
IPv4 instance and a v3 IPv6 instance; tcpdump records what reaches the other end. Every
captured message must decode, carry what the configuration says, and re-encode to exactly
keepalived's bytes.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

import pytest
from scapy.utils import RawPcapReader

from vrrp.packet import (
    VRRP_MCAST_V4,
    VRRP_MCAST_V6,
    VRRP_PROTO,
    VRRP_TTL,
    AuthType,
    ChecksumVariant,
    Decoded,
    DecodeError,
    DecodeReason,
    IPAddress,
    check_auth,
    decode,
    encode,
)

pytestmark = [pytest.mark.netns, pytest.mark.keepalived]

K_ADDR = "192.168.213.1"
C_ADDR = "192.168.213.2"
AUTH_PASS = "hcasecret1"  # keepalived cuts this to 8 bytes ("hcasecre") with a warning

KEEPALIVED_CONF = """\
global_defs {{
  router_id hca-capture
}}
vrrp_instance V2_PASS {{
  interface {ifname}
  state MASTER
  virtual_router_id 51
  priority 255
  advert_int 1
  version 2
  authentication {{
    auth_type PASS
    auth_pass {auth_pass}
  }}
  virtual_ipaddress {{
    192.168.213.100/24
    192.168.213.101/24
  }}
}}
vrrp_instance V3_MCAST {{
  interface {ifname}
  state MASTER
  virtual_router_id 52
  priority 255
  advert_int 0.1
  version 3
  virtual_ipaddress {{
    192.168.213.102/24
  }}
}}
vrrp_instance V3_UNICAST {{
  interface {ifname}
  state MASTER
  virtual_router_id 53
  priority 255
  advert_int 0.2
  version 3
  unicast_src_ip {k_addr}
  unicast_peer {{
    {c_addr}
  }}
  virtual_ipaddress {{
    192.168.213.103/24
  }}
}}
vrrp_instance V3_IPV6 {{
  interface {ifname}
  state MASTER
  virtual_router_id 54
  priority 255
  advert_int 0.15
  version 3
  virtual_ipaddress {{
    fe80::54
    2001:db8:213::100/64
  }}
}}
"""


@dataclass(frozen=True, slots=True)
class Captured:
    """One VRRP message as it reached the capturing namespace."""

    src: IPAddress
    dst: IPAddress
    ttl: int
    payload: bytes


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=10)


def _stop(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _wait_for_line(proc: subprocess.Popen[bytes], needle: bytes, timeout: float) -> None:
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    seen = b""
    while needle not in seen:
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            raise AssertionError(f"tcpdump did not start: {seen!r}")
        ready, _, _ = select.select([proc.stderr], [], [], left)
        if ready:
            seen += os.read(proc.stderr.fileno(), 4096)


def _messages(pcap: Path) -> list[Captured]:
    """VRRP messages in an Ethernet capture, cut to the IP payload length (no padding)."""
    found = []
    for frame, _meta in RawPcapReader(str(pcap)):
        ethertype = int.from_bytes(frame[12:14], "big")
        ip = frame[14:]
        if ethertype == 0x0800 and ip[9] == VRRP_PROTO:
            ihl = (ip[0] & 0x0F) * 4
            total = int.from_bytes(ip[2:4], "big")
            found.append(Captured(IPv4Address(ip[12:16]), IPv4Address(ip[16:20]), ip[8],
                                  bytes(ip[ihl:total])))
        elif ethertype == 0x86DD and ip[6] == VRRP_PROTO:
            length = int.from_bytes(ip[4:6], "big")
            found.append(Captured(IPv6Address(ip[8:24]), IPv6Address(ip[24:40]), ip[7],
                                  bytes(ip[40 : 40 + length])))
    return found


def _wait_for_adverts(pcap: Path, wanted: dict[int, int], timeout: float) -> None:
    """Until the capture holds at least ``wanted[vrid]`` messages of each VRID."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        try:
            vrids = [msg.payload[1] for msg in _messages(pcap)]
        except (OSError, EOFError, ValueError, IndexError):
            continue  # not written yet, or a record cut short mid-write
        if all(vrids.count(vrid) >= n for vrid, n in wanted.items()):
            return


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Captured]]:
    tmp = tmp_path_factory.mktemp("hca-capture")
    tag = f"{os.getpid() % 100000}"
    ns_k, ns_c = f"hca-pk-{tag}", f"hca-pc-{tag}"
    if_k, if_c = f"hcapk{tag}", f"hcapc{tag}"
    procs: list[tuple[subprocess.Popen[bytes], int]] = []
    made: list[str] = []
    try:
        for ns in (ns_k, ns_c):
            _run("ip", "netns", "add", ns)
            made.append(ns)
            # No duplicate address detection, so the link-local source is usable at once.
            _run("ip", "netns", "exec", ns, "sysctl", "-qw",
                 "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "link", "add", if_k, "netns", ns_k, "type", "veth",
             "peer", "name", if_c, "netns", ns_c)
        _run("ip", "-n", ns_k, "addr", "add", f"{K_ADDR}/24", "dev", if_k)
        _run("ip", "-n", ns_c, "addr", "add", f"{C_ADDR}/24", "dev", if_c)
        _run("ip", "-n", ns_k, "link", "set", if_k, "up")
        _run("ip", "-n", ns_c, "link", "set", if_c, "up")

        pcap = tmp / "vrrp.pcap"
        tcpdump = subprocess.Popen(
            ["ip", "netns", "exec", ns_c, "tcpdump", "-i", if_c, "-n", "-U", "-w", str(pcap),
             "ip proto 112 or ip6 proto 112"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append((tcpdump, signal.SIGINT))
        _wait_for_line(tcpdump, b"listening on", timeout=10)

        conf = tmp / "keepalived.conf"
        conf.write_text(KEEPALIVED_CONF.format(ifname=if_k, auth_pass=AUTH_PASS,
                                               k_addr=K_ADDR, c_addr=C_ADDR))
        keepalived = subprocess.Popen(
            ["ip", "netns", "exec", ns_k, "keepalived", "-P", "-n", "-l", "-D",
             "-f", str(conf), "-p", str(tmp / "main.pid"), "-r", str(tmp / "vrrp.pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append((keepalived, signal.SIGTERM))
        _wait_for_adverts(pcap, {51: 1, 52: 3, 53: 2, 54: 2}, timeout=10)
        _stop(keepalived, signal.SIGTERM)  # a stopping master sends priority 0
        time.sleep(0.3)
        _stop(tcpdump, signal.SIGINT)
        yield _messages(pcap)
    finally:
        for proc, sig in reversed(procs):
            _stop(proc, sig)
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


def _by_vrid(captured: list[Captured], vrid: int) -> list[tuple[Captured, Decoded]]:
    found = [(c, decode(c.payload, c.src, c.dst)) for c in captured if c.payload[1] == vrid]
    assert found, f"no adverts for VRID {vrid} captured"
    return found


def test_every_captured_advert_decodes_and_re_encodes_byte_exact(
    captured: list[Captured],
) -> None:
    assert len(captured) >= 8
    for msg in captured:
        decoded = decode(msg.payload, msg.src, msg.dst)
        pseudo = decoded.checksum is not ChecksumVariant.V3_NO_PSEUDO
        assert encode(decoded.advert, msg.src, msg.dst, pseudo_header=pseudo) == msg.payload
        assert msg.ttl == VRRP_TTL


def test_v2_pass(captured: list[Captured]) -> None:
    adverts = _by_vrid(captured, 51)
    for msg, decoded in adverts:
        advert = decoded.advert
        assert (msg.src, msg.dst) == (IPv4Address(K_ADDR), VRRP_MCAST_V4)
        assert decoded.checksum is ChecksumVariant.V2
        assert advert.version == 2
        assert advert.max_advert_int == 1.0
        assert advert.addresses == (IPv4Address("192.168.213.100"),
                                    IPv4Address("192.168.213.101"))
        assert advert.auth_type == AuthType.PASS
        assert advert.auth_data == b"hcasecre"
        check_auth(advert, AuthType.PASS, AUTH_PASS)
        check_auth(advert, AuthType.PASS, "hcasecre")  # only 8 bytes count, as in keepalived
        for wrong_type, wrong_pass in ((AuthType.PASS, "hcasecrX"), (AuthType.NONE, None)):
            with pytest.raises(DecodeError) as exc:
                check_auth(advert, wrong_type, wrong_pass)
            assert exc.value.reason is DecodeReason.BAD_AUTH
    assert adverts[0][1].advert.priority == 255


def test_v3_multicast_ipv4_uses_the_pseudo_header(captured: list[Captured]) -> None:
    adverts = _by_vrid(captured, 52)
    assert len(adverts) >= 3
    for msg, decoded in adverts:
        assert (msg.src, msg.dst) == (IPv4Address(K_ADDR), VRRP_MCAST_V4)
        assert decoded.checksum is ChecksumVariant.V3_PSEUDO
        assert decoded.advert.max_advert_int == 0.1
        assert decoded.advert.addresses == (IPv4Address("192.168.213.102"),)
        assert decode(msg.payload, msg.src, msg.dst, accept_no_pseudo=False) == decoded


def test_v3_unicast_pseudo_header_has_the_unicast_destination(
    captured: list[Captured],
) -> None:
    adverts = _by_vrid(captured, 53)
    assert len(adverts) >= 2
    for msg, decoded in adverts:
        assert (msg.src, msg.dst) == (IPv4Address(K_ADDR), IPv4Address(C_ADDR))
        assert decoded.checksum is ChecksumVariant.V3_PSEUDO
        assert decoded.advert.max_advert_int == 0.2
        # Not keepalived's pre-1.3.6 habit of summing the multicast group instead.
        with pytest.raises(DecodeError) as exc:
            decode(msg.payload, msg.src, VRRP_MCAST_V4)
        assert exc.value.reason is DecodeReason.BAD_CHECKSUM


def test_v3_ipv6_from_link_local(captured: list[Captured]) -> None:
    adverts = _by_vrid(captured, 54)
    assert len(adverts) >= 2
    for msg, decoded in adverts:
        assert isinstance(msg.src, IPv6Address) and msg.src.is_link_local
        assert msg.dst == VRRP_MCAST_V6
        assert decoded.checksum is ChecksumVariant.V3_PSEUDO
        assert decoded.advert.family == 6
        assert decoded.advert.max_advert_int == 0.15
        assert decoded.advert.addresses == (ip_address("fe80::54"),
                                            ip_address("2001:db8:213::100"))


def test_stopping_keepalived_resigns_with_priority_zero(captured: list[Captured]) -> None:
    for vrid in (51, 52, 53, 54):
        priorities = [decoded.advert.priority for _, decoded in _by_vrid(captured, vrid)]
        assert priorities[-1] == 0, (vrid, priorities)
        assert set(priorities[:-1]) == {255}, (vrid, priorities)
