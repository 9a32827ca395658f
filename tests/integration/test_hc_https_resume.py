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
            writer.write(REPLY)
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
