"""Listing: byte-exact ipvsadm -L -n layouts (plain, --stats, --rate), sorting, JSON both ways."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hacluster.ipvs.listing import (
    JsonTableError,
    from_json,
    info_from_json,
    largenum,
    ordered,
    render,
    to_json,
)
from hacluster.ipvs.model import (
    Destination,
    Forward,
    IpvsInfo,
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


# --------------------------------------------------------------------------- from_json

_U64 = st.integers(0, 2**64 - 1)
_V4 = st.builds(ipaddress.IPv4Address, st.integers(0, 2**32 - 1))
_V6 = st.builds(ipaddress.IPv6Address, st.integers(0, 2**128 - 1))
_FLAGS = st.sets(
    st.sampled_from([ServiceFlag.ONEPACKET, ServiceFlag.SCHED1, ServiceFlag.SCHED2,
                     ServiceFlag.SCHED3])
).map(lambda fs: ServiceFlag(sum(fs)))
_SCHEDULER = st.sampled_from(["rr", "wrr", "lc", "wlc", "sh", "mh", "fo", "twos"])


@st.composite
def _services(draw: st.DrawFn) -> Service:
    family = draw(st.sampled_from([4, 6]))
    netmask = draw(st.integers(0, 32 if family == 4 else 128))
    common: dict[str, Any] = {
        "scheduler": draw(_SCHEDULER),
        "flags": draw(_FLAGS),
        "timeout": draw(st.integers(0, 0xFFFFFFFF)),
        "netmask": netmask,
    }
    if draw(st.booleans()):
        return Service(fwmark=draw(st.integers(1, 0xFFFFFFFF)), family=family, **common)
    address: ipaddress.IPv4Address | ipaddress.IPv6Address = draw(_V4) if family == 4 else draw(
        _V6
    )
    return Service(
        draw(st.sampled_from(list(Protocol))),
        address,
        draw(st.integers(0, 65535)),
        **common,
    )


_DESTS = st.builds(
    Destination,
    st.one_of(_V4, _V6),
    st.integers(0, 65535),
    st.integers(0, 0x7FFFFFFF),
    st.sampled_from(list(Forward)),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
)
_SERVICE_STATS = st.builds(
    Stats, _U64, _U64, _U64, _U64, _U64, _U64, _U64, _U64, _U64, _U64
).filter(lambda s: s != Stats())
_DEST_STATS = st.builds(
    Stats, _U64, _U64, _U64, _U64, _U64, _U64, _U64, _U64, _U64, _U64, _U64, _U64, _U64
).filter(lambda s: s != Stats())


@st.composite
def tables(draw: st.DrawFn) -> tuple[Table, TableStats]:
    """A table in any order, with statistics for some of its services and destinations."""
    services = draw(st.lists(_services(), max_size=5, unique_by=lambda s: s.key))
    pairs = [(s, draw(st.lists(_DESTS, max_size=4, unique_by=lambda d: d.key)))
             for s in services]
    table = Table.of(pairs)
    service_stats = {s.key: draw(_SERVICE_STATS) for s in services if draw(st.booleans())}
    dest_stats = {
        (s.key, d.key): draw(_DEST_STATS)
        for s, dests in pairs
        for d in dests
        if draw(st.booleans())
    }
    return table, TableStats(service_stats, dest_stats)


@given(tables(), st.booleans())
def test_from_json_inverts_to_json(table_stats: tuple[Table, TableStats], sort: bool) -> None:
    table, stats = table_stats
    data = json.loads(json.dumps(to_json(table, stats, sort=sort)))
    back_table, back_stats = from_json(data)
    assert (back_table, back_stats) == (table, stats)
    # The JSON's order is the listing's order: printed as it comes (sort=False), the copy
    # gives the listing of the original byte for byte. (Sorting it again need not:
    # ipvsadm's wrapping comparison is not a total order, so its result depends on the
    # order it starts from.)
    assert list(back_table.entries) == [e.service.key for e in ordered(table, sort)]
    for mode in ("plain", "stats", "rate"):
        assert render(back_table, back_stats, mode=mode, sort=False) == render(
            table, stats, mode=mode, sort=sort
        )


def test_ipvsadm_order_is_not_total() -> None:
    # Why a listing from JSON is printed in the JSON's order: fwmark 0 and 2**31 each
    # compare "less" than the other, so a sort of a sorted list can differ.
    tcp = Service(Protocol.TCP, ipaddress.IPv4Address("0.0.0.0"), 0, scheduler="rr")
    fwm = Service(fwmark=2**31, family=4, scheduler="rr")
    first = render(Table.of([(tcp, []), (fwm, [])]))
    second = render(Table.of([(fwm, []), (tcp, [])]))
    assert first != second


def test_from_json_of_the_fixed_table_renders_byte_for_byte() -> None:
    table, stats = from_json(json.loads(json.dumps(to_json(TABLE, STATS))))
    assert (table, stats) == (TABLE, STATS)
    for mode in ("plain", "stats", "rate"):
        assert render(table, stats, mode=mode, exact=True, sort=False) == render(
            TABLE, STATS, mode=mode, exact=True
        )


def test_zero_statistics_are_left_out() -> None:
    # to_json writes zeros for what has no statistics; reading back gives none.
    assert from_json(to_json(TABLE)) == (TABLE, TableStats())


def test_info_travels_when_given() -> None:
    data = to_json(TABLE, info=IpvsInfo("1.2.1", 1048576))
    assert data["info"] == {"version": "1.2.1", "size": 1048576}
    assert info_from_json(data) == IpvsInfo("1.2.1", 1048576)
    assert info_from_json(to_json(TABLE)) == IpvsInfo()  # absent: a stock kernel's header
    assert from_json(data) == (TABLE, TableStats())


def _bad(edit: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(to_json(TABLE, STATS)))
    edit(data)
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("services"), "table: missing 'services'"),
        (lambda d: d.update(services={}), "services: expected a list, got dict"),
        (lambda d: d["services"].append(7), "services[4]: expected an object, got int"),
        (lambda d: d["services"][0].update(port="80"),
         "services[0].port: expected an integer 0..65535, got '80'"),
        (lambda d: d["services"][0].update(port=True), "services[0].port: expected an integer"),
        (lambda d: d["services"][0].update(protocol="ICMP"),
         "services[0].protocol: 'ICMP' is not one of TCP, UDP, SCTP"),
        (lambda d: d["services"][0].update(address="10.0.0.300"),
         "services[0].address: not an IP address: '10.0.0.300'"),
        (lambda d: d["services"][0].update(family=6),
         "services[0]: family 6 does not match address 10.0.0.2"),
        (lambda d: d["services"][1].update(flags=["HASHY"]),
         "services[1].flags: unknown service flag 'HASHY'"),
        (lambda d: d["services"][0]["destinations"][1].update(forward="Masq"),
         "services[0].destinations[1].forward: 'Masq' is not one of NAT, DR, TUN"),
        (lambda d: d["services"][0]["destinations"][0]["stats"].pop("inactconns"),
         "services[0].destinations[0].stats: missing 'inactconns'"),
        (lambda d: d["services"][0]["stats"].update(conns=2**64),
         "services[0].stats.conns: expected an integer"),
        (lambda d: d["services"][0]["destinations"].append(d["services"][0]["destinations"][0]),
         "services[0].destinations[2]: duplicate destination 10.0.1.1:8080"),
        (lambda d: d["services"].append(d["services"][0]),
         "services[4]: duplicate service TCP 10.0.0.2:80"),
        (lambda d: d.update(info={"version": "1.2.1"}), "info: missing 'size'"),
    ],
)
def test_from_json_names_what_is_wrong(edit: Any, message: str) -> None:
    data = _bad(edit)
    with pytest.raises(JsonTableError) as caught:
        from_json(data)
        info_from_json(data)
    assert message in str(caught.value)


@pytest.mark.parametrize("data", [None, [], "services", 3])
def test_from_json_refuses_what_is_not_an_object(data: Any) -> None:
    with pytest.raises(ValueError, match="table: expected an object"):
        from_json(data)
