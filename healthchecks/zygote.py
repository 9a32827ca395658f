"""A small parent that forks worker processes on request, so that they share its pages.

Every check worker needs the same modules (asyncio, ssl, httptools, this package): a
worker started by exec imports them all again, and its pages are its own. A `Zygote` is
a process started early (forked while its starter is still small and has one thread,
else exec'ed) that imports those modules once, collects and freezes what is alive
(``gc.freeze()``: no collection touches those objects again, so their pages stay shared
with the children), and then forks a child for each request. A child shares the
imported pages with the zygote and its siblings until it writes to them.

The spawn API (the supervisor's side, one thread)::

    zygote = Zygote(preload=PRELOAD, targets=(WORKER,))
    zygote.start()                                  # early: fork, else exec
    ours, theirs = socket.socketpair()
    child = await zygote.spawn_async(WORKER, theirs, ["asyncio"], name="hc-check-worker")
    theirs.close()                                  # the child has its own copy
    ...; child.kill(); await child.wait(); child.close()

A request names a target from the zygote's list (``"package.module:function"``, called
in the child as ``function(sock, *args)``, its return value the exit status), plain
arguments (JSON: never pickles) and one socket, passed with SCM_RIGHTS; the answer is
the child's pid and a pidfd for it (race-free: the zygote opens it before the child can
be reaped). `spawn` is the blocking form (before an event loop runs).

Children die with the process that started the zygote (the supervisor), not with the
zygote: a killed zygote is started again (`ensure()`, logged and counted in `restarts`)
while its children keep running. A child is the zygote's, so PR_SET_PDEATHSIG would
tie it to the zygote; instead each child watches a pidfd of the supervisor (opened by
the zygote and checked to be its parent) from a thread, and sends itself SIGTERM when
the supervisor exits, as PR_SET_PDEATHSIG would (`healthchecks.pdeath.die_with`). The
zygote itself has PR_SET_PDEATHSIG. The kernel reaps the zygote's children (SIGCHLD
ignored there); whoever holds a child's pidfd sees it exit.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import gc
import importlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from healthchecks.pdeath import die_with, die_with_parent, set_name

log = logging.getLogger("healthchecks")

#: The check worker's entry point (`healthchecks.sharded.zygote_worker`).
WORKER = "healthchecks.sharded:zygote_worker"
#: What a check worker imports: loaded once in the zygote.
PRELOAD = (
    "asyncio", "asyncio.subprocess", "asyncio.unix_events", "ssl", "httptools",
    "healthchecks.sharded", "healthchecks.factory", "healthchecks.reactor",
    "healthchecks.exchange", "healthchecks.tlssession", "healthchecks.gcsettle",
)
#: The longest request or answer (a target, its arguments, a name).
MAX_MESSAGE = 1 << 16
#: Seconds a spawn may take, the zygote's imports included (a loaded machine).
SPAWN_TIMEOUT = 30.0


class ZygoteError(RuntimeError):
    """The zygote could not start a child (refused target, zygote gone)."""


class Child:
    """A process the zygote forked: its pid and a pidfd (which outlives a reused pid)."""

    __slots__ = ("_pidfd", "pid")

    def __init__(self, pid: int, pidfd: int) -> None:
        self.pid = pid
        self._pidfd = pidfd

    @property
    def running(self) -> bool:
        if self._pidfd < 0:
            return False
        ready, _, _ = select.select([self._pidfd], [], [], 0)
        return not ready

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self._pidfd >= 0:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, sig)

    async def wait(self) -> None:
        """Until the process has exited."""
        if not self.running:
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        loop.add_reader(self._pidfd, _settle, done)
        try:
            await done
        finally:
            loop.remove_reader(self._pidfd)

    def close(self) -> None:
        """Let go of the pidfd (once the process is no longer of interest)."""
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1


class Zygote:
    """The starter's handle: start the zygote, ask it for children, restart it if it died.

    ``preload``: modules the zygote imports before it serves; ``targets``: the only
    entry points it runs (``"module:function"``); with ``lazy`` it imports them on its
    first request rather than at once (a program that may never ask, or must not be
    slowed while it starts); ``on_restart`` is called each time a dead zygote is started
    again.
    """

    def __init__(
        self,
        preload: Sequence[str] = PRELOAD,
        targets: Sequence[str] = (WORKER,),
        *,
        name: str = "hc-zygote",
        lazy: bool = False,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        self.preload = tuple(preload)
        self.lazy = lazy
        self.targets = tuple(targets)
        self.name = name
        self.on_restart = on_restart
        self.restarts = 0
        self._sock: socket.socket | None = None
        self._pid: int | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._busy = False

    @property
    def pid(self) -> int | None:
        return self._pid

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start the zygote: forked when this process has one thread and no running
        loop (early start-up: its few pages are shared), else exec'ed."""
        if self._sock is not None:
            raise RuntimeError("the zygote is already started")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        parent = os.getpid()
        config = json.dumps([parent, self.name, self.preload, self.targets, self.lazy])
        try:
            if threading.active_count() == 1 and not _loop_running():
                frozen = gc.get_freeze_count() > 0
                gc.freeze()  # the child's collections leave the parent's objects alone
                pid = os.fork()
                if pid == 0:
                    code = 1
                    try:
                        ours.close()
                        code = serve(theirs, config)
                    finally:
                        os._exit(code)
                if not frozen:
                    gc.unfreeze()
                self._pid, self._popen = pid, None
            else:
                self._popen = subprocess.Popen(
                    [sys.executable, "-c",
                     "import sys, socket; from healthchecks.zygote import serve; "
                     "sys.exit(serve(socket.socket(fileno=int(sys.argv[1])), sys.argv[2]))",
                     str(theirs.fileno()), config],
                    pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                )
                self._pid = self._popen.pid
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._sock = ours

    def alive(self) -> bool:
        """Whether the zygote runs (a dead one is reaped here)."""
        if self._pid is None:
            return False
        if self._popen is not None:
            return self._popen.poll() is None
        try:
            pid, _ = os.waitpid(self._pid, os.WNOHANG)
        except ChildProcessError:
            return False
        return pid == 0

    def ensure(self) -> bool:
        """Start the zygote again if it died; True if it had to."""
        if self._sock is None or self.alive():
            return False
        self.restarts += 1
        log.error("the zygote (pid %s) exited; starting it again (restart %d)",
                  self._pid, self.restarts)
        self._close()
        self.start()
        if self.on_restart is not None:
            self.on_restart()
        return True

    def stop(self) -> None:
        """Stop the zygote (its children are left alone: they die with their starter)."""
        if self._sock is None:
            return
        pid = self._pid
        self._close()  # the zygote sees the end of its socket and exits
        if pid is None:
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self._running(pid):
            time.sleep(0.01)
        if self._running(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self._pid = self._popen = None

    def _running(self, pid: int) -> bool:
        if self._popen is not None:
            return self._popen.poll() is None
        try:
            return os.waitpid(pid, os.WNOHANG)[0] == 0
        except ChildProcessError:
            return False

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # -- requests --------------------------------------------------------------------

    def spawn(self, target: str, sock: socket.socket, args: Sequence[Any] = (), *,
              name: str | None = None, timeout: float = SPAWN_TIMEOUT) -> Child:
        """Fork a child running `target(sock, *args)` (blocking; restarts a dead zygote)."""
        ours = self._ready(target)
        self._busy = True
        try:
            ours.settimeout(timeout)
            try:
                self._send(ours, target, sock, args, name)
                return _answer(*ours.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(4)))
            except (TimeoutError, OSError) as exc:
                raise ZygoteError(f"the zygote did not start {target}: {exc}") from exc
        finally:
            self._busy = False

    async def spawn_async(self, target: str, sock: socket.socket, args: Sequence[Any] = (),
                          *, name: str | None = None,
                          timeout: float = SPAWN_TIMEOUT) -> Child:
        """`spawn` without blocking the running loop (one request at a time)."""
        loop = asyncio.get_running_loop()
        while self._busy:
            await asyncio.sleep(0.01)
        ours = self._ready(target)
        self._busy = True
        try:
            ours.setblocking(False)
            self._send(ours, target, sock, args, name)
            answered: asyncio.Future[None] = loop.create_future()
            loop.add_reader(ours, _settle, answered)
            try:
                async with asyncio.timeout(timeout):
                    await answered
            except TimeoutError as exc:
                raise ZygoteError(f"the zygote did not start {target} in {timeout} s") from exc
            finally:
                loop.remove_reader(ours)
            try:
                return _answer(*ours.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(4)))
            except OSError as exc:
                raise ZygoteError(f"the zygote did not start {target}: {exc}") from exc
        finally:
            self._busy = False

    def _ready(self, target: str) -> socket.socket:
        if self._busy:
            raise ZygoteError("the zygote is answering another request")
        if target not in self.targets:
            raise ZygoteError(f"{target} is not one of the zygote's targets")
        if self._sock is None:
            raise ZygoteError("the zygote is not started")
        self.ensure()
        assert self._sock is not None
        return self._sock

    @staticmethod
    def _send(ours: socket.socket, target: str, sock: socket.socket, args: Sequence[Any],
              name: str | None) -> None:
        body = json.dumps({"target": target, "args": list(args), "name": name}).encode()
        if len(body) > MAX_MESSAGE:
            raise ZygoteError("spawn request too long")
        fds = array.array("i", [sock.fileno()])
        try:
            ours.sendmsg([body], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        except OSError as exc:
            raise ZygoteError(f"the zygote is gone: {exc}") from exc


def _answer(data: bytes, ancdata: list[tuple[int, int, bytes]], _flags: int,
            _addr: object) -> Child:
    fds = _fds(ancdata)
    if not data:
        for fd in fds:
            os.close(fd)
        raise ZygoteError("the zygote exited")
    answer = json.loads(data)
    if "error" in answer or len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise ZygoteError(str(answer.get("error", "no pidfd in the answer")))
    return Child(int(answer["pid"]), fds[0])


def _fds(ancdata: list[tuple[int, int, bytes]]) -> list[int]:
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(data) - len(data) % 4
            fds.extend(array.array("i", data[:usable]))
    return fds


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


# --------------------------------------------------------------------------- zygote side


def serve(sock: socket.socket, config: str) -> int:
    """The zygote's process: import, freeze, then fork a child per request until the
    starter's end of `sock` closes."""
    parent, name, preload, targets, lazy = json.loads(config)
    die_with_parent(parent)
    set_name(name)
    # Only what the children need is inherited: not the starter's other descriptors
    # (sockets, files) a fork brought along. Their objects are never used here.
    gc.collect()
    for entry in os.listdir("/proc/self/fd"):
        if int(entry) > 2 and int(entry) != sock.fileno():
            with contextlib.suppress(OSError):
                os.close(int(entry))
    # Its children hold this one: they watch the starter, not the zygote.
    starter = os.pidfd_open(parent)
    if os.getppid() != parent:
        return 1
    # Forked from a program that may have had a loop: none of its state is ours.
    asyncio.events._set_running_loop(None)
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C is the starter's
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if not lazy:
        _preload(preload)
    while True:
        data, ancdata, _, _ = sock.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(4))
        fds = _fds(ancdata)
        if not data:
            return 0  # the starter is gone or stopped us
        if lazy:
            lazy = False
            _preload(preload)
        try:
            request = json.loads(data)
            target = request["target"]
            if target not in targets:
                raise ValueError(f"{target} is not one of the zygote's targets")
            if len(fds) != 1:
                raise ValueError("a spawn request carries one socket")
            pid = os.fork()
        except (ValueError, KeyError, TypeError, OSError) as exc:
            for fd in fds:
                os.close(fd)
            sock.sendmsg([json.dumps({"error": str(exc)}).encode()])
            continue
        if pid == 0:
            code = 1
            try:
                sock.close()
                code = _child(target, fds[0], request.get("args") or [],
                              request.get("name"), starter)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                log.exception("zygote child %s failed", target)
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        os.close(fds[0])
        try:
            pidfd = os.pidfd_open(pid)
        except OSError as exc:
            sock.sendmsg([json.dumps({"error": f"pidfd_open: {exc}"}).encode()])
            continue
        try:
            sock.sendmsg([json.dumps({"pid": pid}).encode()],
                         [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [pidfd]))])
        finally:
            os.close(pidfd)


def _preload(modules: list[str]) -> None:
    """Import `modules`, then freeze what is alive: the children share those pages, and
    no collection (here or in a child) walks and so writes to them again."""
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:  # a child that needs it reports it
            log.warning("zygote: %s not preloaded: %s", module, exc)
    gc.collect()
    gc.freeze()


def _child(target: str, fd: int, args: list[Any], name: str | None, starter: int) -> int:
    """A child of the zygote, from fork to its target's return."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    die_with(starter)
    if name:
        set_name(name)
    module, _, function = target.partition(":")
    entry: Callable[..., Any] = getattr(importlib.import_module(module), function)
    result = entry(socket.socket(fileno=fd), *args)
    return result if isinstance(result, int) else 0

