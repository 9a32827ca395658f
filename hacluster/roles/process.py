"""A role's process as the supervisor keeps it: fork, channel, heartbeat, restart, stop.

`RoleProcess` is what the VRRP and balancer roles share: it forks the child with a
socketpair (after `gc.freeze()`, so what the supervisor built stays shared), opens the
`roles.channel` to it, restarts it with backoff when it dies (logged and counted by the
role's `on_restart`), heartbeats it, and stops it. Each role says what its child runs,
how it is started again, how often it is heartbeaten and what a heartbeat means to it.
`begin_child` is the child's first step. Imports nothing the VRRP role's fork, made
first thing in `hacluster run`, would not have imported anyway (asyncio comes later).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from healthchecks.pdeath import die_with_parent, set_name

if TYPE_CHECKING:
    import asyncio

    from hacluster.roles.channel import Channel

log = logging.getLogger("hacluster.roles")

#: Restart backoff: first delay, factor, cap (seconds).
BACKOFF = (0.5, 2.0, 30.0)
#: A role that ran this long before dying starts the backoff again from the first delay.
STABLE = 60.0


def begin_child(parent: int, name: str) -> None:
    """The forked child's first step: die with `parent`, be called `name`, keep systemd
    for the supervisor, and drop the parent's running loop and its wakeup fd."""
    die_with_parent(parent)
    set_name(name)
    for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        os.environ.pop(key, None)  # systemd hears from the supervisor only
    import asyncio

    # Forked from a running loop (a restart): none of its state is ours.
    asyncio.events._set_running_loop(None)
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)


class RoleProcess:
    """The supervisor's handle on one role's process (see the module's docstring).

    `label` names it in the log ("the balancer"); a subclass supplies `_restarted` (fork
    again, connect, wait until ready; False ends the supervision) and `_beat` (one
    heartbeat)."""

    label = "the role"

    def __init__(self, on_restart: Callable[[], None] | None = None,
                 on_event: Callable[[str, tuple[Any, ...]], None] | None = None) -> None:
        self.on_restart = on_restart
        self.on_event = on_event
        self.pid: int | None = None
        self.restarts = 0
        self._sock: socket.socket | None = None
        self._channel: Channel | None = None
        self._stopping = False
        self._started_at = 0.0
        self._last_answer = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready_event: asyncio.Event | None = None  # made on the loop (fork has none)

    @property
    def _ready(self) -> asyncio.Event:
        if self._ready_event is None:
            import asyncio

            self._ready_event = asyncio.Event()
        return self._ready_event

    # -- lifecycle -------------------------------------------------------------------

    def _fork(self, child: Callable[[socket.socket, int], int]) -> None:
        """Fork a process that runs `child(its end of the socketpair, our pid)` and exits
        with what it returns."""
        ours, theirs = socket.socketpair()
        gc.collect()
        # Frozen already (settled after start-up, healthchecks.gcsettle): stays frozen.
        settled = gc.get_freeze_count() > 0
        gc.freeze()  # what the parent has built stays shared with the child's pages
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child
            ours.close()
            code = 1
            try:
                code = child(theirs, parent)
            finally:
                os._exit(code)
        if not settled:
            gc.unfreeze()
        theirs.close()
        self.pid = pid
        self._sock = ours
        self._started_at = time.monotonic()

    def wait_heard(self, timeout: float) -> bool:
        """Block until the child has said something on its channel (which stays unread),
        at most `timeout` seconds; False if it has not."""
        if self._sock is None:
            return False
        import select

        readable, _, _ = select.select([self._sock], [], [], timeout)
        return bool(readable)

    def _supervise_from_now(self) -> None:
        """Start restarting the process when it dies, and heartbeating it."""
        import asyncio

        for task in (self._supervise(), self._heartbeat()):
            t = asyncio.get_running_loop().create_task(task)
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)

    async def _connect(self) -> None:
        import asyncio

        from hacluster.roles.channel import Channel

        assert self._sock is not None
        reader, writer = await asyncio.open_unix_connection(sock=self._sock)
        self._channel = Channel(reader, writer, self._event)

    def _event(self, kind: str, args: tuple[Any, ...]) -> None:
        if self.on_event is not None:
            self.on_event(kind, args)

    async def _stop(self, *args: Any, timeout: float) -> None:
        """Ask the process to stop (`stop` with `args`) and wait for it to exit; killed
        when it has not within `timeout`."""
        import asyncio

        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        channel = self._channel
        if channel is not None:
            with contextlib.suppress(Exception):
                await channel.call("stop", *args, timeout=5)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await channel.closed.wait()
            await channel.close()
        if self.pid is not None and not self._reap(block=False):
            self._kill()
            self._reap(block=True)

    def _kill(self, sig: int = signal.SIGKILL) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def _reap(self, *, block: bool) -> bool:
        """Collect the child's exit; True once it is gone."""
        if self.pid is None:
            return True
        try:
            pid, _ = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            pid = self.pid
        if pid == 0:
            return False
        self.pid = None
        return True

    # -- supervision -------------------------------------------------------------------

    async def _supervise(self) -> None:
        import asyncio

        delay = BACKOFF[0]
        while not self._stopping:
            assert self._channel is not None
            await self._channel.closed.wait()
            if self._stopping:
                return
            self._ready.clear()
            ran = time.monotonic() - self._started_at
            for _ in range(50):  # the process follows its channel within moments
                if self._reap(block=False):
                    break
                await asyncio.sleep(0.02)
            else:
                if self.pid is not None:
                    self._kill()
                    self._reap(block=True)
            if ran > STABLE:
                delay = BACKOFF[0]
            self.restarts += 1
            log.error("%s exited after %.1f s; starting it again in %.1f s (restart %d)",
                      self.label, ran, delay, self.restarts)
            if self.on_restart is not None:
                self.on_restart()
            await asyncio.sleep(delay)
            delay = min(delay * BACKOFF[1], BACKOFF[2])
            if self._stopping:
                return
            await self._channel.close()
            if not await self._restarted():
                return

    async def _restarted(self) -> bool:
        """Fork the process again and wait until it is ready; False: supervise no more."""
        raise NotImplementedError

    async def _heartbeat(self) -> None:
        import asyncio

        while not self._stopping:
            await asyncio.sleep(self._heartbeat_period())
            await self._beat()

    def _heartbeat_period(self) -> float:
        """Seconds between two heartbeats (the role's own module says)."""
        raise NotImplementedError

    async def _beat(self) -> None:
        """One heartbeat, every `_heartbeat_period()` seconds."""
        raise NotImplementedError

    def answering(self, within: float) -> bool:
        """Whether the role answered a heartbeat in the last `within` seconds."""
        return time.monotonic() - self._last_answer <= within
