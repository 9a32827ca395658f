"""What the VRRP part shows: instance status, the role's status, the status file and dump.

`instance_status` and `role_status` are what the control API shows of the instances
(the VRRP role hands `role_status` to its supervisor); `status_dump` is what the status
file and the SIGUSR1 dump show, every counter included. `StatusFile` writes the file on
every change, at most once per turn of the loop. Reads the part; changes nothing in it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vrrp.machine import State, StateChanged
from vrrp.slotted import slotted

if TYPE_CHECKING:
    from hacluster.apitypes import InstanceStatus, Transition
    from hacluster.vrrp_part import VrrpPart

log = logging.getLogger("hacluster.daemon")


def state_label(state: State) -> str:
    """The state as the API and metrics name it: as the logs do (INITIALIZE...)."""
    return str(state)


@slotted(frozen=True)
class LastChange:
    """An instance's last state change, and when (monotonic and wall clock)."""

    change: StateChanged
    at: float
    wall: float


def _dropped(part: VrrpPart) -> dict[str, int]:
    transport = part.transport
    return {} if transport is None else {
        k: v for k, v in transport.totals().items() if k not in ("received", "accepted", "sent")
    }


def role_status(part: VrrpPart) -> dict[str, Any]:
    """What the VRRP role tells the supervisor: instances and VRRP counters."""
    transport = part.transport
    return {
        "instances": [instance_status(part, n) for n in part.config.vrrp_instances
                      if n in part.driver_of],
        "transport": {} if transport is None else transport.stats(),
        "dropped": _dropped(part),
    }


def instance_status(part: VrrpPart, name: str) -> InstanceStatus:
    """One instance as the control API shows it; UnknownInstance."""
    from hacluster.apitypes import InstanceStatus, Transition, UnknownInstance

    driver = part.driver_of.get(name)
    inst = part.config.vrrp_instances.get(name)
    if driver is None or inst is None:
        raise UnknownInstance(name)
    member = driver.members[name]
    machine = member.machine
    master = machine.master
    last = part.last_change.get(name)
    transition: Transition | None = None
    if last is not None:
        transition = Transition(
            previous=state_label(last.change.old),
            state=state_label(last.change.new),
            reason=last.change.reason,
            age_seconds=round(time.monotonic() - last.at, 3),
            at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last.wall)),
        )
    counters = {k: v for k, v in dataclasses.asdict(machine.counters).items()
                if isinstance(v, int)}
    endpoint = part.endpoints.get(name)
    if endpoint is not None:
        counters["adverts_sent_on_wire"] = endpoint.sent
        counters["adverts_accepted"] = endpoint.received
    counters["transitions"] = member.transitions
    return InstanceStatus(
        name=name,
        state=state_label(machine.state),
        interface=inst.interface,
        virtual_router_id=inst.virtual_router_id,
        base_priority=inst.priority,
        effective_priority=machine.priority,
        master=None if master is None else str(master.address),
        virtual_ipaddress=[str(v) for v in
                           (*inst.virtual_ipaddress, *inst.virtual_ipaddress_excluded)],
        maintenance=name in part.maintenance,
        last_transition=transition,
        sync_group=driver.group,
        faults=list(machine.faults),
        counters=counters,
    )


def status_dump(part: VrrpPart, generation: int) -> dict[str, Any]:
    """Everything a status dump shows: instance states and every counter (and what the
    part's `status_extra` adds: the reloads, a load balancer in this process)."""
    instances: dict[str, Any] = {}
    speaker = part.speaker
    for driver in () if speaker is None else speaker.units.values():
        instances.update(driver.status())
    for name, endpoint in part.endpoints.items():
        if name in instances:
            instances[name]["adverts_sent_on_wire"] = endpoint.sent
            instances[name]["adverts_accepted"] = endpoint.received
            instances[name]["interface"] = endpoint.channel.ifname
            instances[name]["source"] = str(endpoint.source)
            instances[name]["maintenance"] = name in part.maintenance
    transport = part.transport
    frames = None if speaker is None else speaker.frames
    tracking = part.tracking
    out: dict[str, Any] = {
        "pid": os.getpid(),
        "generation": generation,
        "uptime": round(time.monotonic() - part.started_at, 3),
        "instances": instances,
        "transport": {} if transport is None else transport.stats(),
        "dropped": _dropped(part),
        "announce_errors": {} if frames is None else dict(frames.counts),
        "tracked": [] if tracking is None else [
            {"kind": o.kind, "name": o.name, "up": o.up, "value": o.value}
            for o in tracking.objects()
        ],
    }
    if part.status_extra is not None:
        out.update(part.status_extra())
    return out


class StatusFile:
    """The status file (`--status-file`), written on every change: at most once per
    turn of the loop, replaced whole."""

    def __init__(self, path: Path | None, dump: Callable[[int], dict[str, Any]]) -> None:
        self._path = path
        self._dump = dump
        self._generation = 0
        self._pending = False

    def schedule(self) -> None:
        if self._path is None or self._pending:
            return
        self._pending = True
        asyncio.get_running_loop().call_soon(self.write)

    def write(self) -> None:
        self._pending = False
        path = self._path
        if path is None:
            return
        self._generation += 1
        import json

        data = json.dumps(self._dump(self._generation), indent=1, sort_keys=True, default=str)
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(data + "\n")
            tmp.replace(path)
        except OSError as exc:
            log.error("cannot write the status file %s: %s", path, exc)

    def dump(self) -> None:
        """SIGUSR1: log every instance and counter, and refresh the file."""
        from hacluster.status_text import dump_lines

        for line in dump_lines(self._dump(self._generation)):
            log.info("%s", line)
        self.write()
