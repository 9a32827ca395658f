"""vrrp_track_process counting: which processes match, how many run, quorum up or down. Does no I/O.

keepalived's model (keepalived.conf(5), vrrp_track_process): a tracked process is up
while ``quorum <= count <= quorum_max`` processes match. It is fed process events
(exec, fork, comm change, exit) as the kernel's process-events connector reports them,
or a whole fresh table from a /proc scan, each with the time:

- a process matches by its name (``/proc/PID/comm``, as ``pgrep -x``), or with
  parameters, ``param_match`` or ``full_command`` by its command line: argv[0] exactly,
  then the parameters (exact, partial: the given ones first, initial: the last given
  one may be the start of a longer one);
- a forked child of a counted process counts at once, like its parent (it has its
  parent's name until it execs); a child of an uncounted one is ignored until it execs
  or renames itself;
- a quorum gained by a fork takes effect after ``fork_delay``, one lost by an exit after
  ``terminate_delay`` (a restart inside the delay changes nothing); a quorum gained or
  lost by an exec or a rename takes effect at once.

`ProcessCounter` returns `{name: up}` for every change and says when it next wants
`tick(now)` (`next_deadline()`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

from hacluster.config.model import VrrpTrackProcess

Cause: TypeAlias = Literal["exec", "fork", "exit", "scan"]


@dataclass(frozen=True, slots=True)
class ProcInfo:
    """What one process looks like: its name and, when read, its command line."""

    pid: int
    comm: str
    argv: tuple[str, ...] | None = None  # None: not read (no spec needs it) or unreadable


def matches(spec: VrrpTrackProcess, comm: str, argv: tuple[str, ...] | None) -> bool:
    """Whether a process with `comm` / `argv` is one that `spec` counts."""
    if not spec.uses_cmdline:
        return comm == spec.process.argv[0]
    if not argv or argv[0] != spec.process.argv[0]:
        return False
    want, have = spec.params, argv[1:]
    match spec.match:
        case "none":
            return True
        case "exact":
            return have == want
        case "partial":
            return have[: len(want)] == want
        case "initial":
            if not want:
                return True
            n = len(want)
            return (len(have) >= n and have[: n - 1] == want[: n - 1]
                    and have[n - 1].startswith(want[-1]))
    return False  # pragma: no cover


class _Tracked:
    """One vrrp_track_process: its count, its reported state and its pending timer."""

    __slots__ = ("count", "due", "spec", "up")

    def __init__(self, spec: VrrpTrackProcess) -> None:
        self.spec = spec
        self.count = 0
        self.up: bool | None = None  # None: not decided yet
        self.due: float | None = None  # a delayed change is pending until then

    def quorum_ok(self) -> bool:
        hi = self.spec.quorum_max if self.spec.quorum_max is not None else math.inf
        return self.spec.quorum <= self.count <= hi

    def settle(self, cause: Cause, now: float) -> bool | None:
        """After the count changed: the new state when it changes now, else None."""
        ok = self.quorum_ok()
        if self.up is None or ok == self.up:
            self.due = None  # e.g. a restart inside terminate_delay: nothing happened
            if self.up is None:
                self.up = ok
                return ok
            return None
        delay = {"fork": self.spec.effective_fork_delay,
                 "exit": self.spec.effective_terminate_delay}.get(cause, 0.0)
        if cause == "scan":  # after lost events (keepalived re-reads and applies the delays)
            delay = self.spec.effective_fork_delay if ok else self.spec.effective_terminate_delay
        if delay > 0:
            if self.due is None:
                self.due = now + delay
            return None
        self.due = None
        self.up = ok
        return ok


class ProcessCounter:
    """Counts the processes of every vrrp_track_process. Does no I/O."""

    def __init__(self, specs: Mapping[str, VrrpTrackProcess]) -> None:
        self._tracked = {name: _Tracked(spec) for name, spec in specs.items()}
        self._members: dict[int, set[str]] = {}  # pid -> names it counts for

    # ------------------------------------------------------------------ what is needed

    @property
    def needs_cmdline(self) -> bool:
        """Whether processes must have their command line read (some spec uses it)."""
        return any(t.spec.uses_cmdline for t in self._tracked.values())

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._tracked)

    def state(self, name: str) -> bool | None:
        return self._tracked[name].up

    def count(self, name: str) -> int:
        return self._tracked[name].count

    def states(self) -> dict[str, bool]:
        return {n: t.up for n, t in self._tracked.items() if t.up is not None}

    # ------------------------------------------------------------------ inputs

    def scan(self, procs: Iterable[ProcInfo], now: float) -> dict[str, bool]:
        """A whole /proc table: the first one decides every state at once; later ones
        (after lost events, or when polling) count as the exits, execs and renames that
        lead from the table known to this one."""
        table = {p.pid: p for p in procs}
        first = all(t.up is None for t in self._tracked.values())
        changed: set[str] = set()
        for pid in [p for p in self._members if p not in table]:
            changed |= self._drop(pid)
        exits = set(changed)
        for pid, info in table.items():
            changed |= self._place(pid, info)
        out: dict[str, bool] = {}
        for name in sorted(changed | (set(self._tracked) if first else set())):
            cause: Cause = "exit" if name in exits and not first else "exec"
            result = self._tracked[name].settle(cause, now)
            if result is not None:
                out[name] = result
        return out

    def exec(self, info: ProcInfo, now: float) -> dict[str, bool]:
        """Process `info.pid` ran a new program (or was seen for the first time)."""
        return self._settle(self._place(info.pid, info), "exec", now)

    def comm(self, pid: int, comm: str, now: float) -> dict[str, bool]:
        """Process `pid` renamed itself (prctl PR_SET_NAME, /proc/PID/comm); the
        specs that match on the command line are not affected."""
        changed: set[str] = set()
        had = self._members.get(pid, set())
        for name, t in self._tracked.items():
            if t.spec.uses_cmdline:
                continue
            now_in = matches(t.spec, comm, None)
            if now_in != (name in had):
                changed.add(name)
                t.count += 1 if now_in else -1
                if now_in:
                    self._members.setdefault(pid, set()).add(name)
                else:
                    had.discard(name)
        if pid in self._members and not self._members[pid]:
            del self._members[pid]
        return self._settle(changed, "exec", now)

    def fork(self, parent: int, child: int, now: float) -> dict[str, bool]:
        """`parent` forked `child`: the child counts where its parent does."""
        names = self._members.get(parent)
        if not names or child in self._members:
            return {}
        self._members[child] = set(names)
        for name in names:
            self._tracked[name].count += 1
        return self._settle(set(names), "fork", now)

    def exit(self, pid: int, now: float) -> dict[str, bool]:
        return self._settle(self._drop(pid), "exit", now)

    # ------------------------------------------------------------------ timers

    def next_deadline(self) -> float | None:
        dues = [t.due for t in self._tracked.values() if t.due is not None]
        return min(dues) if dues else None

    def tick(self, now: float) -> dict[str, bool]:
        out: dict[str, bool] = {}
        for name, t in sorted(self._tracked.items()):
            if t.due is not None and t.due <= now:
                t.due = None
                ok = t.quorum_ok()
                if ok != t.up:
                    t.up = ok
                    out[name] = ok
        return out

    # ------------------------------------------------------------------ plumbing

    def _place(self, pid: int, info: ProcInfo) -> set[str]:
        """Recount `pid` as `info` says; the names whose count changed."""
        had = self._members.get(pid, set())
        now_in = {n for n, t in self._tracked.items() if matches(t.spec, info.comm, info.argv)}
        for name in had - now_in:
            self._tracked[name].count -= 1
        for name in now_in - had:
            self._tracked[name].count += 1
        if now_in:
            self._members[pid] = now_in
        else:
            self._members.pop(pid, None)
        return had ^ now_in

    def _drop(self, pid: int) -> set[str]:
        names = self._members.pop(pid, set())
        for name in names:
            self._tracked[name].count -= 1
        return names

    def _settle(self, names: set[str], cause: Cause, now: float) -> dict[str, bool]:
        out: dict[str, bool] = {}
        for name in sorted(names):
            result = self._tracked[name].settle(cause, now)
            if result is not None:
                out[name] = result
        return out
