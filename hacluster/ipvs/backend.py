"""The `Backend` protocol every IPVS dataplane implements, and the operations it applies.
Does no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from hacluster.ipvs.model import (
    Destination,
    DestKey,
    IpvsInfo,
    Service,
    ServiceKey,
    Table,
    TableStats,
    Timeouts,
)


@dataclass(frozen=True, slots=True)
class AddService:
    service: Service


@dataclass(frozen=True, slots=True)
class EditService:
    """Change scheduler, flags, timeout or netmask of an existing service."""

    service: Service


@dataclass(frozen=True, slots=True)
class DelService:
    key: ServiceKey


@dataclass(frozen=True, slots=True)
class AddDest:
    service: ServiceKey
    dest: Destination


@dataclass(frozen=True, slots=True)
class EditDest:
    """Change weight, forwarding method or thresholds of an existing destination."""

    service: ServiceKey
    dest: Destination


@dataclass(frozen=True, slots=True)
class DelDest:
    service: ServiceKey
    key: DestKey


Op = AddService | EditService | DelService | AddDest | EditDest | DelDest


@dataclass(frozen=True, slots=True)
class OpFailure:
    """One operation the backend refused, with a message naming the service."""

    op: Op
    message: str


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """Outcome of `Backend.apply`: how many operations took effect, and which failed."""

    applied: int
    failed: tuple[OpFailure, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failed


class BackendError(Exception):
    """A backend could not do what was asked (message is meant for the operator)."""


class BackendUnavailable(BackendError):
    """The dataplane does not exist here (e.g. no IPVS in the kernel)."""


class Backend(Protocol):
    """An IPVS dataplane: the kernel over netlink, nftables, or memory."""

    @property
    def name(self) -> str: ...

    async def dump(self) -> Table:
        """The table as the dataplane has it now."""
        ...

    async def apply(self, ops: Sequence[Op]) -> ApplyResult:
        """Carry out `ops` in order; a refused op is reported, the rest still tried."""
        ...

    async def stats(self) -> TableStats:
        """Counters and rates for every service and destination."""
        ...

    async def close(self) -> None:
        """Release sockets or subprocesses."""
        ...


class TimeoutsBackend(Backend, Protocol):
    """A backend with IPVS's connection timeouts (the kernel's; nftables has none)."""

    async def get_timeouts(self) -> Timeouts:
        """The timeouts in force (IPVS_CMD_GET_CONFIG)."""
        ...

    async def set_timeouts(self, timeouts: Timeouts) -> None:
        """Set the non-zero ones (IPVS_CMD_SET_CONFIG); BackendError if refused."""
        ...


class InfoBackend(Backend, Protocol):
    """A backend that can also say what `ipvsadm` prints in its first line (optional)."""

    async def info(self) -> IpvsInfo:
        """IPVS version and connection table size (IPVS_CMD_GET_INFO)."""
        ...


def describe(op: Op) -> str:
    """One line for logs: `add-dest TCP 10.0.0.1:80 -> 10.0.0.11:80 weight 3`."""
    match op:
        case AddService(service=s):
            return f"add-service {s.key} {s.scheduler}"
        case EditService(service=s):
            return f"edit-service {s.key} {s.scheduler}"
        case DelService(key=k):
            return f"del-service {k}"
        case AddDest(service=k, dest=d):
            return f"add-dest {k} -> {d.key} weight {d.weight} {d.forward.name}"
        case EditDest(service=k, dest=d):
            return f"edit-dest {k} -> {d.key} weight {d.weight} {d.forward.name}"
        case DelDest(service=k, key=dk):
            return f"del-dest {k} -> {dk}"


def op_service(op: Op) -> ServiceKey:
    """The service an operation concerns."""
    match op:
        case AddService(service=s) | EditService(service=s):
            return s.key
        case DelService(key=k):
            return k
        case AddDest(service=k) | EditDest(service=k) | DelDest(service=k):
            return k
