"""nftables set elements added over nfnetlink in the caller's own callback (no `nft` process).

Written by hand rather than through `nft -f` because the caller is a VRRP takeover: the
no_accept drop set must hold a new master's VIPs in the same event-loop callback that
added them, not one `nft` run (15-25 ms) later. Only what that needs is here: one batch
(BATCH_BEGIN, NFT_MSG_NEWSETELEM per set, BATCH_END) with NLM_F_ACK, sent without waiting;
the acknowledgements are read when the socket is readable and a refusal is logged. The
table, the sets and every full rewrite stay with `nft` (hacluster.accept_mode).
tests/unit/test_nft_setelem.py decodes these bytes with pyroute2's nftables message
classes; tests/integration/test_accept_mode.py reads the kernel's set back with `nft`.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterable, Mapping

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFNL_MSG_BATCH_BEGIN = 0x10
NFNL_MSG_BATCH_END = 0x11
NFT_MSG_NEWSETELEM = 12
NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_CREATE = 0x400
NFPROTO_INET = 1
NLA_F_NESTED = 0x8000
NFTA_SET_ELEM_LIST_TABLE = 1
NFTA_SET_ELEM_LIST_SET = 2
NFTA_SET_ELEM_LIST_ELEMENTS = 3
NFTA_LIST_ELEM = 1
NFTA_SET_ELEM_KEY = 1
NFTA_DATA_VALUE = 1
IFNAMSIZ = 16


def _attr(kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return struct.pack("=HH", size, kind) + payload + b"\0" * (-size % 4)


def _message(kind: int, flags: int, seq: int, family: int, res_id: int, body: bytes) -> bytes:
    payload = struct.pack("=BBH", family, 0, socket.htons(res_id)) + body
    return struct.pack("=IHHII", 16 + len(payload), kind, flags, seq, 0) + payload


def newsetelem_batch(table: str, sets: Mapping[str, Iterable[bytes]], seq: int) -> bytes:
    """One batch adding `sets`' keys (raw key bytes, by set name) to `inet TABLE`."""
    parts = [_message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq, 0, NFNL_SUBSYS_NFTABLES, b"")]
    for name, keys in sets.items():
        elements = b"".join(
            _attr(NFTA_LIST_ELEM | NLA_F_NESTED,
                  _attr(NFTA_SET_ELEM_KEY | NLA_F_NESTED, _attr(NFTA_DATA_VALUE, key)))
            for key in keys)
        if not elements:
            continue
        seq += 1
        body = (_attr(NFTA_SET_ELEM_LIST_TABLE, table.encode() + b"\0")
                + _attr(NFTA_SET_ELEM_LIST_SET, name.encode() + b"\0")
                + _attr(NFTA_SET_ELEM_LIST_ELEMENTS | NLA_F_NESTED, elements))
        parts.append(_message((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM,
                              NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK, seq, NFPROTO_INET, 0,
                              body))
    parts.append(_message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq + 1, 0,
                          NFNL_SUBSYS_NFTABLES, b""))
    return b"".join(parts)


def ifname_key(name: str) -> bytes:
    """An `ifname` key: the name NUL-padded to IFNAMSIZ."""
    return name.encode()[: IFNAMSIZ - 1].ljust(IFNAMSIZ, b"\0")


def ifindex_key(name: str) -> bytes:
    """An `iface_index` key: the index in host order, as `meta iif` loads it."""
    return struct.pack("=I", socket.if_nametoindex(name))


class SetElementSocket:
    """A NETLINK_NETFILTER socket that sends batches and hands back the kernel's refusals."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                   NETLINK_NETFILTER)
        self._sock.setblocking(False)
        self._sock.bind((0, 0))
        self._seq = int.from_bytes(os.urandom(3), "big")

    def fileno(self) -> int:
        return self._sock.fileno()

    def add(self, table: str, sets: Mapping[str, Iterable[bytes]]) -> None:
        """Send one batch adding the keys; does not wait for the kernel's answer."""
        batch = newsetelem_batch(table, sets, self._seq)
        self._seq = (self._seq + 2 + len(sets)) & 0x7FFFFFFF
        self._sock.send(batch)

    def refusals(self) -> list[str]:
        """The errors among the acknowledgements waiting on the socket (never blocks)."""
        found: list[str] = []
        while True:
            try:
                data = self._sock.recv(65536)
            except BlockingIOError:
                return found
            offset = 0
            while offset + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                if kind == NLMSG_ERROR and length >= 20:
                    (code,) = struct.unpack_from("=i", data, offset + 16)
                    if code:
                        found.append(os.strerror(-code) if -code in errno.errorcode
                                     else f"error {code}")
                offset += max(16, (length + 3) & ~3)

    def close(self) -> None:
        self._sock.close()
