"""Timelines of who holds an address and where a client's neighbour entry points, from netlink.

Each watch runs `ip -o monitor` in the namespaces it observes and stamps every event with
CLOCK_MONOTONIC as it is read (the same clock as the lab client's records), after reading
the state it starts from. Events arrive within a millisecond of the change, so times
between changes are exact to about that, unlike sampling.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType

from hacluster.lab.netns import Lab, LabProcess, Netns


@dataclass(frozen=True, slots=True)
class Change:
    """At `time`, `who` started (`present`) or stopped holding the address."""

    time: float
    who: str
    present: bool


class _Monitor:
    """`ip -o monitor OBJECT` in one namespace; each line handed to `on_line` with its time."""

    def __init__(self, lab: Lab, ns: Netns, obj: str, on_line: Callable[[float, str], None]):
        self.lab = lab
        self.ns = ns
        self.obj = obj
        self.on_line = on_line
        self.proc: LabProcess | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.proc = self.lab.start(self.ns, ["ip", "-o", "monitor", self.obj],
                                   stdout=subprocess.PIPE)
        self.thread = threading.Thread(target=self._read, daemon=True,
                                       name=f"monitor-{self.ns.role}-{self.obj}")
        self.thread.start()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.popen.stdout is not None
        for raw in self.proc.popen.stdout:
            self.on_line(time.monotonic(), raw.decode(errors="replace"))

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(2.0)
            if self.proc.popen.stdout is not None:
                with contextlib.suppress(OSError):
                    self.proc.popen.stdout.close()
        if self.thread is not None:
            self.thread.join(2.0)


def _address_event(line: str, ifname: str, address: str) -> bool | None:
    """True (added) / False (deleted) when the line is about `address` on `ifname`."""
    words = line.split()
    deleted = bool(words) and words[0] == "Deleted"
    if deleted:
        words = words[1:]
    if len(words) < 4 or words[1] != ifname or words[2] not in ("inet", "inet6"):
        return None
    try:
        ip = ipaddress.ip_interface(words[3]).ip
    except ValueError:
        return None
    return None if ip != ipaddress.ip_address(address) else not deleted


class AddressWatch:
    """Who of several namespaces holds `address` on `ifname`, over time."""

    def __init__(self, lab: Lab, namespaces: Mapping[str, Netns], ifname: str,
                 address: str) -> None:
        self.lab = lab
        self.namespaces = dict(namespaces)
        self.ifname = ifname
        self.address = address
        self.started = 0.0
        self.initial: frozenset[str] = frozenset()
        self._changes: list[Change] = []
        self._lock = threading.Lock()
        self._monitors = [
            _Monitor(lab, ns, "address", self._line_handler(who))
            for who, ns in self.namespaces.items()
        ]

    def _line_handler(self, who: str) -> Callable[[float, str], None]:
        def handle(t: float, line: str) -> None:
            present = _address_event(line, self.ifname, self.address)
            if present is not None:
                with self._lock:
                    self._changes.append(Change(t, who, present))
        return handle

    def start(self) -> AddressWatch:
        for m in self._monitors:
            m.start()
        time.sleep(0.05)  # `ip monitor` subscribes as it starts: do not miss the first event
        self.started = time.monotonic()
        self.initial = frozenset(
            who for who, ns in self.namespaces.items()
            if self.lab.has_address(ns, self.ifname, self.address))
        return self

    def stop(self) -> None:
        for m in self._monitors:
            m.stop()

    def __enter__(self) -> AddressWatch:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def changes(self) -> list[Change]:
        with self._lock:
            return sorted((c for c in self._changes if c.time >= self.started),
                          key=lambda c: c.time)

    def timeline(self) -> list[tuple[float, frozenset[str]]]:
        """(time, holders from then on), starting with the state when the watch began."""
        holders = set(self.initial)
        points = [(self.started, frozenset(holders))]
        for c in self.changes():
            if c.present:
                holders.add(c.who)
            else:
                holders.discard(c.who)
            points.append((c.time, frozenset(holders)))
        return points

    def holders(self, at: float | None = None) -> frozenset[str]:
        """Who held the address at `at` (default: now)."""
        current = self.initial
        for t, who in self.timeline():
            if at is not None and t > at:
                break
            current = who
        return current

    def time_held_by_all(self, start: float, end: float, of: Sequence[str]) -> float:
        """Seconds within [start, end] during which every one of `of` held the address."""
        points = [*self.timeline(), (end, frozenset())]
        total = 0.0
        for (t, who), (t_next, _) in itertools.pairwise(points):
            lo, hi = max(t, start), min(t_next, end)
            if hi > lo and set(of) <= who:
                total += hi - lo
        return total

    def last_change(self, after: float) -> float | None:
        """Time of the last change of holders at or after `after`."""
        times = [t for t, _ in self.timeline()[1:] if t >= after]
        return max(times) if times else None

    def count(self, who: str, present: bool, start: float, end: float) -> int:
        """How often `who` gained (present) or lost the address within [start, end]."""
        return sum(1 for c in self.changes()
                   if c.who == who and c.present == present and start <= c.time <= end)


def _neighbour_event(line: str, address: str) -> tuple[bool, str | None] | None:
    """(entry still there, its MAC or None) when the line is about `address`."""
    words = line.split()
    deleted = bool(words) and words[0] == "Deleted"
    if deleted:
        words = words[1:]
    if not words or words[0] != address:
        return None
    mac = words[words.index("lladdr") + 1] if "lladdr" in words[:-1] else None
    if deleted or "FAILED" in words or "INCOMPLETE" in words:
        return False, None
    return True, mac


class NeighbourWatch:
    """Where one namespace's neighbour entry for `address` points (a MAC, named), over time."""

    def __init__(self, lab: Lab, ns: Netns, ifname: str, address: str,
                 names: Mapping[str, str]) -> None:
        self.lab = lab
        self.ns = ns
        self.ifname = ifname
        self.address = address
        self.names = {mac.lower(): who for mac, who in names.items()}  # MAC -> name
        self.started = 0.0
        self.initial: str | None = None
        self._points: list[tuple[float, str | None]] = []
        self._lock = threading.Lock()
        self._monitor = _Monitor(lab, ns, "neigh", self._handle)

    def _name(self, mac: str | None) -> str | None:
        return None if mac is None else self.names.get(mac.lower(), mac.lower())

    def _handle(self, t: float, line: str) -> None:
        event = _neighbour_event(line, self.address)
        if event is None:
            return
        alive, mac = event
        if alive and mac is None:
            return  # a state change (STALE, DELAY, ...) that names no MAC: no move
        with self._lock:
            self._points.append((t, self._name(mac) if alive else None))

    def start(self) -> NeighbourWatch:
        self._monitor.start()
        time.sleep(0.05)
        self.started = time.monotonic()
        res = self.lab.run(self.ns, ["ip", "-o", "neigh", "show", self.address, "dev",
                                     self.ifname], check=False)
        for line in res.stdout.splitlines():
            event = _neighbour_event(line, self.address)
            if event is not None and event[0]:
                self.initial = self._name(event[1])
        return self

    def stop(self) -> None:
        self._monitor.stop()

    def __enter__(self) -> NeighbourWatch:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def timeline(self) -> list[tuple[float, str | None]]:
        """(time, who the entry names from then on; None: no usable entry)."""
        with self._lock:
            points = sorted(p for p in self._points if p[0] >= self.started)
        out = [(self.started, self.initial)]
        for t, who in points:
            if who != out[-1][1]:
                out.append((t, who))
        return out

    def at(self, t: float) -> str | None:
        current = self.initial
        for when, who in self.timeline():
            if when > t:
                break
            current = who
        return current

    def moved_to(self, who: str) -> float | None:
        """When the entry came to name `who` for the last time, if it names `who` now."""
        line = self.timeline()
        if line[-1][1] != who:
            return None
        when = line[-1][0]
        for t, name in reversed(line):
            if name != who:
                break
            when = t
        return when
