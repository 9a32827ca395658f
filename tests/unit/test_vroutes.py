"""RouteFollower as a timeline with a recording kernel: statics at start, virtual
routes and rules with mastership (rules removed first), a reload touching only what
differs, everything removed at stop."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hacluster.config.loader import parse_config
from hacluster.config.model import Config
from hacluster.vroutes import RouteFollower
from vrrp.machine import State


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    async def _note(self, what: str, items: Iterable[Any]) -> list[tuple[Any, str]]:
        labels = [getattr(i, "label", None) or str(getattr(i, "address", i)) for i in items]
        if labels:
            self.calls.append((what, labels))
        return []

    async def add_routes(self, items: Iterable[Any]) -> list[tuple[Any, str]]:
        return await self._note("+route", items)

    async def remove_routes(self, items: Iterable[Any]) -> list[tuple[Any, str]]:
        return await self._note("-route", items)

    async def add_rules(self, items: Iterable[Any]) -> list[tuple[Any, str]]:
        return await self._note("+rule", items)

    async def remove_rules(self, items: Iterable[Any]) -> list[tuple[Any, str]]:
        return await self._note("-rule", items)

    async def add_addresses(self, items: Iterable[Any]) -> list[tuple[Any, str]]:
        return await self._note("+addr", items)

    async def remove_addresses(self, items: Iterable[Any]) -> list[tuple[Any, str]]:
        return await self._note("-addr", items)

    def close(self) -> None:
        self.calls.append(("close", []))


def config(routes: str) -> Config:
    return parse_config(
        'static_ipaddress: ["192.0.2.5/24 dev eth1"]\n'
        "vrrp_instances:\n  V:\n    interface: eth0\n    virtual_router_id: 1\n"
        "    virtual_ipaddress: [10.0.0.1/24]\n"
        f"    virtual_routes: [{routes}]\n"
        '    virtual_rules: ["from 10.0.0.1 table 5 priority 10"]\n')


async def test_mastership_timeline_and_reload() -> None:
    rec = Recorder()
    follower = RouteFollower(config('"10.1.0.0/16 via 10.0.0.254"'), lambda: rec)  # type: ignore[arg-type,return-value]
    await follower.start()
    assert rec.calls == [("+addr", ["192.0.2.5/24"])]
    rec.calls.clear()
    follower.on_state("V", State.BACKUP, State.MASTER)
    follower.on_state("V", State.MASTER, State.MASTER)  # nothing twice
    await follower.settled()
    assert rec.calls == [("+route", ["10.1.0.0/16 via 10.0.0.254"]),
                         ("+rule", ["from 10.0.0.1/32 table 5 priority 10"])]
    rec.calls.clear()
    follower.reconfigure(config('"10.1.0.0/16 via 10.0.0.254", "10.2.0.0/16 dev eth0"'))
    await follower.settled()
    assert rec.calls == [("+route", ["10.2.0.0/16 dev eth0"])]  # only what is new
    rec.calls.clear()
    follower.on_state("V", State.MASTER, State.BACKUP)
    await follower.settled()
    assert rec.calls == [("-rule", ["from 10.0.0.1/32 table 5 priority 10"]),
                         ("-route", ["10.1.0.0/16 via 10.0.0.254", "10.2.0.0/16 dev eth0"])]
    rec.calls.clear()
    follower.on_state("V", State.BACKUP, State.MASTER)
    await follower.stop()
    assert [c[0] for c in rec.calls] == ["+route", "+rule", "-rule", "-route", "-addr",
                                         "close"]
