"""rtnetlink events followed: address changes (advert sources, VIPs removed by others)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

log = logging.getLogger("vrrp.addrwatch")


class RtnlFollower:
    """An rtnetlink socket bound to multicast groups: every message goes to ``handle``
    from a task, and ``resync()`` is awaited when events were lost (ENOBUFS after an
    event storm), to read the whole state again."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.ipr: Any = None
        self._task: asyncio.Task[None] | None = None

    async def subscribe(self, groups: int) -> Any:
        """Bind to `groups` (before any dump, so no change in between is missed)."""
        from pyroute2 import AsyncIPRoute

        self.ipr = AsyncIPRoute()
        await self.ipr.bind(groups=groups)
        return self.ipr

    def follow(
        self, handle: Callable[[Any], None], resync: Callable[[], Awaitable[None]]
    ) -> None:
        self._task = asyncio.create_task(self._follow(handle, resync), name=self.what)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.ipr is not None:
            self.ipr.close()
            self.ipr = None

    async def _follow(
        self, handle: Callable[[Any], None], resync: Callable[[], Awaitable[None]]
    ) -> None:
        while True:
            try:
                async for msg in self.ipr.get():
                    handle(msg)
            except asyncio.CancelledError:
                raise
            except Exception:  # e.g. ENOBUFS after an event storm: events were lost
                log.exception("%s: rtnetlink events lost; reading the state again", self.what)
                await asyncio.sleep(0.5)
                with contextlib.suppress(Exception):
                    await resync()


@dataclass(frozen=True, slots=True)
class AddressEvent:
    """An address was added to (``added``) or removed from an interface."""

    added: bool
    ifname: str
    address: IPAddress


def _event(msg: Any) -> AddressEvent | None:
    kind = msg.get("event")
    if kind not in ("RTM_NEWADDR", "RTM_DELADDR"):
        return None
    text = msg.get("IFA_LOCAL") or msg.get("IFA_ADDRESS")
    index = msg.get("index")
    if text is None or index is None:
        return None
    try:
        ifname = socket.if_indextoname(int(index))
    except OSError:
        return None  # the interface went away with its addresses
    return AddressEvent(kind == "RTM_NEWADDR", ifname, ipaddress.ip_address(text))


class AddressMonitor:
    """Calls ``on_event`` for every address added or removed in this network namespace,
    and ``on_lost()`` when events may have been lost (then everything should be re-read).

    ``present(ifname, address)`` asks the kernel whether an address is on an interface
    now: an event may be stale by the time it is handled.
    """

    def __init__(
        self, on_event: Callable[[AddressEvent], None], on_lost: Callable[[], None]
    ) -> None:
        self._on_event = on_event
        self._on_lost = on_lost
        self._rtnl = RtnlFollower("address-monitor")
        self._query: Any = None

    async def start(self) -> None:
        from pyroute2 import AsyncIPRoute
        from pyroute2.netlink.rtnl import RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR

        await self._rtnl.subscribe(RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR)
        self._query = AsyncIPRoute()
        self._rtnl.follow(self._handle, self._lost)

    async def stop(self) -> None:
        await self._rtnl.close()
        if self._query is not None:
            self._query.close()
            self._query = None

    async def present(self, ifname: str, address: IPAddress) -> bool:
        """Whether `address` is on `ifname` right now (False when the interface is gone)."""
        if self._query is None:
            raise RuntimeError("address monitor not started")
        try:
            index = socket.if_nametoindex(ifname)
        except OSError:
            return False
        family = socket.AF_INET if address.version == 4 else socket.AF_INET6
        async for msg in await self._query.addr("dump", family=family, index=index):
            text = msg.get("IFA_LOCAL") or msg.get("IFA_ADDRESS")
            if msg.get("index") == index and text and ipaddress.ip_address(text) == address:
                return True
        return False

    def _handle(self, msg: Any) -> None:
        event = _event(msg)
        if event is not None:
            self._on_event(event)

    async def _lost(self) -> None:
        self._on_lost()
