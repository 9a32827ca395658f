"""Keep a check process's start-up objects out of the garbage collector's way.

A process that runs thousands of checks holds a few hundred thousand objects from
start-up (modules, the loop, the checks themselves) that live as long as it does. Each
full collection walks them all: tens of milliseconds in which no check starts, seen as a
spike in start lateness. Once start-up is over, ``settle()`` collects once, freezes what
is alive (``gc.freeze()``: later collections skip it) and raises the young generation's
threshold, so the rare collections left walk only what was made since.
"""

from __future__ import annotations

import asyncio
import gc

# Allocations (net of frees) of tracked objects between young collections; Python's
# default is 700. A check run frees nearly all it makes, so this bounds the few
# collections left rather than the memory held.
GEN0_THRESHOLD = 10_000


def settle(gen0: int = GEN0_THRESHOLD) -> None:
    """Collect, freeze what is alive now, and raise the young generation's threshold.

    Garbage still around is collected first, so no unreachable cycle is frozen for good.
    """
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(gen0, 1), gen1, gen2)


class SettleWhenQuiet:
    """Calls ``settle()`` once, when ``quiet`` seconds pass without a ``touch()``.

    A worker process is handed its checks one message at a time; start-up is over when
    they stop coming.
    """

    __slots__ = ("_done", "_handle", "_loop", "_quiet")

    def __init__(self, loop: asyncio.AbstractEventLoop, quiet: float = 0.5) -> None:
        self._loop = loop
        self._quiet = quiet
        self._handle: asyncio.TimerHandle | None = None
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    def touch(self) -> None:
        if self._done:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._loop.call_later(self._quiet, self._settle)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _settle(self) -> None:
        self._handle = None
        self._done = True
        settle()
