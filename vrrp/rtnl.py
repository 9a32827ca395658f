"""rtnetlink by hand: the few address and link messages VRRP uses, encoded, decoded, sent.

A measured hot path. pyroute2 does all of this and more, but importing it costs the VRRP
role 150-200 ms of its start-up (and 20+ MB), and start-up to the first advert is what
decides an election between two directors started together. What VRRP needs is small:

- RTM_NEWADDR / RTM_DELADDR requests, acknowledged (`encode_address`), and their acks
  read back with the kernel's extended-ack text (`acks`);
- dumps of addresses and links (`dump`), which the kernel answers while our own
  send/recv calls run, so a blocking dump takes microseconds and never waits on a peer;
- the multicast groups of address and link changes on the asyncio loop (`EventSocket`).

The layouts are linux/netlink.h (nlmsghdr, nlmsgerr), linux/rtnetlink.h (rtattr,
ifinfomsg) and linux/if_addr.h (ifaddrmsg). tests/unit/test_rtnl.py compares every
message built here with pyroute2's bytes and decodes messages pyroute2 built; the
namespace tests run them against the kernel. This module imports only light parts of
the standard library, and its types are named tuples, not dataclasses (a tenth of the
cost to define): `hacluster run` uses it before it forks the VRRP role, via vrrp.vipstate.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import asyncio

# linux/netlink.h
NLMSG_HEADER = struct.Struct("=IHHII")  # length, type, flags, seq, pid
NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN = 1, 2, 3, 4
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x01, 0x02, 0x04
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200  # on an NLMSG_ERROR (extended acks)
SOL_NETLINK = 270
NETLINK_CAP_ACK, NETLINK_EXT_ACK = 10, 11
NLMSGERR_ATTR_MSG = 1
_ERRNO = struct.Struct("=i")

# linux/rtnetlink.h
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV6_IFADDR = 0x100
RTA_HEADER = struct.Struct("=HH")  # length, type
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER

# linux/if_addr.h
IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_FLAGS = 1, 2, 3, 8
IFA_F_NODAD = 0x02

# linux/rtnetlink.h: struct ifinfomsg; linux/if_link.h
IFINFOMSG = struct.Struct("=BxHiII")  # family, pad, type, index, flags, change
IFLA_IFNAME = 3

#: Receive buffer of our sockets: a burst of events (or acks of a batch) fits.
RCVBUF = 1 << 20


def _align(length: int) -> int:
    return (length + 3) & ~3


def attribute(kind: int, value: bytes) -> bytes:
    """One rtattr: header, value, padding to 4 bytes."""
    length = RTA_HEADER.size + len(value)
    return RTA_HEADER.pack(length, kind) + value + b"\0" * (_align(length) - length)


def message(kind: int, flags: int, body: bytes, seq: int = 0, pid: int = 0) -> bytes:
    """One netlink message: nlmsghdr followed by `body` (already padded)."""
    return NLMSG_HEADER.pack(NLMSG_HEADER.size + len(body), kind, flags, seq, pid) + body


def set_seq(buffer: bytearray, offset: int, seq: int) -> None:
    """Write the sequence number of the message at `offset` (messages are cached unsent)."""
    struct.pack_into("=I", buffer, offset + 8, seq)


# --------------------------------------------------------------------------- requests


def encode_address(command: str, address: str, index: int, *, scope: int = 0,
                   label: str | None = None, seq: int = 0) -> bytes:
    """RTM_NEWADDR (`"add"`) or RTM_DELADDR (`"del"`) of "address/prefix" on interface
    `index`, acknowledged, as `ip addr add/del` sends it: IFA_LOCAL and IFA_ADDRESS for
    IPv4 (plus IFA_LABEL on add), IFA_ADDRESS for IPv6 (plus IFA_FLAGS NODAD on add: a
    VIP must be usable at once, not after duplicate address detection)."""
    if command not in ("add", "del"):
        raise ValueError(f"unknown address command {command!r}")
    ip_text, _, prefix_text = address.partition("/")
    family = socket.AF_INET6 if ":" in ip_text else socket.AF_INET
    packed = socket.inet_pton(family, ip_text)
    prefix = int(prefix_text) if prefix_text else 8 * len(packed)
    add = command == "add"
    if family == socket.AF_INET:
        attrs = attribute(IFA_LOCAL, packed) + attribute(IFA_ADDRESS, packed)
        if add and label is not None:
            attrs += attribute(IFA_LABEL, label.encode() + b"\0")
    else:
        attrs = attribute(IFA_ADDRESS, packed)
        if add:
            attrs += attribute(IFA_FLAGS, struct.pack("=I", IFA_F_NODAD))
    body = IFADDRMSG.pack(family, prefix, 0, scope, index) + attrs
    flags = NLM_F_REQUEST | NLM_F_ACK
    if add:
        return message(RTM_NEWADDR, flags | NLM_F_CREATE | NLM_F_EXCL, body, seq)
    return message(RTM_DELADDR, flags, body, seq)


def encode_dump(kind: int, family: int = socket.AF_UNSPEC, seq: int = 0) -> bytes:
    """A dump request: RTM_GETADDR (ifaddrmsg) or RTM_GETLINK (ifinfomsg) of `family`."""
    if kind == RTM_GETADDR:
        body = IFADDRMSG.pack(family, 0, 0, 0, 0)
    elif kind == RTM_GETLINK:
        body = IFINFOMSG.pack(family, 0, 0, 0, 0)
    else:
        raise ValueError(f"no dump of message type {kind}")
    return message(kind, NLM_F_REQUEST | NLM_F_DUMP, body, seq)


# --------------------------------------------------------------------------- decoding


class Header(NamedTuple):
    length: int
    kind: int
    flags: int
    seq: int
    pid: int


def split(data: bytes) -> Iterator[tuple[Header, bytes]]:
    """Each message in `data` (one datagram may hold several): header and the whole
    message's bytes. A truncated or nonsensical length ends the walk."""
    offset = 0
    while offset + NLMSG_HEADER.size <= len(data):
        header = Header(*NLMSG_HEADER.unpack_from(data, offset))
        if header.length < NLMSG_HEADER.size or offset + header.length > len(data):
            return
        yield header, data[offset : offset + header.length]
        offset += _align(header.length)


def attributes(data: bytes, offset: int) -> Iterator[tuple[int, bytes]]:
    """(type, value) of each rtattr from `offset` to the end of `data`."""
    while offset + RTA_HEADER.size <= len(data):
        length, kind = RTA_HEADER.unpack_from(data, offset)
        if length < RTA_HEADER.size or offset + length > len(data):
            return
        yield kind & NLA_TYPE_MASK, data[offset + RTA_HEADER.size : offset + length]
        offset += _align(length)


def _text(value: bytes) -> str:
    return value.split(b"\0", 1)[0].decode(errors="replace")


class AddrMessage(NamedTuple):
    """RTM_NEWADDR / RTM_DELADDR: an address on an interface (as event or dump entry)."""

    kind: int
    family: int
    prefixlen: int
    flags: int
    scope: int
    ifindex: int
    address: str | None = None  # IFA_ADDRESS (the peer's on point-to-point links)
    local: str | None = None  # IFA_LOCAL (IPv4: the address itself)
    label: str | None = None
    ifa_flags: int | None = None  # IFA_FLAGS: the 32-bit flags, when the kernel sends them

    @property
    def added(self) -> bool:
        return self.kind == RTM_NEWADDR

    @property
    def ip(self) -> str | None:
        """The interface's own address: IFA_LOCAL where given, else IFA_ADDRESS."""
        return self.local or self.address


class LinkMessage(NamedTuple):
    """RTM_NEWLINK / RTM_DELLINK: an interface, its name and flags (IFF_UP, IFF_RUNNING...)."""

    kind: int
    family: int
    type: int
    ifindex: int
    flags: int
    change: int
    ifname: str | None = None

    @property
    def deleted(self) -> bool:
        return self.kind == RTM_DELLINK


def decode_addr(header: Header, data: bytes) -> AddrMessage | None:
    """The ifaddrmsg and the attributes we use; None when it is too short."""
    start = NLMSG_HEADER.size
    if len(data) < start + IFADDRMSG.size:
        return None
    family, prefixlen, flags, scope, index = IFADDRMSG.unpack_from(data, start)
    found: dict[int, bytes] = {}
    for kind, value in attributes(data, start + IFADDRMSG.size):
        found.setdefault(kind, value)

    def ip(kind: int) -> str | None:
        value = found.get(kind)
        if value is None or len(value) not in (4, 16):
            return None
        return socket.inet_ntop(socket.AF_INET if len(value) == 4 else socket.AF_INET6, value)

    label = found.get(IFA_LABEL)
    extra = found.get(IFA_FLAGS)
    return AddrMessage(
        kind=header.kind, family=family, prefixlen=prefixlen, flags=flags, scope=scope,
        ifindex=index, address=ip(IFA_ADDRESS), local=ip(IFA_LOCAL),
        label=None if label is None else _text(label),
        ifa_flags=struct.unpack("=I", extra)[0] if extra is not None and len(extra) == 4
        else None,
    )


def decode_link(header: Header, data: bytes) -> LinkMessage | None:
    """The ifinfomsg and the interface's name; None when it is too short."""
    start = NLMSG_HEADER.size
    if len(data) < start + IFINFOMSG.size:
        return None
    family, kind, index, flags, change = IFINFOMSG.unpack_from(data, start)
    name = None
    for attr, value in attributes(data, start + IFINFOMSG.size):
        if attr == IFLA_IFNAME:
            name = _text(value)
            break
    return LinkMessage(header.kind, family, kind, index, flags, change, name)


Message = AddrMessage | LinkMessage


def decode(data: bytes) -> Iterator[Message]:
    """The address and link messages in `data`; anything else is skipped."""
    for header, raw in split(data):
        decoded: Message | None = None
        if header.kind in (RTM_NEWADDR, RTM_DELADDR):
            decoded = decode_addr(header, raw)
        elif header.kind in (RTM_NEWLINK, RTM_DELLINK):
            decoded = decode_link(header, raw)
        if decoded is not None:
            yield decoded


class Ack(NamedTuple):
    """An NLMSG_ERROR: `error` is a positive errno, 0 for a plain ack; `text` the kernel's
    explanation (extended acks) or ""."""

    seq: int
    error: int
    text: str = ""


def acks(data: bytes) -> Iterator[Ack]:
    """Each acknowledgement (or refusal) in `data`."""
    for header, raw in split(data):
        if header.kind == NLMSG_ERROR and len(raw) >= NLMSG_HEADER.size + _ERRNO.size:
            (code,) = _ERRNO.unpack_from(raw, NLMSG_HEADER.size)
            yield Ack(header.seq, -code, _ext_ack_text(raw, header.flags) if code else "")


def _ext_ack_text(raw: bytes, flags: int) -> str:
    """NLMSGERR_ATTR_MSG of an extended ack, or ""."""
    if not flags & NLM_F_ACK_TLVS:
        return ""
    # struct nlmsgerr: error, then the request's header (and its body unless capped)
    offset = NLMSG_HEADER.size + _ERRNO.size
    if offset + NLMSG_HEADER.size > len(raw):
        return ""
    request_length = NLMSG_HEADER.unpack_from(raw, offset)[0]
    offset += NLMSG_HEADER.size if flags & NLM_F_CAPPED else _align(request_length)
    for kind, value in attributes(raw, offset):
        if kind == NLMSGERR_ATTR_MSG:
            return _text(value).strip()
    return ""


# --------------------------------------------------------------------------- sockets


class NetlinkError(OSError):
    """The kernel refused a request or a dump (errno set)."""


def open_socket(groups: int = 0, *, blocking: bool = True, ext_ack: bool = False
                ) -> socket.socket:
    """An rtnetlink socket bound to the multicast `groups` (0: requests only)."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        if ext_ack:
            # A refusal comes with the kernel's own words, and without a copy of the
            # request (capped), which keeps the acks of a batch small.
            sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
            sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        sock.bind((0, groups))
        sock.setblocking(blocking)
    except OSError:
        sock.close()
        raise
    return sock


def dump(kind: int, family: int = socket.AF_UNSPEC, timeout: float = 2.0) -> list[Message]:
    """Every address (RTM_GETADDR) or link (RTM_GETLINK) of this network namespace.

    Blocking, on a socket of its own: the kernel fills the answer while our send and
    recv calls run (no other process is waited for), a few microseconds per entry.
    """
    with open_socket() as sock:
        sock.settimeout(timeout)
        sock.send(encode_dump(kind, family, seq=1))
        found: list[Message] = []
        while True:
            data = sock.recv(RCVBUF)
            for header, raw in split(data):
                if header.seq != 1:
                    continue
                if header.kind == NLMSG_DONE:
                    return found
                if header.kind == NLMSG_ERROR:
                    (code,) = _ERRNO.unpack_from(raw, NLMSG_HEADER.size)
                    if code:
                        raise NetlinkError(-code, errno.errorcode.get(-code, str(-code)))
                    return found
                if header.kind in (RTM_NEWADDR, RTM_DELADDR):
                    addr = decode_addr(header, raw)
                    if addr is not None:
                        found.append(addr)
                elif header.kind in (RTM_NEWLINK, RTM_DELLINK):
                    link = decode_link(header, raw)
                    if link is not None:
                        found.append(link)


def request(messages: list[bytes], timeout: float = 2.0) -> dict[int, int]:
    """Send acknowledged requests (numbered by their sequence numbers) in one write and
    wait for every ack: seq -> errno (0 when done)."""
    waiting = {NLMSG_HEADER.unpack_from(m)[3] for m in messages}
    codes: dict[int, int] = {}
    with open_socket() as sock:
        sock.settimeout(timeout)
        sock.send(b"".join(messages))
        while waiting:
            for ack in acks(sock.recv(RCVBUF)):
                if ack.seq in waiting:
                    codes[ack.seq] = ack.error
                    waiting.discard(ack.seq)
    return codes


class EventSocket:
    """A socket bound to rtnetlink multicast groups, read on the asyncio loop.

    Every address or link message goes to ``on_message`` as it is read; ``on_lost()`` is
    called when the kernel dropped events (ENOBUFS after a storm): whoever follows the
    state should then read it all again. Opened by `open()` (call it before a dump of
    the state it follows, so that no change in between is missed).
    """

    def __init__(self, groups: int, on_message: Callable[[Message], None],
                 on_lost: Callable[[], None]) -> None:
        self.groups = groups
        self._on_message = on_message
        self._on_lost = on_lost
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.lost = 0  # times events were lost

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        """Subscribe now; messages are read once the loop runs."""
        if self._sock is not None:
            return
        self._sock = open_socket(self.groups, blocking=False)
        self._loop = loop
        loop.add_reader(self._sock.fileno(), self._readable)

    def close(self) -> None:
        if self._sock is not None:
            assert self._loop is not None
            if not self._loop.is_closed():
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def _readable(self) -> None:
        sock = self._sock
        while sock is not None:
            try:
                data = sock.recv(RCVBUF)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                self.lost += 1
                self._on_lost()
                sock = self._sock
                continue
            for msg in decode(data):
                self._on_message(msg)
                if self._sock is None:  # closed by the handler
                    return
            sock = self._sock
