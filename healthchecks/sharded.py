"""Spreads checks over worker processes, each running its own loop and Runner.

One Python process tops out at some thousands of checks a second (HTTP through aiohttp
costs most); ``ShardedRunner`` takes the same ``CheckSpec``s as ``Runner`` and hands
each real server, with all of its checks, to one of N workers, so server-level state
is still decided in one place. Workers rebuild each checker from its ``params`` (the
checker object itself never crosses the process boundary) and send ``HealthChanged``
events back over a socket pair, batched per loop turn. A worker whose parent goes
away sees the socket close and exits (and, on Linux, gets SIGTERM at once).

Messages are plain data (`healthchecks.wire`), never pickles: a worker runs scripts
and talks to the network, and what it sends back must not be able to run code in the
parent. Servers cross as small integers the parent hands out. A worker that dies is
replaced and given its checks again, each starting in the state it had (a check that
was down starts down, as if with alpha), so no server flaps because of the crash.
Each run's kind, outcome and duration come back once a second (`on_results`), counted
in the worker per duration bucket (`result_buckets`): thousands of durations a second
cost no encoding and decoding of each. `refresh()` reads every check's counters from the
workers when asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import itertools
import logging
import os
import resource
import signal
import socket
import sys
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from healthchecks.factory import make_checker
from healthchecks.gcsettle import SettleWhenQuiet
from healthchecks.http import HttpSessions
from healthchecks.params import (
    DnsCheckParams,
    FileCheckParams,
    HttpGetParams,
    MiscCheckParams,
    PingCheckParams,
    SmtpCheckParams,
    TcpCheckParams,
    Timing,
    UdpCheckParams,
    UrlSpec,
)
from healthchecks.pdeath import die_with_parent
from healthchecks.result import CheckResult, result_label
from healthchecks.runner import Changes, CheckSpec, CheckStatus, HealthChanged, Runner
from healthchecks.wire import Codec

if TYPE_CHECKING:
    from healthchecks.zygote import Zygote

log = logging.getLogger("healthchecks")

_PARAMS = (
    HttpGetParams, TcpCheckParams, MiscCheckParams, DnsCheckParams, SmtpCheckParams,
    PingCheckParams, UdpCheckParams, FileCheckParams,
)
#: Seconds between two batches of run outcomes sent by a worker.
RESULTS_INTERVAL = 1.0
#: Seconds a new worker has to start before it counts as hung (a loaded machine).
STARTUP_GRACE = 10.0


@dataclass(frozen=True, slots=True)
class WorkerSample:
    """One worker's counters since it started (lateness: since the previous sample)."""

    pid: int
    cpu_user: float
    cpu_system: float
    max_rss_kib: int
    checks: int
    runs: int
    failures: int
    failure_reasons: tuple[str, ...]
    lateness: tuple[float, ...]  # check start minus its due time, seconds (measure=True)


@dataclass(frozen=True, slots=True)
class RunBatch:
    """The runs of one kind with one outcome that a worker did since its last batch."""

    kind: str
    label: str  # `result_label`: success, failure, timeout, error
    runs: int
    seconds: float  # their durations summed (each at least 0)
    #: How many took at most each of `result_buckets` seconds and more than the one
    #: before, the last for those longer than every bound (with no bounds: `runs`).
    buckets: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CheckCounters:
    """One check as its worker sees it: state, counters and its latest run."""

    check_id: str
    up: bool
    reason: str
    last_failure: str | None
    weight: int | None
    runs: int
    failures: int
    last_ok: bool | None  # None: not run yet
    last_age: float | None  # seconds since the latest run ended
    last_duration: float | None


CODEC = Codec([
    HttpGetParams, UrlSpec, TcpCheckParams, MiscCheckParams, DnsCheckParams, SmtpCheckParams,
    PingCheckParams, UdpCheckParams, FileCheckParams, Timing, HealthChanged, WorkerSample,
    CheckCounters,
])
_read = CODEC.read
_frame = CODEC.frame


class _Process(Protocol):
    """A worker's process, exec'ed (asyncio's) or forked by a zygote."""

    @property
    def pid(self) -> int: ...
    @property
    def running(self) -> bool: ...
    def kill(self) -> None: ...
    async def wait(self) -> None: ...
    def close(self) -> None: ...


class _Execed:
    __slots__ = ("_proc",)

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc.returncode is None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._proc.kill()

    async def wait(self) -> None:
        await self._proc.wait()

    def close(self) -> None:
        pass


class _Worker:
    __slots__ = ("answered", "checks", "gone", "pending", "polls", "proc", "reader",
                 "reader_task", "writer")

    def __init__(
        self,
        proc: _Process,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.proc = proc
        self.reader = reader
        self.writer = writer
        self.checks = 0
        self.pending: deque[asyncio.Future[WorkerSample]] = deque()
        self.polls: deque[asyncio.Future[list[CheckCounters]]] = deque()
        self.reader_task: asyncio.Task[None] | None = None
        # Why it answers nothing more (it exited): until its replacement takes its place,
        # a request to it fails at once rather than wait for an answer that never comes.
        self.gone: Exception | None = None
        # Its latest message; a new worker has a while to import and start first.
        self.answered = asyncio.get_running_loop().time() + STARTUP_GRACE

    def fail(self, exc: Exception) -> None:
        """Answer every request still waiting, and every one to come, with `exc`."""
        self.gone = exc
        for futures in (self.pending, self.polls):
            for fut in futures:
                if not fut.done():
                    fut.set_exception(exc)
            futures.clear()


class ShardedRunner:
    """``Runner``'s interface over ``workers`` processes; use ``async with``.

    ``measure`` makes workers record each check's start lateness for ``sample()``;
    ``uvloop`` runs the workers on uvloop (a third less CPU per HTTP check) if installed.
    With a started ``zygote`` (`healthchecks.zygote`) workers are forked from it and
    share its imported pages; without one (or when it cannot fork) they are exec'ed.

    Every ``spec.checker`` must carry its ``params`` (all of this package's checkers
    do); a checker that wraps another is not carried over. ``server_up`` reflects the
    events received so far.
    """

    def __init__(
        self,
        workers: int,
        *,
        max_concurrency: int = 4096,
        on_change: Callable[[HealthChanged], None] | None = None,
        on_results: Callable[[list[RunBatch]], None] | None = None,
        result_buckets: Sequence[float] = (),
        guard: float = 1.0,
        measure: bool = False,
        uvloop: bool = False,
        hung_after: float = 10.0,
        zygote: Zygote | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self._n = workers
        self._uvloop = uvloop
        bounds = [float(b) for b in result_buckets]
        if bounds != sorted(set(bounds)):
            raise ValueError("result_buckets must be increasing")
        self._options = {"max_concurrency": max_concurrency, "guard": guard, "measure": measure,
                         "buckets": bounds}
        self._changes = Changes(on_change)
        self._on_results = on_results
        self._buckets = len(bounds) + 1
        self._workers: list[_Worker] = []
        self._specs: dict[str, tuple[CheckSpec, int]] = {}  # check_id -> (spec, worker)
        self._server_worker: dict[Hashable, int] = {}
        self._server_checks: dict[Hashable, set[str]] = {}
        self._server_id: dict[Hashable, int] = {}  # servers cross as integers
        self._server_of: dict[int, Hashable] = {}
        self._ids = itertools.count(1)
        self._check_up: dict[str, bool] = {}
        self._weight: dict[str, int | None] = {}
        self._reason: dict[str, str] = {}
        self._counters: dict[str, CheckCounters] = {}  # as of the latest refresh()
        self._refreshed = -1e9
        self._started = False
        self._live = False  # the workers are up and have been given every check
        self._respawner: asyncio.Task[None] | None = None
        self._hung_after = hung_after  # a worker silent this long is replaced
        self._watcher: asyncio.Task[None] | None = None
        self._zygote = zygote

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            raise RuntimeError("the runner is already running")
        self._started = True
        try:
            for _ in range(self._n):
                self._workers.append(await self._spawn())
        except BaseException:
            await self.stop()
            raise
        for spec, index in self._specs.values():
            self._send_add(index, spec)
        self._live = True
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _spawn(self) -> _Worker:
        ours, theirs = socket.socketpair()
        mode = "uvloop" if self._uvloop else "asyncio"
        proc: _Process | None = None
        try:
            if self._zygote is not None:
                from healthchecks.zygote import WORKER, ZygoteError

                try:
                    proc = await self._zygote.spawn_async(WORKER, theirs, [mode],
                                                          name="hc-check-worker")
                except ZygoteError as exc:
                    log.error("health-check worker not forked by the zygote (%s): "
                              "starting it by exec", exc)
            if proc is None:
                proc = _Execed(await asyncio.create_subprocess_exec(
                    sys.executable, "-c",
                    "import sys; from healthchecks.sharded import worker_main; "
                    "sys.exit(worker_main(int(sys.argv[1]), sys.argv[2] == 'uvloop'))",
                    str(theirs.fileno()), mode,
                    pass_fds=(theirs.fileno(),),
                    stdin=asyncio.subprocess.DEVNULL,
                    preexec_fn=functools.partial(die_with_parent, os.getpid()),
                ))
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        worker = _Worker(proc, reader, writer)
        writer.write(_frame(("options", self._options)))
        worker.reader_task = asyncio.create_task(self._listen(worker))
        return worker

    async def stop(self) -> None:
        self._started = self._live = False
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        if self._respawner is not None:
            # Not cancelled: a worker it is starting must not be left behind.
            with contextlib.suppress(Exception):
                await self._respawner
            self._respawner = None
        workers, self._workers = self._workers, []
        for worker in workers:
            with contextlib.suppress(Exception):
                worker.writer.write(_frame(("stop",)))
                await worker.writer.drain()
        for worker in workers:
            try:
                await asyncio.wait_for(worker.proc.wait(), 5)
            except TimeoutError:
                worker.proc.kill()
                await worker.proc.wait()
            worker.proc.close()
            if worker.reader_task is not None:
                worker.reader_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.reader_task
            worker.writer.close()
            worker.fail(RuntimeError("the runner stopped"))
        for spec, _ in self._specs.values():
            with contextlib.suppress(Exception):
                await spec.checker.close()
        self._specs.clear()
        self._server_worker.clear()
        self._server_checks.clear()
        self._server_id.clear()
        self._server_of.clear()
        self._check_up.clear()
        self._weight.clear()
        self._reason.clear()
        self._counters.clear()
        self._changes.close()

    async def __aenter__(self) -> ShardedRunner:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- membership ----------------------------------------------------------------

    def add(self, spec: CheckSpec) -> None:
        """Start running a check on its server's worker (the least loaded, for a new server)."""
        if spec.check_id in self._specs:
            raise ValueError(f"check {spec.check_id!r} already exists")
        _params(spec)
        index = self._server_worker.get(spec.server)
        if index is None:
            counts = [0] * self._n
            for _, i in self._specs.values():
                counts[i] += 1
            index = self._server_worker[spec.server] = counts.index(min(counts))
            number = next(self._ids)
            self._server_id[spec.server] = number
            self._server_of[number] = spec.server
        before = self.server_up(spec.server)
        self._specs[spec.check_id] = (spec, index)
        self._server_checks.setdefault(spec.server, set()).add(spec.check_id)
        self._check_up[spec.check_id] = not spec.timing.alpha
        self._reason[spec.check_id] = "not checked yet"
        if self._live:
            self._send_add(index, spec)
        after = self.server_up(spec.server)
        if after != before:
            self._changes.publish(HealthChanged(
                spec.check_id, spec.server, after, not spec.timing.alpha, "check added", None,
                asyncio.get_running_loop().time() if self._started else 0.0,
            ))

    def remove(self, check_id: str) -> None:
        """Stop a check; the others are not disturbed."""
        spec, index = self._specs.pop(check_id)
        server = spec.server
        for table in (self._check_up, self._weight, self._reason, self._counters):
            table.pop(check_id, None)
        left = self._server_checks[server]
        left.discard(check_id)
        if not left:
            del self._server_checks[server], self._server_worker[server]
            del self._server_of[self._server_id.pop(server)]
        if self._live:
            self._send(index, ("remove", check_id))

    def check_ids(self) -> list[str]:
        return list(self._specs)

    # -- state -----------------------------------------------------------------------

    def server_up(self, server: Hashable) -> bool:
        """Up while all of its checks are (as their workers last said), and with none."""
        return all(self._check_up[c] for c in self._server_checks.get(server, ()))

    def status(self, check_id: str) -> CheckStatus:
        """A check as last reported: state from its events, counters as of `refresh()`."""
        spec, _ = self._specs[check_id]
        c = self._counters.get(check_id)
        return CheckStatus(
            check_id, spec.server, self._check_up[check_id], self._reason[check_id],
            c.last_failure if c is not None else None, self._weight.get(check_id),
            c.runs if c is not None else 0, c.failures if c is not None else 0, None,
        )

    def counters(self, check_id: str) -> CheckCounters | None:
        """A check's counters and latest run as of the last `refresh()`."""
        return self._counters.get(check_id)

    async def refresh(self, max_age: float = 0.0) -> None:
        """Read every check's counters from the workers (a worker that died is skipped),
        unless the last reading is younger than `max_age` seconds."""
        loop = asyncio.get_running_loop()
        if max_age and loop.time() - self._refreshed < max_age:
            return
        self._refreshed = loop.time()
        futures = []
        for index, worker in enumerate(self._workers):
            if worker.gone is not None:
                continue  # dead, its replacement not in place yet
            fut: asyncio.Future[list[CheckCounters]] = loop.create_future()
            worker.polls.append(fut)
            self._send(index, ("counters",))
            futures.append(fut)
        for result in await asyncio.gather(*futures, return_exceptions=True):
            if isinstance(result, BaseException):
                continue
            for c in result:
                if c.check_id in self._specs:
                    self._counters[c.check_id] = c

    def servers(self) -> dict[Hashable, bool]:
        return {s: self.server_up(s) for s in self._server_checks}

    @property
    def worker_pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers]

    def events(self) -> AsyncIterator[HealthChanged]:
        """Every change from now on, until the runner stops."""
        return self._changes.events()

    async def sample(self) -> list[WorkerSample]:
        """Each worker's CPU, memory and counters (and start lateness, with measure=True)."""
        loop = asyncio.get_running_loop()
        futures = []
        for index, worker in enumerate(self._workers):
            fut: asyncio.Future[WorkerSample] = loop.create_future()
            if worker.gone is not None:
                fut.set_exception(worker.gone)  # dead, its replacement not in place yet
            else:
                worker.pending.append(fut)
                self._send(index, ("sample",))
            futures.append(fut)
        return list(await asyncio.gather(*futures))

    # -- plumbing --------------------------------------------------------------------

    def _send(self, index: int, message: object) -> None:
        self._workers[index].writer.write(_frame(message))

    async def _watch(self) -> None:
        """Ask every worker for a sign of life; one silent for `hung_after` (a loop stuck
        in a checker, a frozen process) is killed, and so replaced like a dead one."""
        interval = max(0.05, self._hung_after / 4)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            if self._zygote is not None:
                self._zygote.ensure()  # a dead zygote is started again now, not when needed
            now = loop.time()
            for index, worker in enumerate(list(self._workers)):
                if now - worker.answered > self._hung_after and worker.proc.running:
                    log.error("health-check worker %d has not answered for %.1f s: replacing it",
                              worker.proc.pid, now - worker.answered)
                    worker.proc.kill()
                    worker.answered = now  # once: the reader sees it die and respawns
                    continue
                with contextlib.suppress(Exception):
                    self._send(index, ("ping",))

    def _send_add(self, index: int, spec: CheckSpec) -> None:
        """Hand a worker a check, starting in the state it has now (a new check: its own)."""
        timing = spec.timing
        up = self._check_up.get(spec.check_id, not timing.alpha)
        if timing.alpha == up:
            timing = dataclasses.replace(timing, alpha=not up)
        self._send(index, ("add", spec.check_id, self._server_id[spec.server],
                           _params(spec), timing))

    def _counted(self, row: list[Any]) -> CheckCounters:
        """A row of a worker's counters, its strings shared: the check's id as added,
        its reasons (mostly the same few) interned. Kept as decoded, a refresh of 10,000
        checks held 10,000 copies of each until the next one."""
        check_id, up, reason, last_failure, *rest = row
        spec = self._specs.get(check_id)
        return CheckCounters(
            check_id if spec is None else spec[0].check_id, up,
            sys.intern(reason) if isinstance(reason, str) else reason,
            sys.intern(last_failure) if isinstance(last_failure, str) else last_failure,
            *rest,
        )

    def _batch(self, row: list[Any]) -> RunBatch:
        kind, label, seconds, buckets = row
        if len(buckets) != self._buckets or not all(type(n) is int for n in buckets):
            raise ValueError(f"bad results row {row!r}")
        return RunBatch(sys.intern(kind), sys.intern(label), sum(buckets), float(seconds),
                        tuple(buckets))

    def _on_message(self, worker: _Worker, message: Any) -> None:
        """One message from a worker: events, an answer to a request, results."""
        match message:
            case ("events", list() as events):
                for event in events:
                    self._deliver(event)
            case ("sample", WorkerSample() as sample):
                if worker.pending:
                    fut = worker.pending.popleft()
                    if not fut.done():
                        fut.set_result(sample)
            case ("counters", list() as rows):
                if worker.polls:
                    poll = worker.polls.popleft()
                    if not poll.done():
                        poll.set_result([self._counted(row) for row in rows])
            case ("pong",):
                pass
            case ("results", list() as rows):
                if self._on_results is not None:
                    try:
                        batches = [self._batch(row) for row in rows]
                    except (ValueError, TypeError):
                        log.warning("health-check worker %d sent bad results", worker.proc.pid)
                        return
                    self._on_results(batches)
            case _:
                log.warning("health-check worker %d sent %r", worker.proc.pid, message)

    async def _listen(self, worker: _Worker) -> None:
        try:
            while True:
                message = await _read(worker.reader)
                worker.answered = asyncio.get_running_loop().time()
                self._on_message(worker, message)
                # (handled in a call of its own: a name bound here by `match` would keep
                # a message, such as 10,000 checks' counters, until the next like it)
                del message
        except Exception as exc:
            if not isinstance(exc, asyncio.IncompleteReadError | ConnectionError):
                log.exception("health-check worker %d: bad message", worker.proc.pid)
            worker.fail(RuntimeError("the health-check worker exited"))
            if self._started and worker in self._workers:
                log.error("health-check worker %d exited; starting another", worker.proc.pid)
                self._respawner = asyncio.create_task(self._respawn(worker))

    async def _respawn(self, dead: _Worker) -> None:
        """Put a new worker in a dead one's place and hand it the same checks."""
        dead.proc.kill()
        await dead.proc.wait()
        dead.proc.close()
        dead.writer.close()
        try:
            worker = await self._spawn()
        except OSError:
            log.exception("could not start a health-check worker")
            return
        if not self._started or dead not in self._workers:
            self._workers.append(worker)  # stop() is under way: it stops this one too
            return
        index = self._workers.index(dead)
        self._workers[index] = worker
        for spec, i in self._specs.values():
            if i == index:
                self._send_add(index, spec)

    def _deliver(self, event: HealthChanged) -> None:
        server = self._server_of.get(event.server)  # type: ignore[call-overload]
        if server is None or event.check_id not in self._specs:
            return  # removed meanwhile
        before, was = self.server_up(server), self._check_up[event.check_id]
        self._check_up[event.check_id] = event.check_up
        self._reason[event.check_id] = event.reason
        if event.weight is not None:
            self._weight[event.check_id] = event.weight
        up = self.server_up(server)
        if up != before or was != event.check_up or event.weight is not None:
            # (a replacement worker's "check added" in the state handed over is no news)
            self._changes.publish(dataclasses.replace(event, server=server, up=up))


def _params(spec: CheckSpec) -> object:
    params = getattr(spec.checker, "params", None)
    if not isinstance(params, _PARAMS):
        raise TypeError(
            f"check {spec.check_id!r}: a sharded runner needs a checker with params "
            f"(got {type(spec.checker).__name__})"
        )
    return params


# -- the worker side ------------------------------------------------------------------


async def _serve(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    first = await _read(reader)
    options: dict[str, Any] = first[1] if first[0] == "options" else {}
    loop = asyncio.get_running_loop()
    outbox: list[HealthChanged] = []
    lateness: array[float] = array("d")
    # Each run's outcome, sent once a second: (kind, label) -> [seconds summed, then the
    # runs in each duration bucket].
    results: dict[tuple[str, str], list[Any]] = {}
    bounds = [float(b) for b in options.get("buckets", ())]
    empty = [0.0] + [0] * (len(bounds) + 1)

    def flush() -> None:
        writer.write(_frame(("events", outbox[:])))
        outbox.clear()

    def on_change(event: HealthChanged) -> None:
        if not outbox:
            loop.call_soon(flush)
        outbox.append(event)

    def on_launch(_check_id: str, due: float, started: float) -> None:
        lateness.append(started - due)

    def on_result(check_id: str, kind: str, result: CheckResult, seconds: float) -> None:
        key = (kind, result_label(result))
        row = results.get(key)
        if row is None:
            row = results[key] = empty[:]
        if seconds < 0.0:
            seconds = 0.0
        row[0] += seconds
        row[1 + bisect_left(bounds, seconds)] += 1

    def send_results() -> None:
        if results:
            writer.write(_frame(("results", [[k, lbl, v[0], v[1:]]
                                             for (k, lbl), v in results.items()])))
            results.clear()
        timers[0] = loop.call_later(RESULTS_INTERVAL, send_results)

    def counters() -> list[list[Any]]:
        """Each check's `CheckCounters` fields, as plain rows (thousands: cheap to send)."""
        now = loop.time()
        rows: list[list[Any]] = []
        for check_id in runner.check_ids():
            st = runner.status(check_id)
            ok, ended, seconds = runner.last_run(check_id) or (None, None, None)
            rows.append([
                check_id, st.up, st.reason, st.last_failure, st.weight, st.runs, st.failures,
                ok, None if ended is None else now - ended, seconds,
            ])
        return rows

    # This process is ours: what is alive once its checks are handed over (modules, the
    # loop, the checks) lives as long as it does, and need not be walked by every
    # collection. Start-up is over when the adds stop coming.
    settler = SettleWhenQuiet(loop)
    settler.touch()
    sessions = HttpSessions()
    runner = Runner(
        max_concurrency=int(options.get("max_concurrency", 4096)),
        guard=float(options.get("guard", 1.0)),
        on_change=on_change,
        on_launch=on_launch if options.get("measure") else None,
        on_result=on_result,
    )
    timers = [loop.call_later(RESULTS_INTERVAL, send_results)]
    try:
        async with runner:
            while True:
                try:
                    message = await _read(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return  # the parent is gone
                match message:
                    case ("add", str() as check_id, int() as server, params, Timing() as timing):
                        try:
                            checker = make_checker(params, timing, http=sessions)
                            runner.add(CheckSpec(check_id, server, checker, timing))
                            settler.touch()
                        except (TypeError, ValueError) as exc:
                            log.error("[%s] not added: %s", check_id, exc)
                    case ("remove", str() as check_id):
                        with contextlib.suppress(KeyError):
                            runner.remove(check_id)
                    case ("counters",):
                        writer.write(_frame(("counters", counters())))
                    case ("ping",):
                        writer.write(_frame(("pong",)))
                    case ("sample",):
                        usage = resource.getrusage(resource.RUSAGE_SELF)
                        statuses = [runner.status(c) for c in runner.check_ids()]
                        reasons = sorted({s.last_failure for s in statuses if s.last_failure})
                        writer.write(_frame(("sample", WorkerSample(
                            os.getpid(), usage.ru_utime, usage.ru_stime, usage.ru_maxrss,
                            len(statuses), sum(s.runs for s in statuses),
                            sum(s.failures for s in statuses), tuple(reasons[:3]),
                            tuple(lateness),
                        ))))
                        del lateness[:]
                    case ("stop",):
                        return
                await writer.drain()
    finally:
        settler.cancel()
        timers[0].cancel()
        await sessions.close()
        if outbox:
            flush()
        with contextlib.suppress(Exception):
            await writer.drain()
        writer.close()


def zygote_worker(sock: socket.socket, mode: str = "asyncio") -> int:
    """A worker forked by a zygote (`healthchecks.zygote.WORKER`): `worker_main` on
    `sock`, on uvloop if `mode` is "uvloop"."""
    return worker_main(sock.detach(), mode == "uvloop")


def worker_main(fd: int, use_uvloop: bool = False) -> int:
    """Entry point of a worker process: serve the parent on socket ``fd`` until told to stop.

    With ``use_uvloop`` the worker runs on uvloop where it is installed. SIGTERM (sent
    by the kernel when the parent dies) stops it like the parent's "stop".
    """
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    with contextlib.suppress(KeyboardInterrupt):
        if use_uvloop:
            try:
                import uvloop
            except ImportError:
                log.warning("uvloop is not installed; the worker uses asyncio's loop")
            else:
                uvloop.run(_serve(fd))
                return 0
        asyncio.run(_serve(fd))
    return 0
