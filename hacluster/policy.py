"""Health + configuration -> the desired IPVS table, with keepalived's semantics. Does no I/O.

Rules (keepalived's `check/ipwrapper.c`, keepalived.conf(5)):
- A real server's weight is its configured `weight`, or the one its MISC_CHECK with
  `misc_dynamic` reported (exit status - 2).
- A real server is up while all its checks are up. One with no checks is always up.
  One not checked yet is up, unless `alpha` (of the real server, the virtual server or
  any of its checks) says it starts down.
- A down real server is removed from the service, or kept with weight 0 when
  `inhibit_on_failure` (real server's, else the virtual server's) is set.
- Quorum: the sum of the weights of the live real servers. With quorum up, it is lost
  when the sum drops below `quorum - hysteresis` (or to 0); with quorum down, it is
  regained when the sum reaches `quorum + hysteresis` (and is above 0). The first
  evaluation of a virtual server reports its initial state. While quorum is down and a
  `sorry_server` is configured, the sorry server is the only destination (the live real
  servers are taken out, or set to weight 0 under inhibit_on_failure); with quorum up it
  is absent, or present with weight 0 under `sorry_server_inhibit`.
- `omega`: when a virtual server goes away (reload removed it, or shutdown), its live
  real servers' down notifications and its quorum_down are reported (`on_removal`).
- Entries that IPVS sees as one (fwmark 1 over TCP and over UDP; a real server given
  with port 0 and with the virtual port) are reported as a `Conflict`; the first wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hacluster.config.model import IPAddress, RealServer, VirtualServer
from hacluster.ipvs.model import (
    Destination,
    DestKey,
    Forward,
    Protocol,
    Service,
    ServiceFlag,
    ServiceKey,
    Table,
)


@dataclass(frozen=True, slots=True)
class ServerHealth:
    """What the checks of one real server say: up or down, and an optional dynamic weight."""

    up: bool
    weight: int | None = None  # from MISC_CHECK misc_dynamic; None: the configured weight


# Keyed by (service key, (real server ip, configured port)) — `RealServer.key`.
HealthKey = tuple[ServiceKey, tuple[IPAddress, int]]
Health = Mapping[HealthKey, ServerHealth]


@dataclass(frozen=True, slots=True)
class QuorumUp:
    """A virtual server reached quorum (run `quorum_up`)."""

    service: ServiceKey
    weight_sum: int
    threshold: int


@dataclass(frozen=True, slots=True)
class QuorumDown:
    """A virtual server lost quorum (run `quorum_down`)."""

    service: ServiceKey
    weight_sum: int
    threshold: int


@dataclass(frozen=True, slots=True)
class RealServerDown:
    """A live real server is reported down because its virtual server went away (omega)."""

    service: ServiceKey
    server: tuple[IPAddress, int]


@dataclass(frozen=True, slots=True)
class Conflict:
    """Two configured entries are one IPVS entry (e.g. fwmark 1 over TCP and over UDP, or
    a real server given with port 0 and with the virtual port): the later is ignored."""

    service: ServiceKey
    message: str


PolicyEvent = QuorumUp | QuorumDown | RealServerDown | Conflict


@dataclass(frozen=True, slots=True)
class PolicyState:
    """Per virtual server: whether quorum is up (absent: not evaluated yet)."""

    quorum: Mapping[ServiceKey, bool] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash(tuple(self.quorum.items()))


@dataclass(frozen=True, slots=True)
class PolicyResult:
    """The desired table, the state to pass to the next evaluation, and what changed."""

    table: Table
    state: PolicyState
    events: tuple[PolicyEvent, ...] = ()

    def __hash__(self) -> int:
        return hash((self.table, self.state, self.events))


_FORWARD = {"NAT": Forward.NAT, "DR": Forward.DR, "TUN": Forward.TUN}


def service_of(vs: VirtualServer) -> Service:
    """The IPVS service a virtual server configures (without destinations)."""
    flags = ServiceFlag.ONEPACKET if vs.ops else ServiceFlag.NONE
    if vs.fwmark is not None:
        return Service(
            fwmark=vs.fwmark,
            family=vs.family,
            scheduler=vs.lb_algo,
            flags=flags,
            timeout=vs.persistence_timeout,
        )
    return Service(
        Protocol[vs.protocol],
        vs.ip,
        vs.port or 0,
        scheduler=vs.lb_algo,
        flags=flags,
        timeout=vs.persistence_timeout,
    )


def managed_keys(servers: Sequence[VirtualServer]) -> frozenset[ServiceKey]:
    """The service keys hacluster owns for these virtual servers (for `reconcile`)."""
    return frozenset(service_of(vs).key for vs in servers)


def _dest_port(vs: VirtualServer, rs: RealServer) -> int:
    return rs.port if rs.port or vs.fwmark is not None else (vs.port or 0)


def _starts_down(vs: VirtualServer, rs: RealServer) -> bool:
    alpha = vs.alpha if rs.alpha is None else rs.alpha
    return alpha or any(check.alpha for check in rs.checks)


def _health(vs: VirtualServer, rs: RealServer, key: ServiceKey, health: Health) -> ServerHealth:
    if not rs.checks:
        return ServerHealth(True)
    found = health.get((key, rs.key))
    if found is None:
        return ServerHealth(not _starts_down(vs, rs))
    return found


def _destination(vs: VirtualServer, rs: RealServer, weight: int) -> Destination:
    return Destination(
        rs.ip,
        _dest_port(vs, rs),
        weight,
        _FORWARD[vs.forwarding(rs)],
        rs.uthreshold,
        rs.lthreshold,
    )


def evaluate_one(
    vs: VirtualServer, health: Health, was_up: bool | None
) -> tuple[Service, list[Destination], bool, list[PolicyEvent]]:
    """One virtual server: its service, destinations, new quorum state and events."""
    service = service_of(vs)
    key = service.key
    live: list[tuple[RealServer, int]] = []
    dead: list[RealServer] = []
    for rs in vs.real_servers:
        h = _health(vs, rs, key, health)
        if h.up:
            live.append((rs, rs.weight if h.weight is None else h.weight))
        else:
            dead.append(rs)
    weight_sum = sum(w for _, w in live)
    gain = vs.quorum + vs.hysteresis
    lose = vs.quorum - vs.hysteresis
    events: list[PolicyEvent] = []
    if was_up is None:
        up = weight_sum >= gain and weight_sum > 0
        events.append((QuorumUp if up else QuorumDown)(key, weight_sum, gain if up else lose))
    elif was_up:
        up = not (weight_sum < lose or weight_sum == 0)
        if not up:
            events.append(QuorumDown(key, weight_sum, lose))
    else:
        up = weight_sum >= gain and weight_sum > 0
        if up:
            events.append(QuorumUp(key, weight_sum, gain))

    sorry_in_use = not up and vs.sorry_server is not None
    dests: list[Destination] = []
    for rs, weight in live:
        if not sorry_in_use:
            dests.append(_destination(vs, rs, weight))
        elif vs.inhibits(rs):
            dests.append(_destination(vs, rs, 0))
    dests.extend(_destination(vs, rs, 0) for rs in dead if vs.inhibits(rs))
    seen: set[DestKey] = set()
    unique: list[Destination] = []
    for d in dests:
        if d.key in seen:
            events.append(Conflict(key, f"{vs}: real server {d.key} is given twice"))
        else:
            seen.add(d.key)
            unique.append(d)
    dests = unique
    if vs.sorry_server is not None and (sorry_in_use or vs.sorry_server_inhibit):
        sorry = vs.sorry_server
        kind = vs.sorry_server_lb_kind or vs.lb_kind
        port = sorry.port or (vs.port or 0)
        sorry_dest = Destination(sorry.host, port, 1 if sorry_in_use else 0, _FORWARD[kind])
        # A sorry server that is also a real server keeps its real-server entry.
        if sorry_dest.key not in {d.key for d in dests}:
            dests.append(sorry_dest)
    return service, dests, up, events


def evaluate(
    servers: Sequence[VirtualServer], health: Health, state: PolicyState | None = None
) -> PolicyResult:
    """The desired table for `servers` given `health`; `state` from the previous call."""
    previous = state.quorum if state is not None else {}
    quorum: dict[ServiceKey, bool] = {}
    pairs: list[tuple[Service, list[Destination]]] = []
    events: list[PolicyEvent] = []
    for vs in servers:
        key = service_of(vs).key
        if key in quorum:
            events.append(Conflict(key, f"{vs}: the same IPVS service as an earlier one"))
            continue
        service, dests, up, evs = evaluate_one(vs, health, previous.get(key))
        quorum[service.key] = up
        pairs.append((service, dests))
        events.extend(evs)
    return PolicyResult(Table.of(pairs), PolicyState(quorum), tuple(events))


def conflicts(servers: Sequence[VirtualServer]) -> list[str]:
    """Configured entries that collide in IPVS (for check-config), as messages."""
    return [e.message for e in evaluate(servers, {}).events if isinstance(e, Conflict)]


def on_removal(vs: VirtualServer, health: Health, state: PolicyState) -> list[PolicyEvent]:
    """What a removed (or shut down) virtual server reports: nothing unless `omega`."""
    if not vs.omega:
        return []
    key = service_of(vs).key
    events: list[PolicyEvent] = [
        RealServerDown(key, rs.key)
        for rs in vs.real_servers
        if _health(vs, rs, key, health).up
    ]
    if state.quorum.get(key, False):
        events.append(QuorumDown(key, 0, vs.quorum - vs.hysteresis))
    return events
