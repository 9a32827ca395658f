"""TCP_CHECK against real listeners on 127.0.0.1 and ::1."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from healthchecks import CheckResult, TcpCheckParams, make_checker, tcp

HOSTS = ["127.0.0.1", "::1"]


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


@pytest.fixture
def listener(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    host = request.param
    sock = socket.socket(_family(host))
    sock.bind((host, 0))
    sock.listen(16)
    try:
        yield host, sock.getsockname()[1]
    finally:
        sock.close()


@pytest.fixture
def closed_port(request: pytest.FixtureRequest) -> tuple[str, int]:
    host = request.param
    sock = socket.socket(_family(host))
    sock.bind((host, 0))  # bound, never listening: connects are refused
    port = sock.getsockname()[1]
    request.addfinalizer(sock.close)
    return host, port


@pytest.fixture
def full_backlog(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """A listener that never accepts, with its accept queue already full: SYNs are dropped."""
    host = request.param
    sock = socket.socket(_family(host))
    sock.bind((host, 0))
    sock.listen(0)
    port = sock.getsockname()[1]
    fillers = []
    try:
        for _ in range(3):
            f = socket.socket(_family(host))
            f.setblocking(False)
            f.connect_ex((host, port))
            fillers.append(f)
        time.sleep(0.05)
        yield host, port
    finally:
        for f in fillers:
            f.close()
        sock.close()


@pytest.mark.parametrize("listener", HOSTS, indirect=True)
async def test_connect_succeeds(listener: tuple[str, int]) -> None:
    result = await make_checker(TcpCheckParams(*listener, connect_timeout=3)).check()
    assert result.ok and result.reason == "connected"


@pytest.mark.parametrize("closed_port", HOSTS, indirect=True)
async def test_refused(closed_port: tuple[str, int]) -> None:
    result = await make_checker(TcpCheckParams(*closed_port, connect_timeout=3)).check()
    assert not result.ok and result.reason == "connection refused"


@pytest.mark.parametrize("full_backlog", HOSTS, indirect=True)
async def test_timeout_against_a_full_backlog(full_backlog: tuple[str, int]) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await make_checker(TcpCheckParams(*full_backlog, connect_timeout=0.3)).check()
    elapsed = loop.time() - start
    assert not result.ok and result.reason == "timeout after 0.3s"
    assert 0.25 < elapsed < 5


async def test_bindto_sets_the_source_address() -> None:
    seen: list[str] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(writer.get_extra_info("peername")[0])
        writer.close()

    srv = await asyncio.start_server(record, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    async with srv:
        # A completed handshake: the server accepts a connection and sees its peer.
        result = await make_checker(
            TcpCheckParams("127.0.0.1", port, bindto="127.0.0.7", connect_timeout=3,
                           complete_handshake=True)
        ).check()
        for _ in range(50):
            if seen:
                break
            await asyncio.sleep(0.01)
    assert result.ok
    assert seen == ["127.0.0.7"]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_cancel_closes_the_socket_at_once() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(0)
    port = sock.getsockname()[1]
    filler = socket.socket()
    filler.setblocking(False)
    filler.connect_ex(("127.0.0.1", port))
    try:
        await asyncio.sleep(0.05)
        # A first check sets up what lives as long as the loop (one epoll set).
        await make_checker(TcpCheckParams("127.0.0.1", port, connect_timeout=0.05)).check()
        before = open_fds()
        checker = make_checker(TcpCheckParams("127.0.0.1", port, connect_timeout=5))
        task = asyncio.create_task(checker.check())
        await asyncio.sleep(0.05)
        assert open_fds() == before + 1  # the connect in progress
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert open_fds() == before
    finally:
        filler.close()
        sock.close()


@pytest.mark.parametrize("host", HOSTS)
async def test_a_connected_socket_is_reset_and_reused_but_never_a_failed_one(host: str) -> None:
    srv = socket.socket(_family(host))
    srv.bind((host, 0))
    srv.listen(64)
    port = srv.getsockname()[1]
    checker = make_checker(
        TcpCheckParams(host, port, connect_timeout=3, complete_handshake=True)
    )
    try:
        assert (await checker.check()).ok  # opens the spare socket and the epoll set
        before = open_fds()
        for _ in range(20):
            assert (await checker.check()).ok
        assert open_fds() == before  # one socket, disconnected and connected again
        spare = tcp._poller(asyncio.get_running_loop())._spare[_family(host)]
        assert len(spare) == 1
        # Each connection the server got was ended with a reset, as a close with
        # SO_LINGER 0 would do: no TIME_WAIT on either side.
        for _ in range(21):
            conn, _ = srv.accept()
            with pytest.raises(ConnectionResetError):
                conn.recv(1)
            conn.close()
        # The server goes: the same spare socket reports the refusal, not a stale "up",
        # and is closed rather than kept.
        srv.close()
        down = await checker.check()
        assert not down.ok and down.reason == "connection refused"
        assert open_fds() == before - 2  # the listener and the spare socket
        srv = socket.socket(_family(host))
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((host, port))
        srv.listen(64)
        assert (await checker.check()).ok
        assert open_fds() == before
    finally:
        srv.close()


async def test_connects_done_in_time_are_not_timeouts_on_a_stalled_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Launch many more checks than one epoll batch holds, then stall the loop past
    # their deadline: every connect completed in time, so every check must say so.
    monkeypatch.setattr(tcp, "_BATCH", 64)
    listeners = []
    for _ in range(4):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(4096)
        listeners.append(sock)
    try:
        checkers = [
            make_checker(TcpCheckParams("127.0.0.1", listeners[i % 4].getsockname()[1],
                                        connect_timeout=0.3))
            for i in range(1000)
        ]
        tasks = [asyncio.create_task(c.check()) for c in checkers]
        await asyncio.sleep(0)  # every task has started its connect
        time.sleep(0.6)  # the loop is stuck well past every deadline
        results = await asyncio.gather(*tasks)
        reasons = {r.reason for r in results}
        assert reasons == {"connected"}
    finally:
        for sock in listeners:
            sock.close()


@pytest.mark.parametrize("full_backlog", ["127.0.0.1"], indirect=True)
async def test_different_timeouts_each_expire_on_their_own_deadline(
    full_backlog: tuple[str, int],
) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    ended: dict[float, float] = {}

    async def run(timeout: float) -> str:
        result = await make_checker(TcpCheckParams(*full_backlog, connect_timeout=timeout)).check()
        ended[timeout] = loop.time() - start
        return result.reason

    # The long one first: a deadline queued behind a later one must still fire on time.
    reasons = await asyncio.gather(run(0.8), run(0.2), run(0.8), run(0.2))
    assert list(reasons) == ["timeout after 0.8s", "timeout after 0.2s"] * 2
    assert 0.15 < ended[0.2] < 0.75 <= ended[0.8] < 5


@pytest.mark.parametrize("host", HOSTS)
async def test_by_default_the_server_never_has_a_connection_to_accept(host: str) -> None:
    srv = socket.socket(_family(host))
    srv.bind((host, 0))
    srv.listen(64)
    srv.setblocking(False)
    port = srv.getsockname()[1]
    checker = make_checker(TcpCheckParams(host, port, connect_timeout=3))
    try:
        for _ in range(5):
            assert await checker.check() == CheckResult.up("connected")
        await asyncio.sleep(0.05)
        # SYN-ACK was the answer; the last ACK was never sent, so the request was
        # dropped from the SYN queue by the reset and nothing reached the accept queue.
        with pytest.raises(BlockingIOError):
            srv.accept()
        # The same socket is reused for every check, as with a completed handshake.
        assert len(tcp._poller(asyncio.get_running_loop())._spare[_family(host)]) == 1
        srv.close()
        assert await checker.check() == CheckResult.down("connection refused")
    finally:
        srv.close()


async def test_the_half_open_check_leaves_no_server_socket_behind() -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    port = srv.getsockname()[1]
    try:
        for _ in range(20):
            assert (await make_checker(TcpCheckParams("127.0.0.1", port,
                                                      connect_timeout=3)).check()).ok
        await asyncio.sleep(0.05)
        out = subprocess.run(["ss", "-Htan", f"sport = :{port} or dport = :{port}"],
                             capture_output=True, text=True, check=True).stdout
        states = [line.split()[0] for line in out.splitlines() if line.strip()]
        assert states == ["LISTEN"], out
    finally:
        srv.close()
