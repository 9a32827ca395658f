"""Many sockets watched edge-triggered on one private epoll set, each with a deadline.

The HTTP checkers' sockets are not registered with the loop one by one: each costs the
loop several Python objects and dict operations per registration, and a check is over in
a few round trips. One epoll set, watched by the loop as a single reader, costs one
``epoll_ctl`` per connection (edge-triggered, so it is never modified) and the kernel drops
the entry when the socket is closed. Deadlines wait in one FIFO per timeout value under one
loop timer, as in ``tcp.py``: the loop's clock only moves forward, so each FIFO is already
in deadline order.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import select
import weakref
from collections import deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

_BATCH = 1024
_EXPIRY_TICK = 0.005
#: Readable, writable (the connect completing), peer hang-up; edge-triggered.
EDGE = select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLET


class Watcher(Protocol):
    """What the reactor calls: ``on_event(mask)`` on readiness, ``expired()`` at the deadline."""

    deadline: float

    def on_event(self, mask: int) -> None: ...

    def expired(self) -> None: ...


class Reactor:
    """One loop's epoll set for the HTTP checkers (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # A weak reference: the loop keys the reactor in a WeakKeyDictionary.
        self.loop = weakref.ref(loop)
        self._epoll = select.epoll()
        self._register = self._epoll.register
        self._waiting: dict[int, Watcher] = {}
        self._deadlines: dict[float, tuple[deque[float], deque[int]]] = {}
        self._timer_at = math.inf
        loop.add_reader(self._epoll.fileno(), self._ready)

    def watch(self, fd: int, watcher: Watcher, timeout: float, now: float) -> None:
        """Report ``fd``'s readiness to ``watcher`` until ``forget``, deadline now + timeout."""
        self._register(fd, EDGE)
        self._waiting[fd] = watcher
        fifo = self._deadlines.get(timeout)
        if fifo is None:
            fifo = self._deadlines[timeout] = (deque(), deque())
        watcher.deadline = deadline = now + timeout
        fifo[0].append(deadline)
        fifo[1].append(fd)
        if deadline < self._timer_at:
            self._arm(deadline)

    def forget(self, fd: int) -> None:
        """Stop reporting ``fd``; the caller closes it next (which drops it from the set)."""
        self._waiting.pop(fd, None)

    def _ready(self) -> None:
        # Every ready watcher is looked up before any runs: a callback may close its
        # socket and open another with the same fd number, and an event later in this
        # batch must not be taken for the new one's.
        get = self._waiting.get
        ready: list[tuple[Watcher | None, int]] = []
        while True:
            events = self._epoll.poll(0, _BATCH)
            ready.extend([(get(fd), mask) for fd, mask in events])
            if len(events) < _BATCH:
                break
        for watcher, mask in ready:
            if watcher is not None:
                watcher.on_event(mask)

    def _arm(self, when: float) -> None:
        loop = self.loop()
        if loop is not None:
            self._timer_at = when
            loop.call_at(when, self._expire, when)

    def _expire(self, when: float) -> None:
        loop = self.loop()
        if loop is None or when != self._timer_at:
            return  # superseded by an earlier timer
        now = loop.time() + 1e-6
        self._ready()  # what arrived in time is not a timeout
        earliest = math.inf
        waiting = self._waiting
        # A copy: a watcher's end may start a check with a timeout not seen before.
        for deadlines, fds in list(self._deadlines.values()):
            while deadlines and deadlines[0] <= now:
                deadline = deadlines.popleft()
                watcher = waiting.get(fds.popleft())
                # Not waiting: finished. Another deadline: a later watcher on that fd number.
                if watcher is not None and watcher.deadline == deadline:
                    watcher.expired()
            if deadlines and deadlines[0] < earliest:
                earliest = deadlines[0]
        self._timer_at = math.inf
        if earliest < math.inf:
            # A timeout told a few ms late is fine; waking for each deadline is not.
            self._arm(max(earliest, now + _EXPIRY_TICK))

    def close(self) -> None:
        loop = self.loop()
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(Exception):
                loop.remove_reader(self._epoll.fileno())
        self._epoll.close()
        self._waiting.clear()


class LoopBound(Protocol):
    """An object tied to one event loop (held weakly) that closes with it."""

    @property
    def loop(self) -> Callable[[], asyncio.AbstractEventLoop | None]: ...

    def close(self) -> None: ...


_T = TypeVar("_T", bound=LoopBound)


class PerLoop(Generic[_T]):
    """One `make(loop)` object per event loop (closed with its loop); the one most
    recently used is kept at hand, which saves a dictionary lookup per check."""

    __slots__ = ("_last", "_make", "_objects")

    def __init__(self, make: Callable[[asyncio.AbstractEventLoop], _T]) -> None:
        self._make = make
        self._objects: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _T] = (
            weakref.WeakKeyDictionary()
        )
        self._last: _T | None = None  # holds its loop only weakly, as the objects do

    def get(self, loop: asyncio.AbstractEventLoop) -> _T:
        last = self._last
        if last is not None and last.loop() is loop:
            return last
        obj = self._objects.get(loop)
        if obj is None:
            obj = self._objects[loop] = self._make(loop)
            weakref.finalize(loop, obj.close)  # its epoll fd goes with the loop
        self._last = obj
        return obj


reactor_for = PerLoop(Reactor).get
