"""Reload plan for the health checks, pure: per real server, checks kept, started, stopped.

Which checks of each real server are kept, started and stopped, and the state new ones
start in. Does no I/O.

Checks have no name: a check is the same one when its runnable form
(`hacluster.config.lower.CheckPlan`) is equal, and equal ones pair up one to one in
order. A kept check keeps running as it is (its health, timers, rise/fall counts, and
the worker process it runs in: a real server's checks all live in one). A check added to
a server that is already running starts in the state the server is in, so nothing
flaps; a real server that moved to another virtual server with the same checks starts
in the state it had. A server whose checks all stay is not touched at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hacluster.config.lower import CheckPlan
from hacluster.policy import HealthKey


@dataclass(frozen=True, slots=True)
class RunningServer:
    """A real server as it runs: whether it is up, and its checks in order."""

    up: bool
    checks: tuple[CheckPlan, ...]


@dataclass(frozen=True, slots=True)
class ServerChecks:
    """What a reload does to the checks of one real server it keeps."""

    server: HealthKey
    kept: tuple[tuple[int, int], ...]  # (running index, new index): still running
    added: tuple[int, ...]  # new indices: started in the state `up`
    removed: tuple[int, ...]  # running indices: stopped
    up: bool  # the server's state now, which its new checks start in


@dataclass(frozen=True, slots=True)
class ChecksPlan:
    """The checks of every real server across one reload."""

    kept: tuple[HealthKey, ...] = ()  # every check kept as it runs
    changed: tuple[ServerChecks, ...] = ()
    added: tuple[HealthKey, ...] = ()  # new servers: checks start as configured (alpha)...
    removed: tuple[HealthKey, ...] = ()  # gone: every check stopped
    # ...except these new servers, which carry on the state of a server that moved
    carried: Mapping[HealthKey, bool] = field(default_factory=dict)

    def start_state(self, server: HealthKey, alpha: bool) -> bool:
        """Whether a check of new server `server` starts down (as `alpha` asks)."""
        up = self.carried.get(server)
        return alpha if up is None else not up


def match_checks(
    running: Sequence[CheckPlan], wanted: Sequence[CheckPlan]
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Pair equal checks one to one: (kept pairs, new indices added, running indices removed)."""
    free = list(range(len(running)))
    kept: list[tuple[int, int]] = []
    added: list[int] = []
    for j, p in enumerate(wanted):
        i = next((i for i in free if running[i] == p), None)
        if i is None:
            added.append(j)
        else:
            free.remove(i)
            kept.append((i, j))
    return kept, added, free


def plan_checks_reload(
    after: Mapping[HealthKey, Sequence[CheckPlan]],
    running: Mapping[HealthKey, RunningServer],
    moved: Mapping[HealthKey, HealthKey] | None = None,
) -> ChecksPlan:
    """From the running servers to `after` (every real server of the new configuration
    with its checks); `moved` maps a new server to the running one it continues (the
    same checks: `hacluster.reload_balancer` finds them)."""
    kept: list[HealthKey] = []
    changed: list[ServerChecks] = []
    added: list[HealthKey] = []
    for key, wanted in after.items():
        now = running.get(key)
        if now is None:
            added.append(key)
            continue
        if tuple(wanted) == now.checks:
            kept.append(key)
            continue
        pairs, new, gone = match_checks(now.checks, wanted)
        changed.append(ServerChecks(key, tuple(pairs), tuple(new), tuple(gone), now.up))
    removed = tuple(k for k in running if k not in after) if len(after) - len(added) < len(
        running) else ()
    carried = {k: running[was].up for k, was in (moved or {}).items() if after.get(k)}
    return ChecksPlan(tuple(kept), tuple(changed), tuple(added), removed, carried)
