"""The hand-written NFT_MSG_NEWSETELEM batch, decoded with pyroute2's nftables message
classes (the library's reading of the same bytes); the kernel takes it in
tests/integration/test_accept_mode.py."""

from __future__ import annotations

import socket
import struct
from ipaddress import ip_address

from pyroute2.netlink.nfnetlink.nftsocket import nft_set_elem_list_msg

from hacluster.nft_setelem import (
    NFNL_MSG_BATCH_BEGIN,
    NFNL_MSG_BATCH_END,
    NFNL_SUBSYS_NFTABLES,
    NFPROTO_INET,
    NFT_MSG_NEWSETELEM,
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_REQUEST,
    ifname_key,
    newsetelem_batch,
)


def split(batch: bytes) -> list[tuple[int, int, int, bytes]]:
    """(type, flags, seq, whole message) of each message in a batch."""
    out, offset = [], 0
    while offset < len(batch):
        length, kind, flags, seq = struct.unpack_from("=IHHI", batch, offset)
        assert length % 4 == 0
        out.append((kind, flags, seq, batch[offset:offset + length]))
        offset += length
    return out


def test_one_message_per_set_between_batch_begin_and_end() -> None:
    keys = {"vips4": [ip_address("10.9.0.100").packed, ip_address("10.9.0.101").packed],
            "vips6": [], "vips6_ll": [ip_address("fe80::1").packed + ifname_key("eth0")]}
    messages = split(newsetelem_batch("hacluster_vrrp", keys, 100))
    kinds = [m[0] for m in messages]
    new = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM
    assert kinds == [NFNL_MSG_BATCH_BEGIN, new, new, NFNL_MSG_BATCH_END]  # empty set left out
    assert [m[2] for m in messages] == [100, 101, 102, 103]
    begin = messages[0][3]
    assert struct.unpack_from("=BBH", begin, 16) == (0, 0, socket.htons(NFNL_SUBSYS_NFTABLES))
    decoded = []
    for _kind, flags, _seq, raw in messages[1:3]:
        assert flags == NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK
        msg = nft_set_elem_list_msg(raw)
        msg.decode()
        assert msg["nfgen_family"] == NFPROTO_INET
        elements = msg.get_attr("NFTA_SET_ELEM_LIST_ELEMENTS")
        values = [e.get_attr("NFTA_SET_ELEM_KEY").get_attr("NFTA_DATA_VALUE")
                  for e in elements]
        decoded.append((msg.get_attr("NFTA_SET_ELEM_LIST_TABLE"),
                        msg.get_attr("NFTA_SET_ELEM_LIST_SET"), values))
    assert decoded[0][:2] == ("hacluster_vrrp", "vips4")
    assert decoded[1][:2] == ("hacluster_vrrp", "vips6_ll")
    flat = [bytes.fromhex(v.replace(":", "")) if isinstance(v, str) else bytes(v)
            for _t, _s, vs in decoded for v in vs]
    assert flat == keys["vips4"] + keys["vips6_ll"]


def test_ifname_keys_are_padded_to_ifnamsiz() -> None:
    assert ifname_key("eth0") == b"eth0" + b"\0" * 12
    assert len(ifname_key("a-very-long-interface-name")) == 16
