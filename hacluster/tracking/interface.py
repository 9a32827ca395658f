"""track_interface: link states of this network namespace's interfaces, from rtnetlink.

An interface is up while it is administratively up and has carrier (IFF_UP and
IFF_RUNNING); a missing interface is down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from vrrp import rtnl

log = logging.getLogger("hacluster.tracking")

IFF_UP = 0x1
IFF_RUNNING = 0x40


def link_is_up(flags: int) -> bool:
    """keepalived's test: administratively up and running (carrier)."""
    return bool(flags & IFF_UP) and bool(flags & IFF_RUNNING)


class LinkMonitor:
    """Link states of all interfaces of this process's network namespace, from rtnetlink.

    Subscribes to RTMGRP_LINK before dumping the links, so no change between the dump
    and the first event is missed; ``on_link(name, up)`` is called for every change
    (and a renamed or deleted interface is reported down under its old name).
    """

    def __init__(self, on_link: Callable[[str, bool], None]) -> None:
        self._on_link = on_link
        self._names: dict[int, str] = {}
        self._states: dict[str, bool] = {}
        self._events = rtnl.EventSocket(rtnl.RTMGRP_LINK, self._handle, self._resync)

    @property
    def states(self) -> Mapping[str, bool]:
        """Every known interface and whether it is up."""
        return dict(self._states)

    async def start(self) -> None:
        """Subscribe, dump the current links, then follow events on the loop."""
        self._events.open(asyncio.get_running_loop())
        for msg in rtnl.dump(rtnl.RTM_GETLINK):
            self._handle(msg)

    async def stop(self) -> None:
        self._events.close()

    def _resync(self) -> None:
        """Events were lost: dump the links again; any we knew that is gone is down."""
        log.warning("track_interface: link events were lost; reading the links again")
        seen: set[int] = set()
        for msg in rtnl.dump(rtnl.RTM_GETLINK):
            if isinstance(msg, rtnl.LinkMessage):
                seen.add(msg.ifindex)
            self._handle(msg)
        for index in [i for i in self._names if i not in seen]:
            self._set(self._names.pop(index), False, gone=True)

    def _handle(self, msg: rtnl.Message) -> None:
        if not isinstance(msg, rtnl.LinkMessage):
            return
        index, name = msg.ifindex, msg.ifname
        if msg.deleted:
            old = self._names.pop(index, name)
            if old is not None:
                self._set(old, False, gone=True)
            return
        if name is None:
            return
        old = self._names.get(index)
        if old is not None and old != name:
            self._set(old, False, gone=True)
        self._names[index] = name
        self._set(name, link_is_up(msg.flags))

    def _set(self, name: str, up: bool, *, gone: bool = False) -> None:
        before = self._states.get(name)
        if gone:
            self._states.pop(name, None)
        else:
            self._states[name] = up
        if before != up or gone:
            self._on_link(name, up)

