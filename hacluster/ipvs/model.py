"""Frozen values for the IPVS table: services, destinations, tables and statistics. Does no I/O.

A `Table` maps each service's `ServiceKey` to a `ServiceEntry` (the service and its
destinations keyed by `DestKey`). Iteration order is insertion order, so a table dumped
from the kernel lists in the kernel's order, as `ipvsadm -L -n` does.

Normalisation, so that a table read back from any backend compares equal to the one
that was asked for:
- A fwmark service has `protocol=None`, `address=None`, `port=0` and `fwmark > 0`.
- `flags` holds only the flags an operator chooses (`ONEPACKET`, `SCHED1..3`);
  `PERSISTENT` follows from `timeout > 0` and `HASHED` is kernel bookkeeping, so both
  are stripped on construction.
- `netmask` is a prefix length (IPv4 0..32, IPv6 0..128); it is the persistence
  granularity and defaults to the full address length.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Protocol(enum.Enum):
    """Transport protocol of a virtual service (values are IP protocol numbers)."""

    TCP = 6
    UDP = 17
    SCTP = 132


class Forward(enum.Enum):
    """Forwarding method of a destination; `.value` is ipvsadm's column text."""

    NAT = "Masq"
    DR = "Route"
    TUN = "Tunnel"

    @property
    def kernel(self) -> int:
        """IP_VS_CONN_F_* forwarding constant (MASQ 0, TUNNEL 2, DROUTE 3)."""
        return _FWD_KERNEL[self]

    @classmethod
    def from_kernel(cls, value: int) -> Forward:
        """Forwarding method from the kernel's IP_VS_CONN_F_FWD_MASK bits."""
        for fwd, code in _FWD_KERNEL.items():
            if code == value & 0x7:
                return fwd
        raise ValueError(f"unsupported IPVS forwarding method {value & 0x7}")


_FWD_KERNEL = {Forward.NAT: 0, Forward.TUN: 2, Forward.DR: 3}


class ServiceFlag(enum.IntFlag):
    """IP_VS_SVC_F_* bits (include/uapi/linux/ip_vs.h)."""

    NONE = 0
    PERSISTENT = 0x1
    HASHED = 0x2
    ONEPACKET = 0x4
    SCHED1 = 0x8  # sh-fallback / mh-fallback
    SCHED2 = 0x10  # sh-port / mh-port
    SCHED3 = 0x20


_DERIVED_FLAGS = ServiceFlag.PERSISTENT | ServiceFlag.HASHED


def _check_port(port: int, what: str) -> None:
    if not 0 <= port <= 65535:
        raise ValueError(f"{what} port {port} out of range 0..65535")


@dataclass(frozen=True, slots=True)
class ServiceKey:
    """What identifies a virtual service in the kernel: (family, protocol, address, port)
    or (family, fwmark)."""

    family: int
    protocol: Protocol | None
    address: IPAddress | None
    port: int
    fwmark: int = 0

    def __str__(self) -> str:
        if self.fwmark:
            return f"FWM {self.fwmark} IPv{self.family}"
        assert self.protocol is not None and self.address is not None
        host = f"[{self.address}]" if self.family == 6 else str(self.address)
        return f"{self.protocol.name} {host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Service:
    """A virtual service and its attributes (everything but its destinations)."""

    protocol: Protocol | None = None
    address: IPAddress | None = None
    port: int = 0
    fwmark: int = 0
    family: int = 0  # 0: taken from the address (required for fwmark services)
    scheduler: str = "wlc"
    flags: ServiceFlag = ServiceFlag.NONE
    timeout: int = 0  # persistence timeout in seconds; 0 = not persistent
    netmask: int = -1  # persistence prefix length; -1 = full length for the family

    def __post_init__(self) -> None:
        fwmark, address = self.fwmark, self.address
        if fwmark:
            if not 0 < fwmark <= 0xFFFFFFFF:
                raise ValueError(f"fwmark {fwmark} out of range 1..4294967295")
            if address is not None or self.protocol is not None or self.port:
                raise ValueError("a fwmark service takes no protocol, address or port")
            if self.family not in (4, 6):
                raise ValueError("a fwmark service needs family 4 or 6")
        else:
            if address is None or self.protocol is None:
                raise ValueError("a service needs protocol and address, or a fwmark")
            if not isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
                object.__setattr__(self, "address", ipaddress.ip_address(address))
                address = self.address
                assert address is not None
            if self.family not in (0, address.version):
                raise ValueError(f"family {self.family} does not match address {address}")
            object.__setattr__(self, "family", address.version)
            _check_port(self.port, "service")
        if not self.scheduler or not self.scheduler.isascii() or len(self.scheduler) > 15:
            raise ValueError(f"bad scheduler name {self.scheduler!r}")
        if self.timeout < 0:
            raise ValueError(f"persistence timeout {self.timeout} is negative")
        full = 32 if self.family == 4 else 128
        if self.netmask == -1:
            object.__setattr__(self, "netmask", full)
        elif not 0 <= self.netmask <= full:
            raise ValueError(f"netmask /{self.netmask} out of range for IPv{self.family}")
        object.__setattr__(self, "flags", ServiceFlag(self.flags) & ~_DERIVED_FLAGS)

    @property
    def key(self) -> ServiceKey:
        return ServiceKey(self.family, self.protocol, self.address, self.port, self.fwmark)

    @property
    def persistent(self) -> bool:
        return self.timeout > 0

    @property
    def kernel_flags(self) -> int:
        """Flags as the kernel wants them (PERSISTENT set from the timeout)."""
        return int(self.flags | (ServiceFlag.PERSISTENT if self.persistent else 0))


@dataclass(frozen=True, slots=True)
class DestKey:
    """What identifies a destination within its service."""

    address: IPAddress
    port: int

    def __str__(self) -> str:
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Destination:
    """A real server behind a virtual service."""

    address: IPAddress
    port: int
    weight: int = 1
    forward: Forward = Forward.NAT
    u_threshold: int = 0  # upper connection threshold; 0 = none
    l_threshold: int = 0  # lower connection threshold; 0 = none

    def __post_init__(self) -> None:
        if not isinstance(self.address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            object.__setattr__(self, "address", ipaddress.ip_address(self.address))
        _check_port(self.port, "destination")
        if not 0 <= self.weight <= 0x7FFFFFFF:
            raise ValueError(f"weight {self.weight} out of range 0..2147483647")
        for name in ("u_threshold", "l_threshold"):
            if not 0 <= getattr(self, name) <= 0xFFFFFFFF:
                raise ValueError(f"{name} {getattr(self, name)} out of range")

    @property
    def key(self) -> DestKey:
        return DestKey(self.address, self.port)


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    """A service with its destinations (in order)."""

    service: Service
    destinations: Mapping[DestKey, Destination] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.service, tuple(self.destinations.values())))


@dataclass(frozen=True, slots=True)
class Table:
    """A whole IPVS table. Build with `Table.of(...)`; treat as immutable."""

    entries: Mapping[ServiceKey, ServiceEntry] = field(default_factory=dict)

    @classmethod
    def of(cls, services: Iterable[tuple[Service, Iterable[Destination]]]) -> Table:
        """Table from (service, destinations) pairs; a repeated key is an error."""
        entries: dict[ServiceKey, ServiceEntry] = {}
        for service, dests in services:
            if service.key in entries:
                raise ValueError(f"duplicate service {service.key}")
            by_key: dict[DestKey, Destination] = {}
            for dest in dests:
                if dest.key in by_key:
                    raise ValueError(f"duplicate destination {dest.key} in {service.key}")
                by_key[dest.key] = dest
            entries[service.key] = ServiceEntry(service, by_key)
        return cls(entries)

    def __iter__(self) -> Iterator[ServiceEntry]:
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)

    def __hash__(self) -> int:
        return hash(tuple(self.entries.values()))

    def services(self) -> list[Service]:
        return [entry.service for entry in self.entries.values()]

    def destination_count(self) -> int:
        return sum(len(entry.destinations) for entry in self.entries.values())


@dataclass(frozen=True, slots=True)
class Stats:
    """Counters and rates of a service or destination, as IPVS keeps them (64-bit).

    `activeconns`, `inactconns` and `persistconns` are the destination's connection
    counts (IPVS_DEST_ATTR_*_CONNS); they stay 0 for a service."""

    conns: int = 0
    inpkts: int = 0
    outpkts: int = 0
    inbytes: int = 0
    outbytes: int = 0
    cps: int = 0
    inpps: int = 0
    outpps: int = 0
    inbps: int = 0
    outbps: int = 0
    activeconns: int = 0
    inactconns: int = 0
    persistconns: int = 0


@dataclass(frozen=True, slots=True)
class TableStats:
    """Statistics of a table: per service, and per (service, destination)."""

    services: Mapping[ServiceKey, Stats] = field(default_factory=dict)
    destinations: Mapping[tuple[ServiceKey, DestKey], Stats] = field(default_factory=dict)
    #: The counters the dataplane keeps, for services and for destinations (None: all of
    #: them, as IPVS). A listing shows the others as unknown ("-"), not as zeros.
    service_kept: frozenset[str] | None = None
    destination_kept: frozenset[str] | None = None

    def keeps(self, name: str, *, destination: bool) -> bool:
        kept = self.destination_kept if destination else self.service_kept
        return kept is None or name in kept

    def __hash__(self) -> int:
        return hash((tuple(self.services.items()), tuple(self.destinations.items())))


@dataclass(frozen=True, slots=True)
class Timeouts:
    """IPVS connection timeouts in seconds (`ipvsadm --set tcp tcpfin udp`); 0 in a
    request leaves that timeout as it is, as the kernel reads it."""

    tcp: int = 0
    tcpfin: int = 0
    udp: int = 0

    def __post_init__(self) -> None:
        for name in ("tcp", "tcpfin", "udp"):
            value = getattr(self, name)
            if not 0 <= value <= 0x7FFFFFFF // 1000:  # the kernel keeps jiffies in an int
                raise ValueError(f"IPVS {name} timeout {value} out of range")

    def __str__(self) -> str:
        return f"tcp {self.tcp} tcpfin {self.tcpfin} udp {self.udp}"


@dataclass(frozen=True, slots=True)
class IpvsInfo:
    """The header ipvsadm prints: IPVS version and connection hash table size."""

    version: str = "1.2.1"
    size: int = 4096
