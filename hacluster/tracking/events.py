"""What the trackers report, and how a change reaches its instance's driver. Does no I/O.

A change for one VRRP instance (`TrackChange`), an object's state (`ObjectStatus`), an
instance's verdict (`InstanceTracking`); `deliver` hands a change to a driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, TypeAlias

from vrrp.machine import FaultCleared, FaultRaised, PriorityChanged

Kind: TypeAlias = Literal["script", "interface", "file", "process"]
TrackEvent: TypeAlias = PriorityChanged | FaultRaised | FaultCleared


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
