"""PING_CHECK: up when the real server answers an ICMP (IPv6: ICMPv6) echo in time.

As keepalived, an unprivileged ICMP datagram socket is tried first (the kernel sets the
identifier, fills the checksum and hands this socket only its own replies); where
``net.ipv4.ping_group_range`` does not allow it, a raw socket is used (root), and
replies are then matched by identifier and sequence number here. keepalived widens
ping_group_range itself; we leave the system's settings alone.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import os
import socket
import struct

from healthchecks.base import family_of
from healthchecks.params import PingCheckParams
from healthchecks.result import CheckResult, describe_error

_ECHO_REQUEST: dict[int, int] = {socket.AF_INET: 8, socket.AF_INET6: 128}  # RFC 792, 4443
_ECHO_REPLY: dict[int, int] = {socket.AF_INET: 0, socket.AF_INET6: 129}
_PROTO: dict[int, int] = {
    socket.AF_INET: socket.IPPROTO_ICMP, socket.AF_INET6: socket.IPPROTO_ICMPV6,
}
# keepalived's payload: 128 bytes of "keepalived check - " repeated (check_ping.c)
_PAYLOAD = (b"keepalived check - " * 7)[:128]
_sequence = itertools.count(1)
#: Families where datagram ICMP sockets were refused: raw sockets from then on.
_raw_only: set[int] = set()


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(family: int, ident: int, seq: int, payload: bytes = _PAYLOAD) -> bytes:
    """An echo request; the checksum is filled for ICMPv4 (the kernel does ICMPv6's)."""
    head = struct.pack("!BBHHH", _ECHO_REQUEST[family], 0, 0, ident, seq)
    if family == socket.AF_INET:
        head = head[:2] + struct.pack("!H", checksum(head + payload)) + head[4:]
    return head + payload


def _open(p: PingCheckParams, family: socket.AddressFamily) -> tuple[socket.socket, bool]:
    """(socket, raw?)."""
    if family not in _raw_only:
        try:
            return p.source.open(family, socket.SOCK_DGRAM, _PROTO[family]), False
        except PermissionError:
            _raw_only.add(family)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EPROTONOSUPPORT):
                raise
            _raw_only.add(family)
    return p.source.open(family, socket.SOCK_RAW, _PROTO[family]), True


def _is_our_reply(data: bytes, family: int, raw: bool, ident: int, seq: int) -> bool:
    if raw and family == socket.AF_INET:
        if len(data) < 20:
            return False
        data = data[(data[0] & 0x0F) * 4:]  # a raw IPv4 socket hands over the IP header
    if len(data) < 8 or data[0] != _ECHO_REPLY[family]:
        return False
    got_ident, got_seq = struct.unpack("!HH", data[4:8])
    # A datagram socket's replies carry the identifier the kernel chose: only ours
    # reach it, so the sequence number is enough.
    return got_seq == seq and (not raw or got_ident == ident)


class PingCheck:
    __slots__ = ("params",)

    def __init__(self, params: PingCheckParams) -> None:
        self.params = params

    @property
    def kind(self) -> str:
        return "PING_CHECK"

    @property
    def timeout(self) -> float:
        return self.params.connect_timeout

    async def check(self) -> CheckResult:
        p = self.params
        family = family_of(p.connect_ip)
        loop = asyncio.get_running_loop()
        ident = os.getpid() & 0xFFFF
        seq = next(_sequence) & 0xFFFF
        try:
            sock, raw = _open(p, family)
        except OSError as exc:
            return CheckResult.down(describe_error(exc))
        try:
            async with asyncio.timeout(p.connect_timeout):
                await loop.sock_sendto(sock, echo_request(family, ident, seq), (p.connect_ip, 0))
                while True:
                    data = await loop.sock_recv(sock, 2048)
                    if _is_our_reply(data, family, raw, ident, seq):
                        return CheckResult.up("echo reply")
        except (OSError, TimeoutError) as exc:
            return CheckResult.down(describe_error(exc, p.connect_timeout))
        finally:
            sock.close()

    async def close(self) -> None:
        return None
