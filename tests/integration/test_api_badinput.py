"""The control API against malformed HTTP, oversized bodies, slow clients and token abuse.

Real listeners (unix socket and TCP on loopback) and raw sockets as clients, so that the
bytes sent are exactly the broken ones. The fuzzing is seeded (HACLUSTER_FUZZ_SEED)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hacluster.api import MAX_BODY, ApiServer, Listeners
from hacluster.metrics import Metrics
from tests.integration.test_api import LOOPBACK, TOKEN, FakeController

STATUS = b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
SEED = int(os.environ.get("HACLUSTER_FUZZ_SEED", "20261207"))

# The kinds of request the fault drill found writing tracebacks (and a few more).
MALFORMED: dict[str, bytes] = {
    "garbage request line": b"GARBAGE\r\n\r\n",
    "binary request line": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    "bad content-length": b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "negative content-length": b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    "duplicate content-length":
        b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "NUL in a header": b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "header without a colon": b"GET /v1/status HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
    "oversized header":
        b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
    "oversized request line": b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "invalid byte in the URL": b"GET /v1/st\x01atus HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad version": b"GET /v1/status HTTP/9.Q\r\nHost: x\r\n\r\n",
    "bad chunk size":
        b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
    "chunked and content-length": b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
}


@pytest.fixture
def controller() -> FakeController:
    return FakeController()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(version="0.1.0")


@pytest.fixture
async def server(
    controller: FakeController, metrics: Metrics, tmp_path: Path
) -> AsyncIterator[ApiServer]:
    api = ApiServer(controller, metrics, Listeners(
        control_socket=tmp_path / "api.sock", api_listen=LOOPBACK, api_token=TOKEN,
    ))
    await api.start()
    try:
        yield api
    finally:
        await api.stop()


async def _open(
    server: ApiServer, listener: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if listener == "unix":
        assert server.listeners.control_socket is not None
        return await asyncio.open_unix_connection(str(server.listeners.control_socket))
    assert server.tcp_address is not None
    return await asyncio.open_connection(*server.tcp_address)


async def exchange(server: ApiServer, listener: str, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, return everything answered until the server closes (or `timeout`)."""
    reader, writer = await _open(server, listener)
    try:
        writer.write(data)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        answer = b""
        end = asyncio.get_running_loop().time() + timeout
        while True:
            left = end - asyncio.get_running_loop().time()
            if left <= 0:
                break
            try:
                chunk = await asyncio.wait_for(reader.read(65536), left)
            except (TimeoutError, ConnectionError):
                break
            if not chunk:
                break
            answer += chunk
            if b"\r\n\r\n" in answer and _complete(answer):
                break
        return answer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


def status_of(answer: bytes) -> int | None:
    parts = answer.split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/1.") and parts[1].isdigit():
        return int(parts[1])
    return None


def bad_total(metrics: Metrics, listener: str) -> float:
    total = 0.0
    for family in metrics.registry.collect():
        if family.name != "hacluster_api_bad_requests":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels["listener"] == listener:
                total += sample.value
    return total


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        assert record.exc_info is None, f"traceback logged: {record.getMessage()}"
        assert "Traceback" not in caplog.text


def malformed_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "malformed HTTP request" in r.getMessage()]


# --------------------------------------------------------------------------- malformed requests


@pytest.mark.parametrize("listener", ["unix", "tcp"])
@pytest.mark.parametrize("kind", list(MALFORMED))
async def test_a_malformed_request_is_refused_counted_and_logged_without_traceback(
    server: ApiServer, controller: FakeController, metrics: Metrics,
    caplog: pytest.LogCaptureFixture, listener: str, kind: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = await exchange(server, listener, MALFORMED[kind])
    assert status_of(answer) == 400, answer[:200]
    assert controller.calls == []  # nothing reached the controller, token or not
    assert_no_traceback(caplog)
    # Refused by the parser, before any handler or token check: counted, one line.
    assert bad_total(metrics, listener) == 1
    lines = malformed_lines(caplog)
    assert len(lines) == 1 and "\n" not in lines[0].getMessage()
    assert f"on {listener} " in lines[0].getMessage()
    # The API still answers afterwards.
    assert status_of(await exchange(server, listener, STATUS)) == 200


async def test_a_flood_of_malformed_requests_logs_at_most_one_line_a_second(
    server: ApiServer, metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    start = time.monotonic()
    sent = 0
    kinds = [k for k in MALFORMED if "content-length" not in k and "chunk" not in k]
    while time.monotonic() - start < 2.2:
        for listener in ("unix", "tcp"):
            await exchange(server, listener, MALFORMED[kinds[sent % len(kinds)]])
            sent += 1
    elapsed = time.monotonic() - start
    assert_no_traceback(caplog)
    lines = malformed_lines(caplog)
    assert 1 <= len(lines) <= 1 + elapsed  # once a second at most, all listeners together
    assert bad_total(metrics, "unix") + bad_total(metrics, "tcp") == sent
    assert any("more since the last report" in r.getMessage() for r in lines)
    print(f"\n{sent} malformed requests in {elapsed:.1f}s: {len(lines)} log lines")


# --------------------------------------------------------------------------- bodies


@pytest.mark.parametrize("listener", ["unix", "tcp"])
async def test_a_10_mb_reload_is_413_and_reloads_nothing(
    server: ApiServer, controller: FakeController, listener: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = b"x" * (10 * 1024 * 1024)
    auth = f"Authorization: Bearer {TOKEN}\r\n".encode()
    head = (b"POST /v1/reload HTTP/1.1\r\nHost: x\r\n" + auth
            + f"Content-Length: {len(body)}\r\n\r\n".encode())
    answer = await exchange(server, listener, head + body)
    assert status_of(answer) == 413, answer[:300]
    assert controller.reloads == 0
    assert_no_traceback(caplog)


@pytest.mark.parametrize("path", [
    "/v1/reload",
    "/v1/servers/10.99.0.100:80%2FTCP/10.99.0.11:80/drain",
    "/v1/instances/VI_1/maintenance",
])
async def test_every_body_is_limited_also_when_chunked(
    server: ApiServer, controller: FakeController, path: str,
) -> None:
    chunk = b"y" * 8192
    chunks = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n"
                      for _ in range(MAX_BODY // len(chunk) + 4)) + b"0\r\n\r\n"
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    assert status_of(await exchange(server, "unix", head + chunks)) == 413
    declared = (f"POST {path} HTTP/1.1\r\nHost: x\r\n"
                f"Content-Length: {MAX_BODY + 1}\r\n\r\n").encode()
    assert status_of(await exchange(server, "unix", declared + b"z" * (MAX_BODY + 1))) == 413
    assert controller.calls == []
    # A body within the limit still works where one is expected.
    ok = b'{"on": true}'
    answer = await exchange(server, "unix", (
        f"POST /v1/instances/VI_1/maintenance HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Content-Length: {len(ok)}\r\n\r\n").encode() + ok)
    assert status_of(answer) == 200


# --------------------------------------------------------------------------- slow clients


async def test_slow_clients_do_not_stop_the_api(server: ApiServer) -> None:
    # Slowloris: many connections each trickling a request, one byte at a time.
    partial = b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Slow: "
    conns = [await _open(server, "unix" if i % 2 else "tcp") for i in range(100)]
    for _reader, writer in conns:
        writer.write(partial)
    try:
        for _ in range(5):
            for _reader, writer in conns:
                writer.write(b"a")
            await asyncio.sleep(0.05)
        for listener in ("unix", "tcp"):
            started = time.monotonic()
            answer = await exchange(server, listener, b"GET /v1/status HTTP/1.1\r\nHost: x\r\n"
                                                      b"Connection: close\r\n\r\n")
            assert status_of(answer) == 200
            print(f"\n{listener}: status answered in {(time.monotonic() - started) * 1000:.0f} ms"
                  f" beside 100 slow clients")
        # A client trickling its body is not waited for forever by the others either.
        body_head = (b"POST /v1/instances/VI_1/maintenance HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 100\r\n\r\n{")
        _slow_reader, slow_writer = await _open(server, "unix")
        slow_writer.write(body_head)
        assert status_of(await exchange(server, "unix", b"GET /v1/status HTTP/1.1\r\nHost: x\r\n"
                                                        b"Connection: close\r\n\r\n")) == 200
        slow_writer.close()
    finally:
        for _reader, writer in conns:
            writer.close()
        for _reader, writer in conns:
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


# --------------------------------------------------------------------------- tokens on TCP


def _post(path: str, headers: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}"
            f"Content-Length: 0\r\n\r\n").encode("latin-1")


async def test_token_rules_on_the_tcp_listener(
    server: ApiServer, controller: FakeController, caplog: pytest.LogCaptureFixture
) -> None:
    refused = {
        "": 401,
        "Authorization: Basic dXNlcjpwYXNz\r\n": 401,
        "Authorization: Bearer\r\n": 401,
        "Authorization: Bearer \r\n": 401,
        "Authorization: bearer wrong\r\n": 403,
        f"Authorization: Bearer {TOKEN}x\r\n": 403,
        f"Authorization: Bearer {TOKEN[:-1]}\r\n": 403,
        f"Authorization: Bearer {TOKEN.upper()}\r\n": 403,
        "Authorization: Bearer \xe9t\xe9\r\n": 403,
    }
    for headers, status in refused.items():
        for path in ("/v1/reload", "/v1/instances/VI_1/maintenance?on=1",
                     "/v1/servers/10.99.0.100:80%2FTCP/10.99.0.11:80/drain"):
            answer = await exchange(server, "tcp", _post(path, headers))
            assert status_of(answer) == status, (headers, path, answer[:200])
    assert controller.calls == []
    # Reads need no token; the right token (any scheme case) changes things.
    assert status_of(await exchange(server, "tcp", b"GET /v1/status HTTP/1.1\r\nHost: x\r\n"
                                                   b"Connection: close\r\n\r\n")) == 200
    ok = await exchange(server, "tcp", _post("/v1/reload", f"Authorization: BEARER {TOKEN}\r\n"))
    assert status_of(ok) == 200 and controller.reloads == 1
    # The unix socket needs none.
    assert status_of(await exchange(server, "unix", _post("/v1/reload"))) == 200
    assert_no_traceback(caplog)


# --------------------------------------------------------------------------- fuzzing


def _valid_requests() -> list[bytes]:
    auth = f"Authorization: Bearer {TOKEN}\r\n"
    return [
        b"GET /v1/status HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
        b"GET /v1/ipvs HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text\r\n\r\n",
        (f"POST /v1/instances/VI_1/maintenance HTTP/1.1\r\nHost: x\r\n{auth}"
         "Content-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"on\": true}").encode(),
        (f"POST /v1/servers/10.99.0.100:80%2FTCP/10.99.0.11:80/drain HTTP/1.1\r\nHost: x\r\n"
         f"{auth}Content-Length: 0\r\n\r\n").encode(),
        (f"POST /v1/reload HTTP/1.1\r\nHost: x\r\n{auth}Transfer-Encoding: chunked\r\n\r\n"
         "2\r\n{}\r\n0\r\n\r\n").encode(),
    ]


_NASTY = [b"\x00", b"\r", b"\n", b"\r\n", b":", b" ", b"\t", b"\xff", b"\x7f", b"%",
          b"%00", b"\r\n\r\n", b"Content-Length: 99999999999999999999\r\n",
          b"Transfer-Encoding: chunked\r\n", b"Content-Length: 5\r\n", b"HTTP/1.1", b"?",
          b"/../../", b"\xc3\x28", b"a" * 9000]


def mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        pos = rng.randrange(len(out) + 1)
        if op == 0 and out:
            out[min(pos, len(out) - 1)] = rng.randrange(256)
        elif op == 1:
            out[pos:pos] = rng.choice(_NASTY)
        elif op == 2 and out:
            del out[pos : pos + rng.randint(1, 16)]
        elif op == 3:
            out[pos:pos] = out[pos : pos + rng.randint(1, 64)] * rng.randint(1, 3)
        elif op == 4:
            out = out[:pos]  # cut short
        else:
            out[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    return bytes(out)


async def test_fuzzed_requests_never_crash_log_tracebacks_or_bypass_the_token(
    server: ApiServer, controller: FakeController, metrics: Metrics,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    rng = random.Random(SEED)
    valid = _valid_requests()
    statuses: dict[int | None, int] = {}
    count = int(os.environ.get("HACLUSTER_API_FUZZ_COUNT", "1500"))
    sem = asyncio.Semaphore(32)

    cases: list[tuple[str, bytes, bool]] = []
    for i in range(count):
        listener = "tcp" if i % 2 else "unix"
        data = mutate(rng, valid[i % len(valid)])
        unauth = listener == "tcp" and rng.random() < 0.5
        if unauth:
            data = data.replace(TOKEN.encode(), b"nope")
        cases.append((listener, data, unauth))

    async def one(listener: str, data: bytes, unauth: bool) -> None:
        async with sem:
            answer = await exchange(server, listener, data, timeout=1.0)
        status = status_of(answer)
        statuses[status] = statuses.get(status, 0) + 1
        if unauth and status is not None and not data.startswith((b"GET", b"HEAD")):
            assert status >= 400, (data[:200], answer[:200])
        assert status is None or status < 500, (data[:200], answer[:300])

    started = time.monotonic()
    # Without the token first: nothing of it may reach the controller.
    await asyncio.gather(*(one(*case) for case in cases if case[2]))
    assert controller.calls == []
    await asyncio.gather(*(one(*case) for case in cases if not case[2]))
    elapsed = time.monotonic() - started
    assert_no_traceback(caplog)
    lines = malformed_lines(caplog)
    assert len(lines) <= 1 + elapsed
    for listener in ("unix", "tcp"):
        assert status_of(await exchange(server, listener, STATUS)) == 200
    print(f"\nAPI fuzz (seed {SEED}): {count} mutated requests in {elapsed:.1f}s, "
          f"statuses {dict(sorted(statuses.items(), key=lambda kv: str(kv[0])))}, "
          f"{bad_total(metrics, 'unix') + bad_total(metrics, 'tcp'):.0f} counted malformed, "
          f"{len(lines)} log lines")
