"""`http_protocol` from a config file to the wire: the request a real server receives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hacluster.config.keepalived_import import import_keepalived
from hacluster.config.loader import load_config, parse_config
from hacluster.config.lower import plans_of
from hacluster.config.model import Config
from healthchecks import HttpGetParams, make_checker


@dataclass
class KeepAliveServer:
    """Answers each request with a keep-alive response and never closes by itself."""

    port: int = 0
    requests: list[bytes] = field(default_factory=list)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    closed_by_peer: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        try:
            self.requests.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
                         b"Content-Length: 3\r\n\r\nok\n")
            await writer.drain()
            try:
                more = await reader.read(1)  # the server would wait on; the checker ends it
            except ConnectionResetError:
                more = b""
            if not more:
                self.closed_by_peer += 1
        except (OSError, asyncio.IncompleteReadError):
            pass


@pytest.fixture
async def keepalive_server() -> AsyncIterator[KeepAliveServer]:
    server = KeepAliveServer()
    srv = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = srv.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        for w in server.writers:
            w.close()
        srv.close()
        await srv.wait_closed()


def _keepalived_1_0k_request(path: str, port: int) -> bytes:
    # keepalived's check_http.c request template with HTTP_PROTOCOL_1_0K: minor version 0
    # and "Connection: keep-alive\r\n" between User-Agent and Host.
    return (f"GET {path} HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\n"
            f"Connection: keep-alive\r\nHost: 127.0.0.1:{port}\r\n\r\n").encode()


async def _run_only_check(config: Config, protocol: str = "1.0K") -> tuple[bool, str]:
    vs = config.virtual_servers[0]
    (plan,) = plans_of(config, vs, vs.real_servers[0])
    assert isinstance(plan.params, HttpGetParams)
    assert plan.params.http_protocol == protocol
    result = await asyncio.wait_for(make_checker(plan.params).check(), 5)
    return result.ok, result.reason


async def test_yaml_1_0k_sends_keepalived_s_1_0k_request(
    tmp_path: Path, keepalive_server: KeepAliveServer
) -> None:
    path = tmp_path / "hacluster.yaml"
    path.write_text(f"""
virtual_servers:
  - ip: 10.99.0.1
    port: 80
    protocol: TCP
    real_servers:
      - ip: 127.0.0.1
        port: {keepalive_server.port}
        HTTP_GET:
          url: [{{path: /health, status_code: 200}}]
          http_protocol: 1.0K
          connect_timeout: 2
""")
    ok, reason = await _run_only_check(load_config(path))
    assert (ok, reason) == (True, "status 200")
    assert keepalive_server.requests == [_keepalived_1_0k_request("/health",
                                                                  keepalive_server.port)]
    async with asyncio.timeout(10):  # (the server sees the close a moment later)
        while not keepalive_server.closed_by_peer:
            await asyncio.sleep(0.01)
    assert keepalive_server.closed_by_peer == 1  # the server kept it open; the check closed


async def test_imported_1_0k_is_1_0_as_keepalived_reads_it(
    tmp_path: Path, keepalive_server: KeepAliveServer
) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text(f"""
virtual_server 10.99.0.1 80 {{
    protocol TCP
    real_server 127.0.0.1 {keepalive_server.port} {{
        HTTP_GET {{
            url {{ path /health }}
            http_protocol 1.0k
            connect_timeout 2
        }}
    }}
}}
""")
    result = import_keepalived(path)
    # keepalived 2.2.7: "Invalid http_protocol version 1.0K", and it keeps 1.0
    [note] = result.skipped
    assert (note.keyword, note.changes_behaviour) == (
        "virtual_server.real_server.HTTP_GET.http_protocol", False)
    assert "keepalived rejects 1.0K" in note.message
    ok, reason = await _run_only_check(parse_config(result.yaml_text, "imported.yaml"), "1.0")
    assert (ok, reason) == (True, "status 200")
    assert keepalive_server.requests == [
        f"GET /health HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\n"
        f"Host: 127.0.0.1:{keepalive_server.port}\r\n\r\n".encode()]
