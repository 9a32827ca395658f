"""HTTP_GET and SSL_GET against real aiohttp servers on 127.0.0.1 and ::1.

The HTTPS server uses a self-signed certificate made by ``openssl`` for the test.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from healthchecks import HttpGetParams, HttpSessions, UrlSpec, make_checker, parse_status_codes

BODY = b"hello world, all systems nominal"
MD5 = hashlib.md5(BODY).hexdigest()


@dataclass
class Seen:
    hosts: list[str | None] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)
    big_bytes: int = 0


def make_app(seen: Seen) -> web.Application:
    async def ok(request: web.Request) -> web.Response:
        seen.hosts.append(request.headers.get("Host"))
        return web.Response(body=BODY)

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), body=BODY)

    async def vhost(request: web.Request) -> web.Response:
        return web.Response(status=200 if request.host == "www.test" else 404, body=BODY)

    async def big(request: web.Request) -> web.StreamResponse:
        # An endless body: a check that reads it whole never finishes.
        resp = web.StreamResponse()
        await resp.prepare(request)
        chunk = b"match-me " + b"x" * 65527
        try:
            while True:
                await resp.write(chunk)
                seen.big_bytes += len(chunk)
                await asyncio.sleep(0.001)
        except (ConnectionError, asyncio.CancelledError):
            pass
        return resp

    async def stall(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": "1000"})
        await resp.prepare(request)
        await resp.write(b"x" * 100)
        await asyncio.sleep(30)  # stalls mid-body
        return resp

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/vhost", vhost)
    app.router.add_get("/big", big)
    app.router.add_get("/stall", stall)
    return app


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    crt, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=www.test", "-keyout", str(key), "-out", str(crt),
         "-addext", "subjectAltName=DNS:www.test,IP:127.0.0.1,IP:::1"],
        check=True, capture_output=True,
    )
    return crt, key


@dataclass
class Server:
    host: str
    port: int
    seen: Seen


async def start(
    host: str, ssl_context: ssl.SSLContext | None = None
) -> tuple[Server, web.AppRunner]:
    seen = Seen()
    runner = web.AppRunner(make_app(seen), shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, host, 0, ssl_context=ssl_context)
    await site.start()
    port = runner.addresses[0][1]
    return Server(host, port, seen), runner


@pytest.fixture(params=["127.0.0.1", "::1"])
async def http(request: pytest.FixtureRequest) -> AsyncIterator[Server]:
    server, runner = await start(request.param)
    try:
        yield server
    finally:
        await runner.cleanup()


@pytest.fixture(params=["127.0.0.1", "::1"])
async def https(request: pytest.FixtureRequest, cert: tuple[Path, Path]) -> AsyncIterator[Server]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*cert)
    seen_sni: list[str | None] = []

    def sni(_obj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        seen_sni.append(name)

    ctx.sni_callback = sni
    server, runner = await start(request.param, ctx)
    server.seen.sni = seen_sni
    try:
        yield server
    finally:
        await runner.cleanup()


async def check(
    server: Server, *urls: UrlSpec, timeout: float = 3.0, **kw: object
) -> tuple[bool, str]:
    params = HttpGetParams(
        server.host, server.port, urls=urls, connect_timeout=timeout, **kw  # type: ignore[arg-type]
    )
    checker = make_checker(params)
    try:
        result = await checker.check()
    finally:
        await checker.close()
    return result.ok, result.reason


@pytest.mark.parametrize(
    ("url", "ok", "reason"),
    [
        (UrlSpec("/ok"), True, "status 200"),
        (UrlSpec("/status/204"), True, "status 204"),
        (UrlSpec("/status/503"), False, "/status/503: status 503"),
        (UrlSpec("/status/302"), False, "/status/302: status 302"),  # redirects not followed
        (UrlSpec("/missing"), False, "/missing: status 404"),
        (UrlSpec("/status/503", status_code=parse_status_codes("200 500-503")), True, "status 503"),
        (UrlSpec("/status/200", status_code=parse_status_codes(204)), False,
         "/status/200: status 200"),
        (UrlSpec("/ok", digest=MD5), True, "status 200"),
        (UrlSpec("/ok", digest="0" * 32), False, f"/ok: digest mismatch ({MD5})"),
        (UrlSpec("/ok", regex=r"systems\s+nominal"), True, "status 200"),
        (UrlSpec("/ok", regex=r"degraded"), False, "/ok: regex not matched"),
        (UrlSpec("/ok", regex=r"degraded", regex_no_match=True), True, "status 200"),
        (UrlSpec("/ok", regex=r"nominal", regex_no_match=True), False, "/ok: regex matched"),
        (UrlSpec("/ok", digest=MD5, regex="nominal"), True, "status 200"),
        (UrlSpec("/vhost"), False, "/vhost: status 404"),
        (UrlSpec("/vhost", virtualhost="www.test"), True, "status 200"),
    ],
)
async def test_http_get(http: Server, url: UrlSpec, ok: bool, reason: str) -> None:
    assert await check(http, url) == (ok, reason)


async def test_every_url_must_pass(http: Server) -> None:
    assert await check(http, UrlSpec("/ok"), UrlSpec("/status/500")) == (
        False, "/status/500: status 500",
    )
    assert (await check(http, UrlSpec("/ok"), UrlSpec("/status/201")))[0]


async def test_virtualhost_sets_the_host_header(http: Server) -> None:
    assert (await check(http, UrlSpec("/ok"), virtualhost="api.test"))[0]
    assert (await check(http, UrlSpec("/ok", virtualhost="url.test"), virtualhost="api.test"))[0]
    assert http.seen.hosts == ["api.test", "url.test"]


async def test_a_body_larger_than_needed_is_not_read_whole(http: Server) -> None:
    # Status only: the endless body is not read at all.
    assert await check(http, UrlSpec("/big")) == (True, "status 200")
    # A regex that matches early stops reading at once.
    assert await check(http, UrlSpec("/big", regex="match-me")) == (True, "status 200")
    # A regex that never matches stops at max_body.
    assert await check(http, UrlSpec("/big", regex="absent", max_body=256 * 1024)) == (
        False, "/big: regex not matched",
    )
    # A digest has to read the whole body: an endless one times out.
    assert await check(http, UrlSpec("/big", digest=MD5), timeout=0.3) == (
        False, "timeout after 0.3s",
    )


async def test_a_server_that_stalls_mid_body_times_out(http: Server) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await check(http, UrlSpec("/stall", digest=MD5), timeout=0.3) == (
        False, "timeout after 0.3s",
    )
    assert loop.time() - start < 5


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_a_listener_that_never_answers_times_out(host: str) -> None:
    conns: list[asyncio.StreamWriter] = []

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conns.append(writer)  # accepts, reads nothing, says nothing

    srv = await asyncio.start_server(mute, host, 0)
    try:
        server = Server(host, srv.sockets[0].getsockname()[1], Seen())
        assert await check(server, UrlSpec("/ok"), timeout=0.3) == (False, "timeout after 0.3s")
        assert len(conns) == 1
    finally:
        for w in conns:
            w.close()
        srv.close()
        await srv.wait_closed()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_refused(host: str) -> None:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.bind((host, 0))
    try:
        server = Server(host, sock.getsockname()[1], Seen())
        assert await check(server, UrlSpec("/ok")) == (False, "connection refused")
    finally:
        sock.close()


async def test_a_server_that_hangs_up_is_down() -> None:
    async def rude(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.close()

    srv = await asyncio.start_server(rude, "127.0.0.1", 0)
    try:
        server = Server("127.0.0.1", srv.sockets[0].getsockname()[1], Seen())
        assert await check(server, UrlSpec("/ok")) == (False, "server disconnected")
    finally:
        srv.close()
        await srv.wait_closed()


async def test_bindto_sets_the_source_address() -> None:
    peers: list[str] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername")[0])
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        writer.close()

    srv = await asyncio.start_server(record, "127.0.0.1", 0)
    try:
        server = Server("127.0.0.1", srv.sockets[0].getsockname()[1], Seen())
        assert await check(server, UrlSpec("/"), bindto="127.0.0.9") == (True, "status 200")
    finally:
        srv.close()
        await srv.wait_closed()
    assert peers == ["127.0.0.9"]


async def test_ssl_get_without_verification_like_keepalived(https: Server) -> None:
    assert await check(https, UrlSpec("/ok", digest=MD5), tls=True) == (True, "status 200")
    assert https.seen.sni == [None]  # no SNI unless enable_sni


async def test_ssl_get_sends_sni_when_enabled(https: Server) -> None:
    url = UrlSpec("/vhost")
    assert await check(https, url, tls=True, enable_sni=True, virtualhost="www.test") == (
        True, "status 200",
    )
    assert https.seen.sni == ["www.test"]


async def test_ssl_get_with_verification(https: Server, cert: tuple[Path, Path]) -> None:
    ok, reason = await check(https, UrlSpec("/ok"), tls=True, verify=True)
    assert not ok and reason.startswith("TLS certificate:")
    assert await check(https, UrlSpec("/ok"), tls=True, verify=True, ca_file=str(cert[0])) == (
        True, "status 200",
    )


async def test_plain_http_against_tls_is_down(https: Server) -> None:
    assert await check(https, UrlSpec("/ok")) == (False, "server disconnected")


async def test_shared_sessions_serve_many_checks(http: Server) -> None:
    sessions = HttpSessions()
    try:
        checkers = [
            make_checker(HttpGetParams(http.host, http.port, urls=(UrlSpec("/ok"),),
                                       connect_timeout=1), http=sessions)
            for _ in range(20)
        ]
        results = await asyncio.gather(*(c.check() for c in checkers))
        assert all(r.ok for r in results)
        assert len(http.seen.hosts) == 20
    finally:
        await sessions.close()


def test_a_missing_ca_file_is_a_clear_error(tmp_path: Path) -> None:
    params = HttpGetParams("127.0.0.1", 443, tls=True, verify=True,
                           ca_file=str(tmp_path / "missing.pem"))
    with pytest.raises(ValueError, match=r"ca_file: .*missing\.pem"):
        make_checker(params)


@pytest.mark.parametrize(
    ("protocol", "request_line", "connection"),
    [("1.0", "HTTP/1.0", None), ("1.0C", "HTTP/1.0", "close"), ("1.1", "HTTP/1.1", "close")],
)
async def test_http_protocol(protocol: str, request_line: str, connection: str | None) -> None:
    heard: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heard.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
        writer.close()

    srv = await asyncio.start_server(record, "127.0.0.1", 0)
    try:
        server = Server("127.0.0.1", srv.sockets[0].getsockname()[1], Seen())
        assert await check(server, UrlSpec("/p"), http_protocol=protocol) == (True, "status 200")
    finally:
        srv.close()
        await srv.wait_closed()
    lines = heard[0].decode().split("\r\n")
    assert lines[0] == f"GET /p {request_line}"
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:] if line)}
    assert headers.get("connection") == connection
