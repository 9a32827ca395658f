"""hacluster against the real keepalived 2.2.7 as its VRRP peer, on a namespace lab bridge.

For each case (v2 with PASS auth / v3, multicast / unicast, IPv4 / IPv6) and each
direction (hacluster the higher priority and keepalived the lower, and the reverse):

1. election: the higher priority starts and becomes MASTER with the VIP; then the
   lower starts and stays BACKUP for longer than its master-down interval, which it can only do
   if it accepts the master's adverts (v3 IPv4: checksum over the pseudo-header);
2. failover: SIGKILL of the master (both keepalived processes); the backup takes over,
   adds the VIP and announces it (gratuitous ARP / unsolicited NA seen by an observer);
3. preemption back: the higher priority restarts and the other accepts its adverts and
   steps down to BACKUP, releasing the VIP;
4. graceful stop: SIGTERM of the master; its priority-0 advert makes the other take over
   well before a master-down interval.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from hacluster.lab.capture import Capture, Frame
from hacluster.lab.keepalived import KeepalivedInstance, KeepalivedPeer
from hacluster.lab.netns import Lab, Netns
from hacluster.lab.speaker import HaclusterPeer, Speaker, make_speaker

pytestmark = [pytest.mark.netns, pytest.mark.keepalived, pytest.mark.timeout(120)]

HIGH, LOW = 200, 100


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    version: int
    unicast: bool
    family: int
    advert_int: float
    auth_pass: str | None = None


CASES = [
    Case("v2-mcast-v4-auth", 2, False, 4, 1.0, "s3cret"),
    Case("v2-ucast-v4-auth", 2, True, 4, 1.0, "s3cret"),
    Case("v3-mcast-v4", 3, False, 4, 0.1),
    Case("v3-ucast-v4", 3, True, 4, 0.1),
    Case("v3-mcast-v6", 3, False, 6, 0.1),
    Case("v3-ucast-v6", 3, True, 6, 0.1),
]


def mdi(case: Case, priority: int) -> float:
    """Master-down interval (RFC 3768 6.1 / RFC 5798 6.1)."""
    skew = (256 - priority) / 256 if case.version == 2 else (256 - priority) * case.advert_int / 256
    return 3 * case.advert_int + skew


@dataclass(slots=True)
class Net:
    lab: Lab
    hi: Netns
    lo: Netns
    obs: Netns
    cap: Capture
    addr: dict[str, str]


def _addr(family: int, host: int) -> str:
    return f"10.81.0.{host}" if family == 4 else f"fd81::{host}"


def _build(lab: Lab) -> Net:
    sw = lab.namespace("sw")
    lab.bridge(sw)
    ns: dict[str, Netns] = {}
    addr: dict[str, str] = {}
    for host, role in enumerate(("hi", "lo", "obs"), start=1):
        ns[role] = lab.namespace(role)
        lab.attach(ns[role], "eth0", sw, "br0", [f"{_addr(4, host)}/24", f"{_addr(6, host)}/64"])
        addr[f"{role}4"] = _addr(4, host)
        addr[f"{role}6"] = _addr(6, host)
        addr[f"{role}ll"] = lab.link_local(ns[role], "eth0")
    cap = Capture(lab, ns["obs"], "eth0", name="interop")
    cap.start()
    return Net(lab, ns["hi"], ns["lo"], ns["obs"], cap, addr)


@pytest.fixture
def net(lab: Lab) -> Iterator[Net]:
    yield _build(lab)


def _instance(case: Case, net: Net, role: str, vrid: int) -> KeepalivedInstance:
    fam = case.family
    vip = f"10.81.1.{vrid}/24" if fam == 4 else f"fd81:1::{vrid}/64"
    other = "lo" if role == "hi" else "hi"
    return KeepalivedInstance(
        virtual_router_id=vrid,
        priority=HIGH if role == "hi" else LOW,
        state="MASTER" if role == "hi" else "BACKUP",
        version=case.version,
        advert_int=case.advert_int,
        virtual_ipaddress=(vip,),
        auth_pass=case.auth_pass,
        unicast_src_ip=net.addr[f"{role}{fam}"] if case.unicast else None,
        unicast_peers=(net.addr[f"{other}{fam}"],) if case.unicast else (),
    )


def _vip(inst: KeepalivedInstance) -> str:
    return str(ipaddress.ip_interface(inst.virtual_ipaddress[0]).ip)


def _src(case: Case, net: Net, role: str) -> str:
    """Source address of a role's adverts: IPv6 multicast adverts use the link-local."""
    if case.family == 6 and not case.unicast:
        return net.addr[f"{role}ll"]
    return net.addr[f"{role}{case.family}"]


def _announced(case: Case, vip: str, mac: str) -> Callable[[Frame], bool]:
    kind = "arp" if case.family == 4 else "na"

    def match(f: Frame) -> bool:
        return f.kind == kind and f.target == vip and f.gratuitous and f.src_mac == mac
    return match


def _never_master(speaker: Speaker, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert speaker.state() != "MASTER", f"{speaker.name} became MASTER:\n{speaker.log()}"
        time.sleep(0.02)


def _vips_become(speaker: Speaker, present: bool, timeout: float = 5.0) -> bool:
    """Wait until the speaker holds (or no longer holds) its VIPs; True if it happened.

    VIPs follow a state change asynchronously (netlink), so allow some time.
    """
    deadline = time.monotonic() + timeout
    while speaker.has_vips() != present:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _keepalived_complaints(speaker: Speaker) -> list[str]:
    if not isinstance(speaker, KeepalivedPeer):
        return []
    words = ("invalid", "checksum", "bad ", "mismatch", "wrong", "error")
    return [line for line in speaker.log().splitlines()
            if any(w in line.lower() for w in words)]


HC_HIGH = ("hacluster", "keepalived")
KA_HIGH = ("keepalived", "hacluster")
# Every case runs both ways round, except that v2 (1 s adverts, ~18 s a run) runs one
# way per transport: each run already makes both daemons master and backup in turn.
MATRIX = [
    pytest.param(case, kinds, id=f"{case.id}-{kinds[0]}-high")
    for case in CASES
    for kinds in (HC_HIGH, KA_HIGH)
]


@pytest.mark.parametrize(("case", "kinds"), MATRIX)
def test_interop(net: Net, case: Case, kinds: tuple[str, str]) -> None:
    high_kind, low_kind = kinds
    vrid = 40 + CASES.index(case)
    hi_inst = _instance(case, net, "hi", vrid)
    lo_inst = _instance(case, net, "lo", vrid)
    hi = make_speaker(high_kind, net.lab, net.hi, (hi_inst,), f"hi-{high_kind}")
    lo = make_speaker(low_kind, net.lab, net.lo, (lo_inst,), f"lo-{low_kind}")
    vip = _vip(hi_inst)
    hi_mac = net.lab.mac(net.hi, "eth0")
    lo_mac = net.lab.mac(net.lo, "eth0")
    cap = net.cap

    # 1. Election: the higher priority (initial state MASTER) first, then the other,
    # which must hear it from the start and stay BACKUP through more than its own
    # master-down interval.
    mark = cap.mark()
    hi.start()
    hi.wait_state("MASTER", timeout=10 + 2 * mdi(case, HIGH))
    # Once the VIP is announced, the master is past its start-up work.
    assert _vips_become(hi, True, timeout=10), f"{hi.name} is MASTER without its VIP"
    cap.wait_for(_announced(case, vip, hi_mac), 6.0, since=mark)
    settled = cap.mark()
    lo.start()
    lo.wait_state("BACKUP", timeout=10)
    _never_master(lo, 1.2 * mdi(case, LOW))
    assert hi.has_vips() and not lo.has_vips()
    if not case.unicast:
        adverts = cap.adverts(vrid=vrid, src=_src(case, net, "hi"))
        assert adverts, "no adverts from the master seen on the wire"
        a = adverts[-1]
        assert (a.version, a.priority, a.ttl) == (case.version, HIGH, 255)
        assert a.addresses == (vip,)
        assert not cap.adverts(vrid=vrid, src=_src(case, net, "lo"), since=settled)

    # 2. Failover on a crash of the master.
    mark = cap.mark()
    t0 = time.monotonic()
    hi.crash()
    lo.wait_state("MASTER", timeout=5 + 2 * mdi(case, LOW))
    took = time.monotonic() - t0
    assert took >= 0.8 * (mdi(case, LOW) - case.advert_int), took  # waited for the timer
    assert _vips_become(lo, True), f"{lo.name} is MASTER without its VIP"
    cap.wait_for(_announced(case, vip, lo_mac), 6.0, since=mark)
    if not case.unicast:
        first = cap.wait_for(lambda f: f.kind == "vrrp" and f.vrid == vrid
                             and f.src == _src(case, net, "lo"), 2.0, since=mark)
        assert first.priority == LOW and first.version == case.version

    # 3. The higher priority comes back and preempts; the other steps down.
    mark = cap.mark()
    before = len(lo.states())
    hi.start()
    hi.wait_state("MASTER", timeout=10 + 2 * mdi(case, HIGH))
    lo.wait_state("BACKUP", timeout=5, after=before)
    assert _vips_become(hi, True), f"{hi.name} is MASTER without its VIP"
    assert _vips_become(lo, False), f"{lo.name} is BACKUP and still holds the VIP"
    cap.wait_for(_announced(case, vip, hi_mac), 6.0, since=mark)

    # The hacluster side dropped none of keepalived's adverts (checksum, auth, TTL...).
    for speaker in (hi, lo):
        if isinstance(speaker, HaclusterPeer):
            status = speaker.status()
            dropped = {k: v for k, v in status["dropped"].items() if v}
            assert dropped == {}, f"{speaker.name} dropped adverts: {dropped}"
            if speaker is lo:
                assert status["instances"]["VI_1"]["adverts_accepted"] > 0

    # 4. Graceful stop of the master: priority 0, the other takes over within its skew
    # time plus generous slack, far below a master-down interval for v2.
    mark = cap.mark()
    before = len(lo.states())
    t0 = time.monotonic()
    hi.terminate()
    lo.wait_state("MASTER", timeout=5, after=before)
    took = time.monotonic() - t0
    assert hi.process is not None
    assert hi.process.popen.wait(5) == 0, hi.log()[-2000:]
    if not case.unicast:
        zero = cap.wait_for(lambda f: f.kind == "vrrp" and f.vrid == vrid and f.priority == 0,
                            2.0, since=mark)
        assert zero.src == _src(case, net, "hi")
    if case.version == 2:
        assert took < mdi(case, LOW), f"hand-over took {took:.3f}s: priority 0 ignored?"
    assert _vips_become(lo, True), f"{lo.name} is MASTER without its VIP"
    assert not hi.has_vips(), f"{hi.name} stopped and left its VIP behind"
    assert _keepalived_complaints(hi) == []
    assert _keepalived_complaints(lo) == []
