"""SMTP_CHECK against a small asyncio SMTP responder on 127.0.0.1 and ::1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from healthchecks import SmtpCheckParams, make_checker


class Smtp:
    """Greets with ``banner``, answers HELO with ``helo_reply``; records what it heard."""

    def __init__(self) -> None:
        self.banner: bytes | None = b"220 mx.test ESMTP\r\n"
        self.helo_reply = b"250 mx.test\r\n"
        self.heard: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self.banner is None:
                await asyncio.sleep(30)  # accepts, never speaks
                return
            if not self.banner:
                return  # accepts and hangs up at once
            writer.write(self.banner)
            await writer.drain()
            line = await reader.readline()
            self.heard.append(line)
            if line.upper().startswith(b"HELO"):
                writer.write(self.helo_reply)
                await writer.drain()
                self.heard.append(await reader.readline())
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


@pytest.fixture(params=["127.0.0.1", "::1"])
async def smtp(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, int, Smtp]]:
    server = Smtp()
    srv = await asyncio.start_server(server.handle, request.param, 0)
    try:
        yield request.param, srv.sockets[0].getsockname()[1], server
    finally:
        srv.close()
        await srv.wait_closed()


@pytest.mark.parametrize(
    ("banner", "helo_reply", "ok", "reason"),
    [
        (b"220 mx.test ESMTP\r\n", b"250 mx.test\r\n", True, "HELO answered 250"),
        (b"220-mx.test ESMTP\r\n220-second line\r\n220 ready\r\n", b"250-mx\r\n250 OK\r\n",
         True, "HELO answered 250"),
        (b"554 mx.test no service\r\n", b"", False, "banner 554 mx.test no service"),
        (b"220 mx.test\r\n", b"501 syntax\r\n", False, "HELO answered 501 syntax"),
        (b"hello there\r\n", b"", False, "malformed reply 'hello there'"),
        (b"220 mx.test", b"", False, "timeout after 0.3s"),  # banner never ends
        (None, b"", False, "timeout after 0.3s"),  # accepts, never answers
        (b"", b"", False, "connection closed"),  # accepts and hangs up
    ],
)
async def test_smtp_check(
    smtp: tuple[str, int, Smtp], banner: bytes | None, helo_reply: bytes, ok: bool, reason: str
) -> None:
    host, port, server = smtp
    server.banner, server.helo_reply = banner, helo_reply
    # Short only where a timeout is the expected outcome.
    timeout = 0.3 if reason.startswith("timeout") else 3.0
    params = SmtpCheckParams(host, port, helo_name="lb1.test", connect_timeout=timeout)
    result = await make_checker(params).check()
    assert (result.ok, result.reason) == (ok, reason)
    if ok:
        async with asyncio.timeout(10):  # (the server reads the QUIT a moment later)
            while len(server.heard) < 2:
                await asyncio.sleep(0.01)
        assert server.heard == [b"HELO lb1.test\r\n", b"QUIT\r\n"]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_refused(host: str) -> None:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    try:
        result = await make_checker(SmtpCheckParams(host, port, connect_timeout=3)).check()
    finally:
        sock.close()
    assert (result.ok, result.reason) == (False, "connection refused")
