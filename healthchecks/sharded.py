"""Spreads checks over worker processes, each running its own loop and Runner.

One Python process tops out at some thousands of checks a second (HTTP through aiohttp
costs most); ``ShardedRunner`` takes the same ``CheckSpec``s as ``Runner`` and hands
each real server, with all of its checks, to one of N workers, so server-level state
is still decided in one place. Workers rebuild each checker from its ``params`` (the
checker object itself never crosses the process boundary) and send ``HealthChanged``
events back over a socket pair, batched per loop turn. A worker whose parent goes
away sees the socket close and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import resource
import socket
import struct
import sys
from array import array
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from healthchecks.factory import make_checker
from healthchecks.gcsettle import SettleWhenQuiet
from healthchecks.http import HttpSessions
from healthchecks.params import (
    DnsCheckParams,
    HttpGetParams,
    MiscCheckParams,
    SmtpCheckParams,
    TcpCheckParams,
)
from healthchecks.runner import Changes, CheckSpec, HealthChanged, Runner

log = logging.getLogger("healthchecks")

_LEN = struct.Struct("!I")
_PARAMS = (HttpGetParams, TcpCheckParams, MiscCheckParams, DnsCheckParams, SmtpCheckParams)


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


async def _read(reader: asyncio.StreamReader) -> Any:
    head = await reader.readexactly(_LEN.size)
    # Both ends are this package in processes of one parent: the pickles are our own.
    return pickle.loads(await reader.readexactly(_LEN.unpack(head)[0]))


def _frame(message: object) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LEN.pack(len(body)) + body


class _Worker:
    __slots__ = ("checks", "pending", "proc", "reader", "reader_task", "writer")

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.proc = proc
        self.reader = reader
        self.writer = writer
        self.checks = 0
        self.pending: deque[asyncio.Future[WorkerSample]] = deque()
        self.reader_task: asyncio.Task[None] | None = None


class ShardedRunner:
    """``Runner``'s interface over ``workers`` processes; use ``async with``.

    ``measure`` makes workers record each check's start lateness for ``sample()``;
    ``uvloop`` runs the workers on uvloop (a third less CPU per HTTP check) if installed.

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
        guard: float = 1.0,
        measure: bool = False,
        uvloop: bool = False,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self._n = workers
        self._uvloop = uvloop
        self._options = {"max_concurrency": max_concurrency, "guard": guard, "measure": measure}
        self._changes = Changes(on_change)
        self._workers: list[_Worker] = []
        self._specs: dict[str, tuple[CheckSpec, int]] = {}  # check_id -> (spec, worker)
        self._server_worker: dict[Hashable, int] = {}
        self._server_checks: dict[Hashable, int] = {}
        self._up: dict[Hashable, bool] = {}
        self._started = False
        self._live = False  # the workers are up and have been given every check
        self._respawner: asyncio.Task[None] | None = None

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
            self._send(index, ("add", spec.check_id, spec.server, _params(spec), spec.timing))
        self._live = True

    async def _spawn(self) -> _Worker:
        ours, theirs = socket.socketpair()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c",
                "import sys; from healthchecks.sharded import worker_main; "
                "sys.exit(worker_main(int(sys.argv[1]), sys.argv[2] == 'uvloop'))",
                str(theirs.fileno()), "uvloop" if self._uvloop else "asyncio",
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
            )
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
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.kill()
                await worker.proc.wait()
            if worker.reader_task is not None:
                worker.reader_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.reader_task
            worker.writer.close()
            for fut in worker.pending:
                if not fut.done():
                    fut.set_exception(RuntimeError("the runner stopped"))
        for spec, _ in self._specs.values():
            with contextlib.suppress(Exception):
                await spec.checker.close()
        self._specs.clear()
        self._server_worker.clear()
        self._server_checks.clear()
        self._up.clear()
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
        params = _params(spec)
        index = self._server_worker.get(spec.server)
        if index is None:
            counts = [0] * self._n
            for _, i in self._specs.values():
                counts[i] += 1
            index = self._server_worker[spec.server] = counts.index(min(counts))
        self._specs[spec.check_id] = (spec, index)
        self._server_checks[spec.server] = self._server_checks.get(spec.server, 0) + 1
        if self._live:
            self._send(index, ("add", spec.check_id, spec.server, params, spec.timing))

    def remove(self, check_id: str) -> None:
        """Stop a check; the others are not disturbed."""
        spec, index = self._specs.pop(check_id)
        server = spec.server
        left = self._server_checks[server] - 1
        if left:
            self._server_checks[server] = left
        else:
            del self._server_checks[server], self._server_worker[server]
            self._up.pop(server, None)
        if self._live:
            self._send(index, ("remove", check_id))

    def check_ids(self) -> list[str]:
        return list(self._specs)

    # -- state -----------------------------------------------------------------------

    def server_up(self, server: Hashable) -> bool:
        return self._up.get(server, True)

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
            worker.pending.append(fut)
            self._send(index, ("sample",))
            futures.append(fut)
        return list(await asyncio.gather(*futures))

    # -- plumbing --------------------------------------------------------------------

    def _send(self, index: int, message: object) -> None:
        self._workers[index].writer.write(_frame(message))

    async def _listen(self, worker: _Worker) -> None:
        try:
            while True:
                message = await _read(worker.reader)
                match message:
                    case ("events", list() as events):
                        for event in events:
                            self._deliver(event)
                    case ("sample", WorkerSample() as sample):
                        if worker.pending:
                            fut = worker.pending.popleft()
                            if not fut.done():
                                fut.set_result(sample)
                    case _:
                        log.warning("health-check worker %d sent %r", worker.proc.pid, message)
        except Exception as exc:
            if not isinstance(exc, asyncio.IncompleteReadError | ConnectionError):
                log.exception("health-check worker %d: bad message", worker.proc.pid)
            for fut in worker.pending:
                if not fut.done():
                    fut.set_exception(RuntimeError("the health-check worker exited"))
            worker.pending.clear()
            if self._started and worker in self._workers:
                log.error("health-check worker %d exited; starting another", worker.proc.pid)
                self._respawner = asyncio.create_task(self._respawn(worker))

    async def _respawn(self, dead: _Worker) -> None:
        """Put a new worker in a dead one's place and hand it the same checks."""
        with contextlib.suppress(ProcessLookupError):
            dead.proc.kill()
        await dead.proc.wait()
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
                self._send(index, ("add", spec.check_id, spec.server, _params(spec), spec.timing))

    def _deliver(self, event: HealthChanged) -> None:
        if event.server not in self._server_checks:
            return  # removed meanwhile
        self._up[event.server] = event.up
        self._changes.publish(event)


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

    def flush() -> None:
        writer.write(_frame(("events", outbox[:])))
        outbox.clear()

    def on_change(event: HealthChanged) -> None:
        if not outbox:
            loop.call_soon(flush)
        outbox.append(event)

    def on_launch(_check_id: str, due: float, started: float) -> None:
        lateness.append(started - due)

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
    )
    try:
        async with runner:
            while True:
                try:
                    message = await _read(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return  # the parent is gone
                match message:
                    case ("add", str() as check_id, server, params, timing):
                        try:
                            checker = make_checker(params, timing, http=sessions)
                            runner.add(CheckSpec(check_id, server, checker, timing))
                            settler.touch()
                        except (TypeError, ValueError) as exc:
                            log.error("[%s] not added: %s", check_id, exc)
                    case ("remove", str() as check_id):
                        with contextlib.suppress(KeyError):
                            runner.remove(check_id)
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
        await sessions.close()
        if outbox:
            flush()
        with contextlib.suppress(Exception):
            await writer.drain()
        writer.close()


def worker_main(fd: int, use_uvloop: bool = False) -> int:
    """Entry point of a worker process: serve the parent on socket ``fd`` until told to stop.

    With ``use_uvloop`` the worker runs on uvloop where it is installed.
    """
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
