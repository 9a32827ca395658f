"""A small parent that forks worker processes on request, so that they share its pages.

Every check worker needs the same modules (asyncio, ssl, httptools, this package): a
worker started by exec imports them all again, and its pages are its own. A `Zygote` is
a process started early (forked while its starter is still small and has one thread,
else exec'ed) that imports those modules once, collects and freezes what is alive
(``gc.freeze()``: no collection touches those objects again, so their pages stay shared
with the children), and then forks a child for each request. A child shares the
imported pages with the zygote and its siblings until it writes to them.

The spawn API::

    zygote = Zygote(preload=PRELOAD, targets=(WORKER,))
    zygote.start()                                  # early: fork, else exec
    ours, theirs = socket.socketpair()
    child = await zygote.spawn_async(WORKER, theirs, ["asyncio"], name="hc-check-worker")
    theirs.close()                                  # the child has its own copy
    ...; child.kill(); await child.wait(); child.close()

A request names a target from the zygote's list (``"package.module:function"``, called
in the child as ``function(sock, *args)``, its return value the exit status), plain
arguments (JSON: never pickles), and carries two descriptors with SCM_RIGHTS: the
socket the child is given and a pidfd of the process asking. The answer is the child's
pid and a pidfd for it (race-free: the child waits at a pipe until the zygote has opened
it, so even a child that exits at once cannot be reaped first).
`spawn` is the blocking form (before an event loop runs).

Requests come over a connection to a listening socket with an abstract name of the
starter's (`current()` in a process forked from the starter finds the same handle), so
a process forked from the starter after the zygote, such as a role process, can ask
too. The zygote answers only processes of its own user that descend from its starter.

A child dies with the process that asked for it (not with the zygote): it watches that
process's pidfd from a thread and sends itself SIGTERM when it exits, as
PR_SET_PDEATHSIG would (`healthchecks.pdeath.die_with`); PR_SET_PDEATHSIG itself would
tie it to the zygote. The zygote has PR_SET_PDEATHSIG (its starter) and the kernel
reaps its children (SIGCHLD ignored there). A killed zygote is started again by its
starter (`ensure()`, or `watch()` on a running loop; logged and counted in
`restarts`) while its children keep running.
"""

from __future__ import annotations

import array
import contextlib
import errno
import gc
import importlib
import logging
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from healthchecks.pdeath import die_with, die_with_parent, set_name

# asyncio only where a loop runs: `hacluster run` starts the zygote before it loads its
# file, and importing asyncio then would delay the VRRP role's release by ~25 ms of CPU.
if TYPE_CHECKING:
    import asyncio
    import subprocess

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
#: Seconds between two restarts of a zygote that keeps dying.
RESTART_DELAY = 1.0
#: Seconds `spawn_async` keeps trying a zygote that does not answer (being restarted).
RECONNECT = 2.0
#: Seconds a restarted zygote's name may still be held by the dead one's socket.
BIND_RETRY = 1.0
_CRED = struct.Struct("3i")  # struct ucred: pid, uid, gid

_current: Zygote | None = None


def current() -> Zygote | None:
    """The zygote started by this process or by the process it was forked from."""
    return _current


class ZygoteError(RuntimeError):
    """The zygote could not start a child (refused target, zygote gone)."""


class ZygoteNotAnswering(ZygoteError):
    """Nothing listens at the zygote's name (it died, and may be being started again)."""


class Child:
    """A process the zygote forked: its pid and a pidfd (which outlives a reused pid)."""

    __slots__ = ("_pidfd", "pid")

    def __init__(self, pid: int, pidfd: int) -> None:
        self.pid = pid
        self._pidfd = pidfd

    @property
    def running(self) -> bool:
        return self._pidfd >= 0 and not _readable(self._pidfd)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self._pidfd >= 0:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, sig)

    async def wait(self) -> None:
        """Until the process has exited."""
        import asyncio

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
    """The handle: start the zygote, ask it for children, start it again if it died.

    ``preload``: modules the zygote imports before it serves; ``targets``: the only
    entry points it runs (``"module:function"``); with ``lazy`` it imports them on its
    first request rather than at once (a program that may never ask, or must not be
    slowed while it starts); ``on_restart`` is called each time a dead zygote is started
    again. Only the process that started the zygote starts it again; another process
    holding the handle (forked from it) asks whichever zygote runs.
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
        self.targets = tuple(targets)
        self.name = name
        self.lazy = lazy
        self.on_restart = on_restart
        self.restarts = 0
        self._address = ""
        self._owner: int | None = None  # the process that started it (and restarts it)
        self._control: socket.socket | None = None  # closed by the owner: stop
        self._pid: int | None = None
        self._pidfd = -1  # the zygote's, for processes that are not its parent
        self._popen: subprocess.Popen[bytes] | None = None
        self._restarted_at = -1e9

    @property
    def pid(self) -> int | None:
        return self._pid

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start the zygote: forked when this process has one thread and no running
        loop (early start-up: its few pages are shared), else exec'ed."""
        global _current
        if self._control is not None:
            raise RuntimeError("the zygote is already started")
        if not self._address:
            self._address = f"\0hacluster-zygote-{os.getpid()}-{os.urandom(8).hex()}"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            _bind(listener, self._address)
            listener.listen(64)
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        except BaseException:
            listener.close()
            raise
        parent = os.getpid()
        settings = [parent, self.name, list(self.preload), list(self.targets), self.lazy]
        try:
            if threading.active_count() == 1 and not _loop_running():
                # What this process has built stays frozen (its collections would
                # otherwise write to every object and copy the pages it shares with the
                # zygote), and the child's collections leave it alone too.
                gc.freeze()
                pid = os.fork()
                if pid == 0:
                    code = 1
                    try:
                        ours.close()
                        code = _serve(theirs, listener, parent, self.name,
                                      list(self.preload), list(self.targets), self.lazy)
                    finally:
                        os._exit(code)
                self._popen = None
            else:
                import json
                import subprocess

                self._popen = subprocess.Popen(
                    [sys.executable, "-c",
                     "import sys, socket; from healthchecks.zygote import serve; "
                     "sys.exit(serve(socket.socket(fileno=int(sys.argv[1])), "
                     "socket.socket(fileno=int(sys.argv[2])), sys.argv[3]))",
                     str(theirs.fileno()), str(listener.fileno()), json.dumps(settings)],
                    pass_fds=(theirs.fileno(), listener.fileno()), stdin=subprocess.DEVNULL,
                )
                pid = self._popen.pid
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
            listener.close()  # the zygote's alone: the name goes with it
        self._pid, self._owner, self._control = pid, parent, ours
        self._pidfd = os.pidfd_open(pid)
        _current = self

    def alive(self) -> bool:
        """Whether the zygote runs (its starter reaps a dead one here)."""
        if self._pid is None:
            return False
        if os.getpid() != self._owner:
            return self._pidfd >= 0 and not _readable(self._pidfd)
        if self._popen is not None:
            return self._popen.poll() is None
        try:
            return os.waitpid(self._pid, os.WNOHANG)[0] == 0
        except ChildProcessError:
            return False

    def ensure(self) -> bool:
        """In the starter: start the zygote again if it died; True if it did."""
        if self._control is None or os.getpid() != self._owner or self.alive():
            return False
        self.restarts += 1
        log.error("the zygote (pid %s) exited; starting it again (restart %d)",
                  self._pid, self.restarts)
        self._close()
        self.start()
        self._restarted_at = time.monotonic()
        if self.on_restart is not None:
            self.on_restart()
        return True

    async def watch(self) -> None:
        """Start the zygote again as soon as it dies (run as a task in the starter)."""
        import asyncio

        loop = asyncio.get_running_loop()
        while self._control is not None and os.getpid() == self._owner:
            died: asyncio.Future[None] = loop.create_future()
            fd = self._pidfd
            loop.add_reader(fd, _settle, died)
            try:
                await died
            finally:
                loop.remove_reader(fd)
            await asyncio.sleep(max(0.0, self._restarted_at + RESTART_DELAY - time.monotonic()))
            self.ensure()

    def stop(self) -> None:
        """Stop the zygote (its children are left alone: they die with their askers)."""
        global _current
        if _current is self:
            _current = None
        pid, pidfd = self._pid, self._pidfd
        if self._control is None or os.getpid() != self._owner or pid is None:
            return
        self._pidfd = -1  # kept until the zygote is gone, then closed here
        self._close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        try:
            if self._popen is not None:
                import subprocess

                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._popen.wait(5)
                self._popen.kill()
                self._popen.wait()
            else:
                if not select.select([pidfd], [], [], 5)[0]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
        finally:
            if pidfd >= 0:
                os.close(pidfd)
        self._pid = self._popen = None

    def _close(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1

    # -- requests --------------------------------------------------------------------

    def spawn(self, target: str, sock: socket.socket, args: Sequence[Any] = (), *,
              name: str | None = None, timeout: float = SPAWN_TIMEOUT) -> Child:
        """Fork a child running `target(sock, *args)` (blocking; restarts a dead zygote)."""
        conn = self._connect(target)
        with conn:
            conn.settimeout(timeout)
            try:
                self._send(conn, target, sock, args, name)
                return _answer(*conn.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(4)))
            except (TimeoutError, OSError) as exc:
                raise ZygoteError(f"the zygote did not start {target}: {exc}") from exc

    async def spawn_async(self, target: str, sock: socket.socket, args: Sequence[Any] = (),
                          *, name: str | None = None,
                          timeout: float = SPAWN_TIMEOUT) -> Child:
        """`spawn` without blocking the running loop."""
        import asyncio

        loop = asyncio.get_running_loop()
        deadline = loop.time() + RECONNECT
        while True:
            try:
                conn = self._connect(target)
                break
            except ZygoteNotAnswering:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.05)  # being started again by its starter
        with conn:
            conn.setblocking(False)
            self._send(conn, target, sock, args, name)
            answered: asyncio.Future[None] = loop.create_future()
            loop.add_reader(conn, _settle, answered)
            try:
                async with asyncio.timeout(timeout):
                    await answered
            except TimeoutError as exc:
                raise ZygoteError(f"the zygote did not start {target} in {timeout} s") from exc
            finally:
                loop.remove_reader(conn)
            try:
                return _answer(*conn.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(4)))
            except OSError as exc:
                raise ZygoteError(f"the zygote did not start {target}: {exc}") from exc

    def _connect(self, target: str) -> socket.socket:
        if target not in self.targets:
            raise ZygoteError(f"{target} is not one of the zygote's targets")
        if not self._address:
            raise ZygoteError("the zygote is not started")
        self.ensure()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            conn.connect(self._address)
        except OSError as exc:
            conn.close()
            raise ZygoteNotAnswering(f"the zygote does not answer: {exc}") from exc
        return conn

    @staticmethod
    def _send(conn: socket.socket, target: str, sock: socket.socket, args: Sequence[Any],
              name: str | None) -> None:
        import json

        body = json.dumps({"target": target, "args": list(args), "name": name}).encode()
        if len(body) > MAX_MESSAGE:
            raise ZygoteError("spawn request too long")
        me = os.pidfd_open(os.getpid())  # the child dies with the process asking
        try:
            conn.sendmsg([body], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                   array.array("i", [sock.fileno(), me]))])
        except OSError as exc:
            raise ZygoteError(f"the zygote is gone: {exc}") from exc
        finally:
            os.close(me)


def _answer(data: bytes, ancdata: list[tuple[int, int, bytes]], _flags: int,
            _addr: object) -> Child:
    import json

    fds = _fds(ancdata)
    if not data:
        _close_all(fds)
        raise ZygoteError("the zygote exited")
    answer = json.loads(data)
    if "error" in answer or len(fds) != 1:
        _close_all(fds)
        raise ZygoteError(str(answer.get("error", "no pidfd in the answer")))
    return Child(int(answer["pid"]), fds[0])


def _fds(ancdata: list[tuple[int, int, bytes]]) -> list[int]:
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(data) - len(data) % 4
            fds.extend(array.array("i", data[:usable]))
    return fds


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _bind(listener: socket.socket, address: str) -> None:
    """Bind the zygote's name; the name of one that just died can take the kernel a few
    milliseconds to let go of (seen right after the dead zygote was reaped)."""
    deadline = time.monotonic() + BIND_RETRY
    while True:
        try:
            listener.bind(address)
            return
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                raise
            time.sleep(0.002)


def _readable(fd: int) -> bool:
    ready, _, _ = select.select([fd], [], [], 0)
    return bool(ready)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _loop_running() -> bool:
    # (asyncio is imported only by a program that runs a loop: `hacluster run` starts
    # the zygote before it has, and before it has read its file)
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


# --------------------------------------------------------------------------- zygote side


def serve(control: socket.socket, listener: socket.socket, settings: str) -> int:
    """The exec'ed zygote's entry point (`settings`: JSON of `_serve`'s last arguments)."""
    import json

    return _serve(control, listener, *json.loads(settings))


def _serve(control: socket.socket, listener: socket.socket, parent: int, name: str,
           preload: list[str], targets: list[str], lazy: bool) -> int:
    """The zygote's process: import, freeze, then fork a child per request until the
    starter closes `control`."""
    die_with_parent(parent)
    set_name(name)
    # Only what the children need is inherited: not the starter's other descriptors
    # (sockets, files) a fork brought along. Their objects are never used here.
    gc.collect()
    keep = {control.fileno(), listener.fileno()}
    for entry in os.listdir("/proc/self/fd"):
        if int(entry) > 2 and int(entry) not in keep:
            with contextlib.suppress(OSError):
                os.close(int(entry))
    # Forked from a program that may have had a loop: none of its state is ours. (A
    # starter that has not imported asyncio had none: importing it here would only cost
    # ~20 ms of CPU while the starter and its VRRP role start.)
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None:
        asyncio.events._set_running_loop(None)
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)
    # A starter may hold signals blocked (until its handlers are in place): the zygote
    # and its children must not inherit that mask (SIGTERM stops a child).
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C is the starter's
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if not lazy:
        _preload(preload)
    while True:
        ready, _, _ = select.select([control, listener], [], [])
        if control in ready and not control.recv(1):
            return 0  # the starter stopped us (or is gone)
        if listener not in ready:
            continue
        conn, _ = listener.accept()
        with conn:
            pid, uid, _ = _CRED.unpack(
                conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size))
            if uid != os.geteuid() or not _descends(pid, parent):
                log.warning("zygote: refused a request from pid %d (uid %d)", pid, uid)
                continue
            if lazy:
                lazy = False
                _preload(preload)
            _answer_request(conn, control, listener, targets)


def _answer_request(conn: socket.socket, control: socket.socket, listener: socket.socket,
                    targets: list[str]) -> None:
    import json

    conn.settimeout(10)
    try:
        data, ancdata, _, _ = conn.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(8))
    except OSError:
        return
    fds = _fds(ancdata)
    try:
        request = json.loads(data)
        target = request["target"]
        if target not in targets:
            raise ValueError(f"{target} is not one of the zygote's targets")
        if len(fds) != 2:
            raise ValueError("a spawn request carries a socket and a pidfd")
        # The child waits at this gate until its pidfd is open: SIGCHLD is ignored here,
        # so a child that exited at once would be reaped before pidfd_open could name it.
        gate, release = os.pipe()
    except (ValueError, KeyError, TypeError, OSError) as exc:
        _close_all(fds)
        with contextlib.suppress(OSError):
            conn.sendmsg([json.dumps({"error": str(exc)}).encode()])
        return
    try:
        pid = os.fork()
    except OSError as exc:
        _close_all([*fds, gate, release])
        with contextlib.suppress(OSError):
            conn.sendmsg([json.dumps({"error": str(exc)}).encode()])
        return
    if pid == 0:
        code = 1
        try:
            for sock in (conn, control, listener):
                sock.close()
            os.close(release)
            opened = os.read(gate, 1)  # nothing: the zygote died before it had the pidfd
            os.close(gate)
            if opened:
                code = _child(target, fds[0], request.get("args") or [],
                              request.get("name"), fds[1])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            log.exception("zygote child %s failed", target)
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    _close_all([*fds, gate])
    try:
        pidfd = os.pidfd_open(pid)
    except OSError as exc:
        os.close(release)  # the gate stays shut: the child exits
        with contextlib.suppress(OSError):
            conn.sendmsg([json.dumps({"error": f"pidfd_open: {exc}"}).encode()])
        return
    with contextlib.suppress(OSError):  # (a child killed meanwhile: its pidfd tells)
        os.write(release, b"\1")
    os.close(release)
    try:
        conn.sendmsg([json.dumps({"pid": pid}).encode()],
                     [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [pidfd]))])
    except OSError:
        pass  # the asker went away: the child follows it
    finally:
        os.close(pidfd)


def _descends(pid: int, ancestor: int) -> bool:
    """Whether `pid` is `ancestor` or one of its descendants."""
    for _ in range(64):
        if pid == ancestor:
            return True
        if pid <= 1:
            return False
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False


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


def _child(target: str, fd: int, args: list[Any], name: str | None, asker: int) -> int:
    """A child of the zygote, from fork to its target's return."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    die_with(asker)
    if name:
        set_name(name)
    module, _, function = target.partition(":")
    entry: Callable[..., Any] = getattr(importlib.import_module(module), function)
    result = entry(socket.socket(fileno=fd), *args)
    return result if isinstance(result, int) else 0
