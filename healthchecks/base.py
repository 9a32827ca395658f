"""The interface every checker implements. Does no I/O."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from healthchecks.result import CheckResult


@runtime_checkable
class Checker(Protocol):
    """One health check of one real server: ``await check()`` gives up or down with a reason.

    ``check()`` never raises for a failure of the server (that is a down result) and
    finishes within ``timeout`` seconds; it is cancellable.
    """

    @property
    def kind(self) -> str: ...

    @property
    def timeout(self) -> float: ...

    async def check(self) -> CheckResult: ...

    async def close(self) -> None: ...


#: Optional fast path a checker may offer as ``launch(on_done) -> abandon``: start the
#: check on the running loop with callbacks only, call ``on_done(result)`` later (never
#: from within ``launch``), and return a function that abandons it. The runner then
#: needs no task per check. TcpCheck has one.
Launch = Callable[[Callable[[CheckResult], None]], Callable[[], None]]


def family_of(ip: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(ip).version == 6 else socket.AF_INET


@dataclass(frozen=True, slots=True)
class Source:
    """Where a check's packets come from: keepalived's bindto, bind_port, bind_if, fwmark."""

    bindto: str | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    fwmark: int | None = None

    def open(
        self, family: socket.AddressFamily, kind: socket.SocketKind, proto: int = 0
    ) -> socket.socket:
        """A non-blocking socket with these source settings applied (raises OSError)."""
        sock = socket.socket(family, kind | socket.SOCK_NONBLOCK, proto)
        try:
            if self.fwmark is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, self.fwmark)
            if self.bind_if is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.bind_if.encode())
            if self.bindto is not None or self.bind_port is not None:
                if self.bind_port is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                any_ip = "::" if family == socket.AF_INET6 else "0.0.0.0"
                sock.bind((self.bindto or any_ip, self.bind_port or 0))
        except BaseException:
            sock.close()
            raise
        return sock

    def connected_datagram(self, ip: str, port: int) -> socket.socket:
        """A UDP socket connected to `ip`:`port`: replies from elsewhere are dropped by
        the kernel, and an ICMP unreachable comes back as an error on the socket."""
        sock = self.open(family_of(ip), socket.SOCK_DGRAM)
        try:
            sock.connect((ip, port))
        except OSError:
            sock.close()
            raise
        return sock


class DatagramReply(asyncio.DatagramProtocol):
    """The first reply datagram that `accepts` takes, or the ICMP error the kernel reports
    on the connected socket (keepalived sets IP_RECVERR for the same reason)."""

    def __init__(self, done: asyncio.Future[bytes | BaseException]) -> None:
        self._done = done

    def accepts(self, data: bytes) -> bool:
        return True

    def datagram_received(self, data: bytes, addr: object) -> None:
        if not self._done.done() and self.accepts(data):
            self._done.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self._done.done():
            self._done.set_result(exc)
