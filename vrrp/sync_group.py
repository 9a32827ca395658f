"""VRRP sync groups: instances that move between MASTER, BACKUP and FAULT together. Does no I/O.

keepalived's semantics:
- MASTER: a member whose master-down timer runs out takes over only when every other
  member wants MASTER too (is MASTER, or its own timer ran out); until then its takeover
  is held, which prefers BACKUP and avoids thrashing while one member still hears a
  master. When a member becomes MASTER, all BACKUP members follow at once.
- BACKUP: when a MASTER member gives way to a higher priority, the other MASTER members
  step down with it.
- FAULT: a fault on any member puts every member in FAULT (masters resign with priority
  0); the group leaves FAULT when no member has a fault of its own.
- A MASTER member that hears a lower-priority advert re-announces its VIPs
  (`Reannounce`); the other MASTER members re-announce theirs with it, since the clients
  that followed the other router for one member's VIPs followed it for all of them.

Members are fed through the group (`handle(member, event, now)`, `handle_timer(now)`);
the answer maps each member's name to the actions to carry out for it, in order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

from vrrp.machine import (
    Action,
    Event,
    FaultCleared,
    FaultRaised,
    Machine,
    Reannounce,
    State,
    StateChanged,
    TimerExpired,
)

Actions = dict[str, list[Action]]


class SyncGroup:
    """A pure coordinator over the machines of one sync group."""

    __slots__ = ("_members", "fault_cause", "name")

    def __init__(self, name: str, members: Sequence[Machine]) -> None:
        names = [m.name for m in members]
        if not members:
            # (one member is allowed: keepalived warns "Sync group G1 has only 1 virtual
            # router(s) - this probably isn't what you want" and runs it)
            raise ValueError(f"sync group {name!r} needs at least one instance")
        if len(set(names)) != len(names):
            raise ValueError(f"sync group {name!r} lists an instance twice: {names}")
        self.name = name
        self._members = {m.name: m for m in members}
        #: The fault cause the group raises on members whose partners are in fault.
        self.fault_cause = f"sync group {name}"

    # ------------------------------------------------------------------ view

    @property
    def members(self) -> tuple[Machine, ...]:
        return tuple(self._members.values())

    def member(self, name: str) -> Machine:
        try:
            return self._members[name]
        except KeyError:
            raise KeyError(f"{name!r} is not a member of sync group {self.name!r}") from None

    @property
    def state(self) -> State:
        """FAULT if any member is; MASTER only when all are; INITIALIZE before all started."""
        states = {m.state for m in self._members.values()}
        if State.FAULT in states:
            return State.FAULT
        if State.INITIALIZE in states:
            return State.INITIALIZE
        if states == {State.MASTER}:
            return State.MASTER
        return State.BACKUP

    def next_deadline(self) -> float | None:
        deadlines = [
            d for m in self._members.values() if (d := m.next_deadline()) is not None
        ]
        return min(deadlines) if deadlines else None

    # ------------------------------------------------------------------ entry points

    def handle(self, member: str, event: Event, now: float) -> Actions:
        """Feed `event` to one member, then bring the others along."""
        if isinstance(event, TimerExpired):
            return self.handle_timer(now)  # timers are the group's, so takeovers can be held
        out: Actions = {name: [] for name in self._members}
        changes: deque[tuple[str, StateChanged]] = deque()
        actions = self.member(member).handle(event, now)
        self._record(out, changes, member, actions)
        if any(isinstance(a, Reannounce) for a in actions):
            for name, other in self._members.items():
                if name != member and other.state is State.MASTER:
                    out[name].append(Reannounce(other.params.vips))
        self._settle(now, out, changes)
        return out

    def handle_all(self, event: Event, now: float) -> Actions:
        """Feed the same event to every member (Startup, Shutdown, ...), then settle."""
        out: Actions = {name: [] for name in self._members}
        changes: deque[tuple[str, StateChanged]] = deque()
        for name, machine in self._members.items():
            self._record(out, changes, name, machine.handle(event, now))
        self._settle(now, out, changes)
        return out

    def handle_timer(self, now: float) -> Actions:
        """Fire every member timer that is due, holding takeovers the group is not ready for."""
        out: Actions = {name: [] for name in self._members}
        changes: deque[tuple[str, StateChanged]] = deque()
        due = sorted(
            (d, name)
            for name, m in self._members.items()
            if (d := m.next_deadline()) is not None and d <= now
        )
        for _, name in due:
            machine = self._members[name]
            deadline = machine.next_deadline()
            if deadline is None or deadline > now:
                continue  # settled by an earlier member meanwhile
            if machine.state is State.BACKUP and not self._others_want_master(name, now):
                machine.hold_takeover(now)
                continue
            self._record(out, changes, name, machine.handle_timer(now))
            self._settle(now, out, changes)
        return out

    # ------------------------------------------------------------------ internals

    def _wants_master(self, machine: Machine, now: float) -> bool:
        if machine.state is State.MASTER:
            return True
        if machine.state is not State.BACKUP:
            return False
        deadline = machine.next_deadline()
        return machine.takeover_pending or (deadline is not None and deadline <= now)

    def _others_want_master(self, name: str, now: float) -> bool:
        return all(
            self._wants_master(m, now) for other, m in self._members.items() if other != name
        )

    @staticmethod
    def _record(
        out: Actions,
        changes: deque[tuple[str, StateChanged]],
        name: str,
        actions: Iterable[Action],
    ) -> None:
        for action in actions:
            out[name].append(action)
            if isinstance(action, StateChanged):
                changes.append((name, action))

    def _settle(self, now: float, out: Actions, changes: deque[tuple[str, StateChanged]]) -> None:
        """Propagate faults and state changes until the group is consistent."""
        self._sync_faults(now, out, changes)
        while changes:
            name, change = changes.popleft()
            if self._members[name].state is not change.new:
                continue  # overtaken by a later change
            if change.new is State.MASTER:
                reason = f"sync group {self.name}: {name} became MASTER"
                for other, m in self._members.items():
                    if other != name:
                        self._record(out, changes, other, m.force_master(now, reason))
            elif change.new is State.BACKUP and change.old is State.MASTER:
                reason = f"sync group {self.name}: {name} went BACKUP"
                for other, m in self._members.items():
                    if other != name:
                        self._record(out, changes, other, m.force_backup(now, reason))
            self._sync_faults(now, out, changes)

    def _sync_faults(
        self, now: float, out: Actions, changes: deque[tuple[str, StateChanged]]
    ) -> None:
        """Raise the group's fault on members whose partners have faults of their own."""
        cause = self.fault_cause
        own = {
            name for name, m in self._members.items() if any(f != cause for f in m.faults)
        }
        # Clear first so that a member whose partners recovered leaves FAULT, then raise.
        for name, m in self._members.items():
            if cause in m.faults and not own - {name}:
                self._record(out, changes, name, m.handle(FaultCleared(cause), now))
        for name, m in self._members.items():
            if cause not in m.faults and own - {name}:
                self._record(out, changes, name, m.handle(FaultRaised(cause), now))
