"""Virtual IP addresses on interfaces: add and remove them over rtnetlink (pyroute2 encodes)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import ipaddress
import logging
import os
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from vrrp.vipstate import Recorded, VipRecord

log = logging.getLogger("vrrp.addresses")

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

IFA_F_NODAD = 0x02  # linux/if_addr.h: a VIP must be usable at once, not after DAD

# linux/netlink.h: struct nlmsghdr is (length u32, type u16, flags u16, seq u32, pid u32);
# an NLMSG_ERROR message carries the errno (negative, 0 = ack) right after it.
_NLMSG_HEADER = struct.Struct("=IHHII")
_NLMSG_ERRNO = struct.Struct("=i")
_NLMSG_ERROR = 2
_SEQ_OFFSET = 8
# linux/netlink.h: extended acknowledgements
_SOL_NETLINK = 270
_NETLINK_CAP_ACK = 10
_NETLINK_EXT_ACK = 11
_NLM_F_CAPPED = 0x100
_NLM_F_ACK_TLVS = 0x200
_NLMSGERR_ATTR_MSG = 1
_BATCH = 256  # requests per send: keeps the acks of one batch well inside the socket buffer
_RCVBUF = 1 << 20


@dataclass(frozen=True, slots=True)
class Vip:
    """One virtual address: address with prefix (default /32 or /128) and its interface."""

    address: IPInterface
    dev: str
    scope: int = 0  # rtnetlink scope: 0 global, 200 site, 253 link, 254 host, 255 nowhere
    label: str | None = None  # IPv4 only, as `ip addr add ... label`

    def __str__(self) -> str:
        return f"{self.address} dev {self.dev}"


class AddressError(Exception):
    """A VIP could not be added or removed (missing interface, netlink refused)."""


class VipOp:
    """One batch of address changes and, once every change is acknowledged, its outcome.

    ``changed`` lists the VIPs this batch added (or removed), ``unchanged`` those that were
    already in the wanted state, ``errors`` the others with why. ``done`` is true as soon
    as each VIP has one of the three.
    """

    def __init__(self, command: str, vips: Sequence[Vip]) -> None:
        if command not in ("add", "del"):
            raise ValueError(f"unknown address command {command!r}")
        self.command = command
        self.vips = tuple(vips)
        self.changed: list[Vip] = []
        self.unchanged: list[Vip] = []
        self.errors: list[tuple[Vip, str]] = []
        self._left = len(self.vips)
        self._future: asyncio.Future[None] | None = None
        self._on_done: Callable[[VipOp], None] | None = None

    @property
    def done(self) -> bool:
        return self._left <= 0

    def record(self, vip: Vip, *, changed: bool = True, error: str | None = None) -> None:
        """Settle one VIP of the batch."""
        if self.done:
            return
        if error is not None:
            self.errors.append((vip, error))
        elif changed:
            self.changed.append(vip)
        else:
            self.unchanged.append(vip)
        self._left -= 1
        if self.done:
            if self._future is not None and not self._future.done():
                self._future.set_result(None)
            if self._on_done is not None:
                self._on_done(self)

    def when_done(self, callback: Callable[[VipOp], None]) -> None:
        """Call ``callback(self)`` once every VIP is settled (now, if they are)."""
        if self.done:
            callback(self)
        else:
            self._on_done = callback

    def fail(self, why: str) -> None:
        """Settle every VIP not settled yet with the error ``why``."""
        settled = {*self.changed, *self.unchanged, *(v for v, _ in self.errors)}
        for vip in self.vips:
            if vip not in settled:
                self.record(vip, error=why)

    async def wait(self) -> None:
        """Return once every change of the batch is acknowledged."""
        if self.done:
            return
        if self._future is None:
            self._future = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._future)


class Addresses:
    """Adds and removes VIPs on an rtnetlink socket of its own, from the event loop.

    The kernel carries out a netlink address request while the sending call runs and
    queues its ack before returning, so `begin()` sends at once and normally finds every
    ack already there: a takeover has its VIP in place, acknowledged, before `begin()`
    returns, with no wait for the loop. Acks that are late are read when the socket
    becomes readable. Changes apply in the order they were begun.

    pyroute2 encodes the requests (cached per VIP and interface index, so a takeover
    encodes nothing); importing it takes about half a second, so `warm_up()` does that in
    a background thread and `ready()` waits for it. Changes begun before that are queued
    and sent, in order, as soon as it is done. Operations are idempotent: adding a present
    address or removing an absent one (or one whose interface is gone) is not an error.
    """

    def __init__(self, record: VipRecord | None = None) -> None:
        self._record = record  # the state file of the VIPs we added (vrrp.vipstate)
        self._import: concurrent.futures.Future[None] | None = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._seq = 0
        self._waiting: dict[int, tuple[VipOp, Vip]] = {}
        self._backlog: deque[VipOp] = deque()  # begun before the socket was open
        self._opening: asyncio.Task[None] | None = None
        self._reading = False
        self._messages: dict[tuple[str, Vip, int], bytes] = {}
        self._closed = False

    # ------------------------------------------------------------------ set-up

    def warm_up(self) -> None:
        """Start importing pyroute2 in a background thread now."""
        if self._import is None:
            fut: concurrent.futures.Future[None] = concurrent.futures.Future()

            def work() -> None:
                try:
                    import pyroute2.netlink.rtnl.ifaddrmsg  # noqa: F401

                    fut.set_result(None)
                except BaseException as exc:  # reported by the first change
                    fut.set_exception(exc)

            threading.Thread(target=work, name="pyroute2-import", daemon=True).start()
            self._import = fut

    async def imported(self) -> None:
        """Wait until warm_up's import of pyroute2 has finished (however it ended).

        Whoever imports pyroute2 in another thread waits for this first: two threads
        importing it at once can hand one of them a partially initialized module
        (CPython breaks the import-lock cycle that pyroute2's circular imports make), and
        the import fails with "cannot import name ... (most likely due to a circular
        import)". Seen under a slow CPU, where the window is wide.
        """
        self.warm_up()
        assert self._import is not None
        with contextlib.suppress(Exception):  # the failure is reported by ready()
            await asyncio.wrap_future(self._import)

    async def ready(self) -> None:
        """Finish loading pyroute2 and open the netlink socket (before the first change)."""
        await self._open()
        self._flush()

    @property
    def is_ready(self) -> bool:
        """True when a change begun now is sent at once."""
        return self._sock is not None and not self._backlog and not self._closed

    async def _open(self) -> None:
        if self._closed:
            raise AddressError("address manager is closed")
        if self._sock is not None:
            return
        self.warm_up()
        assert self._import is not None
        await asyncio.wrap_future(self._import)
        if self._sock is not None or self._closed:
            return
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            # Extended acks: a refusal comes with the kernel's own words, and without a
            # copy of the request (capped), which keeps the acks of a batch small.
            sock.setsockopt(_SOL_NETLINK, _NETLINK_EXT_ACK, 1)
            sock.setsockopt(_SOL_NETLINK, _NETLINK_CAP_ACK, 1)
            sock.bind((0, 0))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._loop = asyncio.get_running_loop()
        self._sock = sock

    def prepare(self, vips: Iterable[Vip]) -> None:
        """Encode the add and delete requests of ``vips`` now, if pyroute2 is loaded."""
        if self._import is None or not self._import.done() or self._import.exception():
            return
        for vip in vips:
            try:
                index = self._ifindex(vip.dev)
            except AddressError:
                continue
            for command in ("add", "del"):
                self._message(command, vip, index)

    @staticmethod
    def _ifindex(dev: str) -> int:
        # if_nametoindex is one ioctl; a netlink link dump costs milliseconds.
        try:
            return socket.if_nametoindex(dev)
        except OSError:
            raise AddressError(f"interface {dev!r} not found") from None

    def _message(self, command: str, vip: Vip, index: int) -> bytes:
        key = (command, vip, index)
        data = self._messages.get(key)
        if data is None:
            data = _encode(command, vip, index)
            self._messages[key] = data
        return data

    # ------------------------------------------------------------------ changes

    def begin(self, command: str, vips: Sequence[Vip]) -> VipOp:
        """Add (``"add"``) or remove (``"del"``) ``vips``; returns the batch at once.

        When the socket is open the requests are sent before this returns (so the
        kernel has applied them) and the batch is normally already done.
        """
        op = VipOp(command, vips)
        if op.done:
            return op
        if self._record is not None:
            op.when_done(self._note)
        if self._closed:
            op.fail("address manager is closed")
        elif self._sock is None or self._backlog:
            self._backlog.append(op)
            if self._opening is None or self._opening.done():
                self._opening = asyncio.get_running_loop().create_task(
                    self._open_and_flush(), name="netlink-open")
        else:
            self._send(op)
        return op

    def _note(self, op: VipOp) -> None:
        """Keep the state file in step: the VIPs we added, less those since removed.
        Written once the current callback is done, so a takeover's first GARP burst
        waits for no file write (a crash in between leaves one VIP to the old clean-up)."""
        record = self._record
        if record is None:
            return
        if op.command == "add":
            vips = [_recorded(v) for v in op.changed]
            update = record.added
        else:
            vips = [_recorded(v) for v in (*op.changed, *op.unchanged)]
            update = record.removed
        if not vips:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon(update, vips)
        else:
            update(vips)

    async def _open_and_flush(self) -> None:
        try:
            await self._open()
        except Exception as exc:  # every queued change learns why
            why = f"netlink unavailable: {exc}"
            while self._backlog:
                self._backlog.popleft().fail(why)
            return
        self._flush()

    def _flush(self) -> None:
        while self._backlog and self._sock is not None:
            self._send(self._backlog.popleft())

    def _send(self, op: VipOp) -> None:
        sock = self._sock
        assert sock is not None
        batch = bytearray()
        seqs: list[int] = []
        for vip in op.vips:
            try:
                index = self._ifindex(vip.dev)
            except AddressError as exc:
                if op.command == "del":  # no interface, no address on it
                    op.record(vip, changed=False)
                else:
                    op.record(vip, error=str(exc))
                continue
            self._seq = self._seq % 0xFFFFFFFF + 1
            start = len(batch)
            batch += self._message(op.command, vip, index)
            struct.pack_into("=I", batch, start + _SEQ_OFFSET, self._seq)
            self._waiting[self._seq] = (op, vip)
            seqs.append(self._seq)
            if len(seqs) % _BATCH == 0:
                self._transmit(sock, batch, seqs)
                batch, seqs = bytearray(), []
        if seqs:
            self._transmit(sock, batch, seqs)
        if self._waiting:
            self._watch()

    def _transmit(self, sock: socket.socket, batch: bytearray, seqs: list[int]) -> None:
        try:
            sock.send(batch)
        except OSError as exc:
            for seq in seqs:
                op, vip = self._waiting.pop(seq)
                op.record(vip, error=f"{_VERB[op.command]} {vip}: {exc}")
            return
        self._read_acks()

    def _read_acks(self) -> None:
        sock = self._sock
        while sock is not None and self._waiting:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as exc:  # ENOBUFS: acks were lost; what applied is unknown
                self._fail_waiting(f"netlink: {exc}")
                return
            offset = 0
            while offset + _NLMSG_HEADER.size <= len(data):
                length, kind, flags, seq, _pid = _NLMSG_HEADER.unpack_from(data, offset)
                if length < _NLMSG_HEADER.size:
                    break
                if kind == _NLMSG_ERROR and length >= _NLMSG_HEADER.size + 4:
                    (code,) = _NLMSG_ERRNO.unpack_from(data, offset + _NLMSG_HEADER.size)
                    entry = self._waiting.pop(seq, None)
                    if entry is not None:
                        said = data[offset : offset + length] if code else b""
                        _settle(*entry, -code, _ext_ack_message(said, flags))
                offset += (length + 3) & ~3

    def _watch(self) -> None:
        if not self._reading and self._sock is not None and self._loop is not None:
            self._loop.add_reader(self._sock.fileno(), self._on_readable)
            self._reading = True

    def _on_readable(self) -> None:
        self._read_acks()
        if not self._waiting and self._reading and self._sock is not None:
            assert self._loop is not None
            self._loop.remove_reader(self._sock.fileno())
            self._reading = False

    def _fail_waiting(self, why: str) -> None:
        waiting, self._waiting = self._waiting, {}
        for op, vip in waiting.values():
            op.record(vip, error=why)

    # ------------------------------------------------------------------ awaitable forms

    async def add(self, vips: Sequence[Vip]) -> list[tuple[Vip, str]]:
        """Add every VIP; returns the ones that failed with why (the others still apply)."""
        op = self.begin("add", list(vips))
        await op.wait()
        return op.errors

    async def remove(self, vips: Sequence[Vip]) -> list[tuple[Vip, str]]:
        """Remove every VIP; returns the ones that failed with why."""
        op = self.begin("del", list(vips))
        await op.wait()
        return op.errors

    async def remove_leftovers(self, vips: Iterable[Vip]) -> list[Vip]:
        """Remove VIPs a crashed run left behind; returns those that were found."""
        op = self.begin("del", list(vips))
        await op.wait()
        for vip, why in op.errors:
            log.error("cannot remove leftover VIP %s: %s", vip, why)
        return op.changed

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        while self._backlog:
            self._backlog.popleft().fail("address manager is closed")
        self._fail_waiting("address manager is closed")
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()
        if self._sock is not None:
            if self._reading and self._loop is not None:
                self._loop.remove_reader(self._sock.fileno())
                self._reading = False
            self._sock.close()
            self._sock = None


_VERB = {"add": "add", "del": "delete"}
# Answers that mean the address already was as wanted: present, or absent (or no interface).
_ALREADY = {"add": (errno.EEXIST,), "del": (errno.EADDRNOTAVAIL, errno.ENOENT, errno.ENODEV)}


def _recorded(vip: Vip) -> Recorded:
    return Recorded(str(vip.address), vip.dev)


def _settle(op: VipOp, vip: Vip, code: int, why: str = "") -> None:
    if code == 0:
        op.record(vip)
    elif code in _ALREADY[op.command]:
        op.record(vip, changed=False)
    else:
        said = f" ({why})" if why else ""
        op.record(vip, error=f"{_VERB[op.command]} {vip}: {os.strerror(code)}{said}")


def _ext_ack_message(message: bytes, flags: int) -> str:
    """The kernel's explanation in an extended ack (NLMSGERR_ATTR_MSG), or ""."""
    if not flags & _NLM_F_ACK_TLVS:
        return ""
    # struct nlmsgerr: error, then the request's header (and body unless capped)
    offset = _NLMSG_HEADER.size + 4
    if offset + _NLMSG_HEADER.size > len(message):
        return ""
    request_length = _NLMSG_HEADER.unpack_from(message, offset)[0]
    offset += _NLMSG_HEADER.size if flags & _NLM_F_CAPPED else (request_length + 3) & ~3
    while offset + 4 <= len(message):
        length, kind = struct.unpack_from("=HH", message, offset)
        if length < 4:
            break
        if kind & 0x3FFF == _NLMSGERR_ATTR_MSG:
            text = message[offset + 4 : offset + length].split(b"\0", 1)[0]
            return text.decode(errors="replace").strip()
        offset += (length + 3) & ~3
    return ""


def _encode(command: str, vip: Vip, index: int) -> bytes:
    """One RTM_NEWADDR / RTM_DELADDR request, acknowledged, as `ip addr add/del` sends it."""
    from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST
    from pyroute2.netlink.rtnl import RTM_DELADDR, RTM_NEWADDR
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

    ip = str(vip.address.ip)
    msg: Any = ifaddrmsg()
    msg["family"] = socket.AF_INET if vip.address.version == 4 else socket.AF_INET6
    msg["prefixlen"] = vip.address.network.prefixlen
    msg["index"] = index
    msg["scope"] = vip.scope
    attrs: list[tuple[str, Any]] = [("IFA_ADDRESS", ip)]
    if vip.address.version == 4:
        attrs.insert(0, ("IFA_LOCAL", ip))
        if vip.label is not None and command == "add":
            attrs.append(("IFA_LABEL", vip.label))
    elif command == "add":
        attrs.append(("IFA_FLAGS", IFA_F_NODAD))
    msg["attrs"] = attrs
    flags = NLM_F_REQUEST | NLM_F_ACK
    if command == "add":
        msg["header"]["type"] = RTM_NEWADDR
        flags |= NLM_F_CREATE | NLM_F_EXCL
    else:
        msg["header"]["type"] = RTM_DELADDR
    msg["header"]["flags"] = flags
    msg.encode()
    return bytes(msg.data)
