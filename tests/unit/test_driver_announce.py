"""Announcements: frame layout and keepalived's burst / delay / refresh schedule (fake socket)."""

from __future__ import annotations

import asyncio
import ipaddress

from vrrp.addresses import Vip
from vrrp.announce import AnnounceParams, Announcer, build_frame, interface_mac

VIP4 = Vip(ipaddress.IPv4Interface("10.0.0.100/24"), "lo")
VIP6 = Vip(ipaddress.IPv6Interface("fd00::100/64"), "lo")
MAC = "02:00:00:00:00:01"


class RecordingSockets:
    def __init__(self) -> None:
        self.sent: list[tuple[float, str, bytes]] = []

    def send(self, dev: str, frame: bytes) -> bool:
        self.sent.append((asyncio.get_running_loop().time(), dev, frame))
        return True

    def mac(self, dev: str) -> str:
        return interface_mac(dev)


def test_gratuitous_arp_is_who_has_vip_tell_vip_to_broadcast() -> None:
    from scapy.layers.l2 import ARP, Ether

    frame = Ether(build_frame(VIP4, MAC))
    assert frame.dst == "ff:ff:ff:ff:ff:ff" and frame.src == MAC
    arp = frame[ARP]
    assert arp.op == 1  # request, as keepalived sends it
    assert arp.psrc == arp.pdst == "10.0.0.100"
    assert arp.hwsrc == MAC


def test_unsolicited_neighbour_advert_overrides_and_is_not_solicited() -> None:
    from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
    from scapy.layers.l2 import Ether

    frame = Ether(build_frame(VIP6, MAC, router=True))
    assert frame.dst == "33:33:00:00:00:01"
    ip6 = frame[IPv6]
    assert (ip6.src, ip6.dst, ip6.hlim) == ("fd00::100", "ff02::1", 255)
    na = frame[ICMPv6ND_NA]
    assert (na.tgt, na.O, na.S, na.R) == ("fd00::100", 1, 0, 1)
    assert frame[ICMPv6NDOptDstLLAddr].lladdr == MAC
    # The checksum scapy computed is right: rebuilding from the parsed frame keeps it.
    assert ICMPv6ND_NA(bytes(na)).cksum == na.cksum


async def test_burst_then_delayed_burst_then_refresh_until_stopped() -> None:
    sockets = RecordingSockets()
    params = AnnounceParams(delay=0.1, repeat=3, refresh=0.15, refresh_repeat=2)
    announcer = Announcer("VI_1", params, sockets)
    loop = asyncio.get_running_loop()
    await announcer.prepare([VIP4, VIP6])
    start = loop.time()
    announcer.start([VIP4, VIP6])
    assert len(sockets.sent) == 6  # 3 x 2 VIPs, before start() returned
    await asyncio.sleep(0.5)
    announcer.stop()
    sent = len(sockets.sent)
    await asyncio.sleep(0.2)
    assert len(sockets.sent) == sent  # stopped: nothing more
    bursts = sorted({round(t - start, 2) for t, _, _ in sockets.sent})
    # Only lower bounds on the later bursts: a loaded machine may run a timer late,
    # never early, and timers fire in order, so each burst keeps its place.
    assert bursts[0] < 0.1  # the first burst, sent synchronously
    assert len(bursts) >= 3
    assert bursts[1] >= 0.1  # garp_master_delay burst; nothing between the bursts
    assert bursts[2] >= 0.25  # refresh
    counts = announcer.counts
    assert counts["garp"] == counts["na"]
    assert counts["garp"] == 3 + 3 + 2 * ((sent - 12) // 4)
    assert {dev for _, dev, _ in sockets.sent} == {"lo"}
    assert interface_mac("lo") == "00:00:00:00:00:00"


async def test_announcing_nothing_starts_nothing() -> None:
    sockets = RecordingSockets()
    announcer = Announcer("VI_1", AnnounceParams(), sockets)
    announcer.start([])
    await asyncio.sleep(0.01)
    assert not announcer.active and sockets.sent == []


async def test_reannounce_sends_the_lower_prio_burst_now_and_after_the_delay() -> None:
    # keepalived's answer to a lower-priority advert heard as master: garp_lower_prio_repeat
    # frames at once, again after garp_lower_prio_delay; the master schedule keeps running.
    sockets = RecordingSockets()
    params = AnnounceParams(delay=0, repeat=1, refresh=0.3, lower_prio_repeat=4,
                            lower_prio_delay=0.1)
    announcer = Announcer("VI_1", params, sockets)
    loop = asyncio.get_running_loop()
    await announcer.prepare([VIP4])
    announcer.start([VIP4])
    start = loop.time()
    announcer.reannounce([VIP4])
    assert len(sockets.sent) == 1 + 4  # the takeover burst, then the lower-prio one at once
    await asyncio.sleep(0.2)
    late = [t - start for t, _, _ in sockets.sent[5:]]
    assert len(late) == 4 and min(late) >= 0.1  # the delayed burst, never early
    assert announcer.active  # the master's refresh schedule is still there
    announcer.stop()
    assert announcer.counts["garp"] == 9


async def test_reannounce_with_zero_repeat_sends_nothing() -> None:
    sockets = RecordingSockets()
    announcer = Announcer("VI_1", AnnounceParams(lower_prio_repeat=0), sockets)
    await announcer.prepare([VIP4])
    announcer.reannounce([VIP4])
    await asyncio.sleep(0.01)
    assert sockets.sent == []
