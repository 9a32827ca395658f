"""ShardedRunner: checks run in worker processes against real listeners; events come back."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from healthchecks import CheckResult, CheckSpec, HealthChanged, TcpCheckParams, Timing, make_checker
from healthchecks.sharded import ShardedRunner

TIMING = Timing(delay_loop=0.2, retry=0, warmup=0.1)


@pytest.fixture
async def ports() -> AsyncIterator[tuple[int, int]]:
    """A port that accepts (and closes) connections, and a refusing one (bound, not listening)."""

    async def hang_up(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    refusing = socket.socket()
    refusing.bind(("127.0.0.1", 0))
    try:
        yield server.sockets[0].getsockname()[1], refusing.getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
        refusing.close()


def tcp(port: int) -> CheckSpec:
    checker = make_checker(TcpCheckParams("127.0.0.1", port, connect_timeout=1))
    return CheckSpec(f"tcp:{port}", ("127.0.0.1", port), checker, TIMING)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_workers_run_checks_and_send_changes_back(ports: tuple[int, int]) -> None:
    up_port, down_port = ports
    seen: list[HealthChanged] = []
    runner = ShardedRunner(2, on_change=seen.append, measure=True)
    up, down = tcp(up_port), tcp(down_port)
    second = CheckSpec("tcp-again", up.server, up.checker, TIMING)  # same server as `up`
    for spec in (up, down, second):
        runner.add(spec)
    async with runner:
        pids = runner.worker_pids
        assert len(pids) == 2 and all(alive(p) for p in pids) and os.getpid() not in pids
        changes = runner.events()
        event = await asyncio.wait_for(anext(changes), 10)
        assert (event.check_id, event.up, event.check_up) == (down.check_id, False, False)
        assert event.reason == "connection refused"
        assert runner.servers() == {up.server: True, down.server: False}
        await asyncio.sleep(0.5)  # a few more rounds
        samples = await runner.sample()
        # A server's checks share a worker, so its up/down is decided in one place.
        assert sorted(s.checks for s in samples) == [1, 2]
        assert {s.pid for s in samples} == set(pids)
        assert all(s.runs >= s.checks for s in samples)  # every check has run
        assert all(s.lateness for s in samples)
        assert any("connection refused" in s.failure_reasons for s in samples)
        runner.remove(down.check_id)
        assert runner.servers() == {up.server: True}
        assert sum(s.checks for s in await runner.sample()) == 2
    assert [e.check_id for e in seen] == [down.check_id]
    for pid in pids:
        assert not alive(pid)


async def test_a_dead_worker_is_replaced_and_no_server_flaps(ports: tuple[int, int]) -> None:
    """The replacement is handed each check in the state it had: a server that was down
    stays down, and one that passed its alpha start stays up (a fresh default would
    bring both a change, and the alpha one a flap)."""
    up_port, down_port = ports
    down = tcp(down_port)
    alpha = tcp(up_port)
    alpha = CheckSpec(alpha.check_id, alpha.server, alpha.checker,
                      Timing(delay_loop=0.2, retry=0, warmup=0.1, alpha=True))
    runner = ShardedRunner(1)
    runner.add(down)
    runner.add(alpha)
    assert not runner.server_up(alpha.server)  # alpha: down until it passes
    async with runner:
        changes = runner.events()
        seen = {}
        while len(seen) < 2:
            event = await asyncio.wait_for(anext(changes), 10)
            seen[event.check_id] = event.up
        assert seen == {down.check_id: False, alpha.check_id: True}
        [pid] = runner.worker_pids
        os.kill(pid, signal.SIGKILL)
        for _ in range(400):
            if runner.worker_pids not in ([], [pid]):
                break
            await asyncio.sleep(0.025)
        [new] = runner.worker_pids
        assert new != pid and alive(new)
        # Several intervals of the new worker's checks: not one change.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(changes), 1.5)
        assert runner.servers() == {down.server: False, alpha.server: True}
        [sample] = await asyncio.wait_for(runner.sample(), 10)
        assert sample.pid == new and sample.checks == 2 and sample.runs >= 2
        await runner.refresh()
        counters = runner.counters(down.check_id)
        assert counters is not None and counters.runs >= 1 and counters.last_ok is False
        assert runner.status(down.check_id).last_failure == "connection refused"
    assert not alive(new)


async def test_a_killed_parent_takes_its_workers_with_it(tmp_path: Any) -> None:
    """PR_SET_PDEATHSIG: SIGKILL of the process that started the workers stops them."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import asyncio, sys\n"
        "from healthchecks.sharded import ShardedRunner\n"
        "async def main():\n"
        "    async with ShardedRunner(2) as r:\n"
        "        print(*r.worker_pids, flush=True)\n"
        "        await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 20)
    pids = [int(p) for p in line.split()]
    assert len(pids) == 2 and all(alive(p) for p in pids)
    proc.kill()
    await proc.wait()
    for _ in range(200):
        if not any(alive(p) for p in pids):
            break
        await asyncio.sleep(0.025)
    assert not any(alive(p) for p in pids)


async def test_a_checker_without_params_is_refused() -> None:
    class Bare:
        kind = "TCP_CHECK"
        timeout = 1.0

        async def check(self) -> CheckResult:
            return CheckResult.up()

        async def close(self) -> None:
            return None

    runner = ShardedRunner(1)
    with pytest.raises(TypeError, match="needs a checker with params"):
        runner.add(CheckSpec("bare", "s", Bare(), TIMING))
    assert runner.check_ids() == []


def test_bad_worker_count() -> None:
    with pytest.raises(ValueError, match="workers"):
        ShardedRunner(0)


async def test_a_hung_worker_is_replaced(ports: tuple[int, int]) -> None:
    """A worker that stops answering (SIGSTOP here; a checker stuck in a loop alike) is
    killed and replaced; its server keeps its state."""
    _, down_port = ports
    down = tcp(down_port)
    runner = ShardedRunner(1, hung_after=1.0)
    runner.add(down)
    async with runner:
        changes = runner.events()
        assert not (await asyncio.wait_for(anext(changes), 10)).up
        [pid] = runner.worker_pids
        os.kill(pid, signal.SIGSTOP)
        for _ in range(400):
            if runner.worker_pids not in ([], [pid]):
                break
            await asyncio.sleep(0.025)
        [new] = runner.worker_pids
        assert new != pid and not alive(pid)
        assert runner.servers() == {down.server: False}
        [sample] = await asyncio.wait_for(runner.sample(), 10)
        assert sample.pid == new and sample.checks == 1
