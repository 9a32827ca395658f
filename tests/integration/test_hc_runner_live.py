"""The runner driving real checkers against real servers: failures, recovery, reload."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from aiohttp import web

from healthchecks import (
    CheckSpec,
    HealthChanged,
    HttpGetParams,
    HttpSessions,
    MiscCheckParams,
    Runner,
    TcpCheckParams,
    Timing,
    UrlSpec,
    make_checker,
)

TIMING = Timing(delay_loop=0.1, retry=1, delay_before_retry=0.05, warmup=0.1)


async def wait_for_events(events: list[HealthChanged], n: int, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while len(events) < n:
            await asyncio.sleep(0.01)


async def wait_for_runs(runner: Runner, check_id: str, n: int, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while runner.status(check_id).runs < n:
            await asyncio.sleep(0.01)


async def test_tcp_and_http_checks_of_one_server() -> None:
    healthy = True

    async def health(request: web.Request) -> web.Response:
        return web.Response(status=200 if healthy else 503)

    app = web.Application()
    app.router.add_get("/health", health)
    web_runner = web.AppRunner(app, shutdown_timeout=0.1)
    await web_runner.setup()
    site = web.TCPSite(web_runner, "127.0.0.1", 0)
    await site.start()
    port = web_runner.addresses[0][1]

    events: list[HealthChanged] = []
    sessions = HttpSessions()
    http = make_checker(HttpGetParams("127.0.0.1", port, urls=(UrlSpec("/health"),),
                                      connect_timeout=3), http=sessions)
    tcp = make_checker(TcpCheckParams("127.0.0.1", port, connect_timeout=3))
    server = ("127.0.0.1", port)
    try:
        async with Runner(on_change=events.append) as runner:
            runner.add(CheckSpec("http", server, http, TIMING))
            runner.add(CheckSpec("tcp", server, tcp, TIMING))
            await wait_for_runs(runner, "http", 2)
            await wait_for_runs(runner, "tcp", 2)
            assert events == [] and runner.server_up(server)

            healthy = False  # HTTP says 503 while the port stays open
            await wait_for_events(events, 1)
            assert (events[0].check_id, events[0].up, events[0].reason) == (
                "http", False, "/health: status 503",
            )
            assert runner.status("tcp").up and not runner.server_up(server)

            healthy = True
            await wait_for_events(events, 2)
            assert (events[1].check_id, events[1].up) == ("http", True)

            await web_runner.cleanup()  # the whole server goes away: both checks fail
            await wait_for_events(events, 4)
            assert {(e.check_id, e.check_up) for e in events[2:4]} == {
                ("http", False), ("tcp", False),
            }
            assert not events[2].up and not events[3].up
            assert runner.status("tcp").last_failure == "connection refused"
    finally:
        await web_runner.cleanup()
        await sessions.close()


async def test_misc_dynamic_weights_and_reload(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.write_text("12")
    probe = tmp_path / "probe.sh"
    probe.write_text(f"#!/bin/sh\nexit $(cat {code})\n")
    probe.chmod(0o755)
    events: list[HealthChanged] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        async with Runner(on_change=events.append) as runner:
            misc = make_checker(MiscCheckParams(str(probe), misc_timeout=5, misc_dynamic=True))
            runner.add(CheckSpec("misc", "rs", misc, TIMING))
            await wait_for_events(events, 1)
            assert (events[0].up, events[0].weight) == (True, 10)
            code.write_text("7")
            await wait_for_events(events, 2)
            assert (events[1].up, events[1].weight, events[1].reason) == (True, 5, "exit 7")
            code.write_text("1")
            await wait_for_events(events, 3)
            assert (events[2].up, events[2].reason) == (False, "exit 1")

            # A reload swaps the script check for a TCP check of the same server.
            port = listener.getsockname()[1]
            runner.add(CheckSpec("tcp", "rs", make_checker(
                TcpCheckParams("127.0.0.1", port, connect_timeout=3)), TIMING))
            runner.remove("misc")
            await wait_for_events(events, 4)
            assert (events[3].check_id, events[3].up, events[3].reason) == (
                "misc", True, "check removed",
            )
            await wait_for_runs(runner, "tcp", 2)
            assert runner.server_up("rs")
            assert len(events) == 4
    finally:
        listener.close()
