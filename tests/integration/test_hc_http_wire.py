"""HTTP_GET against hand-scripted servers: framing, interim and bodiless responses, broken peers.

Each server is a real listener on loopback started by the test; it reads the request and
then plays a script of writes, pauses and a close (or never closes).
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from healthchecks import HttpGetParams, UrlSpec, make_checker, parse_status_codes

BODY = b"all systems nominal\n" * 20
MD5 = hashlib.md5(BODY).hexdigest()
BIG = bytes(range(256)) * 1200  # 300 KiB: more than one read of the checker
BIG_MD5 = hashlib.md5(BIG).hexdigest()

Script = Callable[[asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Scripted:
    port: int
    requests: list[bytes] = field(default_factory=list)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Script], Awaitable[Scripted]]]:
    servers: list[asyncio.Server] = []
    writers: list[asyncio.StreamWriter] = []

    async def start(script: Script) -> Scripted:
        seen = Scripted(0)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            try:
                seen.requests.append(await reader.readuntil(b"\r\n\r\n"))
                await script(writer)
            except (OSError, asyncio.IncompleteReadError):
                pass

        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(srv)
        seen.port = srv.sockets[0].getsockname()[1]
        return seen

    yield start
    for w in writers:
        w.close()
    for srv in servers:
        srv.close()
        await srv.wait_closed()


def reply(*parts: bytes, close: bool = True, pause: float = 0.0) -> Script:
    """Write each part (with a drain and an optional pause between), then close or hang."""

    async def script(writer: asyncio.StreamWriter) -> None:
        for part in parts:
            writer.write(part)
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)
        if close:
            writer.close()
        else:
            await asyncio.sleep(60)

    return script


async def check(port: int, *urls: UrlSpec, timeout: float = 3.0, **kw: object) -> tuple[bool, str]:
    params = HttpGetParams("127.0.0.1", port, urls=urls or (UrlSpec("/p"),),
                           connect_timeout=timeout, **kw)  # type: ignore[arg-type]
    checker = make_checker(params)
    try:
        result = await checker.check()
    finally:
        await checker.close()
    return result.ok, result.reason


def chunked(body: bytes, size: int) -> bytes:
    out = b""
    for i in range(0, len(body), size):
        piece = body[i:i + size]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\n\r\n"


HEAD_CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


def head(length: int, status: bytes = b"200 OK") -> bytes:
    return b"HTTP/1.1 " + status + f"\r\nContent-Length: {length}\r\n\r\n".encode()


# -- framing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (UrlSpec("/p", digest=MD5), (True, "status 200")),
        (UrlSpec("/p", digest="0" * 32), (False, f"/p: digest mismatch ({MD5})")),
        (UrlSpec("/p", regex="nominal"), (True, "status 200")),
        (UrlSpec("/p", regex="degraded"), (False, "/p: regex not matched")),
    ],
)
async def test_a_chunked_body_is_judged_decoded(
    serve: Callable[[Script], Awaitable[Scripted]], url: UrlSpec, expected: tuple[bool, str]
) -> None:
    srv = await serve(reply(HEAD_CHUNKED, chunked(BODY, 7), close=False))
    # The server keeps the connection: the end of the chunked body ends the check.
    assert await check(srv.port, url) == expected


async def test_a_body_split_across_many_reads(
    serve: Callable[[Script], Awaitable[Scripted]],
) -> None:
    pieces = [BODY[i:i + 3] for i in range(0, len(BODY), 3)]
    srv = await serve(reply(head(len(BODY)), *pieces, pause=0.001))
    assert await check(srv.port, UrlSpec("/p", digest=MD5, regex="nominal\nall")) == (
        True, "status 200",
    )
    # A regex that spans two writes is still found.
    srv = await serve(reply(head(len(BODY)), *pieces, pause=0.001))
    assert await check(srv.port, UrlSpec("/p", regex="systems nominal")) == (True, "status 200")


async def test_a_digest_over_a_body_larger_than_one_read(
    serve: Callable[[Script], Awaitable[Scripted]],
) -> None:
    srv = await serve(reply(head(len(BIG)), BIG, close=False))
    assert await check(srv.port, UrlSpec("/p", digest=BIG_MD5)) == (True, "status 200")
    srv = await serve(reply(HEAD_CHUNKED, chunked(BIG, 50000), close=False))
    assert await check(srv.port, UrlSpec("/p", digest=BIG_MD5)) == (True, "status 200")
    srv = await serve(reply(head(len(BIG)), BIG[:-1] + b"!", close=False))
    ok, reason = await check(srv.port, UrlSpec("/p", digest=BIG_MD5))
    assert not ok and reason.startswith("/p: digest mismatch (")


async def test_http_1_0_without_content_length_ends_with_the_connection(
    serve: Callable[[Script], Awaitable[Scripted]],
) -> None:
    srv = await serve(reply(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n", BODY[:100],
                            BODY[100:], pause=0.01))
    assert await check(srv.port, UrlSpec("/p", digest=MD5)) == (True, "status 200")
    srv = await serve(reply(b"HTTP/1.0 200 OK\r\n\r\n", BODY))
    assert await check(srv.port, UrlSpec("/p", regex="nominal", regex_no_match=True)) == (
        False, "/p: regex matched",
    )


async def test_a_digest_equals_the_one_genhash_prints(
    serve: Callable[[Script], Awaitable[Scripted]],
) -> None:
    srv = await serve(reply(head(len(BIG)), BIG))
    out = await asyncio.to_thread(
        subprocess.run, ["genhash", "-s", "127.0.0.1", "-p", str(srv.port), "-u", "/p"],
        capture_output=True, text=True, timeout=10, check=True,
    )
    printed = out.stdout.split()[-1]
    assert printed == BIG_MD5
    srv = await serve(reply(head(len(BIG)), BIG))
    assert await check(srv.port, UrlSpec("/p", digest=printed)) == (True, "status 200")


# -- interim and bodiless responses ----------------------------------------------------------


async def test_interim_1xx_responses_are_skipped(
    serve: Callable[[Script], Awaitable[Scripted]],
) -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
    srv = await serve(reply(interim, head(len(BODY)), BODY))
    assert await check(srv.port, UrlSpec("/p", digest=MD5)) == (True, "status 200")
    srv = await serve(reply(interim, head(0, b"503 Busy")))
    assert await check(srv.port) == (False, "/p: status 503")


async def test_101_is_a_final_status(serve: Callable[[Script], Awaitable[Scripted]]) -> None:
    srv = await serve(reply(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n"
                            b"Connection: upgrade\r\n\r\n", close=False))
    assert await check(srv.port, UrlSpec("/p", digest=MD5)) == (False, "/p: status 101")


async def test_204_and_304_have_no_body(serve: Callable[[Script], Awaitable[Scripted]]) -> None:
    empty = hashlib.md5(b"").hexdigest()
    # The server keeps the connection open: only knowing these have no body ends the check.
    srv = await serve(reply(b"HTTP/1.1 204 No Content\r\n\r\n", close=False))
    assert await check(srv.port, UrlSpec("/p", digest=empty)) == (True, "status 204")
    srv = await serve(reply(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",
                            close=False))
    assert await check(srv.port, UrlSpec("/p", digest=empty)) == (False, "/p: status 304")
    srv = await serve(reply(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",
                            close=False))
    url = UrlSpec("/p", digest=empty, status_code=parse_status_codes("200 304"))
    assert await check(srv.port, url) == (True, "status 304")


# -- broken and hostile servers ----------------------------------------------------------


async def test_a_close_mid_headers_is_down(
    serve: Callable[[Script], Awaitable[Scripted]],
) -> None:
    srv = await serve(reply(b"HTTP/1.1 200 OK\r\nContent-Le"))
    assert await check(srv.port) == (False, "/p: server disconnected mid-headers")


async def test_a_close_mid_body_is_down(serve: Callable[[Script], Awaitable[Scripted]]) -> None:
    srv = await serve(reply(head(len(BODY)), BODY[:50]))
    assert await check(srv.port, UrlSpec("/p", digest=MD5)) == (
        False, "/p: server disconnected mid-body",
    )
    srv = await serve(reply(HEAD_CHUNKED, chunked(BODY, 64)[:100]))
    assert await check(srv.port, UrlSpec("/p", regex="absent")) == (
        False, "/p: server disconnected mid-body",
    )
    # A status-only check does not wait for the body at all.
    srv = await serve(reply(head(len(BODY)), BODY[:50], close=False))
    assert await check(srv.port) == (True, "status 200")


async def test_a_close_before_any_answer_is_down(
    serve: Callable[[Script], Awaitable[Scripted]],
) -> None:
    srv = await serve(reply())
    assert await check(srv.port) == (False, "server disconnected")


@pytest.mark.parametrize(
    "garbage",
    [
        b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
        b"\x16\x03\x01\x00\x05hello",
        b"HTTP/1.1 2x0 OK\r\n\r\n",
    ],
)
async def test_garbage_is_a_bad_response(
    serve: Callable[[Script], Awaitable[Scripted]], garbage: bytes
) -> None:
    srv = await serve(reply(garbage, close=False))
    ok, reason = await check(srv.port)
    assert not ok
    assert reason.startswith("/p: bad response: "), reason


async def test_a_slowloris_server_times_out(
    serve: Callable[[Script], Awaitable[Scripted]],
) -> None:
    # One byte every 20 ms, for longer than the timeout: headers that never end.
    trickle = [bytes([c]) for c in b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"z" * 200]
    loop = asyncio.get_running_loop()
    srv = await serve(reply(*trickle, pause=0.02))
    started = loop.time()
    assert await check(srv.port, timeout=0.4) == (False, "timeout after 0.4s")
    assert loop.time() - started < 2
    # A body that trickles forever: a digest needs all of it.
    srv = await serve(reply(head(10**6), *[b"x"] * 500, pause=0.02))
    assert await check(srv.port, UrlSpec("/p", digest=MD5), timeout=0.4) == (
        False, "timeout after 0.4s",
    )


async def test_each_url_has_its_own_connection_and_request(
    serve: Callable[[Script], Awaitable[Scripted]],
) -> None:
    srv = await serve(reply(head(len(BODY)), BODY))
    urls = (UrlSpec("/a", digest=MD5), UrlSpec("/b", virtualhost="b.test"), UrlSpec("/c"))
    assert await check(srv.port, *urls, virtualhost="www.test", http_protocol="1.0K") == (
        True, "status 200",
    )
    assert [r.split(b"\r\n")[0] for r in srv.requests] == [
        b"GET /a HTTP/1.0", b"GET /b HTTP/1.0", b"GET /c HTTP/1.0",
    ]
    assert srv.requests[1] == (b"GET /b HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\n"
                               b"Connection: keep-alive\r\nHost: b.test\r\n\r\n")
    assert b"Host: www.test\r\n" in srv.requests[2]


async def test_without_virtualhost_the_host_is_ip_and_port(
    serve: Callable[[Script], Awaitable[Scripted]],
) -> None:
    srv = await serve(reply(head(0)))
    assert await check(srv.port) == (True, "status 200")
    assert srv.requests == [
        f"GET /p HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 127.0.0.1:{srv.port}\r\n\r\n"
        .encode()
    ]
