"""rtnetlink events followed: address changes (advert sources, VIPs removed by others)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable

from vrrp import rtnl
from vrrp.record import Record, setfield

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

log = logging.getLogger("vrrp.addrwatch")


class AddressEvent(Record):
    """An address was added to (``added``) or removed from an interface.

    A `Record`, not a frozen dataclass: a measured start-up cost (vrrp/record.py)."""

    __match_args__ = ("added", "ifname", "address")
    __slots__ = __match_args__
    added: bool
    ifname: str
    address: IPAddress

    def __init__(self, added: bool, ifname: str, address: IPAddress) -> None:
        setfield(self, "added", added)
        setfield(self, "ifname", ifname)
        setfield(self, "address", address)


def address_event(msg: rtnl.Message) -> AddressEvent | None:
    """The event an RTM_NEWADDR / RTM_DELADDR message says; None for anything else."""
    if not isinstance(msg, rtnl.AddrMessage):
        return None
    text = msg.ip
    if text is None:
        return None
    try:
        ifname = socket.if_indextoname(msg.ifindex)
    except OSError:
        return None  # the interface went away with its addresses
    return AddressEvent(msg.added, ifname, ipaddress.ip_address(text))


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
        self._events = rtnl.EventSocket(
            rtnl.RTMGRP_IPV4_IFADDR | rtnl.RTMGRP_IPV6_IFADDR, self._handle, self._lost)
        self._started = False

    async def start(self) -> None:
        self._events.open(asyncio.get_running_loop())
        self._started = True

    async def stop(self) -> None:
        self._events.close()
        self._started = False

    async def present(self, ifname: str, address: IPAddress) -> bool:
        """Whether `address` is on `ifname` right now (False when the interface is gone)."""
        if not self._started:
            raise RuntimeError("address monitor not started")
        try:
            index = socket.if_nametoindex(ifname)
        except OSError:
            return False
        family = socket.AF_INET if address.version == 4 else socket.AF_INET6
        for msg in rtnl.dump(rtnl.RTM_GETADDR, family):
            if (isinstance(msg, rtnl.AddrMessage) and msg.ifindex == index
                    and msg.ip is not None and ipaddress.ip_address(msg.ip) == address):
                return True
        return False

    def _handle(self, msg: rtnl.Message) -> None:
        event = address_event(msg)
        if event is not None:
            self._on_event(event)

    def _lost(self) -> None:
        log.warning("address events were lost (ENOBUFS): reading the state again")
        self._on_lost()
