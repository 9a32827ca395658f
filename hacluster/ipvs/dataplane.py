"""Choose and open an IPVS backend by name (netlink, nftables, memory), detecting what runs.

The netlink module is imported only when asked for, so a machine without pyroute2's
IPVS support, or a build without it, still runs the nftables and memory backends.
The netlink backend is `hacluster.ipvs.netlink.NetlinkBackend(netns=...)`.
"""

from __future__ import annotations

import errno
import importlib
from collections.abc import Sequence
from typing import Literal, cast

from hacluster.config.model import VirtualServer
from hacluster.ipvs.backend import Backend, BackendUnavailable
from hacluster.ipvs.memory import MemoryBackend
from hacluster.ipvs.model import ServiceKey, Table
from hacluster.ipvs.nftables import NftablesBackend, unsupported
from hacluster.policy import Conflict, Health, ServerHealth, evaluate, service_of

BackendName = Literal["netlink", "nftables", "memory"]
BACKENDS: tuple[BackendName, ...] = ("netlink", "nftables", "memory")

NO_IPVS = (
    "IPVS is not available in this kernel (the IPVS generic netlink family is missing "
    "and the ip_vs module cannot be loaded): set `dataplane: nftables` in global_defs "
    "(or pass --backend nftables) to balance with nftables instead"
)


def from_dataplane(dataplane: str) -> BackendName | None:
    """The backend for a config `global_defs.dataplane` value (`none` -> None)."""
    mapping: dict[str, BackendName | None] = {
        "ipvs": "netlink",
        "netlink": "netlink",
        "nftables": "nftables",
        "memory": "memory",
        "none": None,
    }
    if dataplane not in mapping:
        raise ValueError(f"unknown dataplane {dataplane!r} (ipvs, nftables or none)")
    return mapping[dataplane]


def is_missing_ipvs(exc: BaseException) -> bool:
    """True for the errors a kernel without IPVS gives (NetlinkError 2, ENOPROTOOPT)."""
    code = getattr(exc, "code", None)
    if not isinstance(code, int):
        code = getattr(exc, "errno", None)
    return code in (errno.ENOENT, errno.ENOPROTOOPT, errno.EPROTONOSUPPORT)


def open_backend(name: BackendName, *, netns: str | None = None) -> Backend:
    """A backend by name; BackendUnavailable (with advice) when it cannot run here."""
    if name == "nftables":
        return NftablesBackend(netns=netns)
    if name == "memory":
        return MemoryBackend()
    try:
        module = importlib.import_module("hacluster.ipvs.netlink")
    except ImportError as exc:
        raise BackendUnavailable(
            f"the netlink backend cannot be loaded ({exc}); use `dataplane: nftables` "
            "(or --backend nftables) instead"
        ) from exc
    try:
        backend = module.NetlinkBackend(netns=netns)
    except BackendUnavailable:
        raise
    except Exception as exc:
        if is_missing_ipvs(exc):
            raise BackendUnavailable(NO_IPVS) from exc
        raise
    return cast(Backend, backend)


def config_problems(dataplane: str, servers: Sequence[VirtualServer]) -> list[str]:
    """What the chosen dataplane cannot carry out in these virtual servers (for check-config).

    Any dataplane: entries that are one and the same IPVS entry. nftables also has limits
    (schedulers rr/wrr/sh, NAT only, no persistence, ...); the table checked is the one
    with every real server and sorry server present.
    """
    name = from_dataplane(dataplane)
    if name is None:
        return []
    # One evaluation gives both the conflicts and each virtual server's entry (it is the
    # first one's where two share a service: that one is reported as a conflict).
    result = evaluate(servers, {})
    problems = [e.message for e in result.events if isinstance(e, Conflict)]
    if name != "nftables":
        return problems
    entries = {entry.service.key: entry for entry in result.table}
    pairs = []
    seen: set[ServiceKey] = set()
    for vs in servers:
        key = service_of(vs).key
        if key in seen:
            continue  # reported as a conflict above
        seen.add(key)
        entry = entries[key]
        dests = list(entry.destinations.values())
        if vs.sorry_server is not None:
            sorry = next(iter(evaluate([vs], _all_down(vs)).table))
            dests += [d for d in sorry.destinations.values() if d.key not in entry.destinations]
        pairs.append((entry.service, dests))
    return problems + unsupported(Table.of(pairs))


def _all_down(vs: VirtualServer) -> Health:
    key = service_of(vs).key
    return {(key, rs.key): ServerHealth(False) for rs in vs.real_servers}
