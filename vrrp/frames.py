"""Announcement frames built by hand: gratuitous ARP and unsolicited neighbour advert. No I/O.

Written here rather than with scapy because importing scapy's layers costs 0.6-1.3 s,
and a VRRP process must announce its VIPs the moment it becomes master, right after
start too. The frames are small and fixed; tests/unit/test_frames.py checks them byte
for byte against scapy's.
"""

from __future__ import annotations

import ipaddress
import struct

from vrrp.packet import inet_checksum

ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
BROADCAST = b"\xff" * 6
ALL_NODES = ipaddress.IPv6Address("ff02::1")
ALL_NODES_MAC = b"\x33\x33\x00\x00\x00\x01"  # ff02::1 mapped to Ethernet (RFC 2464 7)
ICMPV6 = 58
ND_NEIGHBOR_ADVERT = 136
ND_OPT_TARGET_LLADDR = 2


def mac_bytes(mac: str) -> bytes:
    raw = bytes.fromhex(mac.replace(":", ""))
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return raw


def gratuitous_arp(ip: ipaddress.IPv4Address, mac: str) -> bytes:
    """ARP request "who-has IP tell IP" to broadcast, as keepalived sends it (RFC 5227 3)."""
    hw = mac_bytes(mac)
    ether = BROADCAST + hw + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + hw + ip.packed + BROADCAST + ip.packed
    return ether + arp


def unsolicited_na(ip: ipaddress.IPv6Address, mac: str, router: bool = False) -> bytes:
    """Unsolicited neighbour advert to all-nodes (RFC 4861 7.2.6): override set, solicited
    clear, router as the interface forwards; the target's link-layer address option."""
    hw = mac_bytes(mac)
    flags = (0x80 if router else 0) | 0x20  # R, S (clear), O
    option = struct.pack("!BB", ND_OPT_TARGET_LLADDR, 1) + hw
    body = struct.pack("!BBHB3x", ND_NEIGHBOR_ADVERT, 0, 0, flags) + ip.packed + option
    pseudo = ip.packed + ALL_NODES.packed + struct.pack("!I3xB", len(body), ICMPV6)
    cksum = inet_checksum(pseudo + body)
    body = body[:2] + struct.pack("!H", cksum) + body[4:]
    ipv6 = struct.pack("!IHBB", 6 << 28, len(body), ICMPV6, 255) + ip.packed + ALL_NODES.packed
    ether = ALL_NODES_MAC + hw + struct.pack("!H", ETH_P_IPV6)
    return ether + ipv6 + body
