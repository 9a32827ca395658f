"""vrrp.frames against scapy: the hand-built announcement frames are byte for byte scapy's."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vrrp import frames

scapy_l2 = pytest.importorskip("scapy.layers.l2")
scapy_inet6 = pytest.importorskip("scapy.layers.inet6")

macs = st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b))


def scapy_arp(ip: str, mac: str) -> bytes:
    ether, arp = scapy_l2.Ether, scapy_l2.ARP
    bcast = "ff:ff:ff:ff:ff:ff"
    return bytes(ether(dst=bcast, src=mac, type=0x0806)
                 / arp(op=1, hwsrc=mac, psrc=ip, hwdst=bcast, pdst=ip))


def scapy_na(ip: str, mac: str, router: bool) -> bytes:
    return bytes(
        scapy_l2.Ether(dst="33:33:00:00:00:01", src=mac)
        / scapy_inet6.IPv6(src=ip, dst="ff02::1", hlim=255)
        / scapy_inet6.ICMPv6ND_NA(tgt=ip, R=int(router), S=0, O=1)
        / scapy_inet6.ICMPv6NDOptDstLLAddr(lladdr=mac)
    )


@given(st.ip_addresses(v=4), macs)
def test_gratuitous_arp_is_scapys(ip: ipaddress.IPv4Address, mac: str) -> None:
    assert frames.gratuitous_arp(ip, mac) == scapy_arp(str(ip), mac)


@given(st.ip_addresses(v=6), macs, st.booleans())
def test_unsolicited_na_is_scapys(ip: ipaddress.IPv6Address, mac: str, router: bool) -> None:
    assert frames.unsolicited_na(ip, mac, router) == scapy_na(str(ip), mac, router)


def test_a_bad_mac_is_refused() -> None:
    with pytest.raises(ValueError):
        frames.gratuitous_arp(ipaddress.IPv4Address("10.0.0.1"), "02:00:00")
