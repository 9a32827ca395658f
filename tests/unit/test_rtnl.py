"""vrrp.rtnl against pyroute2: our requests equal its bytes; its messages decode as it meant."""

from __future__ import annotations

import ipaddress
import socket
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyroute2.netlink import (
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_EXCL,
    NLM_F_MULTI,
    NLM_F_REQUEST,
    nlmsgerr,
)
from pyroute2.netlink.rtnl import (
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTMGRP_IPV4_IFADDR,
    RTMGRP_IPV6_IFADDR,
    RTMGRP_LINK,
)
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from vrrp import rtnl
from vrrp.addresses import Vip, encode

ADDRESSES = ["10.9.0.100/24", "192.0.2.1/32", "fd00:9::100/64", "2001:db8::1/128",
             "fe80::1/64"]


def _pyroute2_address(command: str, address: str, index: int, scope: int,
                      label: str | None, seq: int) -> bytes:
    """The request as pyroute2 encodes it (the fields `ip addr add/del` sends)."""
    iface = ipaddress.ip_interface(address)
    ip = str(iface.ip)
    msg: Any = ifaddrmsg()
    msg["family"] = socket.AF_INET if iface.version == 4 else socket.AF_INET6
    msg["prefixlen"] = iface.network.prefixlen
    msg["index"] = index
    msg["scope"] = scope
    attrs: list[tuple[str, Any]] = [("IFA_ADDRESS", ip)]
    if iface.version == 4:
        attrs.insert(0, ("IFA_LOCAL", ip))
        if label is not None and command == "add":
            attrs.append(("IFA_LABEL", label))
    elif command == "add":
        attrs.append(("IFA_FLAGS", rtnl.IFA_F_NODAD))
    msg["attrs"] = attrs
    flags = NLM_F_REQUEST | NLM_F_ACK
    if command == "add":
        msg["header"]["type"] = RTM_NEWADDR
        flags |= NLM_F_CREATE | NLM_F_EXCL
    else:
        msg["header"]["type"] = RTM_DELADDR
    msg["header"]["flags"] = flags
    msg["header"]["sequence_number"] = seq
    msg.encode()
    return bytes(msg.data)


def test_constants_are_the_kernels_as_pyroute2_names_them() -> None:
    assert (rtnl.RTM_NEWADDR, rtnl.RTM_DELADDR, rtnl.RTM_GETADDR) == (
        RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR)
    assert (rtnl.RTM_NEWLINK, rtnl.RTM_DELLINK, rtnl.RTM_GETLINK) == (
        RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK)
    assert (rtnl.RTMGRP_LINK, rtnl.RTMGRP_IPV4_IFADDR, rtnl.RTMGRP_IPV6_IFADDR) == (
        RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR)
    assert (rtnl.NLM_F_DUMP, rtnl.NLM_F_CREATE, rtnl.NLM_F_EXCL, rtnl.NLM_F_MULTI) == (
        NLM_F_DUMP, NLM_F_CREATE, NLM_F_EXCL, NLM_F_MULTI)


@pytest.mark.parametrize("command", ["add", "del"])
@pytest.mark.parametrize("address", ADDRESSES)
@pytest.mark.parametrize(("scope", "label"), [(0, None), (253, None), (0, "eth0:vip"),
                                              (200, "e:1234567")])
def test_address_requests_equal_pyroute2s_bytes(command: str, address: str, scope: int,
                                                label: str | None) -> None:
    ours = rtnl.encode_address(command, address, 7, scope=scope, label=label, seq=99)
    assert ours == _pyroute2_address(command, address, 7, scope, label, 99)
    vip = Vip(ipaddress.ip_interface(address), "eth0", scope, label)
    assert encode(command, vip, 7)[16:] == ours[16:]  # the daemon's, seq set when sent


@settings(max_examples=200, deadline=None)
@given(
    command=st.sampled_from(["add", "del"]),
    v6=st.booleans(),
    raw=st.binary(min_size=16, max_size=16),
    prefix=st.integers(0, 128),
    index=st.integers(1, 2**31 - 1),
    scope=st.integers(0, 255),
    label=st.none() | st.text("abcdefghij0123456789:.-_", min_size=1, max_size=15),
    seq=st.integers(0, 2**32 - 1),
)
def test_any_address_request_equals_pyroute2s(command: str, v6: bool, raw: bytes, prefix: int,
                                              index: int, scope: int, label: str | None,
                                              seq: int) -> None:
    if v6:
        address = f"{ipaddress.IPv6Address(raw)}/{prefix}"
    else:
        address = f"{ipaddress.IPv4Address(raw[:4])}/{prefix % 33}"
    ours = rtnl.encode_address(command, address, index, scope=scope, label=label, seq=seq)
    assert ours == _pyroute2_address(command, address, index, scope, label, seq)


@pytest.mark.parametrize("family", [socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6])
def test_dump_requests_equal_pyroute2s(family: int) -> None:
    for kind, cls in ((RTM_GETADDR, ifaddrmsg), (RTM_GETLINK, ifinfmsg)):
        msg: Any = cls()
        msg["family"] = family
        msg["header"]["type"] = kind
        msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_DUMP
        msg["header"]["sequence_number"] = 5
        msg.encode()
        assert rtnl.encode_dump(kind, family, seq=5) == bytes(msg.data)


def test_unknown_commands_are_refused() -> None:
    with pytest.raises(ValueError):
        rtnl.encode_address("replace", "10.0.0.1/32", 1)
    with pytest.raises(ValueError):
        rtnl.encode_dump(RTM_NEWADDR)


def _pyroute2_addr_event(kind: int, attrs: list[tuple[str, Any]], **fields: int) -> bytes:
    msg: Any = ifaddrmsg()
    for key, value in fields.items():
        msg[key] = value
    msg["attrs"] = attrs
    msg["header"]["type"] = kind
    msg["header"]["flags"] = NLM_F_MULTI
    msg["header"]["sequence_number"] = 3
    msg.encode()
    return bytes(msg.data)


def test_decodes_pyroute2_built_address_messages() -> None:
    v4 = _pyroute2_addr_event(
        RTM_NEWADDR,
        [("IFA_ADDRESS", "10.1.2.3"), ("IFA_LOCAL", "10.1.2.3"), ("IFA_LABEL", "eth0:a"),
         ("IFA_BROADCAST", "10.1.2.255"), ("IFA_FLAGS", 0x80)],
        family=socket.AF_INET, prefixlen=24, flags=0x80, scope=0, index=4)
    v6 = _pyroute2_addr_event(
        RTM_DELADDR,
        [("IFA_CACHEINFO", {"ifa_preferred": 1, "ifa_valid": 2, "cstamp": 3, "tstamp": 4}),
         ("IFA_ADDRESS", "fe80::1:2")],
        family=socket.AF_INET6, prefixlen=64, flags=0, scope=253, index=9)
    a, b = list(rtnl.decode(v4 + v6))  # several messages in one datagram
    assert a == rtnl.AddrMessage(RTM_NEWADDR, socket.AF_INET, 24, 0x80, 0, 4,
                                 address="10.1.2.3", local="10.1.2.3", label="eth0:a",
                                 ifa_flags=0x80)
    assert a.added and a.ip == "10.1.2.3"
    assert b == rtnl.AddrMessage(RTM_DELADDR, socket.AF_INET6, 64, 0, 253, 9,
                                 address="fe80::1:2")
    assert not b.added and b.ip == "fe80::1:2"


def test_decodes_pyroute2_built_link_messages() -> None:
    datagram = b""
    for kind, name, flags in ((RTM_NEWLINK, "veth0", 0x11043), (RTM_DELLINK, "v1", 0x1002)):
        msg: Any = ifinfmsg()
        msg["family"] = socket.AF_UNSPEC
        msg["ifi_type"] = 1
        msg["index"] = 12
        msg["flags"] = flags
        msg["change"] = 0xFFFFFFFF
        msg["attrs"] = [("IFLA_MTU", 1500), ("IFLA_IFNAME", name), ("IFLA_TXQLEN", 1000)]
        msg["header"]["type"] = kind
        msg.encode()
        datagram += bytes(msg.data)
    up, gone = list(rtnl.decode(datagram))
    assert up == rtnl.LinkMessage(RTM_NEWLINK, 0, 1, 12, 0x11043, 0xFFFFFFFF, "veth0")
    assert not up.deleted
    assert gone.deleted and gone.ifname == "v1" and gone.flags == 0x1002


def test_decodes_pyroute2_built_acks_with_the_kernels_words() -> None:
    def error(code: int, seq: int, text: str | None) -> bytes:
        msg: Any = nlmsgerr()
        msg["error"] = code
        msg["header"]["type"] = rtnl.NLMSG_ERROR
        msg["header"]["sequence_number"] = seq
        if text is not None:
            msg["header"]["flags"] = rtnl.NLM_F_CAPPED | rtnl.NLM_F_ACK_TLVS
            msg["attrs"] = [("NLMSGERR_ATTR_MSG", text)]
        msg.encode()
        data = bytearray(msg.data)
        # struct nlmsgerr carries the request's header (capped: only the header)
        request = rtnl.message(RTM_NEWADDR, 0, b"", seq)
        data[20:20] = request
        struct.pack_into("=I", data, 0, len(data))
        return bytes(data)

    data = error(0, 1, None) + error(-17, 2, None) + error(-22, 3, "Invalid prefix length")
    assert list(rtnl.acks(data)) == [
        rtnl.Ack(1, 0), rtnl.Ack(2, 17), rtnl.Ack(3, 22, "Invalid prefix length")]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_decodes_to_nothing_or_to_messages_never_an_exception(data: bytes) -> None:
    list(rtnl.decode(data))
    list(rtnl.acks(data))


def test_a_truncated_message_ends_the_walk() -> None:
    full = _pyroute2_addr_event(RTM_NEWADDR, [("IFA_ADDRESS", "10.0.0.1")],
                                family=socket.AF_INET, prefixlen=32, index=2)
    assert len(list(rtnl.decode(full))) == 1
    assert list(rtnl.decode(full[:-1])) == []
    assert list(rtnl.decode(full + full[:20])) == list(rtnl.decode(full))
