"""virtual_routes / virtual_rules following mastership, static_* set at start (keepalived's way).

On becoming MASTER an instance's routes and then its rules are added (its VIPs are
already there, so a route via an address of a VIP's subnet resolves); on leaving MASTER
its rules and then its routes are removed. static_ipaddress, static_routes and
static_rules are set when the daemon starts, whatever the VRRP states, and removed when
it stops; a reload changes only what differs. The kernel work is `vrrp.routes.Routing`,
done by one task in the order asked (a MASTER -> BACKUP -> MASTER burst ends right).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from hacluster import vrrp_extras
from hacluster.config.model import Config, Route, Rule, VirtualIpAddress
from vrrp.machine import State
from vrrp.routes import KernelAddress, KernelNexthop, KernelRoute, KernelRule, Routing

log = logging.getLogger("hacluster.routes")


def kernel_route(r: Route) -> KernelRoute:
    return KernelRoute(
        dst=r.to.network, gateway=None if r.via is None else str(r.via), dev=r.dev,
        src=None if r.src is None else str(r.src), scope=r.rt_scope, table=r.table,
        metric=r.metric, protocol=r.protocol, type=r.type, label=str(r),
        nexthops=tuple(
            KernelNexthop(None if h.via is None else str(h.via), h.dev, h.weight, h.onlink)
            for h in r.nexthops),
    )


def kernel_rule(r: Rule) -> KernelRule:
    return KernelRule(
        family=r.ip_family, table=r.table, priority=r.priority,
        src=None if r.from_ is None else r.from_.network,
        dst=None if r.to is None else r.to.network, fwmark=r.fwmark, iif=r.iif, oif=r.oif,
        label=str(r),
    )


def kernel_address(v: VirtualIpAddress) -> KernelAddress:
    assert v.dev is not None  # the loader requires dev for static_ipaddress
    return KernelAddress(v.address, v.dev, v.rt_scope, v.label)


_Job = tuple[str, list[VirtualIpAddress], list[Route], list[Rule], bool]


class RouteFollower:
    """Carries out the routes and rules of one configuration."""

    def __init__(self, config: Config, routing: Callable[[], Routing] = Routing) -> None:
        self._config = config
        self._make = routing
        self._routing: Routing | None = None
        self._masters: set[str] = set()
        self._jobs: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    @staticmethod
    def wanted(config: Config) -> bool:
        return vrrp_extras.routes(config)

    def _kernel(self) -> Routing:
        if self._routing is None:
            self._routing = self._make()
        return self._routing

    async def start(self) -> None:
        """Set the statics (before this returns), then follow states in a task."""
        c = self._config
        self._worker = asyncio.create_task(self._work(), name="routes")
        self._apply("static", c.static_ipaddress, c.static_routes, c.static_rules, add=True)
        await self.settled()

    async def settled(self) -> None:
        """Wait until everything asked so far is done."""
        await self._jobs.join()

    async def stop(self) -> None:
        """Remove the masters' routes and rules and the statics, then close."""
        for name in sorted(self._masters):
            self._leave(name)
        c = self._config
        self._apply("static", c.static_ipaddress, c.static_routes, c.static_rules, add=False)
        if self._worker is not None:
            self._jobs.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        if self._routing is not None:
            self._routing.close()
            self._routing = None

    def reconfigure(self, config: Config) -> None:
        old, self._config = self._config, config

        def gone(a: Sequence[Any], b: Sequence[Any]) -> list[Any]:
            return [x for x in a if x not in b]

        self._apply("static", gone(old.static_ipaddress, config.static_ipaddress),
                    gone(old.static_routes, config.static_routes),
                    gone(old.static_rules, config.static_rules), add=False)
        self._apply("static", gone(config.static_ipaddress, old.static_ipaddress),
                    gone(config.static_routes, old.static_routes),
                    gone(config.static_rules, old.static_rules), add=True)
        for name in sorted(self._masters):
            before, after = old.vrrp_instances.get(name), config.vrrp_instances.get(name)
            if before is None:
                continue
            if after is None:
                self._apply(name, (), before.virtual_routes, before.virtual_rules, add=False)
                self._masters.discard(name)
                continue
            self._apply(name, (), gone(before.virtual_routes, after.virtual_routes),
                        gone(before.virtual_rules, after.virtual_rules), add=False)
            self._apply(name, (), gone(after.virtual_routes, before.virtual_routes),
                        gone(after.virtual_rules, before.virtual_rules), add=True)

    def on_state(self, name: str, old: State, new: State) -> None:
        """An instance changed state: routes and rules follow MASTER."""
        if new is State.MASTER and name not in self._masters:
            inst = self._config.vrrp_instances.get(name)
            self._masters.add(name)
            if inst is not None:
                self._apply(name, (), inst.virtual_routes, inst.virtual_rules, add=True)
        elif new is not State.MASTER and name in self._masters:
            self._leave(name)

    def _leave(self, name: str) -> None:
        self._masters.discard(name)
        inst = self._config.vrrp_instances.get(name)
        if inst is not None:
            self._apply(name, (), inst.virtual_routes, inst.virtual_rules, add=False)

    def _apply(self, who: str, addrs: Iterable[VirtualIpAddress], routes: Iterable[Route],
               rules: Iterable[Rule], *, add: bool) -> None:
        job = (who, list(addrs), list(routes), list(rules), add)
        if job[1] or job[2] or job[3]:
            self._jobs.put_nowait(job)

    async def _work(self) -> None:
        while True:
            job = await self._jobs.get()
            try:
                if job is None:
                    return
                await self._carry_out(*job)
            except Exception:
                log.exception("routes: %s failed", job[0] if job else "?")
            finally:
                self._jobs.task_done()

    async def _carry_out(self, who: str, addrs: list[VirtualIpAddress], routes: list[Route],
                         rules: list[Rule], add: bool) -> None:
        k = self._kernel()
        failed: list[tuple[Any, str]] = []
        if add:  # addresses, then routes (may need them), then rules
            failed += await k.add_addresses(kernel_address(a) for a in addrs)
            failed += await k.add_routes(kernel_route(r) for r in routes)
            failed += await k.add_rules(kernel_rule(r) for r in rules)
        else:
            failed += await k.remove_rules(kernel_rule(r) for r in rules)
            failed += await k.remove_routes(kernel_route(r) for r in routes)
            failed += await k.remove_addresses(kernel_address(a) for a in addrs)
        verb = "added" if add else "removed"
        log.info("[%s] %s %d route(s), %d rule(s)%s", who, verb, len(routes), len(rules),
                 f", {len(addrs)} address(es)" if addrs else "")
        for item, why in failed:
            log.error("[%s] could not %s %s: %s", who, "add" if add else "remove",
                      getattr(item, "label", None) or item, why)
