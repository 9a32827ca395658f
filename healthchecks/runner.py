"""Runs many checks spread over their intervals and reports up/down changes.

Each check runs on its own (a task, or plain callbacks for a checker with ``launch``)
with its own deadline, so a slow or blackholed server only ever delays itself;
concurrency is bounded; a checker that raises counts as a failure with the exception as
its reason. Checks can be added and removed while running.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import random
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass, field

from healthchecks.base import Checker, Launch
from healthchecks.params import Timing
from healthchecks.result import CheckResult
from healthchecks.tracker import Tracker

log = logging.getLogger("healthchecks")

_LaunchOn = Callable[
    [asyncio.AbstractEventLoop, Callable[[CheckResult], None]], Callable[[], None]
]
_GOLDEN = 0.6180339887498949
_WAKE_BATCH = 256
# uvloop keeps time in whole milliseconds and rounds timer delays to them, so its timers
# can fire before the time they were set for.
_TIMER_GRAIN = 0.001
# The least time between two wakes of the runner: checks due within it start together,
# at most this late (as the TCP and HTTP checkers tell a timeout at most 5 ms late), so
# that thousands of checks a second cost a loop turn (a timer, a poll) per tick rather
# than one each, and their completions come back in batches too. A check's phase is
# kept (its next start is counted from when it was due). At 5,000 TCP checks a second
# (healthchecks.bench, one process) the CPU per check went from 30 us (a wake per check
# due) to 24 us; start lateness p50 from 1 ms to 4 ms, p99 from 8 ms to 10-13 ms.
_TICK = 0.005


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """One check of one real server: ``server`` is whatever key the caller uses for it."""

    check_id: str
    server: Hashable
    checker: Checker
    timing: Timing = field(default_factory=Timing)


@dataclass(frozen=True, slots=True)
class HealthChanged:
    """A check changed state (or its dynamic weight), or a server's overall state did.

    ``up`` is the real server's state (up while all its checks are up); ``check_up``
    is this check's; ``weight`` is this check's misc_dynamic weight (None: unchanged).
    """

    check_id: str
    server: Hashable
    up: bool
    check_up: bool
    reason: str
    weight: int | None
    at: float


@dataclass(frozen=True, slots=True)
class CheckStatus:
    check_id: str
    server: Hashable
    up: bool
    reason: str
    last_failure: str | None
    weight: int | None
    runs: int
    failures: int
    next_due: float | None


def _raised(entry: _Entry, exc: Exception) -> CheckResult:
    log.warning("[%s] checker raised", entry.spec.check_id, exc_info=exc)
    return CheckResult.down(f"checker raised {type(exc).__name__}: {exc}")


def _outcome(task: asyncio.Task[CheckResult]) -> CheckResult:
    # The runner cancels only runs it has already settled, so a cancellation seen
    # here came from inside the checker: a failure like any other.
    return CheckResult.down("check cancelled") if task.cancelled() else task.result()


class _Entry:
    __slots__ = (
        "cancel", "deadline", "due", "ended", "failures", "inflight", "key", "kind", "last_ok",
        "launch", "launch_on", "limit", "removed", "run", "runs", "spec", "started", "suspect",
        "task", "took", "tracker",
    )

    def __init__(self, spec: CheckSpec, guard: float) -> None:
        self.spec = spec
        self.kind = spec.checker.kind
        self.tracker = Tracker(spec.timing.resolved(self.kind))
        self.task: asyncio.Task[CheckResult] | None = None
        self.launch: Launch | None = getattr(spec.checker, "launch", None)
        # The same on a loop named by the caller (TcpCheck): saves a loop lookup per run.
        self.launch_on: _LaunchOn | None = (
            getattr(spec.checker, "launch_on", None) if self.launch is not None else None
        )
        self.limit = spec.checker.timeout + guard  # a run past this is given up
        self.cancel: Callable[[], object] | None = None
        self.due = 0.0
        self.started = 0.0  # when the latest run started
        self.key: float | None = None  # its heap key while scheduled (unique, ~due)
        self.deadline = 0.0
        self.run = 0  # counts starts; a completion for an older run is ignored
        self.suspect = 0  # the run a sweep found past its deadline
        self.inflight = False
        self.runs = 0
        self.failures = 0
        self.removed = False
        self.last_ok: bool | None = None  # the latest run's outcome (None: none yet),
        self.ended = 0.0  # when it ended
        self.took = 0.0  # and how long it took


class Changes:
    """Fans health changes out to an optional callback and to every `events()` reader."""

    def __init__(self, callback: Callable[[HealthChanged], None] | None) -> None:
        self._callback = callback
        self._subscribers: list[asyncio.Queue[HealthChanged | None]] = []

    def publish(self, event: HealthChanged) -> None:
        if self._callback is not None:
            try:
                self._callback(event)
            except Exception:
                log.exception("[%s] change callback raised", event.check_id)
        for queue in self._subscribers:
            queue.put_nowait(event)

    def close(self) -> None:
        """End every `events()` iteration in progress."""
        for queue in self._subscribers:
            queue.put_nowait(None)

    async def events(self) -> AsyncIterator[HealthChanged]:
        queue: asyncio.Queue[HealthChanged | None] = asyncio.Queue()
        self._subscribers.append(queue)
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:
            self._subscribers.remove(queue)


class Runner:
    """Schedules checks on the running loop; use ``async with Runner() as r``."""

    def __init__(
        self,
        *,
        max_concurrency: int = 4096,
        on_change: Callable[[HealthChanged], None] | None = None,
        on_launch: Callable[[str, float, float], None] | None = None,
        on_result: Callable[[str, str, CheckResult, float], None] | None = None,
        guard: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self._max = max_concurrency
        self._changes = Changes(on_change)
        self._on_launch = on_launch  # (check_id, due, started) for measurements
        self._on_result = on_result  # (check_id, kind, result, seconds) of every run
        self._guard = guard
        self._entries: dict[str, _Entry] = {}
        self._servers: dict[Hashable, dict[str, _Entry]] = {}
        # How many of each server's checks are down: server_up without a walk over them.
        self._down: dict[Hashable, int] = {}
        self._pending: deque[_Entry] = deque()
        self._running = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closers: set[asyncio.Task[None]] = set()
        self._phase = (rng or random.Random()).random()
        # One heap and one loop timer for the earliest entry: cheaper than a loop timer
        # per check when there are thousands of them. The heap holds bare floats, each
        # key of one entry: a float compares at half the cost of a (due, seq) tuple, and
        # the garbage collector never tracks it (items holding the entry would live a
        # whole interval, fill its oldest generation and bring long full collections).
        # Keys are unique: an entry due at the same time as another gets the next float
        # up, and ``_bumped`` remembers the last one handed out for that time, so a herd
        # of checks due at once (warmup 0) costs no search.
        self._heap: list[float] = []
        self._scheduled: dict[float, _Entry] = {}
        self._bumped: dict[float, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._woke = -math.inf  # when the timer last fired
        self._inflight: set[_Entry] = set()
        self._sweeper: asyncio.TimerHandle | None = None

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        if self._loop is not None:
            raise RuntimeError("the runner is already running")
        self._loop = asyncio.get_running_loop()
        for entry in self._entries.values():
            if entry.key is None and not entry.inflight:
                self._schedule_first(entry)
        self._sweeper = self._loop.call_later(self._sweep_period(), self._sweep)

    async def stop(self) -> None:
        for handle in (self._timer, self._sweeper):
            if handle is not None:
                handle.cancel()
        self._timer = self._sweeper = None
        self._timer_at = math.inf
        self._heap.clear()
        self._scheduled.clear()
        self._bumped.clear()
        entries = list(self._entries.values())
        for entry in entries:
            self._cancel(entry)
        tasks = [e.task for e in entries if e.task is not None and not e.task.done()]
        if tasks:
            # A checker that ignores cancellation is not waited for beyond the guard.
            await asyncio.wait(tasks, timeout=self._guard)
        for entry in entries:
            with contextlib.suppress(Exception):
                await entry.spec.checker.close()
        if self._closers:
            await asyncio.gather(*self._closers, return_exceptions=True)
        self._entries.clear()
        self._servers.clear()
        self._down.clear()
        self._pending.clear()
        self._inflight.clear()
        self._loop = None
        self._changes.close()

    async def __aenter__(self) -> Runner:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- membership ----------------------------------------------------------------

    def add(self, spec: CheckSpec) -> None:
        """Start running a check (at once if the runner is running)."""
        if spec.check_id in self._entries:
            raise ValueError(f"check {spec.check_id!r} already exists")
        entry = _Entry(spec, self._guard)
        before = self.server_up(spec.server)
        self._entries[spec.check_id] = entry
        self._servers.setdefault(spec.server, {})[spec.check_id] = entry
        if not entry.tracker.up:
            self._count_down(spec.server, 1)
        if self._loop is not None:
            self._schedule_first(entry)
        self._server_changed(entry, before, "check added", self._now())

    def remove(self, check_id: str) -> None:
        """Stop a check; the others are not disturbed."""
        entry = self._entries.pop(check_id, None)
        if entry is None:
            raise KeyError(check_id)
        server = entry.spec.server
        before = self.server_up(server)
        self._cancel(entry)
        checks = self._servers[server]
        del checks[check_id]
        if not entry.tracker.up:
            self._count_down(server, -1)
        if not checks:
            del self._servers[server]
        if self._loop is not None:
            closer = self._loop.create_task(self._close_checker(entry))
            self._closers.add(closer)
            closer.add_done_callback(self._closers.discard)
        if server in self._servers:
            self._server_changed(entry, before, "check removed", self._now())

    def check_ids(self) -> list[str]:
        return list(self._entries)

    # -- state -----------------------------------------------------------------------

    def status(self, check_id: str) -> CheckStatus:
        e = self._entries[check_id]
        t = e.tracker
        return CheckStatus(
            check_id, e.spec.server, t.up, t.last_reason, t.last_failure, t.weight, e.runs,
            e.failures, e.due if e.key is not None else None,
        )

    def last_run(self, check_id: str) -> tuple[bool, float, float] | None:
        """A check's latest run: passed or not, when it ended (the loop's time) and how
        long it took; None before its first."""
        e = self._entries[check_id]
        return None if e.last_ok is None else (e.last_ok, e.ended, e.took)

    def server_up(self, server: Hashable) -> bool:
        """A real server is up while all of its checks are (and with none, always)."""
        return server not in self._down

    def servers(self) -> dict[Hashable, bool]:
        return {s: self.server_up(s) for s in self._servers}

    @property
    def in_flight(self) -> int:
        return self._running

    @property
    def queued(self) -> int:
        return len(self._pending)

    def events(self) -> AsyncIterator[HealthChanged]:
        """Every change from now on, until the runner stops."""
        return self._changes.events()

    # -- scheduling --------------------------------------------------------------------

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else 0.0

    def _schedule_first(self, entry: _Entry) -> None:
        warmup = entry.tracker.timing.warmup or 0.0
        # A low-discrepancy sequence spreads first checks evenly over the warmup window
        # however many checks there are, so they never start as a herd.
        self._phase = (self._phase + _GOLDEN) % 1.0
        self._schedule(entry, self._now() + warmup * self._phase)

    def _schedule(self, entry: _Entry, due: float) -> None:
        assert self._loop is not None
        entry.due = due
        scheduled = self._scheduled
        if entry.key is not None:
            scheduled.pop(entry.key, None)  # superseded: its heap item finds nothing
        key = due
        if key in scheduled:
            key = self._bumped.get(due, due)
            while key in scheduled:
                key = math.nextafter(key, math.inf)
            self._bumped[due] = key
        entry.key = key
        scheduled[key] = entry
        heapq.heappush(self._heap, key)
        if key < self._timer_at:
            self._arm(key)

    def _arm(self, when: float) -> None:
        assert self._loop is not None
        when = max(when, self._woke + _TICK)
        if when >= self._timer_at:
            return  # (an earlier key within the tick: the armed timer takes it)
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._wake)

    def _wake(self) -> None:
        assert self._loop is not None
        self._timer = None
        self._timer_at = math.inf
        self._woke = now = self._loop.time()
        heap = self._heap
        scheduled = self._scheduled
        bumped = self._bumped
        heappop = heapq.heappop
        # The loop fires timers up to its clock resolution early; honour that here too.
        limit = now + 1e-6
        # A loop that fell behind finds thousands due at once: start them a batch per
        # tick (51,200 a second), so the completions of the last batch are taken in
        # between rather than thousands of checks piling up in flight.
        budget = _WAKE_BATCH
        while heap and heap[0] <= limit and budget:
            key = heappop(heap)
            if bumped:
                bumped.pop(key, None)
            entry = scheduled.pop(key, None)
            if entry is None or entry.removed:
                continue  # superseded or removed
            entry.key = None
            budget -= 1
            if self._running >= self._max:
                self._pending.append(entry)
            else:
                self._start(entry)
        if heap:
            head = heap[0]
            if budget == _WAKE_BATCH and head > limit:
                # Woken before anything was due: re-arming for the same instant would
                # fire again at once, and again, spinning until the clock catches up.
                head = max(head, limit + _TIMER_GRAIN)
            self._arm(head)

    def _start(self, entry: _Entry) -> None:
        assert self._loop is not None
        self._running += 1
        now = self._loop.time()
        if self._on_launch is not None:
            self._on_launch(entry.spec.check_id, entry.due, now)
        entry.started = now
        entry.run += 1
        run = entry.run
        entry.inflight = True
        entry.deadline = now + entry.limit
        self._inflight.add(entry)
        if entry.launch is not None:
            # A checker that can run on callbacks alone (TCP) skips the task and its
            # coroutine frames: at thousands of checks a second that halves the CPU.
            def done(result: CheckResult) -> None:
                self._complete(entry, run, result)

            try:
                launch_on = entry.launch_on
                entry.cancel = (
                    launch_on(self._loop, done) if launch_on is not None else entry.launch(done)
                )
            except Exception as exc:
                self._loop.call_soon(self._complete, entry, run, _raised(entry, exc))
            return
        task = self._loop.create_task(self._run(entry))
        entry.task = task
        entry.cancel = task.cancel
        # Completion through a done callback, which runs even for a task cancelled
        # before its first step (whose coroutine never runs a finally clause).
        task.add_done_callback(lambda t: self._complete(entry, run, _outcome(t)))

    def _complete(self, entry: _Entry, run: int, result: CheckResult | None) -> None:
        """A run ended (result), or was abandoned (None); only the first word counts."""
        if entry.run != run or not entry.inflight:
            return
        entry.inflight = False
        entry.cancel = None
        if entry.task is not None and entry.task.done():
            entry.task = None
        self._running -= 1
        self._inflight.discard(entry)
        if self._pending:
            self._drain()
        if result is not None and not entry.removed:
            self._finish(entry, result)

    async def _run(self, entry: _Entry) -> CheckResult:
        checker = entry.spec.checker
        # Counted from the first step, not from _start: on a busy loop the task may
        # wait its turn, and that wait is not the checker's fault.
        assert self._loop is not None
        entry.deadline = self._loop.time() + checker.timeout + self._guard
        try:
            result = await checker.check()
        except Exception as exc:
            return _raised(entry, exc)
        if not isinstance(result, CheckResult):
            return CheckResult.down(f"checker returned {type(result).__name__}")
        return result

    def _sweep_period(self) -> float:
        return max(0.01, min(0.25, self._guard / 2))

    def _sweep(self) -> None:
        """Give up on checks that ran past their own timeout plus the guard (a buggy checker)."""
        assert self._loop is not None
        now = self._loop.time()
        overdue = []
        for entry in self._inflight:
            if entry.deadline <= now:
                # Two sweeps in a row: timers fire in order, so by the second one the
                # check's own timeout (due before this sweep) has surely had its turn,
                # even on a loop too busy to keep time.
                if entry.suspect == entry.run:
                    overdue.append(entry)
                else:
                    entry.suspect = entry.run
        for entry in overdue:
            self._overrun(entry, entry.run)
        self._sweeper = self._loop.call_later(self._sweep_period(), self._sweep)

    def _overrun(self, entry: _Entry, run: int) -> None:
        if entry.run != run or not entry.inflight:
            return
        cancel = entry.cancel
        timeout = entry.spec.checker.timeout
        overran = CheckResult.down(f"timeout after {timeout:g}s (checker overran)")
        self._complete(entry, run, overran)
        if cancel is not None:
            cancel()

    def _drain(self) -> None:
        while self._pending and self._running < self._max:
            entry = self._pending.popleft()
            if not entry.removed:
                self._start(entry)

    def _count_down(self, server: Hashable, delta: int) -> None:
        left = self._down.get(server, 0) + delta
        if left:
            self._down[server] = left
        else:
            del self._down[server]

    def _finish(self, entry: _Entry, result: CheckResult) -> None:
        assert self._loop is not None
        now = self._loop.time()
        entry.runs += 1
        ok = entry.last_ok = result.ok
        if not ok:
            entry.failures += 1
        entry.ended = now
        took = entry.took = now - entry.started
        if self._on_result is not None:
            self._on_result(entry.spec.check_id, entry.kind, result, took)
        tracker = entry.tracker
        was_up = tracker.up
        transition = tracker.observe(result, now)
        self._schedule(entry, tracker.next_due(entry.due, now, entry.started))
        if transition is not None:
            # Only a transition changes a check's state, and so its server's.
            if tracker.up != was_up:
                self._count_down(entry.spec.server, -1 if tracker.up else 1)
            log.info(
                "[%s] %s (%s)%s", entry.spec.check_id, "up" if transition.up else "down",
                transition.reason,
                "" if transition.weight is None else f" weight {transition.weight}",
            )
            self._emit(entry, self.server_up(entry.spec.server), transition.reason, now)

    def _server_changed(self, entry: _Entry, before: bool, reason: str, now: float) -> None:
        after = self.server_up(entry.spec.server)
        if after != before:
            self._emit(entry, after, reason, now)

    def _emit(self, entry: _Entry, server_up: bool, reason: str, now: float) -> None:
        t = entry.tracker
        event = HealthChanged(
            entry.spec.check_id, entry.spec.server, server_up, t.up, reason, t.weight, now
        )
        self._changes.publish(event)

    def _cancel(self, entry: _Entry) -> None:
        entry.removed = True
        if entry.key is not None:
            self._scheduled.pop(entry.key, None)
            entry.key = None  # its heap item is skipped when it comes up
        if entry.inflight:
            cancel = entry.cancel
            self._complete(entry, entry.run, None)
            if cancel is not None:
                cancel()

    async def _close_checker(self, entry: _Entry) -> None:
        if entry.task is not None and not entry.task.done():
            await asyncio.wait([entry.task])
        try:
            await entry.spec.checker.close()
        except Exception:
            log.exception("[%s] closing the checker raised", entry.spec.check_id)
