"""Driver.detach and Driver.force_master: a reload's handover, with recording fakes."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from tests.unit.test_driver import (
    INTERVAL,
    PEER,
    PRIMARY,
    VIP,
    FakeAnnouncer,
    FakeSender,
    FakeVips,
    Log,
    member,
    state_of,
    wait_for,
)
from vrrp.addresses import Vip
from vrrp.driver import Driver, Member
from vrrp.machine import InstanceParams, Machine, State, StateChanged
from vrrp.packet import Advert

VIP2 = Vip(ipaddress.IPv4Interface("10.0.0.101/24"), "eth0")


def member_with(log: Log, name: str, vrid: int, vip: Vip) -> tuple[Member, FakeSender]:
    params = InstanceParams(name=name, vrid=vrid, primary_ip=PRIMARY, priority=100,
                            version=3, advert_int=INTERVAL, vips=(str(vip),))
    sender = FakeSender(name, log)
    template = Advert(3, vrid, 100, INTERVAL, (vip.address.ip,))
    return Member(Machine(params), sender, template, {str(vip): vip},
                  FakeAnnouncer(name, log)), sender


async def test_detach_leaves_a_master_holding_its_vips_and_silences_it() -> None:
    log = Log(asyncio.get_running_loop())
    m, sender, announcer = member(log)
    vips = FakeVips(log)
    driver = Driver([m], vips)
    driver.start()
    await wait_for(lambda: announcer.running)
    await driver.detach()
    assert driver.stopped
    sent = len(sender.sent)
    assert sent >= 1 and all(a.priority == 100 for _, a in sender.sent)  # no priority 0
    assert VIP in vips.present and log.kinds("vips") == ["remove", "add"]  # start clean-up
    assert not announcer.running
    await asyncio.sleep(4 * INTERVAL)
    assert len(sender.sent) == sent  # no timer left armed
    driver.advert_received("VI_1", PEER, 200, INTERVAL)  # ignored once off the loop
    assert m.machine.state is State.MASTER
    await driver.stop()  # nothing left to stop: no resignation either
    assert len(sender.sent) == sent and VIP in vips.present


async def test_detach_resigns_only_the_members_named() -> None:
    log = Log(asyncio.get_running_loop())
    m1, s1 = member_with(log, "VI_1", 1, VIP)
    m2, s2 = member_with(log, "VI_2", 2, VIP2)
    vips = FakeVips(log)
    driver = Driver([m1, m2], vips, group="G1")
    driver.start()
    await wait_for(lambda: m1.machine.state is State.MASTER
                   and m2.machine.state is State.MASTER)
    await driver.detach(resign=["VI_2"])
    assert s2.sent[-1][1].priority == 0 and VIP2 not in vips.present
    assert s1.sent[-1][1].priority == 100 and VIP in vips.present
    assert m1.machine.state is State.MASTER


async def test_detach_finishes_the_vip_work_already_queued() -> None:
    log = Log(asyncio.get_running_loop())
    gate = asyncio.Event()
    m, _, _ = member(log)
    m.cleanup_at_start = False
    vips = FakeVips(log, gate)
    driver = Driver([m], vips)
    driver.start()
    await wait_for(lambda: m.machine.state is State.MASTER)
    detaching = asyncio.ensure_future(driver.detach())
    await asyncio.sleep(0.01)
    assert not detaching.done()  # the addition is not acknowledged yet
    gate.set()
    await asyncio.wait_for(detaching, 2.0)
    assert m.vip_errors == [] and VIP in vips.present


async def test_detach_with_an_unknown_member_refuses_and_keeps_running() -> None:
    log = Log(asyncio.get_running_loop())
    m, sender, _ = member(log)
    driver = Driver([m], FakeVips(log))
    driver.start()
    with pytest.raises(KeyError, match="VI_9"):
        await driver.detach(resign=["VI_9"])
    assert not driver.stopped
    await wait_for(lambda: bool(sender.sent))  # the timer still runs
    await driver.stop()
    assert sender.sent[-1][1].priority == 0


async def test_force_master_takes_over_at_once_and_keeps_advertising() -> None:
    log = Log(asyncio.get_running_loop())
    m, sender, announcer = member(log)
    m.cleanup_at_start = False
    vips = FakeVips(log)
    driver = Driver([m], vips)
    changes: list[StateChanged] = []
    driver.on_state = lambda name, change: changes.append(change)
    driver.start()
    assert m.machine.state is State.BACKUP
    assert driver.force_master("VI_1", "reload: mastership kept") is True
    # In the same call: advertised, VIP added and announced.
    assert state_of(m) is State.MASTER and len(sender.sent) == 1
    assert VIP in vips.present and announcer.running
    assert changes[-1].new is State.MASTER and changes[-1].reason == "reload: mastership kept"
    await wait_for(lambda: len(sender.sent) >= 3)  # the advert timer is armed
    assert driver.force_master("VI_1", "again") is True  # already MASTER: nothing new
    assert len(changes) == 2
    await driver.stop()
    assert sender.sent[-1][1].priority == 0 and VIP not in vips.present


async def test_force_master_refuses_bad_calls() -> None:
    log = Log(asyncio.get_running_loop())
    m, sender, _ = member(log)
    driver = Driver([m], FakeVips(log))
    with pytest.raises(RuntimeError, match="before start"):
        driver.force_master("VI_1", "too early")
    driver.start()
    with pytest.raises(KeyError, match="VI_9"):
        driver.force_master("VI_9", "unknown")
    driver.raise_fault("VI_1", "link down")
    assert driver.force_master("VI_1", "faulty") is False
    assert m.machine.state is State.FAULT and not sender.sent
    await driver.stop()
    assert driver.force_master("VI_1", "stopped") is False
    assert state_of(m) is not State.MASTER


async def test_a_master_handed_over_to_a_new_driver_never_loses_its_vip() -> None:
    log = Log(asyncio.get_running_loop())
    old, old_sender, _ = member(log)
    vips = FakeVips(log)
    first = Driver([old], vips)
    first.start()
    await wait_for(lambda: old.machine.state is State.MASTER)
    await first.detach()
    new, new_sender, announcer = member(log)
    new.cleanup_at_start = False  # a kept master's VIPs are its own
    second = Driver([new], vips)
    second.start()
    assert second.force_master("VI_1", "reload: mastership kept")
    await wait_for(lambda: len(new_sender.sent) >= 2)
    assert all(a.priority == 100 for _, a in old_sender.sent + new_sender.sent)
    assert log.kinds("vips") == ["remove", "add", "add"]  # start clean-up, then held
    assert VIP in vips.present and announcer.running
    await second.stop()
    assert VIP not in vips.present
