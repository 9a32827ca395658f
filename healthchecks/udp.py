"""UDP_CHECK: a datagram to the real server draws no ICMP error (or the reply it must)."""

from __future__ import annotations

import asyncio
import socket

from healthchecks.base import family_of
from healthchecks.params import UdpCheckParams
from healthchecks.result import CheckResult, describe_error


class _Exchange(asyncio.DatagramProtocol):
    """The first reply datagram, or the ICMP error the kernel reports on the socket."""

    def __init__(self, done: asyncio.Future[bytes | BaseException]) -> None:
        self._done = done

    def datagram_received(self, data: bytes, addr: object) -> None:
        if not self._done.done():
            self._done.set_result(data)

    def error_received(self, exc: Exception) -> None:
        # A connected UDP socket learns of an ICMP port/host unreachable this way
        # (keepalived sets IP_RECVERR for the same reason).
        if not self._done.done():
            self._done.set_result(exc)


class UdpCheck:
    """keepalived's rule: without require_reply, silence until connect_timeout is up."""

    __slots__ = ("params",)

    def __init__(self, params: UdpCheckParams) -> None:
        self.params = params

    @property
    def kind(self) -> str:
        return "UDP_CHECK"

    @property
    def timeout(self) -> float:
        return self.params.connect_timeout

    async def check(self) -> CheckResult:
        p = self.params
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bytes | BaseException] = loop.create_future()
        transport: asyncio.DatagramTransport | None = None
        try:
            sock = p.source.open(family_of(p.connect_ip), socket.SOCK_DGRAM)
            try:
                sock.connect((p.connect_ip, p.connect_port))
            except OSError:
                sock.close()
                raise
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Exchange(done), sock=sock
            )
            transport.sendto(p.payload)
            try:
                async with asyncio.timeout(p.connect_timeout):
                    reply = await done
            except TimeoutError:
                if p.require_reply:
                    return CheckResult.down(f"no reply within {p.connect_timeout:g}s")
                return CheckResult.up("no ICMP error")
        except OSError as exc:
            return CheckResult.down(describe_error(exc, p.connect_timeout))
        finally:
            if transport is not None:
                transport.close()
        if isinstance(reply, BaseException):
            return CheckResult.down(describe_error(reply))
        if not p.reply_fits(reply):
            return CheckResult.down(f"reply of {len(reply)} bytes does not match")
        return CheckResult.up(f"reply of {len(reply)} bytes")

    async def close(self) -> None:
        return None
