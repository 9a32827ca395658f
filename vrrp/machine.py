"""The VRRP state machine of one virtual router (RFC 5798/9568 §6.4, RFC 3768). Does no I/O.

A `Machine` is fed events with the current monotonic time (`handle(event, now)` or
`handle_timer(now)`) and answers with a list of actions for the caller to carry out in
order. `next_deadline()` says when it next wants `handle_timer`. The machine knows
nothing of sockets or the wire format: the driver translates decoded adverts into
`AdvertReceived` and actions into packets, addresses and announcements.

Rules, by state (RFC 5798 §6.4; keepalived's choice where the RFC leaves room):

INITIALIZE
  Startup         fault pending -> FAULT; priority 255 -> MASTER at once; otherwise
                  BACKUP with the master-down timer (initial state MASTER: BACKUP with
                  a short timer of one interval plus the smallest skew, as keepalived 2.x,
                  so an already running master of higher or equal priority is heard first).
BACKUP
  advert prio 0   master-down timer := Skew_Time (the master resigned).
  advert accepted (nopreempt, or priority >= ours, or preempt_delay still running):
                  learn Master_Adver_Interval (v3), master-down timer := MDI.
  advert lower    discarded: the timer runs out and we preempt.
  timer           -> MASTER (send advert, add VIPs, announce).
MASTER
  advert prio 0   send an advert at once.
  advert higher   (or equal priority from a higher primary address) -> BACKUP, learn the
                  interval, VIPs removed (with higher_prio_send_advert, keepalived's
                  option, our advert goes first: the winner hears a lower advert).
  advert lower    (or equal priority from a lower address) keepalived's rule, not the
                  RFC's discard (§6.4.3): answer with our own advert at once (unless
                  lower_prio_no_advert) and re-announce the VIPs (`Reannounce`), so that
                  after a split brain heals the clients' ARP caches point at us again.
  timer           send an advert.
  VipRemoved      a VIP vanished under us (removed by someone else): send priority 0,
                  remove the others, -> BACKUP with the master-down timer (keepalived).
any started state
  FaultRaised     -> FAULT (a MASTER first sends priority 0 and removes its VIPs).
  FaultCleared    last fault gone: leave FAULT as from a fresh start.
  Shutdown        -> INITIALIZE (a MASTER sends priority 0 and removes its VIPs).
  PriorityChanged effective priority = base + delta clamped to 1..254; an owner stays 255.
  SourceChanged   our primary address (tie-break, own adverts) is now the new one.

preempt_delay follows keepalived: a backup starts the delay at startup, or on first
hearing a lower-priority master after having left MASTER or FAULT; until it runs out,
lower-priority adverts are accepted as if preemption were off.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import replace
from typing import Final

from vrrp import timing
from vrrp.record import Record, setfield
from vrrp.slotted import slotted

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

OWNER_PRIORITY: Final = 255
#: Priority 0 in an advert means "the master is leaving" (RFC 5798 §5.2.4).
RESIGN_PRIORITY: Final = 0
MIN_EFFECTIVE_PRIORITY: Final = 1
MAX_EFFECTIVE_PRIORITY: Final = 254
#: keepalived's upper bound for preempt_delay, in seconds.
MAX_PREEMPT_DELAY: Final = 1000.0


class State(enum.Enum):
    """The four states of a virtual router; FAULT is keepalived's addition to the RFC's three."""

    INITIALIZE = "INITIALIZE"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
    FAULT = "FAULT"

    def __str__(self) -> str:
        return self.value


# ---------------------------------------------------------------------------- parameters


@slotted(frozen=True)
class InstanceParams:
    """Configuration of one virtual router, as the machine needs it.

    `vips` are opaque labels to the machine (the configured text, e.g. "10.0.0.9/24");
    they are handed back unchanged in `AddVips`, `RemoveVips` and `Announce`.
    """

    name: str
    vrid: int
    primary_ip: IPAddress
    priority: int = 100
    version: int = 3
    advert_int: float = 1.0
    initial_state: State = State.BACKUP
    nopreempt: bool = False
    preempt_delay: float = 0.0
    vips: tuple[str, ...] = ()
    down_timer_adverts: int = timing.DEFAULT_DOWN_TIMER_ADVERTS
    lower_prio_no_advert: bool = False  # keepalived: a master heard a lower one: no advert
    higher_prio_send_advert: bool = False  # keepalived: a master leaving for a higher one
    #                                        advertises first, so that one re-announces

    def __post_init__(self) -> None:
        where = f"instance {self.name!r}"
        if not 1 <= self.vrid <= 255:
            raise ValueError(f"{where}: virtual_router_id must be within 1..255, not {self.vrid}")
        if not 1 <= self.priority <= OWNER_PRIORITY:
            raise ValueError(f"{where}: priority must be within 1..255, not {self.priority}")
        try:
            interval = timing.check_interval(self.version, self.advert_int)
        except ValueError as exc:
            raise ValueError(f"{where}: advert_int: {exc}") from None
        object.__setattr__(self, "advert_int", interval)
        if self.initial_state not in (State.BACKUP, State.MASTER):
            raise ValueError(f"{where}: initial state must be BACKUP or MASTER")
        if self.nopreempt and self.initial_state is State.MASTER:
            raise ValueError(f"{where}: nopreempt needs initial state BACKUP (as in keepalived)")
        if not 0 <= self.preempt_delay <= MAX_PREEMPT_DELAY:
            raise ValueError(
                f"{where}: preempt_delay must be within 0..1000 s, not {self.preempt_delay}"
            )
        if self.down_timer_adverts < 1:
            raise ValueError(f"{where}: down_timer_adverts must be at least 1")

    @property
    def owner(self) -> bool:
        """True for the address owner (priority 255), which takes over at once."""
        return self.priority == OWNER_PRIORITY


# ---------------------------------------------------------------------------- events

# Events, actions and MasterInfo are `Record`s, not frozen dataclasses: a measured
# start-up cost (~10 ms of the VRRP role's preparation, before its first advert); see
# vrrp/record.py.


class Startup(Record):
    """The instance starts (INITIALIZE -> BACKUP, MASTER or FAULT)."""

    __match_args__ = ()
    __slots__ = __match_args__


class AdvertReceived(Record):
    """A valid advertisement for our VRID arrived (the driver decoded and checked it).

    `max_advert_int` is the interval carried by the advert, in seconds.
    """

    __match_args__ = ("src_ip", "priority", "max_advert_int")
    __slots__ = __match_args__
    src_ip: IPAddress
    priority: int
    max_advert_int: float

    def __init__(self, src_ip: IPAddress, priority: int, max_advert_int: float) -> None:
        setfield(self, "src_ip", src_ip)
        setfield(self, "priority", priority)
        setfield(self, "max_advert_int", max_advert_int)


class TimerExpired(Record):
    """The deadline given by `next_deadline()` has come."""

    __match_args__ = ()
    __slots__ = __match_args__


class PriorityChanged(Record):
    """The trackers' total weight changed; `delta` is added to the configured priority."""

    __match_args__ = ("delta",)
    __slots__ = __match_args__
    delta: int

    def __init__(self, delta: int) -> None:
        setfield(self, "delta", delta)


class FaultRaised(Record):
    """A fault appeared; `cause` names it (e.g. "interface eth1 down") and keys FaultCleared."""

    __match_args__ = ("cause",)
    __slots__ = __match_args__
    cause: str

    def __init__(self, cause: str) -> None:
        setfield(self, "cause", cause)


class FaultCleared(Record):
    """The fault named `cause` is gone; the instance leaves FAULT once no fault remains."""

    __match_args__ = ("cause",)
    __slots__ = __match_args__
    cause: str

    def __init__(self, cause: str) -> None:
        setfield(self, "cause", cause)


class Shutdown(Record):
    """The instance stops (-> INITIALIZE); a master resigns with priority 0."""

    __match_args__ = ()
    __slots__ = __match_args__


class VipRemoved(Record):
    """One of our VIPs (its label) was removed by someone else while we were MASTER.

    keepalived's answer: resign with priority 0, go BACKUP, and let the election run
    again; a peer takes over after its skew time, or, alone, we retake the mastership
    (and the VIPs) when the master-down timer expires."""

    __match_args__ = ("vip",)
    __slots__ = __match_args__
    vip: str

    def __init__(self, vip: str) -> None:
        setfield(self, "vip", vip)


class SourceChanged(Record):
    """The address our adverts come from changed (the interface's primary address)."""

    __match_args__ = ("primary_ip",)
    __slots__ = __match_args__
    primary_ip: IPAddress

    def __init__(self, primary_ip: IPAddress) -> None:
        setfield(self, "primary_ip", primary_ip)


class Reconfigured(Record):
    """A reload changed the configured priority or preemption settings: taken in place,
    with no state change (the protocol then does what the new values imply: a master
    that is now lower is preempted by a higher backup, a backup now higher takes over
    when its master-down timer runs out on the lower master's adverts)."""

    __match_args__ = ("priority", "nopreempt", "preempt_delay")
    __slots__ = __match_args__
    priority: int
    nopreempt: bool
    preempt_delay: float

    def __init__(self, priority: int, nopreempt: bool, preempt_delay: float) -> None:
        setfield(self, "priority", priority)
        setfield(self, "nopreempt", nopreempt)
        setfield(self, "preempt_delay", preempt_delay)


Event = (
    Startup
    | AdvertReceived
    | TimerExpired
    | PriorityChanged
    | FaultRaised
    | FaultCleared
    | Shutdown
    | VipRemoved
    | SourceChanged
    | Reconfigured
)


# ---------------------------------------------------------------------------- actions


class SendAdvert(Record):
    """Send one advertisement with this priority and interval (seconds)."""

    __match_args__ = ("priority", "advert_int")
    __slots__ = __match_args__
    priority: int
    advert_int: float

    def __init__(self, priority: int, advert_int: float) -> None:
        setfield(self, "priority", priority)
        setfield(self, "advert_int", advert_int)


class AddVips(Record):
    """Add the virtual addresses to their interfaces."""

    __match_args__ = ("vips",)
    __slots__ = __match_args__
    vips: tuple[str, ...]

    def __init__(self, vips: tuple[str, ...]) -> None:
        setfield(self, "vips", vips)


class RemoveVips(Record):
    """Remove the virtual addresses from their interfaces."""

    __match_args__ = ("vips",)
    __slots__ = __match_args__
    vips: tuple[str, ...]

    def __init__(self, vips: tuple[str, ...]) -> None:
        setfield(self, "vips", vips)


class Announce(Record):
    """Announce the virtual addresses (gratuitous ARP / unsolicited NA and their repeats)."""

    __match_args__ = ("vips",)
    __slots__ = __match_args__
    vips: tuple[str, ...]

    def __init__(self, vips: tuple[str, ...]) -> None:
        setfield(self, "vips", vips)


class Reannounce(Record):
    """A master heard a lower-priority advert: announce the VIPs again (keepalived's
    garp_lower_prio_repeat frames at once and again after garp_lower_prio_delay)."""

    __match_args__ = ("vips",)
    __slots__ = __match_args__
    vips: tuple[str, ...]

    def __init__(self, vips: tuple[str, ...]) -> None:
        setfield(self, "vips", vips)


class StateChanged(Record):
    """The instance moved from `old` to `new`; `reason` says why, for logs and notify."""

    __match_args__ = ("old", "new", "reason")
    __slots__ = __match_args__
    old: State
    new: State
    reason: str

    def __init__(self, old: State, new: State, reason: str) -> None:
        setfield(self, "old", old)
        setfield(self, "new", new)
        setfield(self, "reason", reason)


Action = SendAdvert | AddVips | RemoveVips | Announce | Reannounce | StateChanged


# ---------------------------------------------------------------------------- status


class MasterInfo(Record):
    """The master as this instance knows it: who, and at what priority."""

    __match_args__ = ("address", "priority")
    __slots__ = __match_args__
    address: IPAddress
    priority: int

    def __init__(self, address: IPAddress, priority: int) -> None:
        setfield(self, "address", address)
        setfield(self, "priority", priority)


@slotted
class Counters:
    """Counters for status and metrics (keepalived's vrrp_stats, in part)."""

    adverts_received: int = 0
    adverts_sent: int = 0
    adverts_discarded_lower: int = 0
    lower_prio_heard_as_master: int = 0
    adverts_invalid: int = 0
    priority_zero_received: int = 0
    priority_zero_sent: int = 0
    became_master: int = 0
    released_master: int = 0
    entered_fault: int = 0
    takeovers_held: int = 0


# ---------------------------------------------------------------------------- the machine


class _Timers:
    """The one running timer and the preempt_delay mark; both monotonic seconds or None."""

    __slots__ = ("deadline", "preempt_at")

    def __init__(self) -> None:
        self.deadline: float | None = None
        self.preempt_at: float | None = None


class Machine:
    """One VRRP virtual router. Feed it events with `now`; carry out what it returns."""

    __slots__ = (
        "_counters",
        "_delta",
        "_down_reason",
        "_faults",
        "_master",
        "_master_adver_int",
        "_priority",
        "_takeover_pending",
        "_timers",
        "params",
        "state",
    )

    def __init__(self, params: InstanceParams) -> None:
        self.params = params
        self.state = State.INITIALIZE
        self._priority = params.priority
        self._delta = 0
        self._master_adver_int = params.advert_int
        self._timers = _Timers()
        self._faults: dict[str, None] = {}  # insertion-ordered set: the first is reported
        self._master: MasterInfo | None = None
        self._down_reason = "master down timer"
        self._takeover_pending = False
        self._counters = Counters()

    # ------------------------------------------------------------------ read-only view

    @property
    def name(self) -> str:
        return self.params.name

    @property
    def priority(self) -> int:
        """The effective priority: what we advertise and compare."""
        return self._priority

    @property
    def priority_delta(self) -> int:
        """The trackers' total weight last reported by PriorityChanged."""
        return self._delta

    @property
    def master_adver_int(self) -> float:
        """Master_Adver_Interval in seconds (v3 learns it from the master's adverts)."""
        return self._master_adver_int

    @property
    def master(self) -> MasterInfo | None:
        """The current master: ourselves when MASTER, else the last one heard in BACKUP."""
        if self.state is State.MASTER:
            return MasterInfo(self.params.primary_ip, self._priority)
        if self.state is State.BACKUP:
            return self._master
        return None

    @property
    def faults(self) -> tuple[str, ...]:
        """The causes of the faults currently raised, oldest first."""
        return tuple(self._faults)

    @property
    def counters(self) -> Counters:
        """A copy of the counters."""
        return replace(self._counters)

    @property
    def takeover_pending(self) -> bool:
        """The master-down timer ran out but a sync group holds the takeover back."""
        return self._takeover_pending

    @property
    def preempt_at(self) -> float | None:
        """When a running preempt_delay ends, if one runs."""
        return self._timers.preempt_at

    def next_deadline(self) -> float | None:
        """When `handle_timer` should next be called, or None when no timer runs."""
        return self._timers.deadline

    def skew_time(self) -> float:
        return timing.skew_time(self._priority, self._master_adver_int, self.params.version)

    def master_down_interval(self) -> float:
        return timing.master_down_interval(
            self._priority,
            self._master_adver_int,
            self.params.version,
            self.params.down_timer_adverts,
        )

    # ------------------------------------------------------------------ entry points

    def handle(self, event: Event, now: float) -> list[Action]:
        """Process one event at monotonic time `now`; return the actions, in order."""
        match event:
            case Startup():
                return self._on_startup(now)
            case AdvertReceived():
                return self._on_advert(event, now)
            case TimerExpired():
                return self.handle_timer(now)
            case PriorityChanged(delta):
                return self._on_priority(delta, now)
            case FaultRaised(cause):
                return self._on_fault_raised(cause, now)
            case FaultCleared(cause):
                return self._on_fault_cleared(cause, now)
            case Shutdown():
                return self._on_shutdown(now)
            case VipRemoved(vip):
                return self._on_vip_removed(vip, now)
            case SourceChanged(primary_ip):
                # Our own address, for the tie-break and to know our adverts when they
                # loop back: nothing else changes.
                self.params = replace(self.params, primary_ip=primary_ip)
                return []
            case Reconfigured(priority, nopreempt, preempt_delay):
                return self._on_reconfigured(priority, nopreempt, preempt_delay, now)
        raise TypeError(f"not a VRRP machine event: {event!r}")

    def handle_timer(self, now: float) -> list[Action]:
        """Fire the timer if it is due; called early it does nothing."""
        deadline = self._timers.deadline
        if deadline is None or now < deadline:
            return []
        if self.state is State.MASTER:
            return self._master_timer(deadline, now)
        if self.state is State.BACKUP:
            return self._become_master(now, self._down_reason)
        self._timers.deadline = None
        return []

    # ------------------------------------------------------------------ sync group hooks

    def force_master(self, now: float, reason: str) -> list[Action]:
        """A sync group moves this BACKUP member to MASTER with the others."""
        if self.state is not State.BACKUP:
            return []
        return self._become_master(now, reason)

    def force_backup(self, now: float, reason: str) -> list[Action]:
        """A sync group moves this MASTER member back to BACKUP with the others."""
        if self.state is not State.MASTER:
            return []
        return self._leave_master_for_backup(now, reason)

    def hold_takeover(self, now: float) -> None:
        """A sync group defers our takeover: stop the expired timer, remember we want MASTER."""
        deadline = self._timers.deadline
        if self.state is State.BACKUP and deadline is not None and deadline <= now:
            self._timers.deadline = None
            self._takeover_pending = True
            self._counters.takeovers_held += 1

    # ------------------------------------------------------------------ INITIALIZE

    def _on_startup(self, now: float) -> list[Action]:
        if self.state is not State.INITIALIZE:
            return []
        if self._faults:
            return self._enter_fault(now, self._fault_reason())
        return self._start(now, State.INITIALIZE, "startup")

    def _start(self, now: float, old: State, reason: str) -> list[Action]:
        """Enter the protocol as RFC 5798 §6.4.1 does from Initialize."""
        if self.params.owner:
            self.state = old  # _become_master reports the transition from `old`
            return self._become_master(now, f"{reason}: address owner (priority 255)")
        self.state = State.BACKUP
        self._master_adver_int = self.params.advert_int
        self._master = None
        self._takeover_pending = False
        delay = self.params.preempt_delay
        self._timers.preempt_at = now + delay if delay else None
        if self.params.initial_state is State.MASTER:
            # keepalived 2.x: one interval plus the smallest skew, then MASTER unless a
            # master of higher or equal priority was heard meanwhile.
            smallest_skew = timing.skew_time(
                OWNER_PRIORITY, self._master_adver_int, self.params.version
            )
            self._timers.deadline = now + self._master_adver_int + smallest_skew
            self._down_reason = "initial state MASTER"
        else:
            self._timers.deadline = now + self.master_down_interval()
            self._down_reason = "master down timer"
        return [StateChanged(old, State.BACKUP, reason)]

    # ------------------------------------------------------------------ adverts

    def _on_advert(self, advert: AdvertReceived, now: float) -> list[Action]:
        self._counters.adverts_received += 1
        if not self._valid(advert):
            self._counters.adverts_invalid += 1
            return []
        if advert.priority == RESIGN_PRIORITY:
            self._counters.priority_zero_received += 1
        if self.state is State.BACKUP:
            return self._backup_advert(advert, now)
        if self.state is State.MASTER:
            return self._master_advert(advert, now)
        return []  # INITIALIZE and FAULT do not take part

    def _valid(self, advert: AdvertReceived) -> bool:
        """Checks the codec cannot make: our own address, family, v2 interval (RFC 3768 §7.1)."""
        src, prio = advert.src_ip, advert.priority
        if not isinstance(src, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False
        if src.version != self.params.primary_ip.version or src == self.params.primary_ip:
            return False
        if not isinstance(prio, int) or not timing.MIN_PRIORITY <= prio <= timing.MAX_PRIORITY:
            return False
        try:
            interval = timing.check_interval(self.params.version, advert.max_advert_int)
        except (TypeError, ValueError):
            return False
        return self.params.version == timing.V3 or interval == self.params.advert_int

    def _backup_advert(self, advert: AdvertReceived, now: float) -> list[Action]:
        """RFC 5798 §6.4.2, with keepalived's preempt_delay."""
        src, prio = advert.src_ip, advert.priority
        if prio == RESIGN_PRIORITY:
            self._timers.deadline = now + self.skew_time()
            self._takeover_pending = False
            self._down_reason = f"priority 0 from {src}"
            if self._master is not None and self._master.address == src:
                self._master = None
            return []
        if self._accepts(prio, now):
            if self.params.version == timing.V3:
                self._master_adver_int = timing.check_interval(timing.V3, advert.max_advert_int)
            self._timers.deadline = now + self.master_down_interval()
            self._takeover_pending = False
            self._down_reason = "master down timer"
            self._master = MasterInfo(src, prio)
            if self.params.preempt_delay:
                if prio >= self._priority:
                    self._timers.preempt_at = None
                elif self._timers.preempt_at is None:
                    self._timers.preempt_at = now + self.params.preempt_delay
            return []
        self._counters.adverts_discarded_lower += 1
        self._master = MasterInfo(src, prio)
        self._down_reason = f"preempt: lower priority {prio} advert from {src}"
        return []

    def _accepts(self, prio: int, now: float) -> bool:
        if self.params.nopreempt or prio >= self._priority:
            return True
        if not self.params.preempt_delay:
            return False
        preempt_at = self._timers.preempt_at
        return preempt_at is None or now < preempt_at

    def _master_advert(self, advert: AdvertReceived, now: float) -> list[Action]:
        """RFC 5798 §6.4.3, but a lower advert is answered as keepalived does."""
        src, prio = advert.src_ip, advert.priority
        if prio == RESIGN_PRIORITY:
            # Someone resigned: assert ourselves at once so backups do not take over.
            self._timers.deadline = now + self.params.advert_int
            return [self._advert(self._priority)]
        if prio > self._priority:
            reason = f"higher priority {prio} advert from {src}"
        elif prio == self._priority and int(src) > int(self.params.primary_ip):
            reason = f"equal priority advert from higher address {src}"
        else:
            return self._lower_advert_as_master()
        if self.params.version == timing.V3:
            self._master_adver_int = timing.check_interval(timing.V3, advert.max_advert_int)
        self._master = MasterInfo(src, prio)
        first: list[Action] = []
        if self.params.higher_prio_send_advert:
            first.append(self._advert(self._priority))
        return first + self._leave_master_for_backup(now, reason)

    def _lower_advert_as_master(self) -> list[Action]:
        """Another router believes it is master (a split brain healing, or a restarted
        peer): keepalived asserts us with an advert, which sends the other back to
        BACKUP, and refreshes the clients' neighbour caches, which may point at it."""
        self._counters.lower_prio_heard_as_master += 1
        actions: list[Action] = []
        if not self.params.lower_prio_no_advert:
            actions.append(self._advert(self._priority))
        actions.append(Reannounce(self.params.vips))
        return actions

    # ------------------------------------------------------------------ MASTER

    def _advert(self, priority: int) -> SendAdvert:
        self._counters.adverts_sent += 1
        if priority == RESIGN_PRIORITY:
            self._counters.priority_zero_sent += 1
        return SendAdvert(priority, self.params.advert_int)

    def _master_timer(self, deadline: float, now: float) -> list[Action]:
        # Keep the cadence of the schedule rather than of the wake-ups; after a long
        # stall (missed whole intervals) restart it from now instead of bursting.
        following = deadline + self.params.advert_int
        self._timers.deadline = following if following > now else now + self.params.advert_int
        return [self._advert(self._priority)]

    def _become_master(self, now: float, reason: str) -> list[Action]:
        """RFC 5798 §6.4.2 (master-down timer fires): advert first, then VIPs and ARP."""
        old = self.state
        self.state = State.MASTER
        self._master_adver_int = self.params.advert_int
        self._timers.deadline = now + self.params.advert_int
        self._timers.preempt_at = None
        self._takeover_pending = False
        self._counters.became_master += 1
        vips = self.params.vips
        return [
            self._advert(self._priority),
            AddVips(vips),
            Announce(vips),
            StateChanged(old, State.MASTER, reason),
        ]

    def _leave_master_for_backup(self, now: float, reason: str) -> list[Action]:
        self.state = State.BACKUP
        self._counters.released_master += 1
        self._timers.deadline = now + self.master_down_interval()
        self._timers.preempt_at = None
        self._down_reason = "master down timer"
        return [RemoveVips(self.params.vips), StateChanged(State.MASTER, State.BACKUP, reason)]

    def _on_vip_removed(self, vip: str, now: float) -> list[Action]:
        if self.state is not State.MASTER or vip not in self.params.vips:
            return []
        actions = self._resign()
        self.state = State.BACKUP
        self._timers.deadline = now + self.master_down_interval()
        self._timers.preempt_at = None
        self._down_reason = "master down timer"
        self._master = None
        reason = f"VIP {vip} removed by someone else"
        actions.append(StateChanged(State.MASTER, State.BACKUP, reason))
        return actions

    def _resign(self) -> list[Action]:
        """Leave MASTER for good (fault, shutdown): priority 0 so a backup takes over fast."""
        self._counters.released_master += 1
        return [self._advert(RESIGN_PRIORITY), RemoveVips(self.params.vips)]

    # ------------------------------------------------------------------ priority

    def _on_priority(self, delta: int, now: float) -> list[Action]:
        self._delta = delta
        new = effective_priority(self.params.priority, delta)
        if new == self._priority:
            return []
        old_mdi = self.master_down_interval()
        self._priority = new
        deadline = self._timers.deadline
        if self.state is State.BACKUP and deadline is not None:
            # keepalived: a rising priority shortens the skew, so bring the running
            # master-down timer forward by as much (never into the past).
            shorter_by = old_mdi - self.master_down_interval()
            if shorter_by > 0:
                self._timers.deadline = max(now, deadline - shorter_by)
        return []

    def _on_reconfigured(
        self, priority: int, nopreempt: bool, preempt_delay: float, now: float
    ) -> list[Action]:
        if (priority == OWNER_PRIORITY) != self.params.owner:
            raise ValueError(f"instance {self.name!r}: becoming or ceasing to be the address "
                             "owner (priority 255) is a new virtual router, not a change")
        self.params = replace(self.params, priority=priority, nopreempt=nopreempt,
                              preempt_delay=preempt_delay)
        if preempt_delay == 0:
            self._timers.preempt_at = None
        # The effective priority follows the new base, as it follows a tracker's change.
        return self._on_priority(self._delta, now)

    # ------------------------------------------------------------------ FAULT

    def _fault_reason(self) -> str:
        return "fault: " + ", ".join(self._faults)

    def _on_fault_raised(self, cause: str, now: float) -> list[Action]:
        already = bool(self._faults)
        self._faults[cause] = None
        if already or self.state is State.INITIALIZE:
            return []
        return self._enter_fault(now, f"fault: {cause}")

    def _enter_fault(self, now: float, reason: str) -> list[Action]:
        old = self.state
        actions: list[Action] = self._resign() if old is State.MASTER else []
        self.state = State.FAULT
        self._timers.deadline = None
        self._timers.preempt_at = None
        self._takeover_pending = False
        self._master = None
        self._counters.entered_fault += 1
        actions.append(StateChanged(old, State.FAULT, reason))
        return actions

    def _on_fault_cleared(self, cause: str, now: float) -> list[Action]:
        if cause not in self._faults:
            return []
        del self._faults[cause]
        if self._faults or self.state is not State.FAULT:
            return []
        actions = self._start(now, State.FAULT, "fault cleared")
        # Leaving FAULT restarts the preempt_delay only on hearing a lower master (keepalived).
        self._timers.preempt_at = None
        return actions

    # ------------------------------------------------------------------ shutdown

    def _on_shutdown(self, now: float) -> list[Action]:
        old = self.state
        if old is State.INITIALIZE:
            return []
        actions: list[Action] = self._resign() if old is State.MASTER else []
        self.state = State.INITIALIZE
        self._timers.deadline = None
        self._timers.preempt_at = None
        self._takeover_pending = False
        self._master = None
        self._master_adver_int = self.params.advert_int
        actions.append(StateChanged(old, State.INITIALIZE, "shutdown"))
        return actions


def effective_priority(base: int, delta: int) -> int:
    """Configured priority plus tracker weights, clamped to 1..254; an owner stays 255."""
    if base == OWNER_PRIORITY:
        return OWNER_PRIORITY
    return max(MIN_EFFECTIVE_PRIORITY, min(MAX_EFFECTIVE_PRIORITY, base + delta))
