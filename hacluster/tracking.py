"""Trackers: vrrp_scripts, track_interface, track_file, track_process → priority changes, faults.

Two layers, as everywhere in hacluster:

- `TrackingCore` is pure (does no I/O): it is told script results, link states and file
  values with the time, counts rise/fall, and returns `TrackChange` values: for one
  VRRP instance, a `vrrp.machine` event (`PriorityChanged` with the instance's total
  tracker delta, `FaultRaised` or `FaultCleared`) ready to be handed to its machine.
- `Tracking` is the asyncio glue: it runs the scripts (via `hacluster.scripts`), follows
  link state through rtnetlink events in the process's own network namespace, watches
  the tracked files' directories with inotify (and polls them as a safety net), counts
  tracked processes (`hacluster.proc_events`: the kernel's process events), feeds
  the core and calls ``on_change`` for every change. It can be started, stopped and
  reconfigured (objects that did not change keep their state).

keepalived's semantics (keepalived.conf(5)):

- a tracked process is up while ``quorum`` to ``quorum_max`` processes match
  (`hacluster.process_track`);
- weight 0: the instance is in FAULT while the object is down (``reverse``: while up);
- weight > 0: +weight while up; weight < 0: weight (a decrease) while down; ``reverse``
  flips the sign of the adjustment;
- a `track_script` / `track_file` entry's weight overrides the object's own;
- a script counts as down after ``fall`` failures in a row and up after ``rise``
  successes; its first result decides at once (``init_fail`` starts it down);
- track_file: the file holds an integer (missing or unreadable reads as 0); with
  weight 0 a non-zero value is a fault; otherwise value x weight is added, and a result
  below -253 is a fault;
- an interface is up while it is administratively up and has carrier (IFF_UP and
  IFF_RUNNING); a missing interface is down;
- objects tracked by a sync group apply to every member; objects tracked by a member
  instance itself lose their weight (weight 0: fault only), so that members cannot
  end up with differing priorities.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, TypeAlias

from hacluster import scripts
from hacluster.config.model import Config, VrrpScript, VrrpTrackFile, VrrpTrackProcess
from hacluster.filewatch import DirectoryWatch
from hacluster.proc_events import ProcessMonitor
from vrrp import rtnl
from vrrp.machine import FaultCleared, FaultRaised, PriorityChanged

log = logging.getLogger("hacluster.tracking")

Kind: TypeAlias = Literal["script", "interface", "file", "process"]
TrackEvent: TypeAlias = PriorityChanged | FaultRaised | FaultCleared

#: A track_file result below this puts the instance in FAULT (keepalived).
FILE_FAULT_BELOW = -253

_KIND_KEY: dict[Kind, str] = {
    "script": "track_script",
    "interface": "track_interface",
    "file": "track_file",
    "process": "track_process",
}


@dataclass(frozen=True, slots=True)
class TrackChange:
    """A change for one VRRP instance, as the event its state machine takes."""

    instance: str
    event: TrackEvent

    def __str__(self) -> str:
        match self.event:
            case PriorityChanged(delta=delta):
                return f"[{self.instance}] tracker delta {delta:+d}"
            case FaultRaised(cause=cause):
                return f"[{self.instance}] fault raised: {cause}"
            case FaultCleared(cause=cause):
                return f"[{self.instance}] fault cleared: {cause}"
        return f"[{self.instance}] {self.event}"  # pragma: no cover


@dataclass(frozen=True, slots=True)
class Watch:
    """One instance's interest in one tracked object, with the weight that applies."""

    instance: str
    kind: Kind
    name: str
    weight: int
    reverse: bool = False
    group: str | None = None  # tracked through this sync group

    @property
    def key(self) -> tuple[Kind, str]:
        return (self.kind, self.name)


@dataclass(frozen=True, slots=True)
class ObjectStatus:
    """What a tracked object looks like now (for status output)."""

    kind: Kind
    name: str
    up: bool | None  # None: no result yet (files: value decides)
    value: int | None = None  # track_file only
    since: float | None = None  # when `up`/`value` last changed (monotonic)


@dataclass(frozen=True, slots=True)
class InstanceTracking:
    """The trackers' verdict for one instance: the priority delta and the active faults."""

    delta: int
    faults: frozenset[str]


# --------------------------------------------------------------------------- pure parts


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


def state_contribution(weight: int, reverse: bool, up: bool) -> tuple[int, bool]:
    """(priority delta, fault) from an up/down object (script or interface)."""
    if weight == 0:
        return 0, (up if reverse else not up)
    sign = -1 if reverse else 1
    if weight > 0:
        return (weight * sign if up else 0), False
    return (weight * sign if not up else 0), False


def file_contribution(weight: int, reverse: bool, value: int) -> tuple[int, bool]:
    """(priority delta, fault) from a track_file value."""
    if weight == 0:
        failed = value != 0
        return 0, (not failed if reverse else failed)
    result = value * weight * (-1 if reverse else 1)
    if result < FILE_FAULT_BELOW:
        return 0, True
    return result, False


def fault_cause(watch: Watch) -> str:
    """The stable name of the fault a watch can raise (it keys FaultCleared)."""
    key = _KIND_KEY[watch.kind]
    if watch.kind == "file":
        if watch.weight == 0:
            return f"{key} {watch.name} {'zero (reverse)' if watch.reverse else 'non-zero'}"
        return f"{key} {watch.name} below {FILE_FAULT_BELOW}"
    if watch.kind == "interface":
        return f"{key} {watch.name} {'up (reverse)' if watch.reverse else 'down'}"
    if watch.kind == "process":
        return f"{key} {watch.name} {'quorum held (reverse)' if watch.reverse else 'quorum lost'}"
    return f"{key} {watch.name} {'succeeded (reverse)' if watch.reverse else 'failed'}"


def plan_watches(config: Config) -> tuple[Watch, ...]:
    """Every (instance, tracked object, weight) the configuration asks for."""
    watches: list[Watch] = []
    for inst in config.vrrp_instances.values():
        group = config.sync_group_of(inst.name)
        own: list[Watch] = []
        for ts in inst.track_script:
            script = _script(config, ts.name, inst.name)
            weight = script.weight if ts.weight is None else ts.weight
            own.append(Watch(inst.name, "script", ts.name, weight, ts.reverse or script.reverse))
        for ti in inst.track_interface:
            own.append(Watch(inst.name, "interface", ti.name, ti.weight, ti.reverse))
        for tf in inst.track_file:
            tfile = _track_file(config, tf.name, inst.name)
            weight = tfile.weight if tf.weight is None else tf.weight
            own.append(Watch(inst.name, "file", tf.name, weight, tf.reverse or tfile.reverse))
        for tp in inst.track_process:
            tproc = _track_process(config, tp.name, inst.name)
            weight = tproc.weight if tp.weight is None else tp.weight
            own.append(Watch(inst.name, "process", tp.name, weight, tp.reverse or tproc.reverse))
        if group is not None:
            for w in own:
                if w.weight != 0:
                    log.warning(
                        "[%s] %s %s: weight %+d ignored in sync group %s (fault only)",
                        inst.name, _KIND_KEY[w.kind], w.name, w.weight, group.name,
                    )
            own = [Watch(w.instance, w.kind, w.name, 0, w.reverse) for w in own]
        watches.extend(own)
    for group in config.vrrp_sync_groups.values():
        for member in group.group:
            if member not in config.vrrp_instances:
                continue
            for ts in group.track_script:
                script = _script(config, ts.name, group.name)
                weight = script.weight if ts.weight is None else ts.weight
                watches.append(
                    Watch(member, "script", ts.name, weight, ts.reverse or script.reverse,
                          group.name)
                )
            for ti in group.track_interface:
                watches.append(
                    Watch(member, "interface", ti.name, ti.weight, ti.reverse, group.name)
                )
            for tf in group.track_file:
                tfile = _track_file(config, tf.name, group.name)
                weight = tfile.weight if tf.weight is None else tf.weight
                watches.append(
                    Watch(member, "file", tf.name, weight, tf.reverse or tfile.reverse,
                          group.name)
                )
            for tp in group.track_process:
                tproc = _track_process(config, tp.name, group.name)
                weight = tproc.weight if tp.weight is None else tp.weight
                watches.append(
                    Watch(member, "process", tp.name, weight, tp.reverse or tproc.reverse,
                          group.name)
                )
    return tuple(watches)


def _script(config: Config, name: str, user: str) -> VrrpScript:
    try:
        return config.vrrp_scripts[name]
    except KeyError:
        raise ValueError(f"{user}: track_script {name!r} is not a vrrp_script") from None


def _track_file(config: Config, name: str, user: str) -> VrrpTrackFile:
    try:
        return config.vrrp_track_files[name]
    except KeyError:
        raise ValueError(f"{user}: track_file {name!r} is not a vrrp_track_file") from None


def _track_process(config: Config, name: str, user: str) -> VrrpTrackProcess:
    try:
        return config.vrrp_track_processes[name]
    except KeyError:
        raise ValueError(f"{user}: track_process {name!r} is not a vrrp_track_process") from None


class TrackingCore:
    """All trackers of one configuration, as pure state. Does no I/O.

    Inputs are `script_result`, `link_state` and `file_value` (each with `now`); each
    returns the `TrackChange`s it causes. Per instance, faults that appear come first,
    then the new delta, then faults that went away, so a machine never leaves FAULT
    with a stale priority. Before anything is reported, each instance is taken to be
    at delta 0 with no faults, as a fresh machine is: call `pending()` once after
    construction (and `replay()` for a machine built afresh) to catch it up.
    """

    def __init__(self, config: Config) -> None:
        self._watches: tuple[Watch, ...] = ()
        self._scripts: dict[str, RiseFall] = {}
        self._last_failure: dict[str, str] = {}  # vrrp_script -> how its last failure ended
        self._links: dict[str, tuple[bool, float | None]] = {}
        self._files: dict[str, tuple[int, float | None]] = {}
        self._procs: dict[str, tuple[bool, float | None]] = {}
        self._reported: dict[str, InstanceTracking] = {}
        self._instances: tuple[str, ...] = ()
        #: While True, inputs update state but report nothing; `pending()` then gives
        #: one consistent picture (used while the starting state is gathered).
        self.hold = False
        self._apply_config(config)

    # ------------------------------------------------------------------ config

    def _apply_config(self, config: Config) -> None:
        self._watches = plan_watches(config)
        self._instances = tuple(config.vrrp_instances)
        scripts_now: dict[str, RiseFall] = {}
        for name in sorted({w.name for w in self._watches if w.kind == "script"}):
            params = config.vrrp_scripts[name]
            old = self._scripts.get(name)
            if old is None:
                scripts_now[name] = RiseFall(params.rise, params.fall, up=not params.init_fail)
            else:
                old.retune(params.rise, params.fall)
                scripts_now[name] = old
        self._scripts = scripts_now
        wanted_links = {w.name for w in self._watches if w.kind == "interface"}
        # An interface nobody told us about yet counts as down until the monitor says.
        self._links = {n: self._links.get(n, (False, None)) for n in wanted_links}
        wanted_files = {w.name for w in self._watches if w.kind == "file"}
        self._files = {n: self._files.get(n, (0, None)) for n in wanted_files}
        wanted_procs = {w.name for w in self._watches if w.kind == "process"}
        # A tracked process nobody told us about yet counts as down until the monitor says.
        self._procs = {n: self._procs.get(n, (False, None)) for n in wanted_procs}
        self._reported = {
            name: self._reported.get(name, InstanceTracking(0, frozenset()))
            for name in self._instances
        }

    def reconfigure(self, config: Config) -> list[TrackChange]:
        """Switch to a new configuration; objects still tracked keep their state."""
        self._apply_config(config)
        return self.pending()

    # ------------------------------------------------------------------ what to watch

    @property
    def watches(self) -> tuple[Watch, ...]:
        return self._watches

    def names(self, kind: Kind) -> frozenset[str]:
        """The objects of `kind` that some instance tracks."""
        return frozenset(w.name for w in self._watches if w.kind == kind)

    # ------------------------------------------------------------------ inputs

    def script_result(
        self, name: str, ok: bool, now: float, detail: str | None = None
    ) -> list[TrackChange]:
        """A run of vrrp_script `name` succeeded (`ok`) or failed (`detail` says how:
        the exit status, the signal, a timeout)."""
        counter = self._scripts.get(name)
        if counter is None:
            return []
        if not ok and detail is not None:
            self._last_failure[name] = detail
        changed = counter.observe(ok, now)
        if changed is None:
            return []
        if changed:
            log.info("vrrp_script %s now succeeding", name)
        else:
            why = self._last_failure.get(name)
            log.warning("vrrp_script %s now failing%s", name, f" ({why})" if why else "")
        return self._after_input()

    def link_state(self, ifname: str, up: bool, now: float) -> list[TrackChange]:
        """Interface `ifname` is now up (IFF_UP and IFF_RUNNING) or down/missing."""
        if not self._set_link(ifname, up, now):
            return []
        return self._after_input()

    def link_states(self, states: Mapping[str, bool], now: float) -> list[TrackChange]:
        """All link states at once (an interface not in `states` is missing: down)."""
        changed = [self._set_link(n, states.get(n, False), now) for n in sorted(self._links)]
        return self._after_input() if any(changed) else []

    def _set_link(self, ifname: str, up: bool, now: float) -> bool:
        old = self._links.get(ifname)
        if old is None or (old[0] == up and old[1] is not None):
            return False
        self._links[ifname] = (up, now)
        if old[0] != up:
            log.log(logging.INFO if up else logging.WARNING, "track_interface %s now %s",
                    ifname, "up" if up else "down")
        return True

    def file_value(self, name: str, value: int, now: float) -> list[TrackChange]:
        """track_file `name` now holds `value` (0 when missing or unreadable)."""
        if not self._set_file(name, value, now):
            return []
        return self._after_input()

    def file_values(self, values: Mapping[str, int], now: float) -> list[TrackChange]:
        """Several track_file values at once (files not in `values` are left as they are)."""
        changed = [self._set_file(n, v, now) for n, v in sorted(values.items())]
        return self._after_input() if any(changed) else []

    def _set_file(self, name: str, value: int, now: float) -> bool:
        old = self._files.get(name)
        if old is None or (old[0] == value and old[1] is not None):
            return False
        self._files[name] = (value, now)
        if old[0] != value:
            log.info("track_file %s now %d", name, value)
        return True

    def process_state(self, name: str, up: bool, now: float) -> list[TrackChange]:
        """vrrp_track_process `name` now has its quorum (`up`) or not."""
        old = self._procs.get(name)
        if old is None or (old[0] == up and old[1] is not None):
            return []
        self._procs[name] = (up, now)
        return self._after_input()

    def _after_input(self) -> list[TrackChange]:
        return [] if self.hold else self.pending()

    # ------------------------------------------------------------------ outputs

    def verdict(self, instance: str) -> InstanceTracking:
        """The delta and faults `instance` should have now."""
        delta = 0
        faults: set[str] = set()
        for w in self._watches:
            if w.instance != instance:
                continue
            if w.kind == "file":
                part, fault = file_contribution(w.weight, w.reverse, self._files[w.name][0])
            elif w.kind == "process":
                part, fault = state_contribution(w.weight, w.reverse, self._procs[w.name][0])
            elif w.kind == "script":
                part, fault = state_contribution(w.weight, w.reverse, self._scripts[w.name].up)
            else:
                part, fault = state_contribution(w.weight, w.reverse, self._links[w.name][0])
            delta += part
            if fault:
                faults.add(fault_cause(w))
        return InstanceTracking(delta, frozenset(faults))

    def pending(self) -> list[TrackChange]:
        """Changes not yet reported, for every instance (and mark them reported)."""
        out: list[TrackChange] = []
        for instance in self._instances:
            new = self.verdict(instance)
            out.extend(_diff(instance, self._reported[instance], new))
            self._reported[instance] = new
        return out

    def replay(self, instance: str) -> list[TrackChange]:
        """What a fresh machine for `instance` (delta 0, no faults) needs to be told."""
        if instance not in self._reported:
            return []
        return _diff(instance, InstanceTracking(0, frozenset()), self._reported[instance])

    def reported(self, instance: str) -> InstanceTracking | None:
        """What has been reported for `instance` so far."""
        return self._reported.get(instance)

    def objects(self) -> list[ObjectStatus]:
        """The state of every tracked object."""
        out = [
            ObjectStatus("script", n, rf.up if rf.decided else None, since=rf.changed_at)
            for n, rf in sorted(self._scripts.items())
        ]
        out += [
            ObjectStatus("interface", n, up if since is not None else None, since=since)
            for n, (up, since) in sorted(self._links.items())
        ]
        out += [
            ObjectStatus("file", n, None, value=v, since=since)
            for n, (v, since) in sorted(self._files.items())
        ]
        out += [
            ObjectStatus("process", n, up if since is not None else None, since=since)
            for n, (up, since) in sorted(self._procs.items())
        ]
        return out


def _diff(instance: str, old: InstanceTracking, new: InstanceTracking) -> list[TrackChange]:
    out = [TrackChange(instance, FaultRaised(c)) for c in sorted(new.faults - old.faults)]
    if new.delta != old.delta:
        out.append(TrackChange(instance, PriorityChanged(new.delta)))
    out += [TrackChange(instance, FaultCleared(c)) for c in sorted(old.faults - new.faults)]
    return out


# --------------------------------------------------------------------------- track files

_LEADING_INT = re.compile(rb"\s*([+-]?\d+)")


def read_track_file(path: Path) -> int:
    """The integer a track file holds: 0 when missing, empty or not a number."""
    try:
        with path.open("rb") as f:
            data = f.read(64)
    except FileNotFoundError:
        return 0
    except OSError as exc:
        log.warning("track_file %s: %s (read as 0)", path, exc.strerror or exc)
        return 0
    match = _LEADING_INT.match(data)
    if match is None:
        if data.strip():
            log.warning("track_file %s: %r is not a number (read as 0)", path, data[:20])
        return 0
    return int(match.group(1))


def init_track_file(tf: VrrpTrackFile) -> None:
    """Create a track file with its ``init_file`` value when it does not exist."""
    if tf.init_file is None:
        return
    try:
        fd = os.open(tf.file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return
    except OSError as exc:
        log.error("track_file %s: cannot create %s: %s", tf.name, tf.file, exc.strerror)
        return
    with os.fdopen(fd, "w") as f:
        f.write(f"{tf.init_file}\n")


def _file_signature(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_dev, st.st_mtime_ns, st.st_size)


# --------------------------------------------------------------------------- links

IFF_UP = 0x1
IFF_RUNNING = 0x40


def link_is_up(flags: int) -> bool:
    """keepalived's test: administratively up and running (carrier)."""
    return bool(flags & IFF_UP) and bool(flags & IFF_RUNNING)


class LinkMonitor:
    """Link states of all interfaces of this process's network namespace, from rtnetlink.

    Subscribes to RTMGRP_LINK before dumping the links, so no change between the dump
    and the first event is missed; ``on_link(name, up)`` is called for every change
    (and a renamed or deleted interface is reported down under its old name).
    """

    def __init__(self, on_link: Callable[[str, bool], None]) -> None:
        self._on_link = on_link
        self._names: dict[int, str] = {}
        self._states: dict[str, bool] = {}
        self._events = rtnl.EventSocket(rtnl.RTMGRP_LINK, self._handle, self._resync)

    @property
    def states(self) -> Mapping[str, bool]:
        """Every known interface and whether it is up."""
        return dict(self._states)

    async def start(self) -> None:
        """Subscribe, dump the current links, then follow events on the loop."""
        self._events.open(asyncio.get_running_loop())
        for msg in rtnl.dump(rtnl.RTM_GETLINK):
            self._handle(msg)

    async def stop(self) -> None:
        self._events.close()

    def _resync(self) -> None:
        """Events were lost: dump the links again; any we knew that is gone is down."""
        log.warning("track_interface: link events were lost; reading the links again")
        seen: set[int] = set()
        for msg in rtnl.dump(rtnl.RTM_GETLINK):
            if isinstance(msg, rtnl.LinkMessage):
                seen.add(msg.ifindex)
            self._handle(msg)
        for index in [i for i in self._names if i not in seen]:
            self._set(self._names.pop(index), False, gone=True)

    def _handle(self, msg: rtnl.Message) -> None:
        if not isinstance(msg, rtnl.LinkMessage):
            return
        index, name = msg.ifindex, msg.ifname
        if msg.deleted:
            old = self._names.pop(index, name)
            if old is not None:
                self._set(old, False, gone=True)
            return
        if name is None:
            return
        old = self._names.get(index)
        if old is not None and old != name:
            self._set(old, False, gone=True)
        self._names[index] = name
        self._set(name, link_is_up(msg.flags))

    def _set(self, name: str, up: bool, *, gone: bool = False) -> None:
        before = self._states.get(name)
        if gone:
            self._states.pop(name, None)
        else:
            self._states[name] = up
        if before != up or gone:
            self._on_link(name, up)


# --------------------------------------------------------------------------- glue

ChangeCallback: TypeAlias = Callable[[TrackChange], None]


class TrackSink(Protocol):
    """What takes tracker changes for an instance (vrrp.driver.Driver has these methods)."""

    def set_priority_delta(self, member: str, delta: int) -> None: ...

    def raise_fault(self, member: str, cause: str) -> None: ...

    def clear_fault(self, member: str, cause: str) -> None: ...


def deliver(change: TrackChange, sink: TrackSink) -> None:
    """Hand one change to the driver (or anything shaped like it) of its instance."""
    match change.event:
        case PriorityChanged(delta=delta):
            sink.set_priority_delta(change.instance, delta)
        case FaultRaised(cause=cause):
            sink.raise_fault(change.instance, cause)
        case FaultCleared(cause=cause):
            sink.clear_fault(change.instance, cause)


def prepare_scripts(config: Config, names: Iterable[str]) -> dict[str, scripts.Script]:
    """Prepare the named vrrp_scripts, each as its user (and group), else as
    global_defs.script_user; one ScriptError lists every problem (a ScriptSecurityError
    when script security refused any)."""
    g = config.global_defs
    prepared: dict[str, scripts.Script] = {}
    problems: list[str] = []
    refused = False
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
            refused = refused or isinstance(exc, scripts.ScriptSecurityError)
            problems.append(str(exc))
    if problems:
        cls = scripts.ScriptSecurityError if refused else scripts.ScriptError
        raise cls("; ".join(problems))
    return prepared


class Tracking:
    """Runs the trackers of a configuration and reports every change to ``on_change``.

    `start()` reads the link states and track files, runs every script once (unless
    ``wait_first`` is False) and reports the starting picture before it returns, so the
    daemon can hand it to the machines before they start. Scripts whose settings did
    not change keep running across `reconfigure()`.
    """

    def __init__(
        self,
        config: Config,
        on_change: ChangeCallback,
        *,
        file_poll_interval: float = 1.0,
    ) -> None:
        self._config = config
        self._on_change = on_change
        self._core = TrackingCore(config)
        self._prepared = prepare_scripts(config, self._core.names("script"))
        self._file_poll_interval = file_poll_interval
        self._script_tasks: dict[
            str, tuple[VrrpScript, scripts.Script, asyncio.Task[None]]
        ] = {}
        self._first_done: dict[str, asyncio.Event] = {}
        self._links: LinkMonitor | None = None
        self._processes: ProcessMonitor | None = None
        self._file_task: asyncio.Task[None] | None = None
        self._file_watch = DirectoryWatch(self._on_file_event)
        self._file_names: set[str] = set()
        self._file_sigs: dict[str, tuple[int, int, int, int] | None] = {}
        self._retired: set[asyncio.Task[None]] = set()
        self._started = False

    @property
    def core(self) -> TrackingCore:
        return self._core

    def replay(self, instance: str) -> list[TrackChange]:
        """The changes that bring a freshly built machine for `instance` up to date."""
        return self._core.replay(instance)

    def objects(self) -> list[ObjectStatus]:
        return self._core.objects()

    # ------------------------------------------------------------------ lifecycle

    async def start(self, *, wait_first: bool = True) -> None:
        if self._started:
            return
        self._started = True
        self._core.hold = True  # gather the whole starting picture, then report it once
        try:
            await self._sync_links()
            self._sync_files()
            await self._sync_processes()
            self._sync_scripts()
            if wait_first and self._first_done:
                longest = max(
                    self._config.vrrp_scripts[n].effective_timeout for n in self._first_done
                )
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(longest + scripts.KILL_GRACE + 1.0):
                        await asyncio.gather(*(e.wait() for e in self._first_done.values()))
        finally:
            self._core.hold = False
        self._emit(self._core.pending())

    async def stop(self) -> None:
        """Stop every script (killing running ones), the link monitor and the file poller."""
        self._started = False
        tasks = [t for _, _, t in self._script_tasks.values()] + list(self._retired)
        self._script_tasks.clear()
        self._first_done.clear()
        if self._file_task is not None:
            tasks.append(self._file_task)
            self._file_task = None
        self._file_watch.close()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._links is not None:
            await self._links.stop()
            self._links = None
        if self._processes is not None:
            await self._processes.stop()
            self._processes = None

    async def reconfigure(self, config: Config) -> None:
        """Switch to `config`: unchanged objects keep their state and their schedule.

        Raises ScriptError (and changes nothing) when a new script cannot be used.
        """
        wanted = {w.name for w in plan_watches(config) if w.kind == "script"}
        prepared = prepare_scripts(config, wanted)
        self._config = config
        self._prepared = prepared
        changes = self._core.reconfigure(config)
        if self._started:
            await self._sync_links()
            self._sync_files()
            await self._sync_processes()
            self._sync_scripts()
            changes += self._core.pending()
        self._emit(changes)

    # ------------------------------------------------------------------ plumbing

    def _emit(self, changes: Iterable[TrackChange]) -> None:
        for change in changes:
            log.info("%s", change)
            try:
                self._on_change(change)
            except Exception:
                log.exception("%s: on_change failed", change)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def _sync_links(self) -> None:
        wanted = self._core.names("interface")
        if not wanted:
            if self._links is not None:
                await self._links.stop()
                self._links = None
            return
        if self._links is None:
            held, self._core.hold = self._core.hold, True  # the dump comes link by link
            try:
                self._links = LinkMonitor(self._on_link)
                await self._links.start()
            finally:
                self._core.hold = held
        self._emit(self._core.link_states(self._links.states, self._now()))

    async def _sync_processes(self) -> None:
        wanted = self._core.names("process")
        specs = {n: self._config.vrrp_track_processes[n] for n in sorted(wanted)}
        if not specs:
            if self._processes is not None:
                await self._processes.stop()
                self._processes = None
            return
        held, self._core.hold = self._core.hold, True  # the scan reports name by name
        try:
            if self._processes is None:
                self._processes = ProcessMonitor(specs, self._on_process)
                await self._processes.start()
            else:
                self._processes.reconfigure(specs)
        finally:
            self._core.hold = held
        now = self._now()
        for name, up in self._processes.states().items():
            self._emit(self._core.process_state(name, up, now))

    def _on_process(self, name: str, up: bool) -> None:
        self._emit(self._core.process_state(name, up, self._now()))

    def _on_link(self, name: str, up: bool) -> None:
        if not self._started:
            return
        self._emit(self._core.link_state(name, up, self._now()))

    def _sync_files(self) -> None:
        wanted = self._core.names("file")
        for name in wanted:
            init_track_file(self._config.vrrp_track_files[name])
        self._file_sigs = {n: s for n, s in self._file_sigs.items() if n in wanted}
        # inotify on the directories: a change is seen at once (keepalived does the same);
        # the poll below stays as the safety net (a directory created later, a lost event).
        paths = [self._config.vrrp_track_files[n].file for n in wanted]
        self._file_names = {p.name for p in paths}
        self._file_watch.watch(p.parent for p in paths)
        self._poll_files(force=True)
        if wanted and self._file_task is None:
            self._file_task = asyncio.create_task(self._file_loop(), name="track-file")
        elif not wanted and self._file_task is not None:
            self._file_task.cancel()
            self._file_task = None

    def _on_file_event(self, names: set[str] | None) -> None:
        if names is not None and not names & self._file_names:
            return
        try:
            self._poll_files(force=False)
        except Exception:
            log.exception("track_file: reading after a change failed")

    async def _file_loop(self) -> None:
        while True:
            await asyncio.sleep(self._file_poll_interval)
            try:
                self._poll_files(force=False)
            except Exception:
                log.exception("track_file: polling failed")

    def _poll_files(self, *, force: bool) -> None:
        values: dict[str, int] = {}
        for name in sorted(self._core.names("file")):
            path = self._config.vrrp_track_files[name].file
            sig = _file_signature(path)
            if not force and name in self._file_sigs and self._file_sigs[name] == sig:
                continue
            self._file_sigs[name] = sig
            values[name] = read_track_file(path) if sig is not None else 0
        if values:
            self._emit(self._core.file_values(values, self._now()))

    def _sync_scripts(self) -> None:
        wanted = self._core.names("script")
        for name in list(self._script_tasks):
            params, script, task = self._script_tasks[name]
            if (
                name not in wanted
                or self._config.vrrp_scripts[name] != params
                or self._prepared[name] != script  # e.g. a new script_user
            ):
                task.cancel()
                self._retired.add(task)
                task.add_done_callback(self._retired.discard)
                del self._script_tasks[name]
                self._first_done.pop(name, None)
        for name in sorted(wanted):
            if name in self._script_tasks:
                continue
            params = self._config.vrrp_scripts[name]
            done = asyncio.Event()
            self._first_done[name] = done
            script = self._prepared[name]
            task = asyncio.create_task(
                self._script_loop(name, script, params, done), name=f"vrrp_script-{name}"
            )
            self._script_tasks[name] = (params, script, task)

    async def _script_loop(
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
