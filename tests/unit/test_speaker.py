"""vrrp.speaker.Speaker on its own, with recording fakes for the sockets and netlink: units
built and started, adverts dispatched by instance, sources and VIPs followed, units taken
off. Real drivers and machines on a real event loop; no root, no hacluster import."""

from __future__ import annotations

import asyncio
import ipaddress
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.unit.test_driver import FakeVips, Log
from vrrp.addresses import Vip
from vrrp.addrwatch import AddressEvent
from vrrp.announce import AnnounceParams
from vrrp.machine import InstanceParams, State, StateChanged
from vrrp.packet import Advert
from vrrp.speaker import InstancePlan, Speaker, SpeakerError
from vrrp.transport import Binding, ReceivedAdvert, TransportError

IP = ipaddress.ip_address
OURS = IP("10.0.0.1")
PEER = IP("10.0.0.2")


@dataclass
class FakeChannel:
    ifname: str


@dataclass
class FakeEndpoint:
    """An instance's advert socket: its source follows `interface_address`."""

    channel: FakeChannel
    binding: Binding
    handler: Callable[[ReceivedAdvert], None]
    interface_address: Any
    sent: list[Advert] = field(default_factory=list)
    received: int = 0
    closed: bool = False
    source: Any = None

    def __post_init__(self) -> None:
        self.source = self.binding.unicast_src
        self.refresh_source()

    @property
    def follows_interface(self) -> bool:
        return self.binding.unicast_src is None

    def refresh_source(self) -> Any:
        if self.follows_interface:
            self.source = self.interface_address
        return self.source

    def send(self, advert: Advert) -> None:
        self.sent.append(advert)

    def close(self) -> None:
        self.closed = True


class FakeTransport:
    def __init__(self) -> None:
        self.address: dict[str, Any] = {"eth0": OURS, "eth1": OURS}
        self.endpoints: list[FakeEndpoint] = []
        self.refuse: set[str] = set()

    def register(self, ifname: str, binding: Binding,
                 handler: Callable[[ReceivedAdvert], None]) -> FakeEndpoint:
        if ifname in self.refuse:
            raise TransportError(f"interface {ifname!r} not found")
        endpoint = FakeEndpoint(FakeChannel(ifname), binding, handler, self.address.get(ifname))
        self.endpoints.append(endpoint)
        return endpoint

    def close(self) -> None:
        pass


class FakeFrames:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def mac(self, dev: str) -> str:
        return "02:00:00:00:00:01"

    def send(self, dev: str, frame: bytes) -> bool:
        self.sent.append((dev, frame))
        return True

    def close(self) -> None:
        pass


class Vips(FakeVips):
    async def ready(self) -> None:
        pass

    async def close(self) -> None:
        pass


class FakeMonitor:
    """What the kernel says is on an interface now."""

    def __init__(self) -> None:
        self.present_now: set[tuple[str, Any]] = set()
        self.asked: list[tuple[str, Any]] = []

    async def present(self, ifname: str, address: Any) -> bool:
        self.asked.append((ifname, address))
        return (ifname, address) in self.present_now

    async def stop(self) -> None:
        pass


def plan(name: str, vrid: int, *, priority: int = 100, dev: str = "eth0",
         vip: str = "10.0.0.100/24", src: Any = None) -> InstancePlan:
    vips = ((vip, Vip(ipaddress.ip_interface(vip), dev)),)
    params = InstanceParams(name=name, vrid=vrid, primary_ip=IP("0.0.0.0"),
                            priority=priority, advert_int=1.0, vips=(vip,))
    template = Advert(3, vrid, priority, 1.0, (ipaddress.ip_interface(vip).ip,))
    return InstancePlan(name, dev, Binding(vrid=vrid, version=3, family=4, unicast_src=src),
                        params, template, vips, AnnounceParams(delay=0, repeat=1), priority == 255)


class Rig:
    """A speaker with fakes in place of the kernel, and what it told its owner."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, str, str, bool]] = []
        self.speaker = Speaker(self.on_state)
        self.loop = asyncio.get_running_loop()
        self.transport = FakeTransport()
        self.frames = FakeFrames()
        self.vips = Vips(Log(self.loop))
        self.monitor = FakeMonitor()
        s: Any = self.speaker
        s.transport, s.frames, s.addresses = self.transport, self.frames, self.vips

    def on_state(self, name: str, change: StateChanged) -> None:
        self.changes.append((name, change.old.name, change.new.name,
                             self.speaker.is_quiet(name)))

    def follow(self) -> None:
        s: Any = self.speaker
        s._monitor, s._following = self.monitor, True

    def state(self, name: str) -> State:
        return self.speaker.driver_of[name].members[name].machine.state

    def machine_source(self, name: str) -> Any:
        return self.speaker.driver_of[name].members[name].machine.params.primary_ip

    def endpoint(self, name: str) -> FakeEndpoint:
        endpoint: Any = self.speaker.endpoints[name]
        return endpoint  # type: ignore[no-any-return]


def run(scenario: Callable[[Rig], Awaitable[None]]) -> None:
    async def main() -> None:
        rig = Rig()
        try:
            await scenario(rig)
        finally:
            await rig.speaker.stop()
            await rig.speaker.close()

    asyncio.run(main())


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_an_owner_unit_is_built_started_and_takes_over_at_once() -> None:
    async def scenario(rig: Rig) -> None:
        driver = rig.speaker.build_unit("instance VI_1", None, [plan("VI_1", 1, priority=255)])
        assert rig.speaker.units == {"instance VI_1": driver}
        assert rig.state("VI_1") is State.INITIALIZE
        assert rig.machine_source("VI_1") == OURS  # the placeholder replaced by the source
        await rig.speaker.ready()
        rig.speaker.start_unit(driver)
        await settle()
        assert rig.state("VI_1") is State.MASTER
        assert rig.changes == [("VI_1", "INITIALIZE", "MASTER", False)]
        assert [a.priority for a in rig.endpoint("VI_1").sent][:1] == [255]
        assert Vip(ipaddress.ip_interface("10.0.0.100/24"), "eth0") in rig.vips.present
        assert rig.frames.sent  # announced

    run(scenario)


def test_adverts_go_to_the_instance_they_were_received_for() -> None:
    async def scenario(rig: Rig) -> None:
        a = rig.speaker.build_unit("instance A", None, [plan("A", 1)])
        b = rig.speaker.build_unit("instance B", None, [plan("B", 2, dev="eth1")])
        for driver in (a, b):
            rig.speaker.start_unit(driver)
        advert = Advert(3, 1, 200, 1.0, (IP("10.0.0.100"),))
        rx = ReceivedAdvert(advert, PEER, IP("224.0.0.18"), 255, "pseudo")  # type: ignore[arg-type]
        rig.endpoint("A").handler(rx)
        await settle()
        master_a = rig.speaker.driver_of["A"].members["A"].machine.master
        master_b = rig.speaker.driver_of["B"].members["B"].machine.master
        assert master_a is not None and master_a.address == PEER and master_a.priority == 200
        assert master_b is None
        handler = rig.endpoint("A").handler
        await rig.speaker.stop_unit("instance A")
        handler(rx)  # an advert still in flight for a unit gone: ignored

    run(scenario)


def test_an_interface_without_address_faults_until_one_comes_and_a_vip_is_not_one() -> None:
    async def scenario(rig: Rig) -> None:
        rig.transport.address["eth0"] = None
        driver = rig.speaker.build_unit("instance VI_1", None, [plan("VI_1", 1)])
        assert rig.speaker.no_source == {"VI_1": "interface eth0 has no IPv4 address to send from"}
        rig.speaker.start_unit(driver)
        await settle()
        assert rig.state("VI_1") is State.FAULT
        rig.follow()
        endpoint = rig.endpoint("VI_1")
        # Only our own VIP arrives on the interface: not an address to send from.
        endpoint.interface_address = IP("10.0.0.100")
        rig.speaker.on_address(AddressEvent(True, "eth0", IP("10.0.0.100")))
        await settle()
        assert rig.state("VI_1") is State.FAULT
        # An address of our own: the fault clears and adverts come from it.
        endpoint.interface_address = IP("10.0.0.7")
        rig.speaker.on_address(AddressEvent(True, "eth0", IP("10.0.0.7")))
        await settle()
        assert rig.state("VI_1") is State.BACKUP
        assert rig.machine_source("VI_1") == IP("10.0.0.7")
        assert rig.speaker.no_source == {}
        # It changes: the source follows; it goes: FAULT again.
        endpoint.interface_address = IP("10.0.0.8")
        rig.speaker.on_address(AddressEvent(True, "eth0", IP("10.0.0.8")))
        assert rig.machine_source("VI_1") == IP("10.0.0.8")
        endpoint.interface_address = None
        rig.speaker.on_address(AddressEvent(False, "eth0", IP("10.0.0.8")))
        await settle()
        assert rig.state("VI_1") is State.FAULT
        assert [c[2] for c in rig.changes] == ["FAULT", "BACKUP", "FAULT"]

    run(scenario)


def test_events_on_other_interfaces_families_or_before_following_change_nothing() -> None:
    async def scenario(rig: Rig) -> None:
        driver = rig.speaker.build_unit("instance VI_1", None, [plan("VI_1", 1)])
        rig.speaker.start_unit(driver)
        endpoint = rig.endpoint("VI_1")
        endpoint.interface_address = IP("10.0.0.9")
        rig.speaker.on_address(AddressEvent(True, "eth0", IP("10.0.0.9")))  # not following
        assert rig.machine_source("VI_1") == OURS
        rig.follow()
        rig.speaker.on_address(AddressEvent(True, "eth1", IP("10.0.0.9")))
        rig.speaker.on_address(AddressEvent(True, "eth0", IP("fe80::9")))
        assert rig.machine_source("VI_1") == OURS
        rig.speaker.on_addresses_lost()  # everything read again
        assert rig.machine_source("VI_1") == IP("10.0.0.9")

    run(scenario)


def test_a_configured_source_is_never_followed() -> None:
    async def scenario(rig: Rig) -> None:
        driver = rig.speaker.build_unit("instance VI_1", None,
                                        [plan("VI_1", 1, src=IP("10.0.0.50"))])
        rig.speaker.start_unit(driver)
        rig.follow()
        rig.endpoint("VI_1").interface_address = None
        rig.speaker.on_addresses_lost()
        await settle()
        assert rig.machine_source("VI_1") == IP("10.0.0.50")
        assert rig.state("VI_1") is State.BACKUP

    run(scenario)


def test_a_masters_vip_removed_by_someone_else_makes_it_resign_once_checked() -> None:
    async def scenario(rig: Rig) -> None:
        driver = rig.speaker.build_unit("instance VI_1", None, [plan("VI_1", 1, priority=255)])
        await rig.speaker.ready()
        rig.speaker.start_unit(driver)
        await settle()
        assert rig.state("VI_1") is State.MASTER
        rig.follow()
        vip = IP("10.0.0.100")
        rig.monitor.present_now.add(("eth0", vip))
        # Still there when asked (the event was our own change): nothing happens.
        rig.speaker.on_address(AddressEvent(False, "eth0", vip))
        await asyncio.sleep(0.05)
        assert rig.monitor.asked == [("eth0", vip)]
        assert rig.state("VI_1") is State.MASTER
        # Another address gone: not a VIP of ours, not even asked about.
        rig.speaker.on_address(AddressEvent(False, "eth0", IP("10.0.0.101")))
        await asyncio.sleep(0.05)
        assert len(rig.monitor.asked) == 1
        # Really gone: the master resigns and the election runs again.
        rig.monitor.present_now.clear()
        rig.speaker.on_address(AddressEvent(False, "eth0", vip))
        await asyncio.sleep(0.05)
        assert len(rig.monitor.asked) == 2
        assert ("VI_1", "MASTER", "BACKUP", False) in rig.changes

    run(scenario)


def test_a_unit_that_cannot_be_built_names_its_instance_and_leaves_nothing_open() -> None:
    async def scenario(rig: Rig) -> None:
        rig.transport.refuse.add("eth1")
        with pytest.raises(SpeakerError, match=r"^\[B\] interface 'eth1' not found"):
            rig.speaker.build_unit("group G", "G", [plan("A", 1), plan("B", 2, dev="eth1")])
        assert rig.speaker.units == {} and rig.speaker.driver_of == {}
        assert rig.speaker.endpoints == {}
        assert [e.closed for e in rig.transport.endpoints] == [True]

    run(scenario)


def test_carried_masters_come_back_quietly_and_detached_units_are_forgotten() -> None:
    async def scenario(rig: Rig) -> None:
        driver = rig.speaker.build_unit("group G", "G", [plan("A", 1), plan("B", 2)],
                                        carry=frozenset({"A"}))
        await rig.speaker.ready()
        rig.speaker.start_unit(driver, carry=["A"])
        await settle()
        assert rig.state("A") is State.MASTER
        assert ("A", "BACKUP", "MASTER", True) in rig.changes  # no news: a reload kept it
        assert not rig.speaker.is_quiet("A")
        endpoints = [rig.endpoint("A"), rig.endpoint("B")]
        detached = await rig.speaker.detach("group G", resign=["B"])
        assert detached is driver and detached.stopped
        assert rig.speaker.units == {} and rig.speaker.driver_of == {}
        assert all(e.closed for e in endpoints)

    run(scenario)


def test_the_speaker_imports_nothing_of_hacluster_nor_pyroute2_nor_scapy() -> None:
    code = ("import sys, vrrp.speaker, vrrp.driver, vrrp.addresses, vrrp.addrwatch, "
            "vrrp.announce, vrrp.transport\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'hacluster', 'pyroute2', 'scapy'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
