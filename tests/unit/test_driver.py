"""The asyncio driver with recording fakes for the kernel parts, on a real event loop."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence

import pytest

from vrrp.addresses import Vip, VipOp
from vrrp.driver import Driver, Member
from vrrp.machine import InstanceParams, Machine, State
from vrrp.packet import Advert

PRIMARY = ipaddress.IPv4Address("10.0.0.1")
PEER = ipaddress.IPv4Address("10.0.0.2")
VIP = Vip(ipaddress.IPv4Interface("10.0.0.100/24"), "eth0")
INTERVAL = 0.02  # v3: 20 ms adverts keep the real-time tests short


class Log:
    """One ordered record of everything the fakes were asked to do."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.entries: list[tuple[str, str, object]] = []

    def add(self, who: str, what: str, detail: object) -> None:
        self.entries.append((who, what, detail))

    def kinds(self, who: str | None = None) -> list[str]:
        return [w for n, w, _ in self.entries if who is None or n == who]


class FakeSender:
    def __init__(self, name: str, log: Log) -> None:
        self.name, self.log = name, log
        self.sent: list[tuple[float, Advert]] = []

    def send(self, advert: Advert) -> None:
        self.sent.append((self.log.loop.time(), advert))
        self.log.add(self.name, "send", advert.priority)


class FakeVips:
    """Applies each change when it is begun, as netlink does, and acks it at once, or
    when `gate` opens. Not ready: changes wait, in order, until `open()`."""

    def __init__(self, log: Log, gate: asyncio.Event | None = None, ready: bool = True) -> None:
        self.log = log
        self.gate = gate
        self.is_ready = ready
        self.present: set[Vip] = set()
        self.prepared: list[Vip] = []
        self.backlog: list[VipOp] = []
        self.tasks: set[asyncio.Task[None]] = set()

    def prepare(self, vips: Sequence[Vip]) -> None:
        self.prepared.extend(vips)

    def begin(self, command: str, vips: Sequence[Vip]) -> VipOp:
        op = VipOp(command, vips)
        if self.is_ready:
            self._apply(op)
        else:
            self.backlog.append(op)
        return op

    def open(self) -> None:
        self.is_ready = True
        for op in self.backlog:
            self._apply(op)
        self.backlog.clear()

    def _apply(self, op: VipOp) -> None:
        self.log.add("vips", "add" if op.command == "add" else "remove", op.vips)
        results = []
        for vip in op.vips:
            results.append((vip, (vip in self.present) != (op.command == "add")))
            if op.command == "add":
                self.present.add(vip)
            else:
                self.present.discard(vip)

        def ack() -> None:
            for vip, changed in results:
                op.record(vip, changed=changed)

        if self.gate is None:
            ack()
        else:
            gate = self.gate

            async def later() -> None:
                await gate.wait()
                ack()

            task = asyncio.get_running_loop().create_task(later())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)


class FakeAnnouncer:
    def __init__(self, name: str, log: Log) -> None:
        self.name, self.log = name, log
        self.running = False

    def start(self, vips: Sequence[Vip]) -> None:
        self.running = True
        self.log.add(self.name, "announce", tuple(vips))

    def stop(self) -> None:
        self.running = False

    def reannounce(self, vips: Sequence[Vip]) -> None:
        self.log.add(self.name, "reannounce", tuple(vips))


def member(
    log: Log, name: str = "VI_1", priority: int = 100, vrid: int = 1, **kw: object
) -> tuple[Member, FakeSender, FakeAnnouncer]:
    params = InstanceParams(name=name, vrid=vrid, primary_ip=PRIMARY, priority=priority,
                            version=3, advert_int=INTERVAL, vips=(str(VIP),), **kw)  # type: ignore[arg-type]
    sender, announcer = FakeSender(name, log), FakeAnnouncer(name, log)
    template = Advert(3, vrid, priority, INTERVAL, (VIP.address.ip,))
    m = Member(Machine(params), sender, template, {str(VIP): VIP}, announcer)
    return m, sender, announcer


def state_of(m: Member) -> State:
    return m.machine.state


async def wait_for(cond: object, timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():  # type: ignore[operator]
        if loop.time() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.002)


async def test_backup_takes_over_after_master_down_interval_then_adds_and_announces() -> None:
    loop = asyncio.get_running_loop()
    log = Log(loop)
    m, sender, announcer = member(log)
    vips = FakeVips(log)
    driver = Driver([m], vips)
    started = loop.time()
    driver.start()
    mdi = m.machine.master_down_interval()
    await wait_for(lambda: announcer.running)
    first_send = sender.sent[0][0]
    assert m.machine.state is State.MASTER
    assert first_send - started >= mdi  # never early
    assert first_send - started < mdi + 0.5  # generous: a loaded machine may be late
    # Order: advert sent, VIPs added, then announced.
    assert [k for k in log.kinds() if k in ("send", "add", "announce")][:3] == [
        "send", "add", "announce"]
    assert VIP in vips.present
    await asyncio.sleep(5 * INTERVAL)
    assert len(sender.sent) >= 3  # keeps advertising while master
    await driver.stop()
    assert sender.sent[-1][1].priority == 0
    assert VIP not in vips.present
    assert not announcer.running


async def test_adverts_carry_the_template_fields_and_the_machines_priority() -> None:
    log = Log(asyncio.get_running_loop())
    m, sender, _ = member(log, priority=200)
    driver = Driver([m], FakeVips(log))
    driver.start()
    await wait_for(lambda: bool(sender.sent))
    advert = sender.sent[0][1]
    assert (advert.version, advert.vrid, advert.priority) == (3, 1, 200)
    assert advert.addresses == (VIP.address.ip,)
    assert advert.max_advert_int == INTERVAL
    await driver.stop()


async def test_timers_never_fire_early_and_an_early_wakeup_is_not_lost() -> None:
    loop = asyncio.get_running_loop()
    log = Log(loop)
    m, sender, _ = member(log)
    driver = Driver([m], FakeVips(log))
    seen: list[tuple[float, float]] = []  # (deadline, clock) whenever the core is woken
    real = driver.core.handle_timer

    def recording(now: float) -> object:
        seen.append((m.machine.next_deadline() or 0.0, loop.time()))
        return real(now)

    driver.core.handle_timer = recording  # type: ignore[method-assign, assignment]
    driver.start()
    deadline = m.machine.next_deadline()
    assert deadline is not None and deadline - loop.time() > 0.05
    driver._on_timer(deadline)  # a wake-up long before the deadline: ignored, re-armed
    assert m.machine.state is State.BACKUP and not seen
    assert driver._timer is not None
    await wait_for(lambda: state_of(m) is State.MASTER)
    await asyncio.sleep(4 * INTERVAL)  # a few master advert timers too
    assert seen and all(clock >= dl for dl, clock in seen), seen
    assert sender.sent[0][0] >= deadline
    await driver.stop()


async def test_exactly_one_timer_is_armed_whatever_arrives() -> None:
    loop = asyncio.get_running_loop()
    log = Log(loop)
    m, _, _ = member(log, priority=100)
    driver = Driver([m], FakeVips(log))
    live: list[asyncio.TimerHandle] = []
    real_call_at = loop.call_at

    def counting_call_at(
        when: float, cb: object, *args: object, **kw: object
    ) -> asyncio.TimerHandle:
        handle = real_call_at(when, cb, *args, **kw)  # type: ignore[arg-type]
        if cb == driver._on_timer:
            live.append(handle)
        return handle

    loop.call_at = counting_call_at  # type: ignore[method-assign, assignment]
    try:
        driver.start()
        for _ in range(20):  # a higher-priority master keeps us BACKUP
            driver.advert_received("VI_1", PEER, 200, INTERVAL)
            await asyncio.sleep(INTERVAL / 4)
            assert sum(not h.cancelled() for h in live if h.when() > loop.time()) == 1
        assert m.machine.state is State.BACKUP
    finally:
        loop.call_at = real_call_at  # type: ignore[method-assign]
        await driver.stop()


async def test_priority_zero_from_master_makes_backup_take_over_after_skew_time() -> None:
    loop = asyncio.get_running_loop()
    log = Log(loop)
    m, sender, _ = member(log, priority=100)
    driver = Driver([m], FakeVips(log))
    driver.start()
    driver.advert_received("VI_1", PEER, 200, INTERVAL)
    await asyncio.sleep(INTERVAL)
    resigned = loop.time()
    driver.advert_received("VI_1", PEER, 0, INTERVAL)
    skew = m.machine.skew_time()
    await wait_for(lambda: bool(sender.sent))
    assert m.machine.state is State.MASTER
    assert sender.sent[0][0] - resigned >= skew
    assert sender.sent[0][0] - resigned < m.machine.master_down_interval()
    await driver.stop()


async def test_announcement_is_skipped_when_mastership_was_lost_before_vips_were_added() -> None:
    loop = asyncio.get_running_loop()
    log = Log(loop)
    gate = asyncio.Event()
    m, _, announcer = member(log)
    vips = FakeVips(log, gate)
    driver = Driver([m], vips)
    driver.start()
    await wait_for(lambda: m.machine.state is State.MASTER)
    driver.advert_received("VI_1", PEER, 250, INTERVAL)  # preempted while netlink is slow
    assert m.machine.state is State.BACKUP
    gate.set()
    await driver.drain()
    assert "announce" not in log.kinds("VI_1")
    assert log.kinds("vips")[-2:] == ["add", "remove"]  # the queue still ran in order
    assert VIP not in vips.present
    assert not announcer.running
    await driver.stop()


async def test_fault_from_outside_makes_master_resign_and_clearing_restarts() -> None:
    log = Log(asyncio.get_running_loop())
    m, sender, announcer = member(log)
    vips = FakeVips(log)
    driver = Driver([m], vips)
    driver.start()
    await wait_for(lambda: announcer.running)
    driver.raise_fault("VI_1", "interface eth1 down")
    assert m.machine.state is State.FAULT
    assert sender.sent[-1][1].priority == 0
    assert not announcer.running
    await driver.drain()
    assert VIP not in vips.present
    driver.clear_fault("VI_1", "interface eth1 down")
    assert state_of(m) is State.BACKUP
    await wait_for(lambda: state_of(m) is State.MASTER)
    await driver.stop()


async def test_priority_change_from_outside_is_advertised() -> None:
    log = Log(asyncio.get_running_loop())
    m, sender, _ = member(log, priority=100)
    driver = Driver([m], FakeVips(log))
    driver.start()
    await wait_for(lambda: m.machine.state is State.MASTER)
    driver.set_priority_delta("VI_1", -30)
    n = len(sender.sent)
    await wait_for(lambda: len(sender.sent) > n)
    assert sender.sent[-1][1].priority == 70
    await driver.stop()


async def test_leftover_vips_are_removed_at_start_before_the_machines_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = Log(asyncio.get_running_loop())
    m, _, _ = member(log)
    vips = FakeVips(log)
    vips.present.add(VIP)  # left behind by a crashed run
    driver = Driver([m], vips)
    driver.on_state = lambda name, change: log.add(name, "state", change.new)
    with caplog.at_level("WARNING", logger="vrrp.driver"):
        driver.start()
        # Done within start(), before the first state change.
        assert log.entries[:2] == [("vips", "remove", (VIP,)), ("VI_1", "state", State.BACKUP)]
    assert VIP not in vips.present
    assert vips.prepared == [VIP]
    assert "[VI_1] removed VIPs left behind by a previous run: 10.0.0.100/24 dev eth0" in (
        caplog.text)
    await driver.stop()


async def test_cleanup_waiting_for_netlink_spares_the_vips_of_a_member_already_master() -> None:
    log = Log(asyncio.get_running_loop())
    m, _, announcer = member(log, priority=255)  # an owner: MASTER at once
    vips = FakeVips(log, ready=False)
    vips.present.add(VIP)  # left behind, and its own again at once
    driver = Driver([m], vips)
    driver.start()
    assert m.machine.state is State.MASTER
    await asyncio.sleep(0.01)  # the worker meets the clean-up while netlink is not open
    vips.open()
    await driver.drain()
    assert log.kinds("vips") == ["add"]  # never removed, so never a gap
    assert VIP in vips.present
    assert announcer.running
    await driver.stop()
    assert VIP not in vips.present


async def test_cleanup_waiting_for_netlink_removes_the_vips_of_a_backup() -> None:
    log = Log(asyncio.get_running_loop())
    m, _, _ = member(log)
    vips = FakeVips(log, ready=False)
    vips.present.add(VIP)
    driver = Driver([m], vips)
    driver.start()
    await asyncio.sleep(0.005)
    assert m.machine.state is State.BACKUP and VIP in vips.present
    vips.open()
    await driver.drain()
    assert log.kinds("vips") == ["remove"]
    assert VIP not in vips.present
    await driver.stop()


async def test_takeover_adds_and_announces_in_the_same_callback_as_the_first_advert() -> None:
    log = Log(asyncio.get_running_loop())
    m, sender, announcer = member(log)
    vips = FakeVips(log)
    driver = Driver([m], vips)
    seen: list[tuple[State, bool, bool, int]] = []
    # Called while the timer callback that made the machine MASTER is still running.
    driver.on_state = lambda name, change: seen.append(
        (change.new, VIP in vips.present, announcer.running, len(sender.sent)))
    driver.start()
    await wait_for(lambda: m.machine.state is State.MASTER)
    assert seen[-1] == (State.MASTER, True, True, 1)
    assert log.kinds()[-3:] == ["send", "add", "announce"]
    await driver.stop()


async def test_announcement_waits_for_a_late_ack_of_the_addition() -> None:
    log = Log(asyncio.get_running_loop())
    gate = asyncio.Event()
    m, _, announcer = member(log)
    vips = FakeVips(log, gate)
    driver = Driver([m], vips)
    driver.start()
    await wait_for(lambda: m.machine.state is State.MASTER)
    await asyncio.sleep(0.01)
    assert not announcer.running  # the add is not acknowledged yet
    gate.set()
    await driver.drain()
    assert announcer.running
    await driver.stop()


async def test_a_failed_addition_is_reported_and_the_machine_goes_on() -> None:
    log = Log(asyncio.get_running_loop())
    m, sender, _ = member(log)

    class Refusing(FakeVips):
        def _apply(self, op: VipOp) -> None:
            op.fail("interface 'eth0' not found")

    m.cleanup_at_start = False
    driver = Driver([m], Refusing(log))
    driver.start()
    await wait_for(lambda: m.machine.state is State.MASTER)
    await asyncio.sleep(3 * INTERVAL)
    assert m.machine.state is State.MASTER and len(sender.sent) >= 2
    assert driver.status()["VI_1"]["vip_errors"] == [
        "add 10.0.0.100/24 dev eth0: interface 'eth0' not found"]
    await driver.stop()


async def test_sync_group_members_become_master_together_and_stop_together() -> None:
    log = Log(asyncio.get_running_loop())
    m1, s1, a1 = member(log, "VI_1", vrid=1)
    m2, s2, a2 = member(log, "VI_2", vrid=2, priority=90)
    vips = FakeVips(log)
    driver = Driver([m1, m2], vips, group="G1")
    changes: list[tuple[str, State]] = []
    driver.on_state = lambda name, change: changes.append((name, change.new))
    driver.start()
    # VI_2 hears a master, VI_1 does not: the group holds VI_1's takeover.
    for _ in range(8):
        driver.advert_received("VI_2", PEER, 200, INTERVAL)
        await asyncio.sleep(INTERVAL)
    assert (m1.machine.state, m2.machine.state) == (State.BACKUP, State.BACKUP)
    assert not s1.sent and not s2.sent
    await wait_for(lambda: a1.running and a2.running)  # the peer went silent
    assert ("VI_1", State.MASTER) in changes and ("VI_2", State.MASTER) in changes
    status = driver.status()
    assert status["VI_1"]["sync_group"] == "G1" and status["VI_2"]["state"] == "MASTER"
    await driver.stop()
    assert s1.sent[-1][1].priority == 0 and s2.sent[-1][1].priority == 0


async def test_events_for_an_unknown_member_are_refused() -> None:
    log = Log(asyncio.get_running_loop())
    m, _, _ = member(log)
    driver = Driver([m], FakeVips(log))
    driver.start()
    with pytest.raises(KeyError):
        driver.advert_received("VI_9", PEER, 100, INTERVAL)
    await driver.stop()


async def test_a_master_hearing_a_lower_advert_advertises_and_reannounces_at_once() -> None:
    log = Log(asyncio.get_running_loop())
    m, sender, _ = member(log, priority=200)
    driver = Driver([m], FakeVips(log))
    driver.start()
    await wait_for(lambda: state_of(m) is State.MASTER)
    sent = len(sender.sent)
    driver.advert_received("VI_1", PEER, 100, INTERVAL)  # the other side of a healed split
    assert len(sender.sent) == sent + 1 and sender.sent[-1][1].priority == 200
    assert log.kinds("VI_1")[-2:] == ["send", "reannounce"]
    assert log.entries[-1][2] == (VIP,)
    assert state_of(m) is State.MASTER
    await driver.stop()


async def test_an_advert_counts_from_its_arrival_not_from_its_handling() -> None:
    """SO_TIMESTAMPNS: an advert handled 30 ms after it arrived restarts the master-down
    timer from its arrival, so a busy loop does not stretch the timer."""
    loop = asyncio.get_running_loop()
    log = Log(loop)
    m, _, _ = member(log, priority=100)
    driver = Driver([m], FakeVips(log))
    driver.start()
    try:
        driver.advert_received("VI_1", PEER, 200, INTERVAL)
        fresh = m.machine.next_deadline()
        driver.advert_received("VI_1", PEER, 200, INTERVAL, age=0.03)
        late = m.machine.next_deadline()
        assert fresh is not None and late is not None
        assert late == pytest.approx(fresh - 0.03, abs=0.005)
    finally:
        await driver.stop()


def test_arrival_age_reads_the_kernel_stamp() -> None:
    import socket
    import struct

    from vrrp.transport import SO_TIMESTAMPNS, arrival_age

    stamp = struct.pack("=qq", 1000, 250_000_000)
    anc = [(socket.SOL_SOCKET, SO_TIMESTAMPNS, stamp)]
    assert arrival_age(anc, now=1000.30) == pytest.approx(0.05)
    assert arrival_age([], now=1000.3) == 0.0
    assert arrival_age(anc, now=999.0) == 0.0  # from the future: a clock step
    assert arrival_age(anc, now=1100.0) == 0.0  # too old to believe
