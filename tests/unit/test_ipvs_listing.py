"""Listing: byte-exact ipvsadm -L -n layouts (plain, --stats, --rate), sorting, JSON."""

from __future__ import annotations

import ipaddress
import json

import pytest

from hacluster.ipvs.listing import largenum, render, to_json
from hacluster.ipvs.model import (
    Destination,
    Forward,
    Protocol,
    Service,
    ServiceFlag,
    Stats,
    Table,
    TableStats,
)

WEB = Service(Protocol.TCP, ipaddress.IPv4Address("10.0.0.2"), 80, scheduler="wrr")
DNS = Service(
    Protocol.UDP,
    ipaddress.IPv4Address("10.0.0.1"),
    53,
    scheduler="sh",
    flags=ServiceFlag.SCHED1 | ServiceFlag.SCHED2,
    timeout=300,
    netmask=24,
)
V6 = Service(
    Protocol.TCP,
    ipaddress.IPv6Address("2001:db8::1"),
    443,
    timeout=60,
    netmask=64,
    flags=ServiceFlag.ONEPACKET,
)
FWM = Service(fwmark=3, family=4, scheduler="rr")
D1 = Destination(ipaddress.IPv4Address("10.0.1.2"), 80, 3)
D2 = Destination(ipaddress.IPv4Address("10.0.1.1"), 8080, 0, Forward.DR)
D6 = Destination(ipaddress.IPv6Address("2001:db8::11"), 443)
DT = Destination(ipaddress.IPv4Address("10.0.1.3"), 0, 1, Forward.TUN)

# Deliberately out of order: ipvsadm sorts by fwmark, family, protocol, address, port.
TABLE = Table.of([(FWM, [DT]), (V6, [D6]), (DNS, []), (WEB, [D1, D2])])
STATS = TableStats(
    {WEB.key: Stats(1234, 99_999_999, 100_000_000, 123_456_789_012, 10**16, 7, 8, 9, 10, 11)},
    {(WEB.key, D1.key): Stats(conns=5, cps=1, inbps=2_000_000_000, activeconns=4, inactconns=2)},
)


def test_plain_layout() -> None:
    assert render(TABLE, STATS) == (
        "IP Virtual Server version 1.2.1 (size=4096)\n"
        "Prot LocalAddress:Port Scheduler Flags\n"
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        "TCP  10.0.0.2:80 wrr\n"
        "  -> 10.0.1.1:8080                Route   0      0          0         \n"
        "  -> 10.0.1.2:80                  Masq    3      4          2         \n"
        "UDP  10.0.0.1:53 sh (sh-fallback,sh-port) persistent 300 mask 255.255.255.0\n"
        "TCP  [2001:db8::1]:443 wlc persistent 60 mask 64 ops\n"
        "  -> [2001:db8::11]:443           Masq    1      0          0         \n"
        "FWM  3 rr\n"
        "  -> 10.0.1.3:0                   Tunnel  1      0          0         \n"
    )


def test_stats_layout() -> None:
    lines = render(TABLE, STATS, mode="stats").splitlines()
    assert lines[1:5] == [
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes",
        "  -> RemoteAddress:Port",
        "TCP  10.0.0.2:80                      1234 99999999  100000K     123G   10000T",
        "  -> 10.0.1.1:8080                       0        0        0        0        0",
    ]
    assert lines[5] == (
        "  -> 10.0.1.2:80                         5        0        0        0        0"
    )


def test_rate_layout() -> None:
    lines = render(TABLE, STATS, mode="rate", version="1.2.1", size=1048576).splitlines()
    assert lines[:5] == [
        "IP Virtual Server version 1.2.1 (size=1048576)",
        "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS",
        "  -> RemoteAddress:Port",
        "TCP  10.0.0.2:80                         7        8        9       10       11",
        "  -> 10.0.1.1:8080                       0        0        0        0        0",
    ]
    assert lines[5] == (
        "  -> 10.0.1.2:80                         1        0        0    2000M        0"
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "        0"),
        (99_999_999, " 99999999"),
        (100_000_000, "  100000K"),
        (999_999_999, "  999999K"),
        (99_999_999_999, "   99999M"),
        (100_000_000_000, "     100G"),
        (99_999_999_999_999, "   99999G"),
        (100_000_000_000_000, "     100T"),
        (2**64 - 1, "18446744T"),
    ],
)
def test_largenum(value: int, text: str) -> None:
    assert largenum(value) == text


def test_largenum_exact() -> None:
    assert largenum(5, exact=True) == "        5"
    assert largenum(123456789012, exact=True) == " 123456789012"


def test_ipvsadm_sort_quirk_wraps_like_c() -> None:
    # ipvsadm compares ntohl(a) - ntohl(b) as a C int: 1.0.0.1 sorts after 200.0.0.1.
    low = Service(Protocol.TCP, ipaddress.IPv4Address("1.0.0.1"), 80)
    high = Service(Protocol.TCP, ipaddress.IPv4Address("200.0.0.1"), 80)
    text = render(Table.of([(low, []), (high, [])]))
    assert text.index("200.0.0.1") < text.index("1.0.0.1:80")
    near = Service(Protocol.TCP, ipaddress.IPv4Address("100.0.0.1"), 80)
    text = render(Table.of([(near, []), (low, [])]))
    assert text.index(" 1.0.0.1") < text.index("100.0.0.1")


@pytest.mark.parametrize(
    ("scheduler", "flags", "text"),
    [
        ("sh", ServiceFlag.SCHED1, " sh (sh-fallback)"),
        ("mh", ServiceFlag.SCHED1 | ServiceFlag.SCHED2, " mh (mh-fallback,mh-port)"),
        ("sh", ServiceFlag.SCHED3, " sh ()"),  # ipvsadm never names flag-3 for sh/mh
        ("wlc", ServiceFlag.SCHED1 | ServiceFlag.SCHED3, " wlc (flag-1,flag-3)"),
        ("rr", ServiceFlag.ONEPACKET, " rr ops"),  # ops is printed without persistence too
    ],
)
def test_scheduler_flags_as_ipvsadm_prints_them(
    scheduler: str, flags: ServiceFlag, text: str
) -> None:
    service = Service(
        Protocol.UDP, ipaddress.IPv4Address("10.0.0.1"), 53, scheduler=scheduler, flags=flags
    )
    assert render(Table.of([(service, [])])).splitlines()[3] == f"UDP  10.0.0.1:53{text}"


def test_nosort_keeps_table_order() -> None:
    text = render(TABLE, sort=False)
    assert text.index("FWM") < text.index("UDP") < text.index("10.0.0.2")


def test_json_round_trips_and_names_everything() -> None:
    data = json.loads(json.dumps(to_json(TABLE, STATS)))
    web = data["services"][0]
    assert web["protocol"] == "TCP" and web["address"] == "10.0.0.2" and web["scheduler"] == "wrr"
    assert [d["port"] for d in web["destinations"]] == [8080, 80]
    assert web["destinations"][0]["forward"] == "DR"
    assert web["destinations"][1]["stats"]["activeconns"] == 4
    assert web["stats"]["outbytes"] == 10**16
    dns = data["services"][1]
    assert dns["flags"] == ["SCHED1", "SCHED2"] and dns["netmask"] == 24
    assert data["services"][3]["fwmark"] == 3 and data["services"][3]["protocol"] is None
