"""A VRRP speaker on its own: sockets, VIPs, announcements, address following, the drivers.

`Speaker` is what runs VRRP once the instances are given in the library's terms
(`InstancePlan`, one per instance; a unit is one lone instance or one sync group). It
owns the kernel-facing parts (`vrrp.transport`, `vrrp.addresses`, `vrrp.announce`) and
one `vrrp.driver.Driver` per unit, dispatches received adverts to the instance they are
for, and follows addresses: an advert's source follows the interface's address (none
left: the instance waits in FAULT, as keepalived's does), and a master's VIP removed by
someone else makes it resign so the election runs again.

It imports nothing from `hacluster`: configuration, tracking, notify scripts and metrics
are the caller's; the caller hears of every state change through ``on_state``. A daemon
composes it (`hacluster.vrrp_part.VrrpPart`, in the VRRP role), and it can be used alone:

    speaker = Speaker(on_state=print)
    speaker.open(asyncio.get_running_loop())
    driver = speaker.build_unit("instance VI_1", None, [plan])
    await speaker.ready()
    await speaker.follow_addresses()
    speaker.start_unit(driver)
    ...
    await speaker.stop()   # masters resign
    await speaker.close()
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from vrrp.machine import State, StateChanged
from vrrp.slotted import slotted

if TYPE_CHECKING:
    from vrrp.addresses import Addresses, Vip
    from vrrp.addrwatch import AddressEvent, AddressMonitor
    from vrrp.announce import AnnounceParams, FrameSockets
    from vrrp.driver import Driver, Member
    from vrrp.machine import InstanceParams
    from vrrp.packet import Advert
    from vrrp.transport import Binding, Endpoint, IPAddress, ReceivedAdvert, Transport
    from vrrp.vipstate import VipRecord

log = logging.getLogger("vrrp.speaker")


@slotted(frozen=True)
class InstancePlan:
    """One VRRP instance in the library's terms; `params.primary_ip` is a placeholder
    (0.0.0.0 or ::) until the socket knows the address adverts come from."""

    name: str
    interface: str
    binding: Binding
    params: InstanceParams
    template: Advert
    vips: tuple[tuple[str, Vip], ...]  # label -> VIP, adverts' ones first
    announce: AnnounceParams
    owner: bool


class SpeakerError(Exception):
    """A unit cannot run here (missing interface, no socket...); names the instance."""


def no_source_cause(ifname: str, family: int) -> str:
    what = "IPv4 address" if family == 4 else "IPv6 link-local address"
    return f"interface {ifname} has no {what} to send from"


async def wait_for_sources(wanted: Iterable[tuple[str, int]], timeout: float = 5.0) -> None:
    """Give interfaces a moment to get the address adverts come from (an IPv6 link-local
    address stays tentative during DAD for about a second after link-up). `wanted`:
    (interface, family) of the instances whose source follows their interface."""
    from vrrp.transport import interface_source

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for ifname, family in wanted:
        if not os.path.exists(f"/sys/class/net/{ifname}"):
            continue  # a missing interface is reported at once
        while interface_source(ifname, family) is None:
            if loop.time() > deadline:
                return  # Speaker.build_unit reports it, naming the instance
            await asyncio.sleep(0.05)


StateCallback = Callable[[str, StateChanged], None]


class Speaker:
    """The transport, VIPs and announcements of this process, and a driver per unit.

    Units are keyed by the caller (e.g. ``"group G"``, ``"instance I"``); instance names
    are unique across units. `build_unit` makes a driver without starting it;
    `start_unit` starts it; `detach`/`stop_unit` take it off again.
    """

    def __init__(self, on_state: StateCallback, *, vip_record: VipRecord | None = None) -> None:
        self._on_state = on_state
        self._vip_record = vip_record
        self.units: dict[str, Driver] = {}
        self.driver_of: dict[str, Driver] = {}
        self.endpoints: dict[str, Endpoint] = {}
        # instance -> the fault raised while its interface has no address to send from
        self.no_source: dict[str, str] = {}
        self.transport: Transport | None = None
        self.addresses: Addresses | None = None
        self.frames: FrameSockets | None = None
        self._monitor: AddressMonitor | None = None
        self._preparing: list[Coroutine[Any, Any, None]] = []
        self._quiet: set[str] = set()  # instances whose transitions are not news (reload)
        self._following = False
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def vip_record(self) -> VipRecord | None:
        """The state file of what this process added (VIPs, the no_accept table)."""
        return self._vip_record

    @property
    def drivers(self) -> list[Driver]:
        return list(self.units.values())

    def is_quiet(self, name: str) -> bool:
        """True while `name` is being put back to MASTER after a reload (no news)."""
        return name in self._quiet

    # ------------------------------------------------------------------ building

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        """Open the advert sockets and the announcement sockets; VIPs come with `ready()`."""
        from vrrp.addresses import Addresses
        from vrrp.announce import FrameSockets
        from vrrp.transport import Transport

        self.addresses = Addresses(self._vip_record)
        self.transport = Transport(loop)
        self.frames = FrameSockets()

    def build_unit(
        self,
        key: str,
        group: str | None,
        plans: Sequence[InstancePlan],
        *,
        carry: frozenset[str] = frozenset(),
        cleanup: bool = True,
    ) -> Driver:
        """Build (not start) the driver of one unit; SpeakerError names the instance.

        Members in `carry` are masters kept across a reload (their VIPs are not cleaned
        at start); without `cleanup`, no member cleans its VIPs at start.
        """
        from vrrp.driver import Driver
        from vrrp.transport import TransportError

        assert self.addresses is not None, "open() first"
        members: list[Member] = []
        name = ""
        try:
            for plan in plans:
                name = plan.name
                members.append(self._member(plan, master=name in carry, cleanup=cleanup))
        except (TransportError, ValueError) as exc:
            for plan in plans:
                endpoint = self.endpoints.pop(plan.name, None)
                if endpoint is not None:
                    endpoint.close()
            raise SpeakerError(f"[{name}] {exc}") from exc
        driver = Driver(members, self.addresses, group=group, on_state=self._on_state,
                        loop=asyncio.get_running_loop())
        self.units[key] = driver
        for plan in plans:
            self.driver_of[plan.name] = driver
        return driver

    def _member(self, plan: InstancePlan, *, master: bool, cleanup: bool) -> Member:
        from vrrp.announce import Announcer
        from vrrp.driver import Member
        from vrrp.machine import Machine

        assert self.transport is not None and self.frames is not None
        name = plan.name
        endpoint = self.transport.register(
            plan.interface, plan.binding, lambda rx: self._on_advert(name, rx)
        )
        self.endpoints[name] = endpoint
        params = plan.params
        self.no_source.pop(name, None)
        if endpoint.source is None:
            # keepalived's way: the instance waits in FAULT until the interface has an
            # address (followed from rtnetlink events); the placeholder until then.
            self.no_source[name] = no_source_cause(plan.interface, plan.binding.family)
        else:
            params = dataclasses.replace(params, primary_ip=endpoint.source)
        vips = dict(plan.vips)
        announcer = Announcer(name, plan.announce, self.frames)
        self._preparing.append(announcer.prepare(list(vips.values())))
        return Member(
            machine=Machine(params),
            sender=endpoint,
            template=plan.template,
            vips=vips,
            announcer=announcer,
            # An address owner's VIPs are its own addresses: never remove them; a
            # master kept across a reload holds them.
            cleanup_at_start=cleanup and not plan.owner and not master,
        )

    async def ready(self, timeout: float = 20.0) -> None:
        """Wait until a takeover could be carried out in full: netlink open and the
        announcement frames built. Done before the units start, so that a takeover
        soon after start waits for neither."""
        assert self.addresses is not None
        preparing, self._preparing = self._preparing, []
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(self.addresses.ready(), *preparing)
        except TimeoutError:
            log.warning("netlink or announcement set-up still pending after %gs; "
                        "starting anyway", timeout)
        except Exception as exc:
            log.error("netlink set-up failed: %s", exc)

    def start_unit(self, driver: Driver, carry: Iterable[str] = ()) -> None:
        """Start a built driver (members without a source address start in FAULT) and
        put the members in `carry`, MASTER before a reload, back there without news."""
        for name in driver.members:
            cause = self.no_source.get(name)
            if cause is not None:
                log.warning("[%s] %s: FAULT until it has one", name, cause)
                driver.raise_fault(name, cause)
        carried = [n for n in carry if n in driver.members]
        self._quiet.update(carried)
        try:
            driver.start()
            for name in carried:
                driver.force_master(name, "reload: mastership kept")
        finally:
            self._quiet.difference_update(carried)

    async def detach(self, key: str, resign: Iterable[str]) -> Driver:
        """Take a unit off the loop without touching the rest of its members' state:
        those in `resign` shut down (a master sends priority 0 and releases its VIPs),
        the others keep their VIPs for the unit that replaces them."""
        driver = self.units.pop(key)
        await driver.detach(resign=resign)
        self.forget_members(driver)
        return driver

    async def stop_unit(self, key: str) -> Driver:
        """Stop a unit for good: its masters resign and release their VIPs."""
        driver = self.units.pop(key)
        await driver.stop()
        self.forget_members(driver)
        return driver

    def forget_members(self, driver: Driver) -> None:
        for name in driver.members:
            if self.driver_of.get(name) is driver:
                del self.driver_of[name]
                self.no_source.pop(name, None)
                endpoint = self.endpoints.pop(name, None)
                if endpoint is not None:
                    endpoint.close()

    # ------------------------------------------------------------------ adverts

    def _on_advert(self, name: str, rx: ReceivedAdvert) -> None:
        driver = self.driver_of.get(name)
        if driver is None:
            return
        a = rx.advert
        driver.advert_received(name, rx.src, a.priority, a.max_advert_int, rx.age)

    # ------------------------------------------------------------------ addresses

    async def follow_addresses(self) -> None:
        """Follow address changes from now on (sources, masters' VIPs); without it,
        sources are read once, when a unit is built."""
        from vrrp.addrwatch import AddressMonitor

        monitor = AddressMonitor(self.on_address, self.on_addresses_lost)
        self._following = True
        try:
            await monitor.start()
        except Exception as exc:
            log.error("cannot follow address changes: %s", exc)
            return
        self._monitor = monitor

    def on_address(self, event: AddressEvent) -> None:
        """An address came or went: sources follow it, a master's VIP gone is checked."""
        if not self._following:
            return
        for name, endpoint in list(self.endpoints.items()):
            if (endpoint.channel.ifname == event.ifname
                    and endpoint.binding.family == event.address.version):
                self.refresh_source(name)
        if not event.added:
            self._check_masters_vips(
                lambda vip: vip.dev == event.ifname and vip.address.ip == event.address
            )

    def on_addresses_lost(self) -> None:
        """Address events were lost: read every source again, check every master's VIPs."""
        if not self._following:
            return
        for name in list(self.endpoints):
            self.refresh_source(name)
        self._check_masters_vips(lambda vip: True)

    def _check_masters_vips(self, suspect: Callable[[Vip], bool]) -> None:
        """Check whether the suspect VIPs of every MASTER are still there."""
        for name, driver in list(self.driver_of.items()):
            member = driver.members[name]
            if member.machine.state is State.MASTER:
                for label, vip in member.vips.items():
                    if suspect(vip):
                        self._spawn(self._check_vip_gone(name, label, vip), f"vip-check {name}")

    def _our_vips(self, ifname: str) -> set[IPAddress]:
        return {
            vip.address.ip
            for driver in self.units.values()
            for member in driver.members.values()
            for vip in member.vips.values()
            if vip.dev == ifname
        }

    def refresh_source(self, name: str) -> None:
        """Adverts come from the interface's address as it is now; none: FAULT."""
        endpoint = self.endpoints.get(name)
        driver = self.driver_of.get(name)
        if endpoint is None or driver is None or not endpoint.follows_interface:
            return
        ifname, family = endpoint.channel.ifname, endpoint.binding.family
        new = endpoint.refresh_source()
        member = driver.members[name]
        cause = self.no_source.get(name)
        if cause is None and new == member.machine.params.primary_ip:
            return  # the common case (e.g. our own VIPs coming and going): nothing to do
        if new is not None and new in self._our_vips(ifname):
            new = None  # only a VIP left on the interface: not an address of our own
        if new is None:
            if cause is None:
                cause = self.no_source[name] = no_source_cause(ifname, family)
                log.warning("[%s] %s", name, cause)
                driver.raise_fault(name, cause)
            return
        if new != member.machine.params.primary_ip:
            log.info("[%s] adverts now come from %s (%s)", name, new, ifname)
            driver.source_changed(name, new)
        if cause is not None:
            del self.no_source[name]
            driver.clear_fault(name, cause)

    async def _check_vip_gone(self, name: str, label: str, vip: Vip) -> None:
        driver = self.driver_of.get(name)
        monitor = self._monitor
        if driver is None or monitor is None:
            return
        await driver.drain()  # our own address changes first: the event may be theirs
        if await monitor.present(vip.dev, vip.address.ip):
            return
        member = driver.members.get(name)
        if (self.driver_of.get(name) is driver and member is not None
                and member.machine.state is State.MASTER and label in member.vips):
            log.warning("[%s] VIP %s was removed by someone else: resigning so the "
                        "election runs again", name, vip)
            driver.vip_removed(name, label)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ stopping

    async def stop(self) -> None:
        """Stop following addresses, then stop every unit: masters resign with priority
        0 and release their VIPs."""
        self._following = False
        if self._monitor is not None:
            await self._monitor.stop()
            self._monitor = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*(d.stop() for d in self.units.values()))

    async def close(self) -> None:
        """Close the sockets (after `stop()`, or when start-up failed)."""
        for coro in self._preparing:  # built but never awaited when start-up failed
            coro.close()
        self._preparing = []
        if self.frames is not None:
            self.frames.close()
        if self.transport is not None:
            self.transport.close()
        if self.addresses is not None:
            await self.addresses.close()
