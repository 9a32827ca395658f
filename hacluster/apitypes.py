"""What the control API and the daemon's parts share: errors, status shapes, name forms.

Below both the API server (`hacluster.api`, which needs aiohttp) and the roles that
answer it, so that a role imports none of the web stack. Does no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, NotRequired, Protocol, TypedDict

from hacluster.config.model import HostPort


class ControllerError(Exception):
    """An action the controller cannot carry out; the message is meant for the operator."""

    http_status = 409


class UnknownInstance(ControllerError, LookupError):
    """No VRRP instance of that name."""

    http_status = 404

    def __init__(self, name: str) -> None:
        super().__init__(f"no VRRP instance {name!r}")
        self.name = name


class UnknownVirtualServer(ControllerError, LookupError):
    """No virtual server of that name."""

    http_status = 404

    def __init__(self, name: str) -> None:
        super().__init__(f"no virtual server {name!r}")
        self.name = name


class UnknownRealServer(ControllerError, LookupError):
    """The virtual server exists but has no such real server."""

    http_status = 404

    def __init__(self, virtual_server: str, name: str) -> None:
        super().__init__(f"virtual server {virtual_server!r} has no real server {name!r}")
        self.virtual_server = virtual_server
        self.name = name


class ActionRefused(ControllerError):
    """The action is understood but not possible now (e.g. no instance can hand over)."""

    http_status = 409


class Transition(TypedDict):
    """The last state change of an instance."""

    previous: str  # the state it left
    state: str  # the state it entered
    reason: str  # "master down timer", "higher priority advert", "maintenance", ...
    age_seconds: float  # how long ago (monotonic clock)
    at: NotRequired[str]  # wall-clock time, ISO 8601 UTC, for people


class InstanceStatus(TypedDict):
    """One VRRP instance."""

    name: str
    state: str  # INITIALIZE | BACKUP | MASTER | FAULT
    interface: str
    virtual_router_id: int
    base_priority: int  # as configured
    effective_priority: int  # after tracking and maintenance
    master: str | None  # address of the current master (our own when MASTER); None: unknown
    virtual_ipaddress: list[str]
    maintenance: bool
    last_transition: Transition | None
    sync_group: NotRequired[str | None]
    faults: NotRequired[list[str]]  # why it is in FAULT: "eth1 down", "chk_proxy failed"
    counters: NotRequired[dict[str, int]]  # adverts sent/received, drops... as the driver keeps


class CheckStatus(TypedDict):
    """The latest result of one of a real server's checks."""

    checker: str  # HTTP_GET | SSL_GET | TCP_CHECK | MISC_CHECK | ...
    ok: bool | None  # None: not run yet
    reason: str  # "200 OK", "connection refused", "timeout after 3s", ...
    age_seconds: float | None  # None: not run yet
    duration_seconds: NotRequired[float | None]


class RealServerStatus(TypedDict):
    """One real server of a virtual server."""

    name: str  # IP:PORT, as `str(RealServer)`
    up: bool
    weight: int  # configured weight
    effective_weight: int | None  # weight in the dataplane now; None: not in the table
    drained: bool
    checks: list[CheckStatus]
    reason: NotRequired[str]  # why it is up or down, in a few words


class VirtualServerStatus(TypedDict):
    """One virtual server and its real servers."""

    name: str  # as `str(VirtualServer)`: 10.99.0.100:80/TCP, FWM 1/TCP
    lb_algo: str
    lb_kind: str
    quorum: int
    quorum_up: bool
    sorry_server: str | None
    sorry_server_active: bool
    real_servers: list[RealServerStatus]


class IpvsRow(TypedDict):
    """One destination of the dataplane's table, flattened for display."""

    service: str
    scheduler: str | None
    destination: str | None  # None: a service without destinations
    forward: str | None
    weight: int | None
    active_conns: int | None
    inactive_conns: int | None


class Status(TypedDict):
    """What `Controller.status()` returns; `GET /v1/status` adds "ipvs" rows to it."""

    router_id: str
    version: str
    dataplane: str  # ipvs | nftables | none
    uptime_seconds: float
    config_file: str | None
    instances: list[InstanceStatus]
    virtual_servers: list[VirtualServerStatus]
    ipvs: NotRequired[list[IpvsRow]]
    ipvs_error: NotRequired[str]
    dataplane_error: NotRequired[str | None]  # the dataplane is unreachable: why
    counters: NotRequired[dict[str, Any]]  # daemon-wide: transport, dropped packets...
    # Parts shown from an older copy or not at all, and why (a role busy or restarting):
    # {"part": "vrrp" | "balancer", "reason": ..., "age_seconds": float | None}
    missing: NotRequired[list[dict[str, Any]]]


class Controller(Protocol):
    """What the daemon offers the control API. Unknown names raise the `Unknown*` errors."""

    async def status(self) -> Status:
        """Everything `hacluster status` shows (without the IPVS rows, which come from ipvs())."""
        ...

    async def ipvs(self) -> dict[str, Any]:
        """The dataplane's table as `hacluster.ipvs.listing.to_json` gives it."""
        ...

    async def drain(self, virtual_server: str, real_server: str) -> None:
        """Weight 0 for a real server (it keeps its connections) until undrained."""
        ...

    async def undrain(self, virtual_server: str, real_server: str) -> None:
        """Give a drained real server its weight back (if it is healthy)."""
        ...

    async def maintenance(self, instance: str, on: bool) -> None:
        """On: lower the instance's priority so a peer takes over; off: restore it."""
        ...

    async def reload(self) -> tuple[bool, str]:
        """Reload the config file as SIGHUP does: (done, message) — a refused file is not done."""
        ...


# --------------------------------------------------------------------------- names


def _host_port(text: str) -> str | None:
    """`IP:PORT` or `[IPv6]:PORT` normalised, or None when it is not one."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return None
    return str(HostPort(addr, int(port)))


def normalize_virtual_server(text: str) -> str:
    """The canonical name for a spelling of a virtual server; unparseable text is returned as is."""
    raw = text.strip()
    low = raw.lower()
    for prefix in ("fwmark:", "fwm ", "fwm:"):
        if low.startswith(prefix):
            mark, _, proto = raw[len(prefix) :].partition("/")
            if mark.strip().isdigit():
                return f"FWM {int(mark)}/{(proto or 'TCP').upper()}"
            return raw
    addr, _, proto = raw.partition("/")
    hp = _host_port(addr)
    if hp is None:
        return raw
    return f"{hp}/{(proto or 'TCP').upper()}"


def normalize_real_server(text: str) -> str:
    """The canonical `IP:PORT` of a real server; unparseable text is returned as is."""
    return _host_port(text.strip()) or text.strip()


def ipvs_rows(table: Mapping[str, Any]) -> list[IpvsRow]:
    """Flatten `to_json` output into one row per destination."""
    rows: list[IpvsRow] = []
    for svc in table.get("services", []):
        if svc.get("fwmark"):
            name = f"FWM {svc['fwmark']}"
            if svc.get("protocol"):
                name += f"/{svc['protocol']}"
        else:
            addr = ipaddress.ip_address(svc["address"])
            name = f"{HostPort(addr, int(svc.get('port') or 0))}/{svc.get('protocol')}"
        dests = svc.get("destinations") or []
        if not dests:
            rows.append(IpvsRow(service=name, scheduler=svc.get("scheduler"), destination=None,
                                forward=None, weight=None, active_conns=None,
                                inactive_conns=None))
        for d in dests:
            stats = d.get("stats") or {}
            daddr = ipaddress.ip_address(d["address"])
            rows.append(IpvsRow(
                service=name,
                scheduler=svc.get("scheduler"),
                destination=str(HostPort(daddr, int(d.get("port") or 0))),
                forward=d.get("forward"),
                weight=d.get("weight"),
                active_conns=stats.get("activeconns"),
                inactive_conns=stats.get("inactconns"),
            ))
    return rows
