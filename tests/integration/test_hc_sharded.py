"""ShardedRunner: checks run in worker processes against real listeners; events come back.

Workers are exec'ed, or forked from a zygote (`healthchecks.zygote`): the tests of
workers run both ways; a killed zygote is started again while its workers keep running,
and a killed parent takes the zygote and every worker with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

import healthchecks.zygote as zygote_module
from healthchecks import CheckResult, CheckSpec, HealthChanged, TcpCheckParams, Timing, make_checker
from healthchecks.sharded import RunBatch, ShardedRunner, WorkerSample
from healthchecks.zygote import WORKER, Zygote, ZygoteError
from healthchecks.zygote import current as zygote_current
from tests.integration.proctree import alive, comm, parent_of

TIMING = Timing(delay_loop=0.2, retry=0, warmup=0.1)
#: Seconds a test waits for what must come (a worker exec'ed on a loaded 2-core machine
#: can take several seconds to import and start).
PATIENCE = 30.0

T = TypeVar("T")


async def until(what: str, probe: Callable[[], T | Awaitable[T]],
                timeout: float = PATIENCE) -> T:
    """The first true value of `probe()` (awaited when it is a coroutine), polled."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last: {value!r})")
        await asyncio.sleep(0.025)


def wait_until(what: str, probe: Callable[[], bool], timeout: float = PATIENCE) -> None:
    """`until` for code without a running loop."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.025)


async def every_check_ran(runner: ShardedRunner, times: int = 1) -> list[WorkerSample]:
    """The workers' samples once each has run each of its checks `times` times."""

    async def probe() -> list[WorkerSample] | None:
        samples = await asyncio.wait_for(runner.sample(), PATIENCE)
        return samples if all(s.runs >= times * s.checks for s in samples) else None

    return await until(f"every check to run {times} time(s)", probe)


@pytest.fixture(params=["exec", "zygote"])
def zygote(request: pytest.FixtureRequest) -> Iterator[Zygote | None]:
    """No zygote (workers exec'ed), or a started one (forked from this process)."""
    if request.param == "exec":
        yield None
        return
    z = Zygote()
    z.start()
    try:
        yield z
    finally:
        z.stop()


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


async def test_workers_run_checks_and_send_changes_back(
    ports: tuple[int, int], zygote: Zygote | None,
) -> None:
    up_port, down_port = ports
    seen: list[HealthChanged] = []
    runner = ShardedRunner(2, on_change=seen.append, measure=True, zygote=zygote)
    up, down = tcp(up_port), tcp(down_port)
    second = CheckSpec("tcp-again", up.server, up.checker, TIMING)  # same server as `up`
    for spec in (up, down, second):
        runner.add(spec)
    async with runner:
        pids = runner.worker_pids
        assert len(pids) == 2 and all(alive(p) for p in pids) and os.getpid() not in pids
        if zygote is not None:  # forked from it, not exec'ed
            assert all(parent_of(p) == zygote.pid for p in pids)
        changes = runner.events()
        event = await asyncio.wait_for(anext(changes), PATIENCE)
        assert (event.check_id, event.up, event.check_up) == (down.check_id, False, False)
        assert event.reason == "connection refused"
        assert runner.servers() == {up.server: True, down.server: False}
        # A few more rounds. (Each sample's lateness is that since the previous one.)
        lateness: dict[int, list[float]] = {}

        async def rounds() -> list[WorkerSample] | None:
            samples = await asyncio.wait_for(runner.sample(), PATIENCE)
            for s in samples:
                lateness.setdefault(s.pid, []).extend(s.lateness)
            return samples if all(s.runs >= 2 * s.checks for s in samples) else None

        samples = await until("two rounds of every check", rounds)
        # A server's checks share a worker, so its up/down is decided in one place.
        assert sorted(s.checks for s in samples) == [1, 2]
        assert {s.pid for s in samples} == set(pids)
        assert set(lateness) == set(pids) and all(lateness.values())
        assert any("connection refused" in s.failure_reasons for s in samples)
        runner.remove(down.check_id)
        assert runner.servers() == {up.server: True}
        assert sum(s.checks for s in await runner.sample()) == 2
    assert [e.check_id for e in seen] == [down.check_id]
    for pid in pids:
        assert not alive(pid)


async def test_runs_come_back_counted_by_duration_bucket(ports: tuple[int, int]) -> None:
    """Each second a worker sends its runs of each kind and outcome counted per bucket of
    `result_buckets` (the last: longer than them all), their durations summed."""
    up_port, down_port = ports
    batches: list[RunBatch] = []
    bounds = (0.0001, 0.5)
    runner = ShardedRunner(1, on_results=batches.extend, result_buckets=bounds)
    runner.add(tcp(up_port))
    runner.add(tcp(down_port))
    async with runner:
        for _ in range(100):
            if {b.label for b in batches} >= {"success", "failure"}:
                break
            await asyncio.sleep(0.05)
        samples = await runner.sample()
    assert {(b.kind, b.label) for b in batches} == {("TCP_CHECK", "success"),
                                                   ("TCP_CHECK", "failure")}
    for batch in batches:
        assert len(batch.buckets) == len(bounds) + 1 and sum(batch.buckets) == batch.runs
        assert batch.runs >= 1 and 0.0 <= batch.seconds <= batch.runs * bounds[-1]
        assert batch.buckets[-1] == 0  # a local connect takes far less than 0.5 s
    assert sum(b.runs for b in batches) <= sum(s.runs for s in samples)
    with pytest.raises(ValueError):
        ShardedRunner(1, result_buckets=(0.5, 0.1))


async def test_a_dead_worker_is_replaced_and_no_server_flaps(
    ports: tuple[int, int], zygote: Zygote | None,
) -> None:
    """The replacement is handed each check in the state it had: a server that was down
    stays down, and one that passed its alpha start stays up (a fresh default would
    bring both a change, and the alpha one a flap)."""
    up_port, down_port = ports
    down = tcp(down_port)
    alpha = tcp(up_port)
    alpha = CheckSpec(alpha.check_id, alpha.server, alpha.checker,
                      Timing(delay_loop=0.2, retry=0, warmup=0.1, alpha=True))
    seen: list[HealthChanged] = []
    runner = ShardedRunner(1, zygote=zygote, on_change=seen.append)
    runner.add(down)
    runner.add(alpha)
    assert not runner.server_up(alpha.server)  # alpha: down until it passes
    async with runner:
        settled = {down.check_id: False, alpha.check_id: True}
        await until("down down, alpha up",
                    lambda: {e.check_id: e.up for e in seen} == settled)
        before = len(seen)
        [pid] = runner.worker_pids
        os.kill(pid, signal.SIGKILL)
        await until("a new worker", lambda: runner.worker_pids not in ([], [pid]))
        [new] = runner.worker_pids
        assert new != pid and alive(new)
        if zygote is not None:
            assert parent_of(new) == zygote.pid
        # Several intervals of the new worker's checks: not one change.
        [sample] = await every_check_ran(runner, 3)
        assert sample.pid == new and sample.checks == 2
        assert len(seen) == before, seen[before:]
        assert runner.servers() == {down.server: False, alpha.server: True}
        await runner.refresh()
        counters = runner.counters(down.check_id)
        assert counters is not None and counters.runs >= 1 and counters.last_ok is False
        assert runner.status(down.check_id).last_failure == "connection refused"
    assert not alive(new)


@pytest.mark.parametrize("how", ["exec", "zygote", "zygote killed"])
async def test_a_killed_parent_takes_its_workers_with_it(tmp_path: Any, how: str) -> None:
    """SIGKILL of the process that started the workers stops them (PR_SET_PDEATHSIG for
    exec'ed ones; forked ones watch it), and the zygote; also the workers of a zygote
    that was killed and started again, and the new zygote."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import asyncio, os, signal, sys, time\n"
        "from healthchecks.sharded import ShardedRunner\n"
        "from healthchecks.zygote import Zygote\n"
        "z = None\n"
        "if sys.argv[1] != 'exec':\n"
        "    z = Zygote()\n"
        "    z.start()\n"
        "async def main():\n"
        "    async with ShardedRunner(2, zygote=z) as r:\n"
        "        others = [z.pid] if z else []\n"
        "        if sys.argv[1] == 'zygote killed':\n"
        "            old = z.pid\n"
        "            os.kill(old, signal.SIGKILL)\n"
        "            while z.pid == old:  # (the runner's watch may start it first)\n"
        "                z.ensure()\n"
        "                await asyncio.sleep(0.01)\n"
        "            others.append(z.pid)\n"
        "        print(*r.worker_pids, *others, flush=True)\n"
        "        await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), how, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), PATIENCE)
    pids = [int(p) for p in line.split()]
    assert len(pids) == {"exec": 2, "zygote": 3, "zygote killed": 4}[how]
    assert sum(alive(p) for p in pids) == len(pids) - (how == "zygote killed")
    proc.kill()
    await proc.wait()
    await until("the workers and zygotes to exit", lambda: not any(alive(p) for p in pids))


async def test_a_refresh_while_a_dead_worker_is_replaced_returns(
    ports: tuple[int, int], zygote: Zygote | None,
) -> None:
    """Asked between a worker's death and its replacement, refresh() skips it and sample()
    fails at once: a request to the dead one was never answered, so a status read then
    waited for ever (and the balancer's stop behind it, after a killed supervisor)."""
    _, down_port = ports
    runner = ShardedRunner(1, zygote=zygote)
    runner.add(tcp(down_port))
    async with runner:
        await every_check_ran(runner)
        [pid] = runner.worker_pids
        os.kill(pid, signal.SIGKILL)
        asked = 0
        while runner.worker_pids in ([], [pid]):
            await asyncio.wait_for(runner.refresh(), PATIENCE)
            with contextlib.suppress(RuntimeError):
                await asyncio.wait_for(runner.sample(), PATIENCE)
            asked += 1
            await asyncio.sleep(0)
        assert asked
        await every_check_ran(runner)  # the replacement answers


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


async def test_a_hung_worker_is_replaced(ports: tuple[int, int], zygote: Zygote | None) -> None:
    """A worker that stops answering (SIGSTOP here; a checker stuck in a loop alike) is
    killed and replaced; its server keeps its state."""
    _, down_port = ports
    down = tcp(down_port)
    runner = ShardedRunner(1, hung_after=1.0, zygote=zygote)
    runner.add(down)
    async with runner:
        changes = runner.events()
        assert not (await asyncio.wait_for(anext(changes), PATIENCE)).up
        [pid] = runner.worker_pids
        os.kill(pid, signal.SIGSTOP)
        await until("a new worker", lambda: runner.worker_pids not in ([], [pid]))
        [new] = runner.worker_pids
        assert new != pid
        await until("the hung worker to be gone", lambda: not alive(pid))
        assert runner.servers() == {down.server: False}
        [sample] = await asyncio.wait_for(runner.sample(), PATIENCE)
        assert sample.pid == new and sample.checks == 1


async def test_a_killed_zygote_is_started_again_and_its_workers_keep_running(
    ports: tuple[int, int],
) -> None:
    """The workers of a killed zygote go on checking; the new zygote forks the next."""
    _, down_port = ports
    down = tcp(down_port)
    restarts: list[int] = []
    seen: list[HealthChanged] = []
    z = Zygote()
    z.on_restart = lambda: restarts.append(z.restarts)
    z.start()
    runner = ShardedRunner(2, zygote=z, hung_after=1.0, on_change=seen.append)
    runner.add(down)
    try:
        async with runner:
            await until("the first change", lambda: seen)
            assert [e.up for e in seen] == [False]
            pids, old = runner.worker_pids, z.pid
            assert old is not None
            os.kill(old, signal.SIGKILL)
            await until("the zygote's restart", lambda: restarts)  # by the runner's watch
            assert restarts == [1] and z.pid not in (None, old) and alive(z.pid)
            assert runner.worker_pids == pids and all(alive(p) for p in pids)
            before = sum(s.runs for s in await runner.sample())

            async def more_runs() -> bool:
                samples = await asyncio.wait_for(runner.sample(), PATIENCE)
                return sum(s.runs for s in samples) > before

            await until("more runs (still checking)", more_runs)
            assert runner.servers() == {down.server: False}
            # A worker that dies now comes from the new zygote.
            victim = next(p for p in pids if parent_of(p) != z.pid)
            os.kill(victim, signal.SIGKILL)
            await until("a new worker", lambda: victim not in runner.worker_pids
                        and len(runner.worker_pids) == 2)
            [new] = set(runner.worker_pids) - set(pids)
            assert parent_of(new) == z.pid
            # (its name is its own to set, a moment after the fork)
            await until("the worker's name", lambda: comm(new) == "hc-check-worker")
            await every_check_ran(runner, 3)
            assert [e.up for e in seen] == [False]  # no change: the down server stays down
    finally:
        z.stop()


def echo(sock: socket.socket, *args: Any) -> int:
    """A zygote target for the test below: says who it is and what it was given."""
    with sock:
        sock.sendall(json.dumps([os.getpid(), os.getppid(), comm(os.getpid()), *args]).encode())
    return 3


def test_the_spawn_api_runs_only_its_targets() -> None:
    target = f"{__name__}:echo"
    z = Zygote(preload=["json"], targets=[WORKER, target])
    z.start()
    try:
        ours, theirs = socket.socketpair()
        with pytest.raises(ZygoteError, match="not one of the zygote's targets"):
            z.spawn("os:system", theirs, ["true"])
        child = z.spawn(target, theirs, [1, "two", None], name="hc-echo")
        theirs.close()
        with ours:
            ours.settimeout(10)
            pid, ppid, name, *args = json.loads(ours.recv(4096))
        assert (pid, ppid, name, args) == (child.pid, z.pid, "hc-echo", [1, "two", None])
        wait_until("the child to exit", lambda: not child.running)
        assert not alive(child.pid)  # reaped by the kernel
        child.close()
    finally:
        z.stop()
    assert z.pid is None


def quit_at_once(sock: socket.socket) -> int:
    """A zygote target that is gone before its asker hears of it."""
    sock.close()
    return 0


def test_a_child_that_exits_at_once_is_still_handed_over() -> None:
    """The zygote ignores SIGCHLD, so the kernel reaps an exited child at once: a child
    that ended before the zygote opened its pidfd made the spawn fail (pidfd_open:
    ESRCH; seen on a loaded machine). Held at a gate until the pidfd is open, each one
    comes back as a handle that says it has exited."""
    z = Zygote(preload=[], targets=[f"{__name__}:quit_at_once"])
    z.start()
    try:
        for _ in range(100):
            ours, theirs = socket.socketpair()
            with ours, theirs:
                child = z.spawn(f"{__name__}:quit_at_once", theirs)
            wait_until("the child to exit", lambda: not child.running)  # noqa: B023
            assert not alive(child.pid)
            child.close()
    finally:
        z.stop()


def sleeper(sock: socket.socket) -> int:
    """A zygote target that outlives its socket: only its asker's death stops it."""
    time.sleep(60)
    return 0


def test_a_child_dies_with_the_process_that_asked_for_it() -> None:
    """A process forked from the starter (as a role is) asks the zygote it inherited;
    when the asker is killed its child follows (SIGTERM), the zygote stays. The starter
    held SIGTERM blocked when it started the zygote (as `hacluster run` may): the
    children do not inherit that."""
    z = Zygote(preload=[], targets=[f"{__name__}:sleeper"])
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        z.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    read, write = os.pipe()
    asker = os.fork()
    if asker == 0:  # the asker: holds the handle it inherited
        code = 1
        try:
            os.close(read)
            _ours, theirs = socket.socketpair()
            handle = zygote_current()
            assert handle is z
            child = handle.spawn(f"{__name__}:sleeper", theirs)
            os.write(write, f"{child.pid}\n".encode())
            time.sleep(60)
        finally:
            os._exit(code)
    try:
        os.close(write)
        with os.fdopen(read) as lines:
            child = int(lines.readline())
        assert parent_of(child) == z.pid and alive(child)
        os.kill(asker, signal.SIGKILL)
        os.waitpid(asker, 0)
        wait_until("the child to follow its asker", lambda: not alive(child))
        assert z.alive()
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(asker, signal.SIGKILL)
            os.waitpid(asker, 0)
        z.stop()


def test_an_asker_waits_for_the_zygote_its_starter_restarts() -> None:
    """A process forked from the starter (a role) asks while the zygote is dead: it
    keeps trying until the starter has started the zygote again, then gets its child."""
    z = Zygote(preload=[], targets=[f"{__name__}:echo"])
    z.start()
    old = z.pid
    assert old is not None
    os.kill(old, signal.SIGKILL)
    wait_until("the zygote to die", lambda: not alive(old))
    read, write = os.pipe()
    asker = os.fork()
    if asker == 0:
        code = 1
        try:
            os.close(read)
            # It keeps trying for RECONNECT seconds: longer here than this process can be
            # kept from its ensure() by a loaded machine.
            zygote_module.RECONNECT = PATIENCE

            async def ask() -> int:
                ours, theirs = socket.socketpair()
                child = await z.spawn_async(f"{__name__}:echo", theirs, ["again"])
                theirs.close()
                child.close()
                return int(json.loads(ours.recv(4096))[1])  # the child's parent

            os.write(write, f"{asyncio.run(ask())}\n".encode())
            code = 0
        finally:
            os._exit(code)
    try:
        os.close(write)
        time.sleep(0.5)  # the asker is trying meanwhile
        assert z.ensure() and z.pid != old
        with os.fdopen(read) as lines:
            assert int(lines.readline()) == z.pid
        assert os.waitpid(asker, 0)[1] == 0
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(asker, signal.SIGKILL)
            os.waitpid(asker, 0)
        z.stop()
