"""asyncio glue for VRRP: feeds machines (alone or in a sync group) and carries out their actions.

A `Driver` owns one core: a single `Machine`, or a `SyncGroup` whose members move
together. It reads the time from the loop, keeps exactly one timer armed for the core
(`loop.call_at` at the core's `next_deadline()`), never lets it fire early (the time
handed to the core is ``max(deadline, loop.time())``; a BACKUP's takeover timer is
armed `TAKEOVER_LEAD` early and the rest waited out, because the selector sleeps in
whole milliseconds rounded up), and carries out actions in the order the core
returns them:

- `SendAdvert` is sent at once, synchronously;
- `AddVips` and `RemoveVips` are handed to the kernel at once too (`VipControl.begin`:
  netlink applies an address change while the request is sent and normally has its
  ack queued by then), so a takeover's VIP is in place in the same loop callback as
  its first advert;
- `Announce` starts the announcer right away when every earlier address change is
  acknowledged, which is the usual case: the first gratuitous ARP / NA burst leaves
  straight after the VIP is added (keepalived's order), with no loop iteration in
  between. Otherwise it waits, in order, behind the outstanding changes in a queue
  worked by a task, and is skipped if the member has left MASTER meanwhile;
- `Reannounce` (a master heard a lower-priority advert) has the announcer send its
  garp_lower_prio burst at once;
- `StateChanged` is logged with its cause, ``[VI_1] BACKUP -> MASTER (master down
  timer)``, and reported to an optional callback.

At `start()` the VIPs a crashed run left behind are removed before any machine starts
(when netlink is not open yet, as soon as it is, sparing the VIPs of a member that is
MASTER by then: those are its own again).

`stop()` shuts the members down (a master sends priority 0 and releases its VIPs);
`detach()` only takes the driver off the loop, leaving a master's VIPs in place for
the driver that replaces it on reload, whose `force_master()` puts the member back to
MASTER at once.

The kernel-facing parts are reached through small protocols (`AdvertSender`,
`VipControl`, `AnnouncerLike`) so tests can hand in recording fakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, field, replace
from typing import Any, Protocol

from vrrp.addresses import Vip, VipOp
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
    Reannounce,
    Reconfigured,
    RemoveVips,
    SendAdvert,
    Shutdown,
    SourceChanged,
    Startup,
    State,
    StateChanged,
    VipRemoved,
)
from vrrp.packet import Advert
from vrrp.slotted import slotted
from vrrp.sync_group import SyncGroup

log = logging.getLogger("vrrp.driver")

#: How long before a takeover deadline the driver wakes to be on time (seconds).
TAKEOVER_LEAD = 0.0015


class AdvertSender(Protocol):
    """Sends one instance's adverts (vrrp.transport.Endpoint in the daemon)."""

    def send(self, advert: Advert) -> None: ...


class VipControl(Protocol):
    """Adds and removes addresses (vrrp.addresses.Addresses in the daemon)."""

    @property
    def is_ready(self) -> bool:
        """True when a change begun now reaches the kernel before `begin` returns."""
        ...

    def prepare(self, vips: Sequence[Vip]) -> None:
        """Get ready to change ``vips`` quickly (encode the requests ahead)."""
        ...

    def begin(self, command: str, vips: Sequence[Vip]) -> VipOp:
        """Start adding (``"add"``) or removing (``"del"``) ``vips``, in call order."""
        ...


class AnnouncerLike(Protocol):
    """Announces a master's VIPs (vrrp.announce.Announcer in the daemon)."""

    def start(self, vips: Sequence[Vip]) -> None: ...

    def stop(self) -> None: ...

    def reannounce(self, vips: Sequence[Vip]) -> None: ...


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


@slotted
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


@slotted
class _Job:
    """An address change (or announcement) whose outcome is still to be handled."""

    kind: str  # "add", "remove", "cleanup" or "announce"
    member: Member
    labels: tuple[str, ...]
    op: VipOp | None = None  # None: a clean-up not begun yet, or an announcement


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
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._outstanding = 0  # jobs queued and not yet handled
        self._started = False
        self._stopped = False
        self.timer_fires = 0
        self.max_timer_lateness = 0.0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Remove leftover VIPs, then start every machine now."""
        if self._started:
            return
        self._started = True
        self._worker = self.loop.create_task(self._work(), name=f"vips-{self.label}")
        ready = self.vip_control.is_ready
        for member in self.members.values():
            if not member.vips:
                continue
            self.vip_control.prepare(list(member.vips.values()))
            if member.cleanup_at_start:
                # Ready: removed here, before the machines start. Otherwise the worker
                # begins it once netlink is open, minding the state the member is in.
                if ready:
                    self._begin("cleanup", member, tuple(member.vips))
                else:
                    self._submit(_Job("cleanup", member, tuple(member.vips)))
        self._feed_all(Startup())

    async def stop(self, timeout: float = 5.0) -> None:
        """Shut down gracefully: masters send priority 0 and release their VIPs."""
        if not self._started or self._stopped:
            return
        self._feed_all(Shutdown())
        await self._halt(timeout)

    async def detach(self, *, resign: Iterable[str] = (), timeout: float = 5.0) -> None:
        """Take the driver off the loop without shutting its members down.

        Timers and announcements stop and the VIP work already queued is finished, but
        no priority-0 advert is sent and the VIPs are left as they are: a MASTER keeps
        them for whatever takes over from this driver (a reload's new one). The members
        named in `resign` shut down first, each on its own (a master sends priority 0
        and releases its VIPs). Unknown names raise KeyError before anything is done.
        """
        names = list(resign)
        for name in names:
            self._member(name)
        if self._stopped:
            return
        for name in names:
            machine = self.members[name].machine
            self._execute({name: machine.handle(Shutdown(), self.loop.time())})
        await self._halt(timeout)

    async def _halt(self, timeout: float) -> None:
        """Stop timers, announcements and the VIP worker (after what it has queued)."""
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
    def stopped(self) -> bool:
        """True once `stop()` or `detach()` has taken the driver off the loop."""
        return self._stopped

    @property
    def label(self) -> str:
        return self.group or next(iter(self.members))

    # ------------------------------------------------------------------ events from outside

    def advert_received(
        self, member: str, src: Any, priority: int, interval: float, age: float = 0.0
    ) -> None:
        """A checked advert for `member` arrived (from the transport) `age` seconds ago:
        the machine sees it at its arrival, so a busy loop does not stretch the
        master-down timer it restarts."""
        self._feed(member, AdvertReceived(src, priority, interval), age)

    def set_priority_delta(self, member: str, delta: int) -> None:
        """Trackers changed `member`'s priority by `delta` from its configured one."""
        self._feed(member, PriorityChanged(delta))

    def reconfigure(self, member: str, priority: int, nopreempt: bool,
                    preempt_delay: float) -> None:
        """A reload changed `member`'s priority or preemption: taken in place, no state
        change, VIPs untouched."""
        self._feed(member, Reconfigured(priority, nopreempt, preempt_delay))

    def raise_fault(self, member: str, cause: str) -> None:
        self._feed(member, FaultRaised(cause))

    def clear_fault(self, member: str, cause: str) -> None:
        self._feed(member, FaultCleared(cause))

    def vip_removed(self, member: str, vip: str) -> None:
        """Someone else removed `member`'s VIP (its label) while it was MASTER."""
        self._feed(member, VipRemoved(vip))

    def source_changed(self, member: str, primary_ip: Any) -> None:
        """`member`'s adverts now come from `primary_ip`."""
        self._feed(member, SourceChanged(primary_ip))

    def force_master(self, member: str, reason: str) -> bool:
        """Move a BACKUP `member` straight to MASTER, without waiting out the master
        down timer: it advertises, adds its VIPs and announces them at once (a reload
        keeping the mastership it had). Only that member moves, even in a sync group.
        A member in another state is left alone. Returns whether it is MASTER now.
        """
        if not self._started:
            raise RuntimeError(f"[{self.label}] force_master before start()")
        machine = self._member(member).machine
        if self._stopped:
            return False
        self._execute({member: machine.force_master(self.loop.time(), reason)})
        self._rearm()
        return machine.state is State.MASTER

    def _member(self, name: str) -> Member:
        try:
            return self.members[name]
        except KeyError:
            raise KeyError(f"{name!r} is not driven here ({self.label})") from None

    # ------------------------------------------------------------------ core plumbing

    def _feed(self, member: str, event: Event, age: float = 0.0) -> None:
        """Hand an event to the core (as of `age` seconds ago). Before `start()` too: a
        machine still in INITIALIZE records priority changes and faults, so trackers can
        report the starting picture before the instances start."""
        if self._stopped:
            return
        self._member(member)
        self._execute(self.core.handle(member, event, self.loop.time() - age))
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
                self._begin("add", member, vips)
            case RemoveVips(vips):
                member.announcer.stop()
                self._begin("remove", member, vips)
            case Announce(vips):
                self._submit(_Job("announce", member, vips))
            case Reannounce(vips):
                # A master answering a lower-priority advert: it holds its VIPs already,
                # so the frames go out now, beside any announcement still scheduled.
                member.announcer.reannounce(member.addresses(vips))
            case StateChanged(old, new, reason):
                member.transitions += 1
                member.last_change = action
                priority = member.machine.priority
                log.log(
                    logging.WARNING if new is State.FAULT else logging.INFO,
                    "[%s] %s -> %s (%s) priority %d", member.name, old, new, reason, priority,
                    extra={"instance": member.name, "event": "state", "old": str(old),
                           "new": str(new), "reason": reason, "priority": priority},
                )
                if self.on_state is not None:
                    self.on_state(member.name, action)

    # ------------------------------------------------------------------ address changes

    def _begin(self, kind: str, member: Member, labels: tuple[str, ...]) -> None:
        """Hand an address change to the kernel now; its outcome is handled in order."""
        try:
            op = self.vip_control.begin("add" if kind == "add" else "del",
                                        member.addresses(labels))
        except Exception as exc:  # a broken VIP control must not stop the machines
            log.exception("[%s] %s of VIPs failed", member.name, kind)
            member.vip_errors.append(f"{kind}: {exc}")
            return
        self._submit(_Job(kind, member, labels, op))

    def _submit(self, job: _Job) -> None:
        """Handle ``job`` now if nothing is outstanding and it is complete, else queue it."""
        ready = job.op.done if job.op is not None else job.kind == "announce"
        if self._outstanding == 0 and ready:
            self._settle(job)
            return
        self._outstanding += 1
        self._queue.put_nowait(job)

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            if job is None:
                self._queue.task_done()
                return
            try:
                await self._work_one(job)
            except Exception as exc:  # keep serving the queue whatever one call does
                log.exception("[%s] %s of VIPs failed", job.member.name, job.kind)
                job.member.vip_errors.append(f"{job.kind}: {exc}")
            finally:
                self._outstanding -= 1
                self._queue.task_done()

    async def _work_one(self, job: _Job) -> None:
        if job.kind == "cleanup" and job.op is None:
            member = job.member
            if member.machine.state is State.MASTER and not self._stopped:
                # A MASTER already holds these addresses as its own: removing them now
                # would cut its traffic until they were added back.
                log.info("[%s] VIPs kept at start: already MASTER", member.name)
                return
            job.op = self.vip_control.begin("del", member.addresses(job.labels))
        if job.op is not None:
            await job.op.wait()
        self._settle(job)

    def _settle(self, job: _Job) -> None:
        member, op = job.member, job.op
        if op is None:  # announce: only while the member still holds the addresses
            if member.machine.state is State.MASTER and not self._stopped:
                member.announcer.start(member.addresses(job.labels))
            return
        # An addition is logged once the current callback is done: a takeover's
        # announcement, next in line, waits for no log write.
        later: Callable[..., object] = self.loop.call_soon if job.kind == "add" else _call
        if job.kind == "cleanup":
            if op.changed:
                later(log.warning, "[%s] removed VIPs left behind by a previous run: %s",
                      member.name, _show(op.changed))
        elif not op.errors:
            later(log.info, "[%s] %s VIPs %s", member.name,
                  "added" if job.kind == "add" else "removed", _show(op.vips))
        for vip, why in op.errors:
            later(log.error, "[%s] cannot %s VIP %s: %s", member.name, job.kind, vip, why)
            member.vip_errors.append(f"{job.kind} {vip}: {why}")

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


def _call(fn: Callable[..., object], *args: object) -> None:
    fn(*args)


def _show(vips: Sequence[Vip]) -> str:
    return ", ".join(str(v) for v in vips)
