"""Source settings of the network checkers: bindto, bind_port, bind_if and fwmark."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from healthchecks import (
    DnsCheckParams,
    HttpGetParams,
    SmtpCheckParams,
    TcpCheckParams,
    UrlSpec,
    make_checker,
)
from healthchecks.params import CheckParams

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="SO_MARK needs CAP_NET_ADMIN")


@dataclass
class Peers:
    seen: list[tuple[str, int]] = field(default_factory=list)


async def _stream_server(reply: bytes, peers: Peers, smtp: bool = False) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.seen.append(writer.get_extra_info("peername")[:2])
        try:
            if smtp:
                writer.write(b"220 mx\r\n")
                await reader.readline()
                writer.write(b"250 mx\r\n")
                await writer.drain()
                await reader.readline()
            elif reply:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(reply)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


class _Dns(asyncio.DatagramProtocol):
    def __init__(self, peers: Peers) -> None:
        self.peers = peers
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.peers.seen.append(addr[:2])
        header = struct.pack("!HHHHHH", int.from_bytes(data[:2], "big"), 0x8180, 1, 1, 0, 0)
        self.transport.sendto(header + data[12:], addr)


@pytest.fixture(params=["TCP_CHECK", "HTTP_GET", "SMTP_CHECK", "DNS_CHECK"])
async def target(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[Callable[..., CheckParams], Peers]]:
    peers = Peers()
    kind = request.param
    if kind == "DNS_CHECK":
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Dns(peers), local_addr=("127.0.0.1", 0)
        )
        port = transport.get_extra_info("sockname")[1]
        try:
            yield (lambda **kw: DnsCheckParams("127.0.0.1", port, type="A", **kw)), peers
        finally:
            transport.close()
        return
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    srv = await _stream_server(reply if kind == "HTTP_GET" else b"", peers, kind == "SMTP_CHECK")
    port = srv.sockets[0].getsockname()[1]
    makers: dict[str, Callable[..., CheckParams]] = {
        # A completed handshake, so that the server accepts and sees where it came from.
        "TCP_CHECK": lambda **kw: TcpCheckParams("127.0.0.1", port, complete_handshake=True,
                                                 **kw),
        "HTTP_GET": lambda **kw: HttpGetParams("127.0.0.1", port, urls=(UrlSpec("/"),), **kw),
        "SMTP_CHECK": lambda **kw: SmtpCheckParams("127.0.0.1", port, helo_name="lb", **kw),
    }
    try:
        yield makers[kind], peers
    finally:
        srv.close()
        await srv.wait_closed()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def run(params: CheckParams) -> tuple[bool, str]:
    checker = make_checker(params)
    try:
        result = await checker.check()
    finally:
        await checker.close()
    return result.ok, result.reason


async def wait_seen(peers: Peers) -> None:
    for _ in range(100):
        if peers.seen:
            return
        await asyncio.sleep(0.01)


async def test_bindto_and_bind_port(target: tuple[Callable[..., CheckParams], Peers]) -> None:
    make, peers = target
    port = free_port()
    ok, reason = await run(make(bindto="127.0.0.5", bind_port=port, connect_timeout=3))
    assert ok, reason
    await wait_seen(peers)
    assert peers.seen == [("127.0.0.5", port)]


async def test_bind_if(target: tuple[Callable[..., CheckParams], Peers]) -> None:
    make, peers = target
    assert (await run(make(bind_if="lo", connect_timeout=3)))[0]
    assert await run(make(bind_if="hcnosuch0", connect_timeout=3)) == (False, "no such device")
    assert len(peers.seen) == 1


@needs_root
async def test_fwmark(target: tuple[Callable[..., CheckParams], Peers]) -> None:
    make, peers = target
    assert (await run(make(fwmark=0x2A, connect_timeout=3)))[0]
    await wait_seen(peers)
    assert len(peers.seen) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bind_port": 70000}, "bind_port"),
        ({"bind_if": "a/b"}, "bind_if"),
        ({"bind_if": "x" * 16}, "bind_if"),
        ({"fwmark": 0}, "fwmark"),
        ({"bindto": "::1"}, "different families"),
    ],
)
def test_bad_source_settings(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TcpCheckParams("127.0.0.1", 80, **kwargs)
