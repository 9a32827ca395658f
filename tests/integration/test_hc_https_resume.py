"""SSL_GET resumes its TLS session per real server: counted by the server, TLS 1.2 and 1.3."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from healthchecks import HttpGetParams, HttpSessions, UrlSpec, make_checker

REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    crt, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=www.test", "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True,
    )
    return crt, key


@dataclass
class TlsServer:
    port: int
    resumed: list[bool] = field(default_factory=list)
    versions: list[str | None] = field(default_factory=list)
    failing: bool = False


async def tls_server(
    cert: tuple[Path, Path], version: ssl.TLSVersion
) -> tuple[TlsServer, asyncio.Server]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    ctx.minimum_version = ctx.maximum_version = version
    seen = TlsServer(0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        obj = writer.get_extra_info("ssl_object")
        seen.resumed.append(obj.session_reused)
        seen.versions.append(obj.version())
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(REPLY.replace(b"200 OK", b"503 Busy") if seen.failing else REPLY)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    seen.port = srv.sockets[0].getsockname()[1]
    return seen, srv


@pytest.fixture(params=[ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls12", "tls13"])
async def server(
    request: pytest.FixtureRequest, cert: tuple[Path, Path]
) -> AsyncIterator[TlsServer]:
    seen, srv = await tls_server(cert, request.param)
    try:
        yield seen
    finally:
        srv.close()
        await srv.wait_closed()


async def test_each_real_server_resumes_its_own_session(server: TlsServer) -> None:
    sessions = HttpSessions()
    params = HttpGetParams("127.0.0.1", server.port, urls=(UrlSpec("/", digest=None),),
                           tls=True, connect_timeout=3)
    first = make_checker(params, http=sessions)
    for _ in range(4):
        assert (await first.check()).ok
    assert server.resumed == [False, True, True, True]
    # Another real server's checker (here: the same address, a checker of its own)
    # has no session to offer at first, then resumes its own.
    second = make_checker(params, http=sessions)
    for _ in range(2):
        assert (await second.check()).ok
    assert server.resumed[4:] == [False, True]
    assert len(set(server.versions)) == 1


async def test_a_failed_check_keeps_the_session_for_the_next(server: TlsServer) -> None:
    checker = make_checker(HttpGetParams("127.0.0.1", server.port, urls=(UrlSpec("/"),),
                                         tls=True, connect_timeout=3))
    assert (await checker.check()).ok
    server.failing = True
    assert (await checker.check()).reason == "/: status 503"
    server.failing = False
    # The connection of the failed check was dropped without a TLS shutdown: the session
    # it used must still be offered, and taken.
    assert (await checker.check()).ok
    assert (await checker.check()).ok
    assert server.resumed == [False, True, True, True]


async def test_a_tls_failure_drops_the_session(
    server: TlsServer, cert: tuple[Path, Path]
) -> None:
    checker = make_checker(HttpGetParams("127.0.0.1", server.port, urls=(UrlSpec("/"),),
                                         tls=True, connect_timeout=3))
    assert (await checker.check()).ok
    assert checker.tls_session is not None  # type: ignore[attr-defined]
    # The same real server now speaks plain HTTP: the handshake fails.
    plain = await asyncio.start_server(_plain, "127.0.0.1", 0)
    try:
        wrong = make_checker(HttpGetParams("127.0.0.1", plain.sockets[0].getsockname()[1],
                                           urls=(UrlSpec("/"),), tls=True, connect_timeout=3))
        wrong.tls_session = checker.tls_session  # type: ignore[attr-defined]
        checker.tls_session = None  # type: ignore[attr-defined]
        result = await wrong.check()
        assert not result.ok and result.reason.startswith("TLS error"), result
        assert wrong.tls_session is None  # type: ignore[attr-defined]
    finally:
        plain.close()
        await plain.wait_closed()


async def _plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()
    writer.close()
