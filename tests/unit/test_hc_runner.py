"""The check runner: spreading, isolation, bounded concurrency, raising checkers, reload.

The checkers here are small hand-written stand-ins for the plug-in seam; the real
checkers run against real servers in tests/integration/test_hc_*.py.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest

from healthchecks import CheckResult, CheckSpec, HealthChanged, Runner, Timing

FAST = Timing(delay_loop=0.05, retry=0, warmup=0.05)


class Scripted:
    """Returns results from a list (the last one repeats), optionally slowly."""

    def __init__(self, results: list[CheckResult], delay: float = 0.0, timeout: float = 1.0):
        self.results = list(results)
        self.delay = delay
        self._timeout = timeout
        self.calls = 0
        self.started: list[float] = []
        self.closed = False

    @property
    def kind(self) -> str:
        return "TCP_CHECK"

    @property
    def timeout(self) -> float:
        return self._timeout

    async def check(self) -> CheckResult:
        self.started.append(asyncio.get_running_loop().time())
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.results.pop(0) if len(self.results) > 1 else self.results[0]

    async def close(self) -> None:
        self.closed = True


class Raising(Scripted):
    async def check(self) -> CheckResult:
        self.calls += 1
        raise RuntimeError("boom")


async def wait_for(pred: object, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_a_raising_checker_is_a_failure_with_the_exception_as_reason() -> None:
    events: list[HealthChanged] = []
    async with Runner(on_change=events.append) as runner:
        runner.add(CheckSpec("bad", "rs1", Raising([]), FAST))
        runner.add(CheckSpec("good", "rs2", Scripted([CheckResult.up()]), FAST))
        await wait_for(lambda: events)
        await asyncio.sleep(0.12)
        assert runner.status("good").runs >= 2  # the other check carried on
        assert runner.status("bad").runs >= 2  # and the raising one keeps being checked
    assert events[0].check_id == "bad" and not events[0].up
    assert events[0].reason == "checker raised RuntimeError: boom"
    assert len(events) == 1


async def test_a_hanging_checker_is_cut_off_by_the_guard() -> None:
    hanging = Scripted([CheckResult.up()], delay=30, timeout=0.05)
    events: list[HealthChanged] = []
    async with Runner(on_change=events.append, guard=0.05) as runner:
        runner.add(CheckSpec("hang", "rs", hanging, Timing(delay_loop=1, retry=0, warmup=0)))
        await wait_for(lambda: events)
    assert not events[0].up and "overran" in events[0].reason


async def test_a_slow_server_does_not_delay_the_others() -> None:
    slow = Scripted([CheckResult.up()], delay=5)
    fast = [Scripted([CheckResult.up()]) for _ in range(20)]
    async with Runner() as runner:
        runner.add(CheckSpec("slow", "slow", slow, FAST))
        for i, f in enumerate(fast):
            runner.add(CheckSpec(f"f{i}", f"rs{i}", f, FAST))
        # Every fast check gets several turns while the slow one is still on its first.
        await wait_for(lambda: all(f.calls >= 3 for f in fast))
        assert slow.calls == 1 and runner.status("slow").runs == 0


async def test_concurrency_is_bounded_and_queued_checks_still_run() -> None:
    checks = [Scripted([CheckResult.up()], delay=0.05) for _ in range(10)]
    peak = 0
    async with Runner(max_concurrency=3) as runner:
        for i, c in enumerate(checks):
            runner.add(CheckSpec(f"c{i}", f"rs{i}", c, Timing(delay_loop=5, warmup=0)))
        while not all(c.calls == 1 for c in checks):
            peak = max(peak, runner.in_flight)
            await asyncio.sleep(0.005)
    assert peak == 3


async def test_first_checks_are_spread_over_the_warmup_window() -> None:
    checks = [Scripted([CheckResult.up()]) for _ in range(50)]
    async with Runner(rng=random.Random(1)) as runner:
        start = asyncio.get_running_loop().time()
        for i, c in enumerate(checks):
            runner.add(CheckSpec(f"c{i}", f"rs{i}", c, Timing(delay_loop=100, warmup=10)))
        dues = [runner.status(f"c{i}").next_due for i in range(50)]
    offsets = sorted(d - start for d in dues if d is not None)
    assert len(offsets) == 50 and offsets[0] >= 0 and offsets[-1] <= 10.5
    # Evenly spread: every tenth of the window holds a fair share, none a herd.
    buckets = [sum(1 for o in offsets if k <= o < k + 1) for k in range(10)]
    assert all(3 <= b <= 7 for b in buckets), buckets


async def test_a_server_is_up_only_while_all_of_its_checks_are() -> None:
    events: list[HealthChanged] = []
    flapping = Scripted([CheckResult.up()] * 3 + [CheckResult.down("status 503")])
    async with Runner(on_change=events.append) as runner:
        runner.add(CheckSpec("http", "rs", flapping, FAST))
        runner.add(CheckSpec("tcp", "rs", Scripted([CheckResult.up()]), FAST))
        assert runner.server_up("rs")
        await wait_for(lambda: events)
        assert not runner.server_up("rs")
        assert runner.status("tcp").up and not runner.status("http").up
        assert runner.servers() == {"rs": False}
        # Removing the failing check leaves the server with only passing checks: up again.
        runner.remove("http")
        assert runner.server_up("rs")
        await asyncio.sleep(0.02)
        assert flapping.closed
    assert [(e.check_id, e.up, e.check_up, e.reason) for e in events] == [
        ("http", False, False, "status 503"),
        ("http", True, False, "check removed"),
    ]


async def test_add_and_remove_while_running_leave_the_others_alone() -> None:
    a, b, c = (Scripted([CheckResult.up()]) for _ in range(3))
    async with Runner() as runner:
        runner.add(CheckSpec("a", "ra", a, FAST))
        runner.add(CheckSpec("b", "rb", b, FAST))
        await asyncio.sleep(0.15)
        calls_a = a.calls
        runner.remove("b")
        runner.add(CheckSpec("c", "rc", c, FAST))
        with pytest.raises(ValueError, match="already exists"):
            runner.add(CheckSpec("a", "ra", a, FAST))
        frozen_b = b.calls
        await wait_for(lambda: c.calls >= 2 and a.calls >= calls_a + 2)
        assert b.calls == frozen_b
        assert runner.check_ids() == ["a", "c"]
        with pytest.raises(KeyError):
            runner.remove("b")


async def test_events_iterator_and_dynamic_weight() -> None:
    seq = [CheckResult.up("exit 12", weight=10), CheckResult.down("exit 1"),
           CheckResult.up("exit 0")]
    runner = Runner()
    got: list[HealthChanged] = []

    async def consume() -> None:
        async for event in runner.events():
            got.append(event)

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0)
    await runner.start()
    runner.add(CheckSpec("misc", ("10.0.0.1", 80), Scripted(seq), FAST))
    await wait_for(lambda: len(got) >= 3)
    await runner.stop()
    await asyncio.wait_for(consumer, 1)  # the iterator ends when the runner stops
    assert [(e.up, e.weight, e.reason) for e in got] == [
        (True, 10, "exit 12"), (False, 10, "exit 1"), (True, 10, "exit 0"),
    ]
    assert all(e.server == ("10.0.0.1", 80) for e in got)
    assert got[0].at < got[1].at < got[2].at


async def test_alpha_check_added_to_an_up_server_takes_it_down_until_it_passes() -> None:
    events: list[HealthChanged] = []
    async with Runner(on_change=events.append) as runner:
        runner.add(CheckSpec("tcp", "rs", Scripted([CheckResult.up()]), FAST))
        alpha = Timing(delay_loop=0.05, retry=0, warmup=0.05, alpha=True)
        runner.add(CheckSpec("new", "rs", Scripted([CheckResult.up()]), alpha))
        assert not runner.server_up("rs")
        await wait_for(lambda: len(events) >= 2)
    assert [(e.check_id, e.up, e.reason) for e in events[:2]] == [
        ("new", False, "check added"), ("new", True, "ok"),
    ]


async def test_a_callback_that_raises_does_not_stop_the_runner() -> None:
    def bad_callback(event: HealthChanged) -> None:
        raise RuntimeError("callback bug")

    check = Scripted([CheckResult.down("x"), CheckResult.up()])
    async with Runner(on_change=bad_callback) as runner:
        runner.add(CheckSpec("c", "rs", check, FAST))
        await wait_for(lambda: check.calls >= 4)
        assert runner.status("c").up


async def test_removing_checks_in_flight_frees_their_slots() -> None:
    slow = [Scripted([CheckResult.up()], delay=5) for _ in range(4)]
    async with Runner(max_concurrency=2) as runner:
        for i, c in enumerate(slow):
            runner.add(CheckSpec(f"s{i}", f"rs{i}", c, Timing(delay_loop=10, warmup=0)))
        while runner.in_flight < 2:
            await asyncio.sleep(0)
        assert runner.queued == 2
        for i in range(4):
            runner.remove(f"s{i}")  # two in flight (maybe not yet stepped), two queued
        for _ in range(5):
            await asyncio.sleep(0)
        assert (runner.in_flight, runner.queued) == (0, 0)
        fresh = Scripted([CheckResult.up()])
        runner.add(CheckSpec("fresh", "rsf", fresh, Timing(delay_loop=10, warmup=0)))
        await wait_for(lambda: fresh.calls == 1)


class Launching(Scripted):
    """A callback-style checker (like TCP_CHECK): ``launch`` instead of a task."""

    def __init__(self, results: list[CheckResult], *, hang: bool = False, boom: bool = False):
        super().__init__(results)
        self.hang = hang
        self.boom = boom
        self.abandoned = 0

    def launch(self, on_done: Callable[[CheckResult], None]) -> Callable[[], None]:
        self.calls += 1
        if self.boom:
            raise OSError(24, "Too many open files")
        if self.hang:
            return self._abandon
        result = self.results.pop(0) if len(self.results) > 1 else self.results[0]
        handle = asyncio.get_running_loop().call_later(0.01, on_done, result)
        return handle.cancel

    def _abandon(self) -> None:
        self.abandoned += 1

    async def check(self) -> CheckResult:
        raise AssertionError("the runner should launch, not await")


async def test_callback_checkers_run_without_tasks() -> None:
    events: list[HealthChanged] = []
    ok = Launching([CheckResult.up(), CheckResult.down("refused")])
    hang = Launching([CheckResult.up()], hang=True)
    hang._timeout = 0.05
    boom = Launching([CheckResult.up()], boom=True)
    async with Runner(on_change=events.append, guard=0.05) as runner:
        runner.add(CheckSpec("ok", "a", ok, FAST))
        runner.add(CheckSpec("hang", "b", hang, Timing(delay_loop=10, retry=0, warmup=0)))
        runner.add(CheckSpec("boom", "c", boom, FAST))
        await wait_for(lambda: len(events) >= 3)
        assert runner.in_flight <= 1
    got = {e.check_id: e.reason for e in events}
    assert got == {
        "ok": "refused",
        "hang": "timeout after 0.05s (checker overran)",
        "boom": "checker raised OSError: [Errno 24] Too many open files",
    }
    assert hang.abandoned == 1


class Logged(Scripted):
    """Completes on the next loop turn and logs starts and completions in one list."""

    def __init__(self, log: list[str]) -> None:
        super().__init__([CheckResult.up()])
        self.log = log

    def launch(self, on_done: Callable[[CheckResult], None]) -> Callable[[], None]:
        self.log.append("start")

        def done() -> None:
            self.log.append("done")
            on_done(CheckResult.up())

        return asyncio.get_running_loop().call_soon(done).cancel


async def test_checks_all_due_at_once_start_a_batch_per_loop_turn() -> None:
    # A loop that fell behind finds every check due: completions must be taken
    # between batches instead of after thousands of starts.
    log: list[str] = []
    timing = Timing(delay_loop=10, retry=0, warmup=0)
    async with Runner() as runner:
        for i in range(1000):
            runner.add(CheckSpec(f"c{i}", i, Logged(log), timing))
        await wait_for(lambda: log.count("done") == 1000)
    first_done = log.index("done")
    assert 0 < first_done < 1000
    assert log.count("start") == 1000


class Stamped(Scripted):
    """Completes on the next loop turn; records start times and the loop it was handed."""

    def __init__(self) -> None:
        super().__init__([CheckResult.up()])
        self.loops: list[asyncio.AbstractEventLoop] = []

    def launch(self, on_done: Callable[[CheckResult], None]) -> Callable[[], None]:
        return self.launch_on(asyncio.get_running_loop(), on_done)

    def launch_on(
        self, loop: asyncio.AbstractEventLoop, on_done: Callable[[CheckResult], None]
    ) -> Callable[[], None]:
        self.loops.append(loop)
        self.started.append(loop.time())
        return loop.call_soon(on_done, CheckResult.up()).cancel


async def test_a_herd_due_at_the_same_instant_runs_each_check_once_per_interval() -> None:
    # warmup 0 puts every check on the same due time, interval after interval: the
    # schedule must keep them apart without losing or doubling any.
    checks = [Stamped() for _ in range(300)]
    timing = Timing(delay_loop=0.05, retry=0, warmup=0)
    async with Runner() as runner:
        for i, check in enumerate(checks):
            runner.add(CheckSpec(f"c{i}", i, check, timing))
        await wait_for(lambda: all(len(c.started) >= 4 for c in checks))
        loop = asyncio.get_running_loop()
    for check in checks:
        gaps = [b - a for a, b in zip(check.started, check.started[1:], strict=False)]
        # never back to back: a start the loop delayed moves the next one to the
        # following slot rather than the one just after it
        assert min(gaps) >= 0.025, gaps
        assert set(check.loops) == {loop}


def test_a_timer_that_fires_early_does_not_make_the_runner_spin() -> None:
    # uvloop rounds timer delays to whole milliseconds, so the runner's timer can fire
    # before the first check is due: it must wait, not re-arm for the same instant
    # again and again until the clock catches up.
    import uvloop

    wakes = 0

    class Counting(Runner):
        def _wake(self) -> None:
            nonlocal wakes
            wakes += 1
            super()._wake()

    checks = [Stamped() for _ in range(50)]

    async def main() -> None:
        timing = Timing(delay_loop=0.1, retry=0, warmup=0.1)
        async with Counting() as runner:
            for i, check in enumerate(checks):
                runner.add(CheckSpec(f"c{i}", i, check, timing))
            await asyncio.sleep(0.5)

    uvloop.run(main())
    starts = sum(len(c.started) for c in checks)
    assert starts >= 150
    # At most a wake per start and per millisecond tick; a spinning timer makes many
    # thousands in half a second.
    assert wakes <= starts + 600, (wakes, starts)


async def test_the_latest_run_is_kept_with_its_end_and_duration() -> None:
    checker = Scripted([CheckResult.up(), CheckResult.down("refused")], delay=0.02)
    runner = Runner()
    runner.add(CheckSpec("c", "s", checker, Timing(delay_loop=0.1, retry=0, warmup=0.01)))
    assert runner.last_run("c") is None
    async with runner:
        await wait_for(lambda: runner.last_run("c") is not None)
        ok, ended, took = runner.last_run("c") or (None, 0.0, 0.0)
        assert ok is True and 0.02 <= took < 1.0
        assert ended <= asyncio.get_running_loop().time()
        await wait_for(lambda: (runner.last_run("c") or (True,))[0] is False)
        assert runner.status("c").runs >= 2
