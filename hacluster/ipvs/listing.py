"""Render an IPVS table as `ipvsadm -L -n` prints it (plain, --stats, --rate) or as JSON,
and read that JSON back (`from_json`). Does no I/O.

The layout follows ipvsadm 1.31 exactly (checked against its format strings and code):
the same header lines, column widths, number abbreviations (K/M/G/T from 100 million
up) and sort order (services by fwmark, family,
protocol, address, port; destinations by address, port; comparisons done as ipvsadm's
C code does them, 32-bit wrap-around included).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from hacluster.ipvs.model import (
    Destination,
    DestKey,
    Forward,
    IPAddress,
    IpvsInfo,
    Protocol,
    Service,
    ServiceEntry,
    ServiceFlag,
    ServiceKey,
    Stats,
    Table,
    TableStats,
)

Mode = Literal["plain", "stats", "rate"]

_HEADER_PLAIN = (
    "Prot LocalAddress:Port Scheduler Flags\n"
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
)
_AF = {4: 2, 6: 10}  # AF_INET, AF_INET6: ipvsadm sorts IPv4 first


def _i32(value: int) -> int:
    """A C `int` holding an unsigned 32-bit difference (ipvsadm's comparisons wrap)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _words(address: IPAddress | None) -> tuple[int, int, int, int]:
    """The address as ipvsadm's `union nf_inet_addr` holds it, in host-order words."""
    if address is None:
        return (0, 0, 0, 0)
    if address.version == 4:
        return (int(address), 0, 0, 0)
    n = int(address)
    return (n >> 96, (n >> 64) & 0xFFFFFFFF, (n >> 32) & 0xFFFFFFFF, n & 0xFFFFFFFF)


def _cmp_addr(family: int, a: IPAddress | None, b: IPAddress | None) -> int:
    wa, wb = _words(a), _words(b)
    for i in range(4 if family == 6 else 1):
        r = _i32(wa[i] - wb[i])
        if r:
            return r
    return 0


def _cmp_services(s1: Service, s2: Service) -> int:
    r = _i32(s1.fwmark - s2.fwmark)
    if r:
        return r
    r = _AF[s1.family] - _AF[s2.family]
    if r:
        return r
    p1 = s1.protocol.value if s1.protocol else 0
    p2 = s2.protocol.value if s2.protocol else 0
    if p1 - p2:
        return p1 - p2
    r = _cmp_addr(s1.family, s1.address, s2.address)
    return r if r else s1.port - s2.port


def _dest_order(d1: DestKey, d2: DestKey) -> int:
    """ipvsadm's ipvs_cmp_dests: address words as the first destination's family, port."""
    r = _cmp_addr(d1.address.version, d1.address, d2.address)
    return r if r else d1.port - d2.port


_DEST_KEY = functools.cmp_to_key(_dest_order)


def _addrport(address: IPAddress | None, port: int) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return f"[{address}]:{port}"
    return f"{address}:{port}"


def largenum(value: int, *, exact: bool = False) -> str:
    """ipvsadm's print_largenum: 9 columns, abbreviated from 100 million up.

    The limits are ipvsadm 1.31's own (read from its code, not its man page): K below
    10^9, M below 10^11, G below 10^14, T above."""
    if exact:
        text = str(value)
        return text.rjust(9 if len(text) <= 8 else len(text) + 1)
    if value < 100_000_000:
        return f"{value:9d}"
    for limit, div, suffix in (
        (1_000_000_000, 1_000, "K"),
        (100_000_000_000, 1_000_000, "M"),
        (100_000_000_000_000, 1_000_000_000, "G"),
    ):
        if value < limit:
            return f"{value // div:8d}{suffix}"
    return f"{value // 1_000_000_000_000:8d}T"


def _sched_flags(service: Service) -> str:
    """ipvsadm's print_sched_flags, with its quirks: sh/mh never name flag-3, and the
    parentheses appear whenever any scheduler flag is set (so `sh ()` can happen)."""
    flags = service.flags
    if not flags & (ServiceFlag.SCHED1 | ServiceFlag.SCHED2 | ServiceFlag.SCHED3):
        return ""
    names: list[str] = []
    if service.scheduler in ("sh", "mh"):
        prefix = service.scheduler
        if flags & ServiceFlag.SCHED1:
            names.append(f"{prefix}-fallback")
        if flags & ServiceFlag.SCHED2:
            names.append(f"{prefix}-port")
    else:
        if flags & ServiceFlag.SCHED1:
            names.append("flag-1")
        if flags & ServiceFlag.SCHED2:
            names.append("flag-2")
        if flags & ServiceFlag.SCHED3:
            names.append("flag-3")
    return f" ({','.join(names)})"


def _service_name(service: Service) -> str:
    if service.fwmark:
        return f"FWM  {service.fwmark}" + (" IPv6" if service.family == 6 else "")
    assert service.protocol is not None
    name = f"{service.protocol.name:<4s} {_addrport(service.address, service.port)}"
    return name if service.family == 6 else name[:33]


_STATS_COLUMNS = ("conns", "inpkts", "outpkts", "inbytes", "outbytes")
_RATE_COLUMNS = ("cps", "inpps", "outpps", "inbps", "outbps")


def _numbers(stats: Stats, names: tuple[str, ...], kept: frozenset[str] | None,
             exact: bool) -> str:
    """The counters in ipvsadm's columns; one the dataplane does not keep shows "-"."""
    return "".join(largenum(getattr(stats, n), exact=exact) if kept is None or n in kept
                   else f"{'-':>9s}" for n in names)


def _service_line(service: Service, stats: Stats, mode: Mode, exact: bool,
                  kept: frozenset[str] | None = None) -> str:
    name = _service_name(service)
    if mode in ("stats", "rate"):
        columns = _STATS_COLUMNS if mode == "stats" else _RATE_COLUMNS
        return f"{name:<33s}" + _numbers(stats, columns, kept, exact)
    line = f"{name} {service.scheduler}{_sched_flags(service)}"
    if service.persistent:
        line += f" persistent {service.timeout}"
        if service.family == 4 and service.netmask != 32:
            mask = ipaddress.IPv4Network(f"0.0.0.0/{service.netmask}").netmask
            line += f" mask {mask}"
        if service.family == 6 and service.netmask != 128:
            line += f" mask {service.netmask}"
    if service.flags & ServiceFlag.ONEPACKET:
        line += " ops"
    return line


def _dest_line(
    entry: ServiceEntry, dkey: DestKey, stats: Stats, mode: Mode, exact: bool,
    kept: frozenset[str] | None = None,
) -> str:
    dest = entry.destinations[dkey]
    name = _addrport(dest.address, dest.port)
    if dest.address.version != 6:  # ipvsadm cuts at 28 by the destination's family
        name = name[:28]
    if mode == "stats" or (mode == "rate" and kept is not None):
        columns = _STATS_COLUMNS if mode == "stats" else _RATE_COLUMNS
        return f"  -> {name:<28s}" + _numbers(stats, columns, kept, exact)
    if kept is not None and "activeconns" not in kept:
        return f"  -> {name:<28s} {dest.forward.value:<7s} {dest.weight:<6d} {'-':<10s} -"
    if mode == "rate":
        return (
            f"  -> {name:<28s} {stats.cps:8d} {stats.inpps:8d} {stats.outpps:8d}"
            + largenum(stats.inbps, exact=exact)
            + largenum(stats.outbps, exact=exact)
        )
    return (
        f"  -> {name:<28s} {dest.forward.value:<7s} {dest.weight:<6d} "
        f"{stats.activeconns:<10d} {stats.inactconns:<10d}"
    )


def ordered(table: Table, sort: bool = True) -> list[ServiceEntry]:
    """The services in listing order: ipvsadm's sort, or the table's own order."""
    entries = list(table)
    if sort:
        entries.sort(key=functools.cmp_to_key(lambda a, b: _cmp_services(a.service, b.service)))
    return entries


def render(
    table: Table,
    stats: TableStats | None = None,
    *,
    mode: Mode = "plain",
    version: str = "1.2.1",
    size: int = 4096,
    sort: bool = True,
    exact: bool = False,
) -> str:
    """The table as `ipvsadm -L -n [--stats|--rate] [--nosort] [--exact]` prints it."""
    stats = stats or TableStats()
    out = [f"IP Virtual Server version {version} (size={size})\n"]
    if mode == "plain":
        out.append(_HEADER_PLAIN)
    else:
        columns = (
            ("Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
            if mode == "stats"
            else ("CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
        )
        out.append(
            f"{'Prot LocalAddress:Port':<33s} "
            + " ".join(f"{c:>8s}" for c in columns)
            + "\n  -> RemoteAddress:Port\n"
        )
    zero = Stats()
    for entry in ordered(table, sort):
        key = entry.service.key
        out.append(_service_line(entry.service, stats.services.get(key, zero), mode, exact,
                                 stats.service_kept))
        out.append("\n")
        for dkey in _dest_keys(entry, sort):
            dstats = stats.destinations.get((key, dkey), zero)
            out.append(_dest_line(entry, dkey, dstats, mode, exact, stats.destination_kept))
            out.append("\n")
    return "".join(out)


def _stats_json(stats: Stats, *, dest: bool, kept: frozenset[str] | None = None
                ) -> dict[str, int | None]:
    """The counters; null for one the dataplane does not keep."""
    fields: tuple[str, ...] = (
        "conns", "inpkts", "outpkts", "inbytes", "outbytes",
        "cps", "inpps", "outpps", "inbps", "outbps",
    )  # fmt: skip
    if dest:
        fields += ("activeconns", "inactconns", "persistconns")
    return {name: getattr(stats, name) if kept is None or name in kept else None
            for name in fields}


def _dest_keys(entry: ServiceEntry, sort: bool) -> list[DestKey]:
    dkeys = list(entry.destinations)
    if sort:
        dkeys.sort(key=_DEST_KEY)
    return dkeys


def destinations(entry: ServiceEntry, sort: bool = True) -> list[Destination]:
    """A service's destinations in listing order."""
    return [entry.destinations[dk] for dk in _dest_keys(entry, sort)]


def service_json(
    key: ServiceKey, entry: ServiceEntry, stats: TableStats, *, sort: bool = True
) -> dict[str, Any]:
    """One service (with destinations) as a JSON-ready dict."""
    s = entry.service
    zero = Stats()
    return {
        "family": s.family,
        "protocol": s.protocol.name if s.protocol else None,
        "address": str(s.address) if s.address is not None else None,
        "port": s.port,
        "fwmark": s.fwmark,
        "scheduler": s.scheduler,
        "flags": [f.name for f in ServiceFlag if f and f in s.flags and f.name],
        "persistence_timeout": s.timeout,
        "netmask": s.netmask,
        "stats": _stats_json(stats.services.get(key, zero), dest=False,
                             kept=stats.service_kept),
        "destinations": [
            {
                "address": str(d.address),
                "port": d.port,
                "weight": d.weight,
                "forward": d.forward.name,
                "u_threshold": d.u_threshold,
                "l_threshold": d.l_threshold,
                "stats": _stats_json(stats.destinations.get((key, dk), zero), dest=True,
                                     kept=stats.destination_kept),
            }
            for dk in _dest_keys(entry, sort)
            for d in (entry.destinations[dk],)
        ],
    }


def to_json(
    table: Table,
    stats: TableStats | None = None,
    *,
    sort: bool = True,
    info: IpvsInfo | None = None,
) -> dict[str, Any]:
    """The table as a JSON-ready dict: `{"services": [...]}` in listing order, plus
    `"info": {"version", "size"}` (ipvsadm's header) when `info` is given."""
    stats = stats or TableStats()
    services = []
    for entry in ordered(table, sort):
        services.append(service_json(entry.service.key, entry, stats, sort=sort))
    data: dict[str, Any] = {"services": services}
    if info is not None:
        data["info"] = {"version": info.version, "size": info.size}
    return data


# --------------------------------------------------------------------------- reading JSON back

_SERVICE_STATS = (
    "conns", "inpkts", "outpkts", "inbytes", "outbytes",
    "cps", "inpps", "outpps", "inbps", "outbps",
)  # fmt: skip
_DEST_STATS = (*_SERVICE_STATS, "activeconns", "inactconns", "persistconns")
_U64 = (1 << 64) - 1


class JsonTableError(ValueError):
    """JSON that is not a table as `to_json` writes it; the message names the bad field."""


def _field(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise JsonTableError(f"{where}: missing {key!r}")
    return obj[key]


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise JsonTableError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise JsonTableError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _int(obj: Mapping[str, Any], key: str, where: str, high: int = _U64) -> int:
    value = _field(obj, key, where)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise JsonTableError(f"{where}.{key}: expected an integer 0..{high}, got {value!r}")
    return value


def _str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = _field(obj, key, where)
    if not isinstance(value, str):
        raise JsonTableError(f"{where}.{key}: expected a string, got {value!r}")
    return value


def _address(obj: Mapping[str, Any], key: str, where: str) -> IPAddress:
    text = _str(obj, key, where)
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise JsonTableError(f"{where}.{key}: not an IP address: {text!r}") from None


_E = TypeVar("_E", Protocol, Forward)


def _enum_name(kind: type[_E], obj: Mapping[str, Any], key: str, where: str) -> _E:
    name = _str(obj, key, where)
    try:
        return kind[name]
    except KeyError:
        known = ", ".join(m.name for m in kind)
        raise JsonTableError(f"{where}.{key}: {name!r} is not one of {known}") from None


def _stats(value: Any, fields: tuple[str, ...], where: str,
           unknown: set[str] | None = None) -> Stats:
    """Counters from JSON; a null one (not kept by the dataplane) is added to `unknown`."""
    obj = _mapping(value, where)
    values = {}
    for name in fields:
        if obj.get(name, 0) is None:
            if unknown is not None:
                unknown.add(name)
            continue
        values[name] = _int(obj, name, where)
    return Stats(**values)


def _flags(value: Any, where: str) -> ServiceFlag:
    flags = ServiceFlag.NONE
    for name in _list(value, where):
        member = ServiceFlag.__members__.get(name) if isinstance(name, str) else None
        if member is None:
            raise JsonTableError(f"{where}: unknown service flag {name!r}")
        flags |= member
    return flags


def _service(obj: Mapping[str, Any], where: str) -> Service:
    fields: dict[str, Any] = {
        "protocol": None
        if _field(obj, "protocol", where) is None
        else _enum_name(Protocol, obj, "protocol", where),
        "address": None
        if _field(obj, "address", where) is None
        else _address(obj, "address", where),
        "port": _int(obj, "port", where, 65535),
        "fwmark": _int(obj, "fwmark", where, 0xFFFFFFFF),
        "family": _int(obj, "family", where, 255),
        "scheduler": _str(obj, "scheduler", where),
        "flags": _flags(_field(obj, "flags", where), f"{where}.flags"),
        "timeout": _int(obj, "persistence_timeout", where, 0xFFFFFFFF),
        "netmask": _int(obj, "netmask", where, 128),
    }
    try:
        return Service(**fields)
    except ValueError as exc:  # the fields are each fine but do not fit together
        raise JsonTableError(f"{where}: {exc}") from None


def _destination(obj: Mapping[str, Any], where: str) -> Destination:
    # Every field is range-checked here, so the constructor has nothing left to refuse.
    return Destination(
        address=_address(obj, "address", where),
        port=_int(obj, "port", where, 65535),
        weight=_int(obj, "weight", where, 0x7FFFFFFF),
        forward=_enum_name(Forward, obj, "forward", where),
        u_threshold=_int(obj, "u_threshold", where, 0xFFFFFFFF),
        l_threshold=_int(obj, "l_threshold", where, 0xFFFFFFFF),
    )


def from_json(data: Any) -> tuple[Table, TableStats]:
    """The inverse of `to_json`: the table (in the JSON's order) and its statistics.

    `to_json` writes zero counters for a service or destination that has none, so
    all-zero statistics are left out here; `render` shows a missing entry as zeros, so
    the listing is the same either way. Fields this version does not know are ignored;
    anything else that is not as `to_json` writes it raises `JsonTableError` (a
    `ValueError`) naming the field, e.g. `services[2].destinations[0].port`."""
    root = _mapping(data, "table")
    zero = Stats()
    entries: list[tuple[Service, list[Destination]]] = []
    service_stats: dict[ServiceKey, Stats] = {}
    dest_stats: dict[tuple[ServiceKey, DestKey], Stats] = {}
    seen: set[ServiceKey] = set()
    unknown_service: set[str] = set()
    unknown_dest: set[str] = set()
    for i, item in enumerate(_list(_field(root, "services", "table"), "services")):
        where = f"services[{i}]"
        obj = _mapping(item, where)
        service = _service(obj, where)
        key = service.key
        if key in seen:
            raise JsonTableError(f"{where}: duplicate service {key}")
        seen.add(key)
        stats = _stats(_field(obj, "stats", where), _SERVICE_STATS, f"{where}.stats",
                       unknown_service)
        if stats != zero:
            service_stats[key] = stats
        dests: list[Destination] = []
        dkeys: set[DestKey] = set()
        raw = _list(_field(obj, "destinations", where), f"{where}.destinations")
        for j, ditem in enumerate(raw):
            dwhere = f"{where}.destinations[{j}]"
            dobj = _mapping(ditem, dwhere)
            dest = _destination(dobj, dwhere)
            if dest.key in dkeys:
                raise JsonTableError(f"{dwhere}: duplicate destination {dest.key}")
            dkeys.add(dest.key)
            dests.append(dest)
            dstats = _stats(_field(dobj, "stats", dwhere), _DEST_STATS, f"{dwhere}.stats",
                            unknown_dest)
            if dstats != zero:
                dest_stats[(key, dest.key)] = dstats
        entries.append((service, dests))
    return Table.of(entries), TableStats(
        service_stats, dest_stats,
        service_kept=frozenset(_SERVICE_STATS) - unknown_service if unknown_service else None,
        destination_kept=frozenset(_DEST_STATS) - unknown_dest if unknown_dest else None,
    )


def info_from_json(data: Any) -> IpvsInfo:
    """ipvsadm's header values from `to_json(..., info=...)` output; the defaults that a
    stock kernel reports when the JSON carries none."""
    root = _mapping(data, "table")
    if root.get("info") is None:
        return IpvsInfo()
    obj = _mapping(root["info"], "info")
    version = _str(obj, "version", "info")
    if not version or not version.isprintable() or len(version) > 32:
        raise JsonTableError(f"info.version: not a version: {version!r}")
    return IpvsInfo(version=version, size=_int(obj, "size", "info", 0xFFFFFFFF))
