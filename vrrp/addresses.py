"""Virtual IP addresses on interfaces: add, remove and find them over netlink (pyroute2)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import ipaddress
import logging
import socket
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("vrrp.addresses")

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

IFA_F_NODAD = 0x02  # linux/if_addr.h: a VIP must be usable at once, not after DAD


@dataclass(frozen=True, slots=True)
class Vip:
    """One virtual address: address with prefix (default /32 or /128) and its interface."""

    address: IPInterface
    dev: str

    def __str__(self) -> str:
        return f"{self.address} dev {self.dev}"


class AddressError(Exception):
    """A VIP could not be added or removed (missing interface, netlink refused)."""


class Addresses:
    """Adds and removes VIPs through pyroute2's asyncio netlink client on the running loop.

    Importing pyroute2 takes about half a second, so `warm_up()` does it in a background
    thread at start; the netlink socket itself lives on the event loop, so a takeover's
    address change costs no thread hand-over (which a loaded machine makes slow).
    Operations are idempotent: adding a present address or removing an absent one is
    not an error. Calls are serialised by a lock, so they apply in the order made.
    """

    def __init__(self) -> None:
        self._import: concurrent.futures.Future[None] | None = None
        self._ipr: Any = None
        self._lock = asyncio.Lock()
        self._closed = False

    def warm_up(self) -> None:
        """Start importing pyroute2 in a background thread now."""
        if self._import is None:
            fut: concurrent.futures.Future[None] = concurrent.futures.Future()

            def work() -> None:
                try:
                    import pyroute2
                    import pyroute2.netlink.exceptions  # noqa: F401

                    fut.set_result(None)
                except BaseException as exc:  # reported by the first netlink call
                    fut.set_exception(exc)

            threading.Thread(target=work, name="pyroute2-import", daemon=True).start()
            self._import = fut

    async def _client(self) -> Any:
        if self._closed:
            raise AddressError("address manager is closed")
        if self._ipr is None:
            self.warm_up()
            assert self._import is not None
            await asyncio.wrap_future(self._import)
            from pyroute2 import AsyncIPRoute

            ipr = AsyncIPRoute()
            await ipr.setup_endpoint()
            self._ipr = ipr
        return self._ipr

    async def ready(self) -> None:
        """Finish loading pyroute2 and open the netlink socket (before the first change)."""
        await self._client()

    @staticmethod
    def _ifindex(dev: str) -> int:
        # if_nametoindex is one ioctl; pyroute2's link_lookup dumps every link (~6 ms).
        try:
            return socket.if_nametoindex(dev)
        except OSError:
            raise AddressError(f"interface {dev!r} not found") from None

    async def _addr(self, command: str, vip: Vip) -> bool:
        """Add or delete one VIP; False when it was already in the wanted state."""
        from pyroute2.netlink.exceptions import NetlinkError

        ipr = await self._client()
        kwargs: dict[str, Any] = {
            "index": self._ifindex(vip.dev),
            "address": str(vip.address.ip),
            "prefixlen": vip.address.network.prefixlen,
        }
        if command == "add" and vip.address.version == 6:
            kwargs["flags"] = IFA_F_NODAD
        try:
            await ipr.addr(command, **kwargs)
        except NetlinkError as exc:
            if command == "add" and exc.code == errno.EEXIST:
                return False
            if command == "del" and exc.code in (errno.EADDRNOTAVAIL, errno.ENOENT):
                return False
            raise AddressError(f"{command} {vip}: {exc}") from exc
        return True

    async def _apply(self, command: str, vips: Sequence[Vip]) -> list[tuple[Vip, str]]:
        errors: list[tuple[Vip, str]] = []
        async with self._lock:
            for vip in vips:
                try:
                    await self._addr(command, vip)
                except (AddressError, OSError) as exc:
                    errors.append((vip, str(exc)))
        return errors

    async def add(self, vips: Sequence[Vip]) -> list[tuple[Vip, str]]:
        """Add every VIP; returns the ones that failed with why (the others still apply)."""
        return await self._apply("add", list(vips))

    async def remove(self, vips: Sequence[Vip]) -> list[tuple[Vip, str]]:
        """Remove every VIP; returns the ones that failed with why."""
        return await self._apply("del", list(vips))

    async def present(self, vips: Sequence[Vip]) -> list[Vip]:
        """Those of ``vips`` that are configured on their interfaces right now."""
        found: list[Vip] = []
        by_dev: dict[str, set[tuple[str, int]]] = {}
        async with self._lock:
            ipr = await self._client()
            for vip in vips:
                if vip.dev not in by_dev:
                    try:
                        index = self._ifindex(vip.dev)
                    except AddressError:
                        by_dev[vip.dev] = set()
                        continue
                    have: set[tuple[str, int]] = set()
                    async for m in await ipr.get_addr(index=index):
                        have.add((str(m.get_attr("IFA_ADDRESS")), int(m["prefixlen"])))
                    by_dev[vip.dev] = have
                if (str(vip.address.ip), vip.address.network.prefixlen) in by_dev[vip.dev]:
                    found.append(vip)
        return found

    async def remove_leftovers(self, vips: Iterable[Vip]) -> list[Vip]:
        """Remove VIPs a crashed run left behind; returns those that were found."""
        found = await self.present(list(vips))
        if found:
            for vip, why in await self.remove(found):
                log.error("cannot remove leftover VIP %s: %s", vip, why)
        return found

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None
