"""Virtual IP addresses on interfaces: add and remove them over rtnetlink (vrrp.rtnl encodes)."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import socket
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from vrrp import rtnl
from vrrp.slotted import slotted
from vrrp.vipstate import Recorded, VipRecord

log = logging.getLogger("vrrp.addresses")

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

IFA_F_NODAD = rtnl.IFA_F_NODAD  # a VIP must be usable at once, not after DAD
_BATCH = 256  # requests per send: keeps the acks of one batch well inside the socket buffer


@slotted(frozen=True)
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

    vrrp.rtnl encodes the requests (cached per VIP and interface index, so a takeover
    encodes nothing). Changes begun before `ready()` opened the socket are queued and
    sent, in order, as soon as it is open. Operations are idempotent: adding a present
    address or removing an absent one (or one whose interface is gone) is not an error.
    """

    def __init__(self, record: VipRecord | None = None) -> None:
        self._record = record  # the state file of the VIPs we added (vrrp.vipstate)
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

    async def ready(self) -> None:
        """Open the netlink socket (before the first change)."""
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
        sock = rtnl.open_socket(blocking=False, ext_ack=True)
        self._loop = asyncio.get_running_loop()
        self._sock = sock

    def prepare(self, vips: Iterable[Vip]) -> None:
        """Encode the add and delete requests of ``vips`` now (a takeover then encodes none)."""
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
            data = encode(command, vip, index)
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
            rtnl.set_seq(batch, start, self._seq)
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
            for ack in rtnl.acks(data):
                entry = self._waiting.pop(ack.seq, None)
                if entry is not None:
                    _settle(*entry, ack.error, ack.text)

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


def encode(command: str, vip: Vip, index: int) -> bytes:
    """One RTM_NEWADDR / RTM_DELADDR request for `vip` on interface `index`, acknowledged."""
    return rtnl.encode_address(command, str(vip.address), index, scope=vip.scope,
                               label=vip.label)
