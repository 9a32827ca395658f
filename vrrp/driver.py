"""asyncio glue for VRRP: feeds machines (alone or in a sync group) and carries out their actions.

A `Driver` owns one core: a single `Machine`, or a `SyncGroup` whose members move
together. It reads the time from the loop, keeps exactly one timer armed for the core
(`loop.call_at` at the core's `next_deadline()`), never lets it fire early (the time
handed to the core is ``max(deadline, loop.time())``; a BACKUP's takeover timer is
armed `TAKEOVER_LEAD` early and the rest waited out, because the selector sleeps in
whole milliseconds rounded up), and carries out actions in the order the core
returns them:

- `SendAdvert` is sent at once, synchronously, so adverts never wait behind netlink;
- `AddVips`, `RemoveVips` and `Announce` go, in order, through one queue worked by a
  task (netlink calls take time): the announcement of an address therefore always
  follows its addition, and is skipped if the member has left MASTER meanwhile;
- `StateChanged` is logged with its cause, ``[VI_1] BACKUP -> MASTER (master down
  timer)``, and reported to an optional callback.

The kernel-facing parts are reached through small protocols (`AdvertSender`,
`VipControl`, `AnnouncerLike`) so tests can hand in recording fakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from vrrp.addresses import Vip
from vrrp.machine import (
    Action,
    AddVips,
    AdvertReceived,
    Announce,
    Event,
    FaultCleared,
    FaultRaised,
    Machine,
    PriorityChanged,
    RemoveVips,
    SendAdvert,
    Shutdown,
    Startup,
    State,
    StateChanged,
)
from vrrp.packet import Advert
from vrrp.sync_group import SyncGroup

log = logging.getLogger("vrrp.driver")

#: How long before a takeover deadline the driver wakes to be on time (seconds).
TAKEOVER_LEAD = 0.0015


class AdvertSender(Protocol):
    """Sends one instance's adverts (vrrp.transport.Endpoint in the daemon)."""

    def send(self, advert: Advert) -> None: ...


class VipControl(Protocol):
    """Adds and removes addresses (vrrp.addresses.Addresses in the daemon)."""

    async def add(self, vips: Sequence[Vip]) -> list[tuple[Vip, str]]: ...

    async def remove(self, vips: Sequence[Vip]) -> list[tuple[Vip, str]]: ...

    async def remove_leftovers(self, vips: Sequence[Vip]) -> list[Vip]: ...


class AnnouncerLike(Protocol):
    """Announces a master's VIPs (vrrp.announce.Announcer in the daemon)."""

    def start(self, vips: Sequence[Vip]) -> None: ...

    def stop(self) -> None: ...


class _Core(Protocol):
    def handle(self, member: str, event: Event, now: float) -> dict[str, list[Action]]: ...

    def handle_all(self, event: Event, now: float) -> dict[str, list[Action]]: ...

    def handle_timer(self, now: float) -> dict[str, list[Action]]: ...

    def next_deadline(self) -> float | None: ...


class _Solo:
    """A lone machine seen through the sync group's interface."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine

    def handle(self, member: str, event: Event, now: float) -> dict[str, list[Action]]:
        return {self.machine.name: self.machine.handle(event, now)}

    def handle_all(self, event: Event, now: float) -> dict[str, list[Action]]:
        return {self.machine.name: self.machine.handle(event, now)}

    def handle_timer(self, now: float) -> dict[str, list[Action]]:
        return {self.machine.name: self.machine.handle_timer(now)}

    def next_deadline(self) -> float | None:
        return self.machine.next_deadline()


@dataclass(slots=True)
class Member:
    """One instance as the driver runs it: its machine and the parts that act for it."""

    machine: Machine
    sender: AdvertSender
    template: Advert  # version, VRID, addresses, auth: the fields that never change
    vips: Mapping[str, Vip]  # the machine's VIP labels -> addresses
    announcer: AnnouncerLike
    cleanup_at_start: bool = True  # remove our VIPs a crashed run left behind
    transitions: int = 0
    last_change: StateChanged | None = None
    vip_errors: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.machine.name

    def addresses(self, labels: Sequence[str]) -> list[Vip]:
        return [self.vips[label] for label in labels]


StateCallback = Callable[[str, StateChanged], None]


class Driver:
    """Runs one machine or one sync group on the event loop."""

    def __init__(
        self,
        members: Sequence[Member],
        vip_control: VipControl,
        *,
        group: str | None = None,
        on_state: StateCallback | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not members:
            raise ValueError("a driver needs at least one instance")
        self.members = {m.name: m for m in members}
        self.group = group
        self.core: _Core
        if group is None:
            if len(members) != 1:
                raise ValueError("several instances need a sync group name")
            self.core = _Solo(members[0].machine)
        else:
            self.core = SyncGroup(group, [m.machine for m in members])
        self.vip_control = vip_control
        self.on_state = on_state
        self.loop = loop or asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None
        self._queue: asyncio.Queue[tuple[str, Member, tuple[str, ...]] | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._started = False
        self._stopped = False
        self.timer_fires = 0
        self.max_timer_lateness = 0.0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Queue the clean-up of leftover VIPs, then start every machine now."""
        if self._started:
            return
        self._started = True
        self._worker = self.loop.create_task(self._work(), name=f"vips-{self.label}")
        for member in self.members.values():
            if member.cleanup_at_start and member.vips:
                self._queue.put_nowait(("cleanup", member, tuple(member.vips)))
        self._feed_all(Startup())

    async def stop(self, timeout: float = 5.0) -> None:
        """Shut down gracefully: masters send priority 0 and release their VIPs."""
        if not self._started or self._stopped:
            return
        self._feed_all(Shutdown())
        self._stopped = True
        self._cancel_timer()
        for member in self.members.values():
            member.announcer.stop()
        self._queue.put_nowait(None)
        if self._worker is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._worker), timeout)
            except TimeoutError:
                log.error("[%s] VIP work still pending after %gs; giving up", self.label, timeout)
                self._worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._worker

    @property
    def label(self) -> str:
        return self.group or next(iter(self.members))

    # ------------------------------------------------------------------ events from outside

    def advert_received(self, member: str, src: Any, priority: int, interval: float) -> None:
        """A checked advert for `member` arrived (from the transport)."""
        self._feed(member, AdvertReceived(src, priority, interval))

    def set_priority_delta(self, member: str, delta: int) -> None:
        """Trackers changed `member`'s priority by `delta` from its configured one."""
        self._feed(member, PriorityChanged(delta))

    def raise_fault(self, member: str, cause: str) -> None:
        self._feed(member, FaultRaised(cause))

    def clear_fault(self, member: str, cause: str) -> None:
        self._feed(member, FaultCleared(cause))

    # ------------------------------------------------------------------ core plumbing

    def _feed(self, member: str, event: Event) -> None:
        """Hand an event to the core. Before `start()` too: a machine still in
        INITIALIZE records priority changes and faults, so trackers can report the
        starting picture before the instances start."""
        if self._stopped:
            return
        if member not in self.members:
            raise KeyError(f"{member!r} is not driven here ({self.label})")
        self._execute(self.core.handle(member, event, self.loop.time()))
        if self._started:
            self._rearm()

    def _feed_all(self, event: Event) -> None:
        self._execute(self.core.handle_all(event, self.loop.time()))
        self._rearm()

    def _rearm(self) -> None:
        if self._stopped:
            return
        deadline = self.core.next_deadline()
        if deadline == self._armed_at and (deadline is None or self._timer is not None):
            return
        self._cancel_timer()
        if deadline is not None:
            self._armed_at = deadline
            # The selector sleeps in whole milliseconds, rounded up, so a plain call_at
            # runs up to ~1 ms late. A takeover is what failover time is made of: wake
            # a little before it and wait out the rest (see _on_timer).
            lead = TAKEOVER_LEAD if self._is_takeover(deadline) else 0.0
            self._timer = self.loop.call_at(deadline - lead, self._on_timer, deadline)

    def _is_takeover(self, deadline: float) -> bool:
        """True when a BACKUP member's master-down (or skew) timer is the one armed."""
        return any(
            m.machine.state is State.BACKUP and m.machine.next_deadline() == deadline
            for m in self.members.values()
        )

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._armed_at = None

    def _on_timer(self, deadline: float) -> None:
        self._cancel_timer()  # whoever woke us, exactly one timer is re-armed below
        actual = self.loop.time()
        if deadline - actual > 2 * TAKEOVER_LEAD:  # cannot happen: woke far too early
            self._rearm()
            return
        while actual < deadline:  # at most TAKEOVER_LEAD of waiting, takeovers only
            actual = self.loop.time()
        # asyncio may also run a handle up to one clock resolution early: never hand the
        # core a time before its deadline, or it would see the timer as not yet due.
        now = max(deadline, actual)
        self.timer_fires += 1
        self.max_timer_lateness = max(self.max_timer_lateness, actual - deadline)
        self._execute(self.core.handle_timer(now))
        self._rearm()

    def _execute(self, per_member: Mapping[str, list[Action]]) -> None:
        for name, actions in per_member.items():
            member = self.members[name]
            for action in actions:
                self._do(member, action)

    def _do(self, member: Member, action: Action) -> None:
        match action:
            case SendAdvert(priority, advert_int):
                advert = replace(member.template, priority=priority, max_advert_int=advert_int)
                member.sender.send(advert)
            case AddVips(vips):
                self._queue.put_nowait(("add", member, vips))
            case RemoveVips(vips):
                member.announcer.stop()
                self._queue.put_nowait(("remove", member, vips))
            case Announce(vips):
                self._queue.put_nowait(("announce", member, vips))
            case StateChanged(old, new, reason):
                member.transitions += 1
                member.last_change = action
                log.info(
                    "[%s] %s -> %s (%s)", member.name, old, new, reason,
                    extra={"instance": member.name, "event": "state",
                           "old": str(old), "new": str(new), "reason": reason},
                )
                if self.on_state is not None:
                    self.on_state(member.name, action)

    # ------------------------------------------------------------------ kernel work queue

    async def _work(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                self._queue.task_done()
                return
            kind, member, labels = item
            try:
                await self._work_one(kind, member, labels)
            except Exception as exc:  # keep serving the queue whatever one call does
                log.exception("[%s] %s of VIPs failed", member.name, kind)
                member.vip_errors.append(f"{kind}: {exc}")
            finally:
                self._queue.task_done()

    async def _work_one(self, kind: str, member: Member, labels: tuple[str, ...]) -> None:
        vips = member.addresses(labels)
        if kind == "add":
            failed = await self.vip_control.add(vips)
            if not failed:
                log.info("[%s] added VIPs %s", member.name, _show(vips))
        elif kind == "remove":
            failed = await self.vip_control.remove(vips)
            if not failed:
                log.info("[%s] removed VIPs %s", member.name, _show(vips))
        elif kind == "cleanup":
            found = await self.vip_control.remove_leftovers(vips)
            if found:
                log.warning("[%s] removed VIPs left behind by a previous run: %s",
                            member.name, _show(found))
            failed = []
        else:  # announce: only while the member still holds the addresses
            if member.machine.state is State.MASTER and not self._stopped:
                member.announcer.start(vips)
            failed = []
        for vip, why in failed:
            log.error("[%s] cannot %s VIP %s: %s", member.name, kind, vip, why)
            member.vip_errors.append(f"{kind} {vip}: {why}")

    async def drain(self) -> None:
        """Wait until every queued VIP operation has been carried out (for tests)."""
        await self._queue.join()

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, dict[str, Any]]:
        """A JSON-ready view of each member: state, priority, master, counters."""
        out: dict[str, dict[str, Any]] = {}
        for name, member in self.members.items():
            m = member.machine
            master = m.master
            counters = m.counters
            out[name] = {
                "state": str(m.state),
                "vrid": m.params.vrid,
                "priority": m.priority,
                "master": None if master is None else
                {"address": str(master.address), "priority": master.priority},
                "sync_group": self.group,
                "transitions": member.transitions,
                "last_change": None if member.last_change is None else {
                    "old": str(member.last_change.old), "new": str(member.last_change.new),
                    "reason": member.last_change.reason},
                "faults": list(m.faults),
                "counters": asdict(counters),
                "vip_errors": list(member.vip_errors[-10:]),
            }
        return out


def _show(vips: Sequence[Vip]) -> str:
    return ", ".join(str(v) for v in vips)
