"""UDP_CHECK: a datagram to the real server draws no ICMP error (or the reply it must)."""

from __future__ import annotations

import asyncio

from healthchecks.base import DatagramReply
from healthchecks.params import UdpCheckParams
from healthchecks.result import CheckResult, describe_error


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
            sock = p.source.connected_datagram(p.connect_ip, p.connect_port)
            transport, _ = await loop.create_datagram_endpoint(
                lambda: DatagramReply(done), sock=sock
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
