"""nftables dataplane for kernels without IPVS: weighted DNAT in a table owned by hacluster.

Layout of `table inet hacluster` (the name is configurable):

- `prerouting` and `output` (type nat) dispatch a new connection in O(1): first on the
  packet mark (`fwmark4_gN`/`fwmark6_gN` verdict maps, as IPVS looks up fwmark services
  first), then on `daddr . l4proto . dport` (`dispatch4_gN`/`dispatch6_gN`), jumping to
  the service's chain.
- Per service `svc_ID`: one rule,
  `meta l4proto P counter name c_ID dnat to EXPR map @d_ID_gN` (the named counter counts
  the service's connections and survives rewrites), where `d_ID_gN` maps slots to
  destinations (`flags interval`, each destination owning as many slots as its weight)
  and EXPR picks a slot: `numgen random mod W` (wrr), `numgen inc mod N` (rr; every live
  destination one slot) or `jhash ip saddr mod W seed 0` (sh; `. th sport` with the
  sh-port flag). With no live destination the rule rejects. The rule's comment holds
  the scheduler, flags and generation N.
- Per service `w_ID_gN`: every destination and its weight (weight-0 ones included), so
  that `dump()` reads back exactly the table that was applied.
- Maps are replaced, never edited: see `NftState`.

Only what nftables can carry out faithfully is accepted: rr, wrr and sh schedulers,
NAT forwarding, no persistence, no thresholds, no one-packet scheduling. Anything else
is refused with a message naming the service and the limitation (`unsupported()` lets
the config checker report it before the daemon starts).

Every `apply()` switches in one `nft -f` transaction, so an update is atomic; the new
maps it switches to are committed by one transaction before it (see `_two_phase`). Only
the services an update touches are rewritten; if that fails (someone edited the table by
hand), the whole table is rewritten in place instead (base chains and their hooks kept),
or, as a last resort, replaced. Established connections live in
conntrack and are not affected by any update. IP forwarding must be on
(`net.ipv4.ip_forward`, `net.ipv6.conf.all.forwarding`), and real servers must route
their replies through the director, as with IPVS NAT.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import re
import shutil
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hacluster.ipvs.backend import (
    ApplyResult,
    BackendError,
    BackendUnavailable,
    Op,
    OpFailure,
    op_service,
)
from hacluster.ipvs.memory import apply_ops
from hacluster.ipvs.model import (
    Destination,
    DestKey,
    Forward,
    IPAddress,
    Protocol,
    Service,
    ServiceEntry,
    ServiceFlag,
    ServiceKey,
    Stats,
    Table,
    TableStats,
)

SCHEDULERS = ("rr", "wrr", "sh")
NETNS_DIR = Path("/run/netns")
_MAX_SLOTS = 0xFFFFFFFF
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_CHAIN_RE = re.compile(r"^svc_([tusf])([46])_([0-9a-f]+)(?:_(\d+))?$")
_PROTO_LETTER = {Protocol.TCP: "t", Protocol.UDP: "u", Protocol.SCTP: "s"}
_LETTER_PROTO = {v: k for k, v in _PROTO_LETTER.items()}


class NftablesUnsupported(BackendError):
    """The table asks for something the nftables dataplane cannot do."""


def service_id(key: ServiceKey) -> str:
    """Stable name fragment for a service: `t4_0a000001_80`, `f6_5`."""
    if key.fwmark:
        return f"f{key.family}_{key.fwmark:x}"
    assert key.protocol is not None and key.address is not None
    width = 8 if key.family == 4 else 32
    return f"{_PROTO_LETTER[key.protocol]}{key.family}_{int(key.address):0{width}x}_{key.port}"


def _key_from_chain(name: str) -> ServiceKey | None:
    m = _CHAIN_RE.match(name)
    if m is None:
        return None
    letter, family, hexval, port = m.group(1), int(m.group(2)), m.group(3), m.group(4)
    if letter == "f":
        return ServiceKey(family, None, None, 0, int(hexval, 16))
    address: IPAddress = (
        ipaddress.IPv4Address(int(hexval, 16))
        if family == 4
        else ipaddress.IPv6Address(int(hexval, 16))
    )
    return ServiceKey(family, _LETTER_PROTO[letter], address, int(port or 0))


def check_entry(entry: ServiceEntry) -> list[str]:
    """Why nftables cannot carry out this service (empty when it can)."""
    s = entry.service
    problems: list[str] = []
    if s.scheduler not in SCHEDULERS:
        problems.append(
            f"{s.key}: scheduler {s.scheduler!r} is not available with dataplane nftables "
            f"(only {', '.join(SCHEDULERS)}); use dataplane: ipvs for it"
        )
    if s.persistent:
        problems.append(f"{s.key}: persistence is not available with dataplane nftables")
    allowed = ServiceFlag.SCHED2 if s.scheduler == "sh" and s.protocol else ServiceFlag.NONE
    if s.flags & ~allowed:
        problems.append(
            f"{s.key}: service flags {s.flags!r} are not available with dataplane nftables"
            " (only sh-port, with sh on a TCP/UDP/SCTP service)"
        )
    for d in entry.destinations.values():
        if d.forward is not Forward.NAT:
            problems.append(
                f"{s.key}: real server {d.key} uses lb_kind {d.forward.name}; "
                "dataplane nftables does NAT only"
            )
        if d.u_threshold or d.l_threshold:
            problems.append(
                f"{s.key}: real server {d.key} has connection thresholds; "
                "not available with dataplane nftables"
            )
        if d.address.version != s.family:
            problems.append(f"{s.key}: real server {d.key} is not IPv{s.family}")
        if s.fwmark and d.port:
            problems.append(
                f"{s.key}: real server {d.key}: with dataplane nftables a fwmark "
                "service keeps the client's port (give port 0)"
            )
        if not s.fwmark and not d.port:
            problems.append(f"{s.key}: real server {d.key} needs a port")
    total = sum(d.weight for d in entry.destinations.values())
    if total > _MAX_SLOTS:
        problems.append(f"{s.key}: total weight {total} exceeds {_MAX_SLOTS}")
    return problems


def unsupported(table: Table) -> list[str]:
    """Every reason nftables cannot carry out `table` (empty when it can)."""
    return [p for entry in table for p in check_entry(entry)]


# --------------------------------------------------------------------------- script text


def _nft_addr(address: IPAddress) -> str:
    return str(address)


def _ip(family: int) -> str:
    return "ip" if family == 4 else "ip6"


def _dest_value(key: ServiceKey, d: Destination) -> str:
    return _nft_addr(d.address) if key.fwmark else f"{_nft_addr(d.address)} . {d.port}"


def _dest_map_decl(key: ServiceKey) -> str:
    ip = _ip(key.family)
    if key.fwmark:
        return f"typeof numgen random mod 1 : {ip} daddr; flags interval;"
    assert key.protocol is not None
    return (
        f"typeof numgen random mod 1 : {ip} daddr . {key.protocol.name.lower()} dport; "
        "flags interval;"
    )


def _weight_map_decl(family: int) -> str:
    addr = "ipv4_addr" if family == 4 else "ipv6_addr"
    return f"type {addr} . inet_service : mark;"


def _slots(entry: ServiceEntry) -> list[str]:
    key = entry.service.key
    out: list[str] = []
    start = 0
    rr = entry.service.scheduler == "rr"
    for d in entry.destinations.values():
        if d.weight <= 0:
            continue
        width = 1 if rr else d.weight
        end = start + width - 1
        slot = str(start) if start == end else f"{start}-{end}"
        out.append(f"{slot} : {_dest_value(key, d)}")
        start = end + 1
    return out


def _dispatch_element(key: ServiceKey) -> tuple[str, str]:
    """(map base name, element) of the service's entry in the dispatch verdict maps."""
    sid = service_id(key)
    if key.fwmark:
        return f"fwmark{key.family}", f"{key.fwmark} : jump svc_{sid}"
    assert key.protocol is not None and key.address is not None
    return (
        f"dispatch{key.family}",
        f"{_nft_addr(key.address)} . {key.protocol.name.lower()} . {key.port} : jump svc_{sid}",
    )


_DISPATCH_TYPES = {
    "fwmark4": "mark",
    "fwmark6": "mark",
    "dispatch4": "ipv4_addr . inet_proto . inet_service",
    "dispatch6": "ipv6_addr . inet_proto . inet_service",
}
_BASE_RULES = (
    ("fwmark4", "meta nfproto ipv4 meta mark vmap"),
    ("fwmark6", "meta nfproto ipv6 meta mark vmap"),
    ("dispatch4", "ip daddr . meta l4proto . th dport vmap"),
    ("dispatch6", "ip6 daddr . meta l4proto . th dport vmap"),
)
_BASE_CHAINS = (("prerouting", "prerouting", "dstnat"), ("output", "output", "-100"))


def _map(t: str, name: str, decl: str, elements: Sequence[str]) -> str:
    body = f"elements = {{ {', '.join(elements)} }}; " if elements else ""
    return f"add map {t} {name} {{ {decl} {body}}}"


@dataclass(frozen=True, slots=True)
class NftState:
    """What hacluster's nftables table holds: the IPVS table and the object generations.

    Maps are never edited in place (nftables would read every element of the table
    back first, ~0.6 s at 10,000 destinations): a changed service gets new maps named
    with the next generation, its rule is pointed at them and the old ones are deleted,
    all in the same transaction. The dispatch maps are likewise rebuilt whole when the
    set of services changes.
    """

    table: Table = field(default_factory=Table)
    gens: Mapping[ServiceKey, int] = field(default_factory=dict)
    dispatch_gen: int = 0  # 0: the base (chains and dispatch maps) is missing or damaged

    def __hash__(self) -> int:
        return hash((self.table, tuple(self.gens.items()), self.dispatch_gen))


def _service_objects(entry: ServiceEntry, t: str, gen: int) -> list[str]:
    """The maps of one service at generation `gen`, and its rule pointing at them."""
    s = entry.service
    key = s.key
    sid = service_id(key)
    weights = [
        f"{_nft_addr(d.address)} . {d.port} : {d.weight}" for d in entry.destinations.values()
    ]
    lines = [
        _map(t, f"d_{sid}_g{gen}", _dest_map_decl(key), _slots(entry)),
        _map(t, f"w_{sid}_g{gen}", _weight_map_decl(key.family), weights),
        f"flush chain {t} svc_{sid}",
    ]
    ip = _ip(s.family)
    live = [d for d in entry.destinations.values() if d.weight > 0]
    match = f"meta l4proto {s.protocol.name.lower()} " if s.protocol is not None else ""
    comment = f'comment "sched={s.scheduler} flags={int(s.flags)} gen={gen}"'
    head = f"add rule {t} svc_{sid} {match}counter name c_{sid}"
    if not live:
        lines.append(f"{head} reject {comment}")
        return lines
    if s.scheduler == "rr":
        expr = f"numgen inc mod {len(live)}"
    elif s.scheduler == "sh":
        source = f"{ip} saddr"
        if s.flags & ServiceFlag.SCHED2 and s.protocol is not None:
            source += " . th sport"
        expr = f"jhash {source} mod {sum(d.weight for d in live)} seed 0x0"
    else:
        expr = f"numgen random mod {sum(d.weight for d in live)}"
    lines.append(f"{head} dnat {ip} to {expr} map @d_{sid}_g{gen} {comment}")
    return lines


def _dispatch_objects(table: Table, t: str, gen: int) -> list[str]:
    """Dispatch maps at generation `gen` holding every service, and the base chains' rules."""
    elements: dict[str, list[str]] = {name: [] for name in _DISPATCH_TYPES}
    for key in table.entries:
        vmap, element = _dispatch_element(key)
        elements[vmap].append(element)
    lines = [
        _map(t, f"{name}_g{gen}", f"type {kind} : verdict;", elements[name])
        for name, kind in _DISPATCH_TYPES.items()
    ]
    for chain, hook, prio in _BASE_CHAINS:
        lines += [
            f"add chain {t} {chain} {{ type nat hook {hook} priority {prio}; policy accept; }}",
            f"flush chain {t} {chain}",
        ]
        lines += [f"add rule {t} {chain} {match} @{name}_g{gen}" for name, match in _BASE_RULES]
    return lines


#: Object kinds a rewrite in place knows how to remove (anything else: the table is
#: replaced whole).
_REWRITABLE = ("chain", "map", "set", "counter", "rule", "table", "metainfo")


def existing_objects(data: Mapping[str, Any]) -> dict[str, list[str]] | None:
    """Names of the chains, maps, sets and counters in a `nft -j list table` output, or
    None when it holds a kind of object that a rewrite in place would not remove."""
    found: dict[str, list[str]] = {"chain": [], "map": [], "set": [], "counter": []}
    for obj in data.get("nftables", []):
        for kind, body in obj.items():
            if kind not in _REWRITABLE:
                return None
            if kind in found:
                found[kind].append(str(body["name"]))
    return found


def full_script(
    table: Table, name: str = "hacluster", existing: Mapping[str, list[str]] | None = None
) -> tuple[str, NftState]:
    """One transaction that makes the whole nftables table `table`.

    With `existing` (what the table holds now, from `existing_objects`) the table is
    rewritten in place: its rules flushed, the other objects deleted and made anew, but
    the base chains, and so their netfilter hooks, stay. Deleting and re-adding the
    table would unhook and rehook the NAT chains, and a connection starting at that
    moment can miss NAT (measured here: about one in 80 rewrites under traffic). Named
    counters of services that stay are kept.
    """
    t = f"inet {name}"
    gen = 1
    if existing is None:
        lines = [f"add table {t}", f"delete table {t}", f"add table {t}"]
    else:
        # New maps get names of a generation above any there: they are made (and
        # committed) before the switch, next to the old ones.
        found = [int(m.group(1)) for n in existing.get("map", []) if (m := _GEN_RE.search(n))]
        gen = max(found, default=0) + 1
        sids = [service_id(key) for key in table.entries]
        keep_counters = {f"c_{sid}" for sid in sids}
        # Chains that stay (base chains, services still wanted) are only flushed: the
        # new dispatch maps, made first, already jump to the services' chains.
        keep_chains = {chain for chain, _, _ in _BASE_CHAINS} | {f"svc_{sid}" for sid in sids}
        lines = [f"add table {t}", f"flush table {t}"]
        lines += [f"delete map {t} {m}" for m in existing.get("map", [])]
        lines += [f"delete set {t} {m}" for m in existing.get("set", [])]
        lines += [
            f"delete chain {t} {c}" for c in existing.get("chain", []) if c not in keep_chains
        ]
        lines += [
            f"delete counter {t} {c}" for c in existing.get("counter", [])
            if c not in keep_counters
        ]
    for entry in table:
        sid = service_id(entry.service.key)
        lines += [f"add chain {t} svc_{sid}", f"add counter {t} c_{sid}"]
        lines += _service_objects(entry, t, gen)
    lines += _dispatch_objects(table, t, gen)
    state = NftState(table, {key: gen for key in table.entries}, gen)
    if existing is None:  # a new table: nothing uses it yet, one transaction will do
        return "\n".join(lines) + "\n", state
    return _two_phase(lines), state


def update_script(old: NftState, new: Table, name: str = "hacluster") -> tuple[str, NftState]:
    """One transaction that rewrites only the services that differ (empty when none do)."""
    t = f"inet {name}"
    lines: list[str] = []
    gens = dict(old.gens)
    for key, entry in new.entries.items():
        before = old.table.entries.get(key)
        if before == entry:
            continue
        sid = service_id(key)
        if before is None:
            lines += [f"add chain {t} svc_{sid}", f"add counter {t} c_{sid}"]
        gen = gens.get(key, 0) + 1
        lines += _service_objects(entry, t, gen)
        if before is not None:
            lines += [f"delete map {t} d_{sid}_g{gen - 1}", f"delete map {t} w_{sid}_g{gen - 1}"]
        gens[key] = gen
    dispatch_gen = old.dispatch_gen
    if new.entries.keys() != old.table.entries.keys():
        dispatch_gen += 1
        lines += _dispatch_objects(new, t, dispatch_gen)
        lines += [f"delete map {t} {m}_g{dispatch_gen - 1}" for m in _DISPATCH_TYPES]
    for key in old.table.entries.keys() - new.entries.keys():
        sid = service_id(key)
        gen = gens.pop(key)
        lines += [
            f"flush chain {t} svc_{sid}",
            f"delete chain {t} svc_{sid}",
            f"delete map {t} d_{sid}_g{gen}",
            f"delete map {t} w_{sid}_g{gen}",
            f"delete counter {t} c_{sid}",
        ]
    state = NftState(new, gens, dispatch_gen)
    return _two_phase(lines), state


#: The only counter nftables keeps: new connections per service (the NAT rule's named
#: counter). Packets, bytes, rates and per-destination counts are not kept.
NFT_KEPT = frozenset({"conns"})

#: Separates a script's two transactions (see `_two_phase`); a comment to nft.
SWITCH = "# switch"
_GEN_RE = re.compile(r"_g(\d+)$")


def _two_phase(lines: list[str]) -> str:
    """The new maps first, in a transaction of their own; then, in one more, the rules
    switched over to them and the old objects deleted.

    The switch is atomic either way. Committing the new maps one transaction earlier is
    because a rule and an interval map created in the same transaction were measured to
    miss lookups for an instant after the commit: about one new connection in a hundred
    updates under traffic fell through NAT to the director itself (refused). With the
    maps committed first, none did in the same trials.
    """
    if not lines:
        return ""
    maps = [line for line in lines if line.startswith("add map ")]
    rest = [line for line in lines if not line.startswith("add map ")]
    if not maps or not rest:
        return "\n".join(lines) + "\n"
    return "\n".join([*maps, SWITCH, *rest]) + "\n"


# --------------------------------------------------------------------------- reading back


@functools.lru_cache(maxsize=1 << 16)
def _to_address(value: Any) -> IPAddress:
    # Cached: a periodic read-back of 10,000 destinations parses the same addresses each
    # time, and parsing them was half of the read-back's time in the event loop.
    return ipaddress.ip_address(str(value))


PARSE_SLICE = 1000
"""Map elements parsed between two yields of `parse_steps`."""


def _dispatch_gen(objects: list[dict[str, Any]]) -> int:
    """The generation the base chains use, or 0 when the base is not intact."""
    maps = {obj["map"]["name"] for obj in objects if "map" in obj}
    chains = {obj["chain"]["name"] for obj in objects if "chain" in obj}
    refs: dict[str, list[str]] = {chain: [] for chain, _, _ in _BASE_CHAINS}
    for obj in objects:
        if "rule" in obj and obj["rule"]["chain"] in refs:
            for expr in obj["rule"].get("expr", []):
                if "vmap" in expr:
                    refs[obj["rule"]["chain"]].append(str(expr["vmap"].get("data", "")))
    first = refs["prerouting"][:1]
    m = re.match(r"^@fwmark4_g(\d+)$", first[0]) if first else None
    if m is None or not chains >= set(refs):
        return 0
    gen = int(m.group(1))
    want = [f"@{name}_g{gen}" for name, _ in _BASE_RULES]
    if any(r != want for r in refs.values()) or not {w[1:] for w in want} <= maps:
        return 0
    return gen


def _advance(steps: Generator[None, None, tuple[NftState, TableStats]],
             ) -> tuple[NftState, TableStats] | None:
    """One step of `parse_steps`: its result once it is done, else None."""
    try:
        next(steps)
    except StopIteration as done:
        result: tuple[NftState, TableStats] = done.value
        return result
    return None


def parse_ruleset(data: dict[str, Any]) -> tuple[NftState, TableStats]:
    """What `nft -j list table inet NAME` shows: the state, and connections per service."""
    steps = parse_steps(data)
    while (result := _advance(steps)) is None:
        pass
    return result


async def parse_sliced(data: dict[str, Any]) -> tuple[NftState, TableStats]:
    """`parse_ruleset`, yielding to the event loop every `PARSE_SLICE` elements (a table
    of 10,000 destinations is read back periodically: the loop must not stop for it)."""
    steps = parse_steps(data)
    while (result := _advance(steps)) is None:
        await asyncio.sleep(0)
    return result


def parse_steps(data: dict[str, Any]) -> Generator[None, None, tuple[NftState, TableStats]]:
    """`parse_ruleset`'s work, pausing (yielding None) every `PARSE_SLICE` elements."""
    objects: list[dict[str, Any]] = list(data.get("nftables", []))
    weights: dict[str, list[tuple[IPAddress, int, int]]] = {}
    rules: dict[str, dict[str, Any]] = {}
    chains: list[str] = []
    counters: dict[str, int] = {}
    for obj in objects:
        if "counter" in obj and obj["counter"]["name"].startswith("c_"):
            counters[obj["counter"]["name"][2:]] = int(obj["counter"].get("packets", 0))
        elif "map" in obj and obj["map"]["name"].startswith("w_"):
            elems: list[tuple[IPAddress, int, int]] = []
            for k, v in obj["map"].get("elem", []):
                addr, port = k["concat"]
                elems.append((_to_address(addr), int(port), int(v)))
                if len(elems) % PARSE_SLICE == 0:
                    yield
            weights[obj["map"]["name"][2:]] = elems
        elif "chain" in obj and obj["chain"]["name"].startswith("svc_"):
            chains.append(obj["chain"]["name"])
        elif "rule" in obj and obj["rule"]["chain"].startswith("svc_"):
            rules[obj["rule"]["chain"]] = obj["rule"]
    pairs: list[tuple[Service, list[Destination]]] = []
    gens: dict[ServiceKey, int] = {}
    conns: dict[ServiceKey, Stats] = {}
    for chain in chains:
        key = _key_from_chain(chain)
        rule = rules.get(chain)
        if key is None or rule is None:
            continue  # not ours, or emptied by hand: reconcile will rebuild it
        attrs = dict(
            part.split("=", 1) for part in str(rule.get("comment", "")).split() if "=" in part
        )
        sid = chain[4:]
        gen = int(attrs.get("gen", "0"))
        if f"{sid}_g{gen}" not in weights:
            continue
        service = Service(
            key.protocol,
            key.address,
            key.port,
            key.fwmark,
            key.family,
            scheduler=attrs.get("sched", "wrr"),
            flags=ServiceFlag(int(attrs.get("flags", "0"))),
        )
        dests = []
        for a, p, w in weights[f"{sid}_g{gen}"]:
            dests.append(Destination(a, p, w))
            if len(dests) % PARSE_SLICE == 0:
                yield
        dests.sort(key=lambda d: (int(d.address), d.port))
        pairs.append((service, dests))
        gens[key] = gen
        conns[key] = Stats(conns=counters.get(sid, 0))
    entries: dict[ServiceKey, ServiceEntry] = {}
    for service, dest_list in pairs:  # Table.of's work, in slices
        if service.key in entries:
            raise ValueError(f"duplicate service {service.key}")
        by_key: dict[DestKey, Destination] = {}
        for count, dest in enumerate(dest_list, 1):
            if dest.key in by_key:
                raise ValueError(f"duplicate destination {dest.key} in {service.key}")
            by_key[dest.key] = dest
            if count % PARSE_SLICE == 0:
                yield
        entries[service.key] = ServiceEntry(service, by_key)
    table = Table(entries)
    stats = TableStats(conns, {}, service_kept=NFT_KEPT, destination_kept=frozenset())
    return NftState(table, gens, _dispatch_gen(objects)), stats


# --------------------------------------------------------------------------- the backend


class NftablesBackend:
    """The nftables dataplane, optionally inside a named network namespace."""

    def __init__(
        self, *, netns: str | None = None, table: str = "hacluster", nft: str = "nft"
    ) -> None:
        if netns is not None and not _NAME_RE.match(netns):
            raise ValueError(f"bad network namespace name {netns!r}")
        if not _NAME_RE.match(table):
            raise ValueError(f"bad nftables table name {table!r}")
        self._netns = netns
        self._table = table
        self._nft = nft
        self._state: NftState | None = None  # what we believe nftables holds
        # The latest listing parsed, without its counters, and its state: the table read
        # back every reconcile_interval is most often the same, and 10,000 destinations
        # are not parsed again for it.
        self._parsed: tuple[list[Any], NftState] | None = None
        # The objects of the last listing, while no transaction has run since (a rewrite
        # of the whole table right after a dump need not list the table again).
        self._listed: tuple[dict[str, list[str]] | None] | None = None
        self._lock = asyncio.Lock()  # one read-modify-write at a time
        self.transactions = 0  # nft -f runs (full or incremental)
        self.full_rewrites = 0

    @property
    def name(self) -> str:
        return "nftables" if self._netns is None else f"nftables@{self._netns}"

    def _argv(self, *args: str) -> list[str]:
        base = [self._nft, *args]
        return ["ip", "netns", "exec", self._netns, *base] if self._netns else base

    async def _run(self, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
        if shutil.which(self._nft) is None:
            raise BackendUnavailable(f"{self._nft} not found: install nftables")
        if self._netns is not None and not (NETNS_DIR / self._netns).exists():
            raise BackendError(f"no network namespace {self._netns!r}")
        proc = await asyncio.create_subprocess_exec(
            *self._argv(*args),
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    async def _list(self) -> dict[str, Any] | None:
        rc, out, err = await self._run("-j", "list", "table", "inet", self._table)
        if rc != 0:
            if "No such file or directory" in err and "network namespace" not in err:
                return None  # our table does not exist (yet)
            raise BackendError(f"nft list table inet {self._table} failed: {err.strip()}")
        try:
            data: dict[str, Any] = json.loads(out)
        except json.JSONDecodeError as exc:
            raise BackendError(f"nft -j printed something that is not JSON: {exc}") from exc
        return data

    async def dump(self) -> Table:
        async with self._lock:
            return await self._dump()

    async def _dump(self) -> Table:
        data = await self._list()
        self._listed = (existing_objects(data) if data is not None else None,)
        if data is None:
            self._state = NftState()
            return Table()
        # Named counters move with the traffic; nothing else in an unchanged table does.
        shape = [obj for obj in data.get("nftables", []) if "counter" not in obj]
        parsed, self._parsed = self._parsed, None
        if parsed is not None and parsed[0] == shape:
            self._state = parsed[1]
        else:
            try:
                # A damaged base (hand-edited) makes the next apply replace the whole table.
                self._state = (await parse_sliced(data))[0]
            except (KeyError, ValueError, TypeError) as exc:
                raise BackendError(f"cannot read nftables table {self._table}: {exc}") from exc
        self._parsed = (shape, self._state)
        return self._state.table

    async def stats(self) -> TableStats:
        """Connections per service (the NAT rule's named counter); nothing else is kept."""
        data = await self._list()
        if data is None:
            return TableStats(service_kept=NFT_KEPT, destination_kept=frozenset())
        try:
            return parse_ruleset(data)[1]
        except (KeyError, ValueError, TypeError) as exc:
            raise BackendError(f"cannot read nftables table {self._table}: {exc}") from exc

    async def transact(self, script: str) -> None:
        """Run a script's transactions (one `nft -f` each, split at SWITCH lines);
        raise BackendError with nft's message on the first failure."""
        self._listed = None
        for part in script.split(f"\n{SWITCH}\n"):
            rc, _out, err = await self._run("-f", "-", stdin=part)
            self.transactions += 1
            if rc != 0:
                raise BackendError(f"nft -f failed: {err.strip()}")

    async def replace(self, table: Table) -> None:
        """Make the nftables table exactly `table`, in one transaction."""
        problems = unsupported(table)
        if problems:
            raise NftablesUnsupported("; ".join(problems))
        if self._listed is not None:
            (existing,) = self._listed
        else:
            data = await self._list()
            existing = existing_objects(data) if data is not None else None
        script, state = full_script(table, self._table, existing)
        try:
            await self.transact(script)
        except BackendError:
            if existing is None:
                raise
            # A table edited by hand beyond what a rewrite in place can mend (a base
            # chain with another hook, say): replace it whole.
            script, state = full_script(table, self._table)
            await self.transact(script)
        self.full_rewrites += 1
        self._state = state

    async def apply(self, ops: Sequence[Op]) -> ApplyResult:
        async with self._lock:
            return await self._apply(ops)

    async def _apply(self, ops: Sequence[Op]) -> ApplyResult:
        if self._state is None:
            await self._dump()
        assert self._state is not None
        known = self._state
        old = known.table
        new, result = apply_ops(old, ops)
        failed = list(result.failed)
        # Services nftables cannot carry are left as they were, their ops reported.
        bad: dict[ServiceKey, list[str]] = {}
        for entry in new:
            problems = check_entry(entry)
            if problems:
                bad[entry.service.key] = problems
        if bad:
            entries = dict(new.entries)
            for key in bad:
                if key in old.entries:
                    entries[key] = old.entries[key]
                else:
                    del entries[key]
            new = Table(entries)
            refused = {id(f.op) for f in failed}
            for op in ops:
                key = op_service(op)
                if key in bad and id(op) not in refused:
                    failed.append(OpFailure(op, "; ".join(bad[key])))
        if new != old or not known.dispatch_gen:
            try:
                if known.dispatch_gen:
                    script, state = update_script(known, new, self._table)
                    await self.transact(script)
                    self._state = state
                else:
                    await self.replace(new)
            except BackendError:
                try:
                    await self.replace(new)
                except BackendError as exc:
                    self._state = None  # unknown now: read it back next time
                    return ApplyResult(0, tuple(OpFailure(op, str(exc)) for op in ops))
        return ApplyResult(len(ops) - len(failed), tuple(failed))

    async def remove(self) -> None:
        """Delete hacluster's nftables table (at stop, when configured to clean up)."""
        async with self._lock:
            t = f"inet {self._table}"
            await self.transact(f"add table {t}\ndelete table {t}\n")
            self._state = NftState()

    async def close(self) -> None:
        return None
