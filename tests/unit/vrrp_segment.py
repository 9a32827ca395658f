"""A fake LAN segment linking VRRP machines for timeline tests: no sockets, no sleeping.

Each `SendAdvert` is delivered at the same `now` to every other connected machine of the
same VRID and address family; time jumps straight to the earliest deadline. The segment
checks as it goes that no timer is ever fired early or missed: a machine (or sync group)
is woken exactly at its deadline, and afterwards has no deadline at or before that time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from vrrp.machine import (
    Action,
    AddVips,
    AdvertReceived,
    Event,
    Machine,
    RemoveVips,
    SendAdvert,
    Shutdown,
    Startup,
    State,
    StateChanged,
)
from vrrp.sync_group import SyncGroup


@dataclass(frozen=True, slots=True)
class Performed:
    """One action a machine asked for, and when."""

    time: float
    name: str
    action: Action


@dataclass(frozen=True, slots=True)
class Transition:
    time: float
    name: str
    old: State
    new: State
    reason: str


@dataclass(frozen=True, slots=True)
class Sent:
    time: float
    name: str
    priority: int
    advert_int: float


class TimingViolation(AssertionError):
    """A deadline was missed or a timer fired early."""


class Segment:
    """Machines (alone or in sync groups) on one fake LAN, stepped through time."""

    def __init__(self, *nodes: Machine | SyncGroup, now: float = 0.0) -> None:
        self.now = now
        self.machines: dict[str, Machine] = {}
        self.group_of: dict[str, SyncGroup] = {}
        self.log: list[Performed] = []
        self.fired: list[tuple[float, str]] = []  # (time, unit label) of every timer fired
        self.connected: set[str] = set()
        self.alive: set[str] = set()
        self.vips_held: dict[str, bool] = {}
        for node in nodes:
            members = node.members if isinstance(node, SyncGroup) else (node,)
            for m in members:
                if m.name in self.machines:
                    raise ValueError(f"two machines named {m.name}")
                self.machines[m.name] = m
                self.connected.add(m.name)
                self.alive.add(m.name)
                self.vips_held[m.name] = False
                if isinstance(node, SyncGroup):
                    self.group_of[m.name] = node

    # ------------------------------------------------------------------ driving

    def __getitem__(self, name: str) -> Machine:
        return self.machines[name]

    def start(self, *names: str) -> None:
        """Start the named machines (all when none is named) at the current time."""
        for name in names or tuple(self.machines):
            self.inject(name, Startup())

    def inject(self, name: str, event: Event) -> None:
        """Feed an event to one machine (through its sync group) and deliver the results."""
        if name not in self.alive:
            raise ValueError(f"{name} is not running")
        self._deliver(self._route(name, event))

    def shutdown(self, name: str) -> None:
        self.inject(name, Shutdown())

    def kill(self, *names: str) -> None:
        """Crash: the machines stop without a word; their timers never fire again."""
        for name in names:
            self.alive.discard(name)
            self.vips_held[name] = False

    def cut(self, name: str) -> None:
        """Unplug a machine's cable: it neither hears nor is heard, but keeps running."""
        self.connected.discard(name)

    def heal(self, name: str) -> None:
        self.connected.add(name)

    def next_deadline(self) -> float | None:
        deadlines = [d for _, unit in self._units() if (d := unit.next_deadline()) is not None]
        return min(deadlines) if deadlines else None

    def step(self) -> bool:
        """Jump to the earliest deadline and fire it; False when no timer runs."""
        deadline = self.next_deadline()
        if deadline is None:
            return False
        if deadline < self.now:
            raise TimingViolation(f"deadline {deadline} is before now {self.now}: missed")
        self.now = deadline
        for label, unit in self._units():
            if unit.next_deadline() != deadline:
                continue
            self.fired.append((deadline, label))
            if isinstance(unit, SyncGroup):
                self._deliver(unit.handle_timer(deadline))
            else:
                self._deliver({unit.name: unit.handle_timer(deadline)})
        for label, unit in self._units():
            after = unit.next_deadline()
            if after is not None and after <= deadline:
                raise TimingViolation(f"{label} still due at {after} after firing at {deadline}")
        return True

    def run_until(self, until: float) -> None:
        """Fire every deadline up to and including `until`, then set the clock to it."""
        while (deadline := self.next_deadline()) is not None and deadline <= until:
            self.step()
        self.now = max(self.now, until)

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    def run_until_state(self, name: str, state: State, limit: float = 1000.0) -> float:
        """Step until `name` is in `state`; return that time."""
        while self.machines[name].state is not state:
            deadline = self.next_deadline()
            if deadline is None or deadline > limit:
                raise AssertionError(f"{name} never reached {state} before t={limit}")
            self.step()
        return self.now

    # ------------------------------------------------------------------ observation

    def transitions(self, name: str | None = None) -> list[Transition]:
        return [
            Transition(p.time, p.name, p.action.old, p.action.new, p.action.reason)
            for p in self.log
            if isinstance(p.action, StateChanged) and name in (None, p.name)
        ]

    def adverts(self, name: str | None = None) -> list[Sent]:
        return [
            Sent(p.time, p.name, p.action.priority, p.action.advert_int)
            for p in self.log
            if isinstance(p.action, SendAdvert) and name in (None, p.name)
        ]

    def actions(self, name: str) -> list[Action]:
        return [p.action for p in self.log if p.name == name]

    def masters(self) -> list[str]:
        return sorted(n for n in self.alive if self.machines[n].state is State.MASTER)

    def holders(self) -> list[str]:
        """Machines that hold their VIPs now, from the AddVips/RemoveVips they asked for."""
        return sorted(n for n, held in self.vips_held.items() if held)

    # ------------------------------------------------------------------ internals

    def _units(self) -> list[tuple[str, Machine | SyncGroup]]:
        """Every timer owner still running: lone machines and sync groups."""
        units: list[tuple[str, Machine | SyncGroup]] = []
        seen: set[str] = set()
        for name in sorted(self.alive):
            group = self.group_of.get(name)
            if group is None:
                units.append((name, self.machines[name]))
            elif group.name not in seen:
                seen.add(group.name)
                units.append((f"group {group.name}", group))
        return units

    def _route(self, name: str, event: Event) -> dict[str, list[Action]]:
        group = self.group_of.get(name)
        if group is not None:
            return group.handle(name, event, self.now)
        return {name: self.machines[name].handle(event, self.now)}

    def _deliver(self, produced: dict[str, list[Action]]) -> None:
        queue: deque[tuple[str, Action]] = deque(self._flatten(produced))
        while queue:
            name, action = queue.popleft()
            self.log.append(Performed(self.now, name, action))
            if isinstance(action, AddVips):
                self.vips_held[name] = True
            elif isinstance(action, RemoveVips):
                self.vips_held[name] = False
            elif isinstance(action, SendAdvert) and name in self.connected:
                sender = self.machines[name]
                advert = AdvertReceived(
                    sender.params.primary_ip, action.priority, action.advert_int
                )
                for other in self._listeners(sender):
                    queue.extend(self._flatten(self._route(other, advert)))

    @staticmethod
    def _flatten(produced: dict[str, list[Action]]) -> Iterable[tuple[str, Action]]:
        for name, actions in produced.items():
            for action in actions:
                yield name, action

    def _listeners(self, sender: Machine) -> list[str]:
        return [
            name
            for name, m in self.machines.items()
            if name != sender.name
            and name in self.alive
            and name in self.connected
            and m.params.vrid == sender.params.vrid
            and m.params.primary_ip.version == sender.params.primary_ip.version
        ]
