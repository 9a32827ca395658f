"""All trackers of one configuration as pure state (`TrackingCore`). Does no I/O."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from hacluster.config.model import Config
from hacluster.tracking.events import InstanceTracking, Kind, ObjectStatus, TrackChange
from hacluster.tracking.script import RiseFall
from hacluster.tracking.watches import Watch, plan_watches
from hacluster.tracking.weights import fault_cause, file_contribution, state_contribution
from vrrp.machine import FaultCleared, FaultRaised, PriorityChanged

log = logging.getLogger("hacluster.tracking")


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

