"""TCP_CHECK's `complete_handshake` from a config file: what a real server accepts."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from hacluster.config.errors import ConfigError
from hacluster.config.loader import load_config
from hacluster.config.lower import plans_of
from healthchecks import TcpCheckParams, make_checker

CHECKS = 10


class CountingServer:
    """A listener that accepts whatever connection the kernel completes, and counts it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self.accepted = 0

    def drain(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return
            self.accepted += 1
            conn.close()


@pytest.fixture
def servers() -> Iterator[tuple[CountingServer, CountingServer]]:
    pair = CountingServer(), CountingServer()
    try:
        yield pair
    finally:
        for s in pair:
            s.sock.close()


async def test_complete_handshake_false_is_half_open_true_is_accepted(
    tmp_path: Path, servers: tuple[CountingServer, CountingServer]
) -> None:
    default, full = servers
    path = tmp_path / "hacluster.yaml"
    path.write_text(f"""
virtual_servers:
  - ip: 10.99.0.1
    port: 80
    protocol: TCP
    real_servers:
      - ip: 127.0.0.1
        port: {default.port}
        TCP_CHECK: {{connect_timeout: 2}}
      - ip: 127.0.0.1
        port: {full.port}
        TCP_CHECK: {{connect_timeout: 2, complete_handshake: true}}
""")
    config = load_config(path)
    vs = config.virtual_servers[0]
    (half_plan,), (full_plan,) = (plans_of(config, vs, rs) for rs in vs.real_servers)
    assert isinstance(half_plan.params, TcpCheckParams)
    assert isinstance(full_plan.params, TcpCheckParams)
    assert (half_plan.params.complete_handshake, full_plan.params.complete_handshake) == (
        False, True)
    half_check, full_check = make_checker(half_plan.params), make_checker(full_plan.params)
    for _ in range(CHECKS):
        half, complete = await asyncio.gather(half_check.check(), full_check.check())
        assert (half.ok, half.reason) == (True, "connected")
        assert (complete.ok, complete.reason) == (True, "connected")
    await asyncio.sleep(0.1)  # anything the kernel completed is in the accept queue now
    default.drain()
    full.drain()
    assert (default.accepted, full.accepted) == (0, CHECKS)


def test_complete_handshake_must_be_a_boolean(tmp_path: Path) -> None:
    path = tmp_path / "hacluster.yaml"
    path.write_text("""
virtual_servers:
  - ip: 10.99.0.1
    port: 80
    protocol: TCP
    real_servers:
      - ip: 127.0.0.1
        port: 8080
        TCP_CHECK: {complete_handshake: sometimes}
""")
    with pytest.raises(ConfigError, match=r"hacluster\.yaml:9.*complete_handshake.*true or false"):
        load_config(path)
