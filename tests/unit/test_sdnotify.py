"""systemd notify: datagrams reach a real unix datagram socket (path and abstract name)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hacluster.sdnotify import Notifier, SdNotifyError, socket_address, watchdog_interval


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket standing where systemd's notify socket would be."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify"
    sock.bind(str(path))
    sock.settimeout(5)
    try:
        yield sock, str(path)
    finally:
        sock.close()


@pytest.fixture
def abstract_listener() -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"hacluster-test-notify-{os.getpid()}-{id(sock)}"
    sock.bind(b"\0" + name.encode())
    sock.settimeout(5)
    try:
        yield sock, "@" + name
    finally:
        sock.close()


def fields(datagram: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in datagram.decode().split("\n"))


def test_ready_status_stopping_over_a_path(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    env = {"NOTIFY_SOCKET": path, "OTHER": "kept"}
    n = Notifier.from_env(env)
    assert n.enabled
    assert env == {"OTHER": "kept"}  # children will not inherit the socket
    assert n.ready("2 instances, 1 MASTER")
    assert fields(sock.recv(4096)) == {"READY": "1", "STATUS": "2 instances, 1 MASTER"}
    assert n.status("reloading\nconfig")
    assert fields(sock.recv(4096)) == {"STATUS": "reloading config"}
    assert n.reloading()
    got = fields(sock.recv(4096))
    assert got["RELOADING"] == "1"
    now_usec = time_usec()
    assert 0 <= now_usec - int(got["MONOTONIC_USEC"]) < 5_000_000
    assert n.stopping()
    assert sock.recv(4096) == b"STOPPING=1"


def time_usec() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def test_abstract_socket(abstract_listener: tuple[socket.socket, str]) -> None:
    sock, name = abstract_listener
    assert isinstance(socket_address(name), bytes)
    n = Notifier.from_env({"NOTIFY_SOCKET": name})
    assert n.ready()
    assert sock.recv(4096) == b"READY=1"


def test_without_notify_socket_nothing_happens() -> None:
    n = Notifier.from_env({})
    assert not n.enabled
    assert n.watchdog_interval is None
    assert n.ready() is False and n.watchdog() is False and n.stopping() is False


def test_bad_values_disable_notification(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hacluster.sdnotify"):
        n = Notifier.from_env({"NOTIFY_SOCKET": "relative/path"})
    assert not n.enabled
    assert "neither an absolute path nor an abstract name" in caplog.text
    with pytest.raises(SdNotifyError, match="whole number"):
        watchdog_interval({"WATCHDOG_USEC": "soon"})
    with pytest.raises(SdNotifyError, match="positive"):
        watchdog_interval({"WATCHDOG_USEC": "0"})


def test_a_vanished_socket_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    n = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    with caplog.at_level(logging.WARNING, logger="hacluster.sdnotify"):
        assert n.ready() is False
    assert "READY=1 failed" in caplog.text


def test_watchdog_interval_is_half_and_respects_pid() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, pid=1) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, pid=2) is None
    assert watchdog_interval({}) is None


async def test_watchdog_pings_until_closed(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    sock.setblocking(False)
    n = Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000",
                           "WATCHDOG_PID": str(os.getpid())})
    assert n.watchdog_interval == 0.05
    n.start_watchdog()
    n.start_watchdog()  # idempotent: one pinger only
    loop = asyncio.get_running_loop()
    pings: list[bytes] = []
    deadline = loop.time() + 5
    while len(pings) < 3 and loop.time() < deadline:
        pings.append(await loop.sock_recv(sock, 4096))
    assert pings == [b"WATCHDOG=1"] * 3
    await n.close()
    await asyncio.sleep(0.15)  # three intervals: a running pinger would have sent again
    with pytest.raises(BlockingIOError):
        sock.recv(4096)
