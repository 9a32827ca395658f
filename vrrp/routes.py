"""Routes, policy rules and static addresses over rtnetlink (pyroute2): add and remove, idempotent.

keepalived's virtual_routes / virtual_rules follow mastership (added after the VIPs on
becoming MASTER, removed before them on leaving it); static_ipaddress / static_routes /
static_rules are set once at start. `Routing` takes library values (`KernelRoute`,
`KernelRule`, `KernelAddress`); an entry already there is not an error on add, nor a
missing one on remove, so a restart or a repeat changes nothing.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("vrrp.routes")

_RTN_TYPES = {"unicast": 1, "blackhole": 6, "unreachable": 7, "prohibit": 8, "throw": 9}
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
FR_ACT_TO_TBL = 1


RTNH_F_ONLINK = 4  # linux/rtnetlink.h


@dataclass(frozen=True, slots=True)
class KernelNexthop:
    """One path of a multipath route (an rtnexthop in RTA_MULTIPATH)."""

    gateway: str | None = None
    dev: str | None = None  # None: the route's dev
    weight: int = 1  # 1..256 (rtnh_hops is weight - 1)
    onlink: bool = False


@dataclass(frozen=True, slots=True)
class KernelRoute:
    dst: ipaddress.IPv4Network | ipaddress.IPv6Network
    gateway: str | None = None
    dev: str | None = None
    src: str | None = None
    scope: int | None = None
    table: int | None = None
    metric: int | None = None
    protocol: int | None = None
    type: str = "unicast"
    label: str = ""  # how logs name it
    nexthops: tuple[KernelNexthop, ...] = ()  # a multipath route (RTA_MULTIPATH)


@dataclass(frozen=True, slots=True)
class KernelRule:
    family: int  # 4 or 6
    table: int
    priority: int
    src: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    dst: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    fwmark: int | None = None
    iif: str | None = None
    oif: str | None = None
    label: str = ""


@dataclass(frozen=True, slots=True)
class KernelAddress:
    address: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    dev: str
    scope: int = 0
    label: str | None = None


class Routing:
    """One rtnetlink socket for routes, rules and static addresses (asyncio)."""

    def __init__(self) -> None:
        from pyroute2 import AsyncIPRoute

        self._ipr = AsyncIPRoute()

    def close(self) -> None:
        self._ipr.close()

    def _index(self, dev: str) -> int:
        return socket.if_nametoindex(dev)

    # ------------------------------------------------------------------ routes

    def _route_args(self, r: KernelRoute) -> dict[str, Any]:
        args: dict[str, Any] = {
            "dst": str(r.dst.network_address), "dst_len": r.dst.prefixlen,
            "family": socket.AF_INET6 if r.dst.version == 6 else socket.AF_INET,
            "table": r.table or RT_TABLE_MAIN, "type": _RTN_TYPES[r.type],
            "proto": RTPROT_BOOT if r.protocol is None else r.protocol,
        }
        if r.gateway is not None:
            args["gateway"] = r.gateway
        if r.dev is not None:
            args["oif"] = self._index(r.dev)
        if r.src is not None:
            args["prefsrc"] = r.src
        if r.scope is not None:
            args["scope"] = r.scope
        elif r.type == "unicast" and r.gateway is None and r.dev is not None and not r.nexthops:
            args["scope"] = 253  # link, as `ip route add ... dev X` without a gateway
        if r.metric is not None:
            args["priority"] = r.metric
        if r.nexthops:
            args["multipath"] = [self._nexthop_args(r, hop) for hop in r.nexthops]
        return args

    def _nexthop_args(self, r: KernelRoute, hop: KernelNexthop) -> dict[str, Any]:
        nh: dict[str, Any] = {"hops": hop.weight - 1}
        if hop.gateway is not None:
            nh["gateway"] = hop.gateway
        dev = hop.dev or r.dev
        if dev is not None:
            nh["oif"] = self._index(dev)
        if hop.onlink:
            nh["flags"] = RTNH_F_ONLINK
        return nh

    async def add_routes(self, routes: Iterable[KernelRoute]) -> list[tuple[KernelRoute, str]]:
        return await self._each(routes, lambda r: self._ipr.route("add", **self._route_args(r)),
                                ok=(errno.EEXIST,))

    async def remove_routes(
        self, routes: Iterable[KernelRoute]
    ) -> list[tuple[KernelRoute, str]]:
        return await self._each(routes, lambda r: self._ipr.route("del", **self._route_args(r)),
                                ok=(errno.ESRCH, errno.ENOENT, errno.ENODEV))

    # ------------------------------------------------------------------ rules

    def _rule_args(self, r: KernelRule) -> dict[str, Any]:
        args: dict[str, Any] = {
            "family": socket.AF_INET6 if r.family == 6 else socket.AF_INET,
            "table": r.table, "priority": r.priority, "action": FR_ACT_TO_TBL,
        }
        if r.src is not None:
            args["src"], args["src_len"] = str(r.src.network_address), r.src.prefixlen
        if r.dst is not None:
            args["dst"], args["dst_len"] = str(r.dst.network_address), r.dst.prefixlen
        if r.fwmark is not None:
            args["fwmark"] = r.fwmark
        if r.iif is not None:
            args["iifname"] = r.iif
        if r.oif is not None:
            args["oifname"] = r.oif
        return args

    async def add_rules(self, rules: Iterable[KernelRule]) -> list[tuple[KernelRule, str]]:
        return await self._each(rules, lambda r: self._ipr.rule("add", **self._rule_args(r)),
                                ok=(errno.EEXIST,))

    async def remove_rules(self, rules: Iterable[KernelRule]) -> list[tuple[KernelRule, str]]:
        return await self._each(rules, lambda r: self._ipr.rule("del", **self._rule_args(r)),
                                ok=(errno.ENOENT, errno.ESRCH))

    # ------------------------------------------------------------------ addresses

    async def add_addresses(
        self, addrs: Iterable[KernelAddress]
    ) -> list[tuple[KernelAddress, str]]:
        def add(a: KernelAddress) -> Any:
            extra: dict[str, Any] = {"label": a.label} if a.label else {}
            return self._ipr.addr("add", index=self._index(a.dev), address=str(a.address.ip),
                           prefixlen=a.address.network.prefixlen, scope=a.scope, **extra)

        return await self._each(addrs, add, ok=(errno.EEXIST,))

    async def remove_addresses(
        self, addrs: Iterable[KernelAddress]
    ) -> list[tuple[KernelAddress, str]]:
        def remove(a: KernelAddress) -> Any:
            return self._ipr.addr("del", index=self._index(a.dev), address=str(a.address.ip),
                           prefixlen=a.address.network.prefixlen)

        return await self._each(addrs, remove, ok=(errno.EADDRNOTAVAIL, errno.ENODEV))

    # ------------------------------------------------------------------ plumbing

    @staticmethod
    async def _each(
        items: Iterable[Any], call: Any, ok: tuple[int, ...]
    ) -> list[tuple[Any, str]]:
        """Do `call` for every item; the ones that failed, with why (others still done)."""
        from pyroute2.netlink.exceptions import NetlinkError

        failed: list[tuple[Any, str]] = []
        for item in items:
            try:
                await call(item)
            except NetlinkError as exc:
                if exc.code not in ok:
                    failed.append((item, f"{exc.args[1] if len(exc.args) > 1 else exc}"))
            except OSError as exc:  # an unknown interface name
                failed.append((item, exc.strerror or str(exc)))
        return failed
