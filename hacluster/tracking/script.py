"""vrrp_scripts: rise/fall counting, preparing the scripts, and the tasks that run them.

Each script is prepared as its user, run on its interval by a task of its own, and its
results fed to the core.

A script counts as down after ``fall`` failures in a row and up after ``rise``
successes; its first result decides at once (``init_fail`` starts it down).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from hacluster import scripts
from hacluster.config.model import Config, VrrpScript
from hacluster.tracking.events import TrackChange

if TYPE_CHECKING:
    from hacluster.tracking.core import TrackingCore

log = logging.getLogger("hacluster.tracking")

class RiseFall:
    """Rise/fall counting for one script. Does no I/O.

    The first result decides at once; after that, ``fall`` failures in a row take it
    down and ``rise`` successes in a row bring it up.
    """

    __slots__ = ("_count", "_decided", "changed_at", "fall", "rise", "up")

    def __init__(self, rise: int = 1, fall: int = 1, *, up: bool = True) -> None:
        if rise < 1 or fall < 1:
            raise ValueError("rise and fall must be at least 1")
        self.rise = rise
        self.fall = fall
        self.up = up
        self._decided = False
        self._count = 0
        self.changed_at: float | None = None

    @property
    def decided(self) -> bool:
        return self._decided

    def observe(self, ok: bool, now: float) -> bool | None:
        """Take one result; return the new state when it changed, else None."""
        if not self._decided:
            self._decided = True
            self._count = 0
            if ok != self.up:
                self.up = ok
                self.changed_at = now
                return ok
            return None
        if ok == self.up:
            self._count = 0
            return None
        self._count += 1
        if self._count >= (self.rise if ok else self.fall):
            self.up = ok
            self._count = 0
            self.changed_at = now
            return ok
        return None

    def retune(self, rise: int, fall: int) -> None:
        """New rise/fall (on reload); the state is kept, a partial count restarts."""
        if (rise, fall) != (self.rise, self.fall):
            self.rise, self.fall, self._count = rise, fall, 0



def prepare_scripts(config: Config, names: Iterable[str]) -> dict[str, scripts.Script]:
    """Prepare the named vrrp_scripts, each as its user (and group), else as
    global_defs.script_user; one ScriptError lists every problem (a ScriptSecurityError
    when script security refused any)."""
    g = config.global_defs
    prepared: dict[str, scripts.Script] = {}
    problems = scripts.ScriptProblems()
    for name in sorted(names):
        vs, where = config.vrrp_scripts[name], f"vrrp_scripts.{name}"
        user, group = (vs.user, vs.group) if vs.user is not None else (g.script_user, None)
        try:
            if user is not None:  # an unknown name is reported against its key
                key = f"{where}.user" if vs.user is not None else "global_defs.script_user"
                scripts.resolve_named(user, group, key, f"{where}.group")
            prepared[name] = scripts.prepare(
                vs.script.argv, user=user, group=group,
                security=g.enable_script_security, what=where,
            )
        except scripts.ScriptError as exc:
            problems.add(exc)
    problems.raise_any()
    return prepared


class TrackedScripts:
    """The running vrrp_scripts of a `Tracking`: one task a script, kept across reloads
    while the script's settings and prepared form stay the same."""

    def __init__(
        self,
        core: TrackingCore,
        emit: Callable[[Iterable[TrackChange]], None],
        config: Callable[[], Config],
        prepared: dict[str, scripts.Script],
    ) -> None:
        self._core = core
        self._emit = emit
        self._config = config
        #: Every tracked script as it runs (`prepare_scripts`); a reload sets it anew.
        self.prepared = prepared
        self._tasks: dict[str, tuple[VrrpScript, scripts.Script, asyncio.Task[None]]] = {}
        self._first_done: dict[str, asyncio.Event] = {}
        self._retired: set[asyncio.Task[None]] = set()

    async def wait_first(self) -> None:
        """Wait until every script has run once (no longer than the longest one may take)."""
        if not self._first_done:
            return
        config = self._config()
        longest = max(config.vrrp_scripts[n].effective_timeout for n in self._first_done)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(longest + scripts.KILL_GRACE + 1.0):
                await asyncio.gather(*(e.wait() for e in self._first_done.values()))

    def detach(self) -> list[asyncio.Task[None]]:
        """The script tasks (running and retired), forgotten here: the caller cancels them."""
        tasks = [t for _, _, t in self._tasks.values()] + list(self._retired)
        self._tasks.clear()
        self._first_done.clear()
        return tasks

    def sync(self) -> None:
        """Start the scripts the core tracks; stop those it no longer does or that changed."""
        config = self._config()
        wanted = self._core.names("script")
        for name in list(self._tasks):
            params, script, task = self._tasks[name]
            if (
                name not in wanted
                or config.vrrp_scripts[name] != params
                or self.prepared[name] != script  # e.g. a new script_user
            ):
                task.cancel()
                self._retired.add(task)
                task.add_done_callback(self._retired.discard)
                del self._tasks[name]
                self._first_done.pop(name, None)
        for name in sorted(wanted):
            if name in self._tasks:
                continue
            params = config.vrrp_scripts[name]
            done = asyncio.Event()
            self._first_done[name] = done
            script = self.prepared[name]
            task = asyncio.create_task(
                self._loop(name, script, params, done), name=f"vrrp_script-{name}"
            )
            self._tasks[name] = (params, script, task)

    async def _loop(
        self, name: str, script: scripts.Script, params: VrrpScript, first: asyncio.Event
    ) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            result = await scripts.run(script, timeout=params.effective_timeout)
            now = loop.time()
            if not result.ok:
                log.debug("vrrp_script %s: %s", name, result.describe())
            self._emit(self._core.script_result(name, result.ok, now,
                                                None if result.ok else result.describe()))
            first.set()
            due += params.interval
            if due < now:  # the script overran: skip the slots it missed, keep the phase
                due += params.interval * (int((now - due) / params.interval) + 1)
            await asyncio.sleep(due - now)
