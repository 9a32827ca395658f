"""TCP_CHECK: up when a TCP connect to the real server completes within connect_timeout."""

from __future__ import annotations

import _socket
import asyncio
import contextlib
import ctypes
import errno
import math
import os
import select
import socket
import struct
import weakref
from collections import deque
from collections.abc import Callable

from healthchecks.base import Source, family_of
from healthchecks.params import TcpCheckParams
from healthchecks.reactor import PerLoop
from healthchecks.result import CheckResult, describe_error

# Closing with SO_LINGER 0 sends RST instead of FIN: the checker keeps no TIME_WAIT
# socket per check, so thousands of checks a second do not exhaust local ports.
_LINGER_RST = struct.pack("ii", 1, 0)
_IPPROTO_TCP = socket.IPPROTO_TCP
_TCP_QUICKACK = socket.TCP_QUICKACK
_UP = CheckResult.up("connected")
_BATCH = 4096
_EXPIRY_TICK = 0.005
_WATCH = select.EPOLLOUT | select.EPOLLONESHOT
_TROUBLE = select.EPOLLERR | select.EPOLLHUP
_STREAM_NONBLOCK = socket.SOCK_STREAM | socket.SOCK_NONBLOCK
# Spare sockets kept per family for the next checks (see _Poller.recycle).
_SPARE_MAX = 256
# connect(2) to an AF_UNSPEC address disconnects a TCP socket (RST for a connected one)
# and leaves it ready to connect again; Python's socket.connect cannot pass one.
_AF_UNSPEC_ADDR = ctypes.create_string_buffer(struct.pack("=H14x", socket.AF_UNSPEC), 16)
_libc: ctypes.CDLL | None = None


def _disconnect(fd: int) -> bool:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return int(_libc.connect(fd, _AF_UNSPEC_ADDR, 16)) == 0


class _Poller:
    """Waits for many connects on a private epoll set, watched by the loop as one fd.

    Registering each socket with the loop (add_writer/remove_writer) costs several
    Python objects and dict operations per check; a oneshot entry in our own epoll set
    costs one system call. Deadlines wait in one FIFO per timeout value under one
    timer: the loop's clock only moves forward, so each FIFO is already in deadline
    order and needs no heap. The FIFOs hold plain numbers (deadline, fd), not the
    attempts: a finished attempt is freed at once instead of living on to its deadline,
    which at thousands of checks a second would feed the garbage collector's oldest
    generation and bring long full collections.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # A weak reference: the loop keys the poller in a WeakKeyDictionary, and a
        # strong one back would keep every loop (and its file descriptors) alive.
        self.loop = weakref.ref(loop)
        self._epoll = select.epoll()
        self._in_set: set[int] = set()  # fds in the epoll set (armed or spent oneshots)
        self._spare: dict[int, list[_socket.socket]] = {}  # family -> disconnected sockets
        self._waiting: dict[int, _Attempt] = {}
        self._deadlines: dict[float, tuple[deque[float], deque[int]]] = {}
        # No TimerHandle is kept (it would hold the loop): a timer that was superseded
        # by an earlier one just finds nothing to do when it fires.
        self._timer_at = math.inf
        loop.add_reader(self._epoll.fileno(), self._ready)

    def take(self, family: int) -> _socket.socket | None:
        """A spare socket of `family`, ready to connect, or None."""
        spare = self._spare.get(family)
        return spare.pop() if spare else None

    def recycle(self, sock: _socket.socket) -> None:
        """A check connected: disconnect (RST, as a close with SO_LINGER 0 would send)
        and keep the socket for a later check. Creating and closing a socket per check
        costs a quarter of a TCP check's CPU; connect(AF_UNSPEC) makes it reusable."""
        spare = self._spare.setdefault(sock.family, [])
        if len(spare) < _SPARE_MAX and _disconnect(sock.fileno()):
            spare.append(sock)
        else:
            self.discard(sock)

    def discard(self, sock: _socket.socket) -> None:
        """Close a socket for good (the kernel drops it from the epoll set)."""
        self._in_set.discard(sock.fileno())
        sock.close()

    def watch(self, attempt: _Attempt, now: float) -> None:
        fd = attempt.fd
        if fd in self._in_set:
            try:
                self._epoll.modify(fd, _WATCH)  # a spare socket's spent oneshot entry
            except FileNotFoundError:
                self._epoll.register(fd, _WATCH)
        else:
            self._epoll.register(fd, _WATCH)
            self._in_set.add(fd)
        self._waiting[fd] = attempt
        timeout = attempt.timeout
        fifo = self._deadlines.get(timeout)
        if fifo is None:
            fifo = self._deadlines[timeout] = (deque(), deque())
        attempt.deadline = deadline = now + timeout
        fifo[0].append(deadline)
        fifo[1].append(attempt.fd)
        if deadline < self._timer_at:
            self._arm(deadline)

    def forget(self, attempt: _Attempt) -> None:
        if self._waiting.get(attempt.fd) is attempt:
            del self._waiting[attempt.fd]
            self._in_set.discard(attempt.fd)
            with contextlib.suppress(OSError):
                self._epoll.unregister(attempt.fd)

    def _ready(self) -> None:
        # Take every ready attempt out first, then run their callbacks: a callback may
        # close a socket and open another that gets the same fd number, and an event
        # later in this batch must not be taken for the new one's.
        pop = self._waiting.pop
        ready: list[tuple[_Attempt | None, int]] = []
        while True:
            # epoll hands out at most maxevents at a time: take everything that is
            # ready, or a connect that completed in time could be judged a timeout.
            events = self._epoll.poll(0, _BATCH)
            ready.extend([(pop(fd, None), mask) for fd, mask in events])
            if len(events) < _BATCH:
                break
        for attempt, mask in ready:
            if attempt is not None:
                attempt.writable(mask)

    def _arm(self, when: float) -> None:
        loop = self.loop()
        if loop is not None:
            self._timer_at = when
            loop.call_at(when, self._expire, when)

    def _expire(self, when: float) -> None:
        loop = self.loop()
        if loop is None or when != self._timer_at:
            return
        # The time is read before harvesting: handing out results can take a while on
        # a busy loop, and only what was overdue before the harvest may expire.
        now = loop.time() + 1e-6
        self._ready()  # a connect that finished in time is not a timeout
        earliest = math.inf
        waiting = self._waiting
        for deadlines, fds in self._deadlines.values():
            while deadlines and deadlines[0] <= now:
                deadline = deadlines.popleft()
                attempt = waiting.get(fds.popleft())
                # Not waiting: finished or abandoned. Waiting with another deadline: a
                # later attempt that was given the same fd number.
                if attempt is not None and attempt.deadline == deadline:
                    self.forget(attempt)
                    attempt.expired()
            if deadlines and deadlines[0] < earliest:
                earliest = deadlines[0]
        self._timer_at = math.inf
        if earliest < math.inf:
            # Deadlines come as densely as checks start; waking for each would cost a
            # timer and an epoll round per check. A timeout told a few ms late is fine.
            self._arm(max(earliest, now + _EXPIRY_TICK))

    def close(self) -> None:
        loop = self.loop()
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(Exception):
                loop.remove_reader(self._epoll.fileno())
        self._epoll.close()
        for spare in self._spare.values():
            for sock in spare:
                sock.close()
        self._spare.clear()
        self._in_set.clear()


_poller = PerLoop(_Poller).get


class _Attempt:
    """One non-blocking connect in flight."""

    __slots__ = ("deadline", "done", "fd", "on_done", "poller", "reuse", "sock", "timeout")

    def __init__(
        self,
        poller: _Poller,
        sock: _socket.socket,
        timeout: float,
        on_done: Callable[[CheckResult], None],
        reuse: bool,
    ) -> None:
        self.poller = poller
        self.sock = sock
        self.reuse = reuse  # no source binding: the socket may serve the next check
        self.fd = sock.fileno()
        self.timeout = timeout
        self.on_done = on_done
        self.done = False
        self.deadline = math.inf

    def _finish(self, connected: bool = False) -> Callable[[CheckResult], None]:
        # Whoever still holds the attempt (an abandon function) must not keep the
        # callback alive, and whatever it holds: a future and so the loop.
        self.done = True
        if connected and self.reuse:
            self.poller.recycle(self.sock)
        else:  # a failed or abandoned connect: its socket is not trusted again
            self.poller.discard(self.sock)
        on_done, self.on_done = self.on_done, _ignore
        return on_done

    def writable(self, mask: int) -> None:
        if not self.done:
            if mask & _TROUBLE:
                # Only an error or hang-up needs the system call that names the error.
                try:
                    err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                except OSError as exc:
                    err = exc.errno or errno.EIO
                self._finish()(_UP if err == 0 else _failure(err))
            else:
                self._finish(connected=True)(_UP)

    def expired(self) -> None:
        if not self.done:
            self._finish()(CheckResult.down(f"timeout after {self.timeout:g}s"))

    def cancel(self) -> None:
        if not self.done:
            self.poller.forget(self)
            self._finish()


def _ignore(result: CheckResult) -> None:
    return None


def _failure(err: int) -> CheckResult:
    return CheckResult.down(describe_error(OSError(err, os.strerror(err))))


class TcpCheck:
    # The connect runs on callbacks (connect_ex, one epoll entry, a shared deadline
    # timer) with no coroutine or task of its own; ``launch`` lets the runner use it so.
    __slots__ = ("_addr", "_family", "_half_open", "_source", "_timeout", "params")

    def __init__(self, params: TcpCheckParams) -> None:
        self.params = params
        self._family = family_of(params.connect_ip)
        self._addr = (params.connect_ip, params.connect_port)
        self._timeout = params.connect_timeout
        self._half_open = not params.complete_handshake
        source = params.source
        self._source = source if source != Source() else None

    @property
    def kind(self) -> str:
        return "TCP_CHECK"

    @property
    def timeout(self) -> float:
        return self.params.connect_timeout

    def launch(self, on_done: Callable[[CheckResult], None]) -> Callable[[], None]:
        """Start a check on the running loop; ``on_done`` gets the result later (never now).

        Returns a function that abandons the check (``on_done`` is then not called).
        """
        return self.launch_on(asyncio.get_running_loop(), on_done)

    def launch_on(
        self, loop: asyncio.AbstractEventLoop, on_done: Callable[[CheckResult], None]
    ) -> Callable[[], None]:
        """``launch`` on a loop the caller names: it must be the running one.

        A caller that already holds the loop (the runner) saves the lookup, which on
        Python 3.11 costs a getpid() system call per check.
        """
        sock: _socket.socket | None = None
        poller = _poller(loop)
        source = self._source
        reuse = source is None
        try:
            if source is None:
                sock = poller.take(self._family)
                if sock is None:
                    # The C socket type: socket.socket adds Python-level construction
                    # and close bookkeeping that a connect-and-close check never uses.
                    sock = _socket.socket(self._family, _STREAM_NONBLOCK)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            else:
                sock = source.open(self._family, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            if self._half_open:
                # Delayed ACK from the start: the handshake's last ACK is never sent, as
                # the socket is reset once the server's SYN-ACK is in. The server only
                # answers a SYN and drops a request from its SYN queue: no connection is
                # made, queued, accepted and torn down (HAProxy's TCP checks do the
                # same), which halves the kernel's work per check. A disconnect clears
                # the setting, so it is made for every connect.
                sock.setsockopt(_IPPROTO_TCP, _TCP_QUICKACK, 0)
            err = sock.connect_ex(self._addr)
            if err == errno.EINPROGRESS:
                attempt = _Attempt(poller, sock, self._timeout, on_done, reuse)
                poller.watch(attempt, loop.time())
                return attempt.cancel
            result = _UP if err == 0 else _failure(err)
        except OSError as exc:
            result = CheckResult.down(describe_error(exc))
        if sock is not None:
            poller.discard(sock)
        handle = loop.call_soon(on_done, result)
        return handle.cancel

    async def check(self) -> CheckResult:
        fut: asyncio.Future[CheckResult] = asyncio.get_running_loop().create_future()

        def done(result: CheckResult) -> None:
            if not fut.done():
                fut.set_result(result)

        abandon = self.launch(done)
        try:
            return await fut
        finally:
            abandon()  # a no-op once finished; on cancellation it closes the socket

    async def close(self) -> None:
        return None
