"""A VRRPv2 instance without virtual addresses, against keepalived 2.2.7 as its peer.

keepalived runs such instances with a warning ("No VIP specified; at least one is
sensible"): cloud deployments move a floating IP from a notify script instead. Their
adverts carry no address. hacluster accepts the configuration too; here it elects,
fails over and preempts with a keepalived peer configured the same way, both ways round.
"""

from __future__ import annotations

import time

import pytest

from hacluster.lab.capture import Capture
from hacluster.lab.keepalived import KeepalivedInstance
from hacluster.lab.netns import Lab
from hacluster.lab.speaker import HaclusterPeer, make_speaker

pytestmark = [pytest.mark.netns, pytest.mark.keepalived, pytest.mark.timeout(120)]

HIGH, LOW = 200, 100
VRID = 61


def instance(priority: int, src: str, peer: str) -> KeepalivedInstance:
    return KeepalivedInstance(
        virtual_router_id=VRID, priority=priority,
        state="MASTER" if priority == HIGH else "BACKUP", version=2, advert_int=1.0,
        unicast_src_ip=src, unicast_peers=(peer,),
    )


@pytest.mark.parametrize("high_kind", ["hacluster", "keepalived"])
def test_vipless_pair_elects_fails_over_and_preempts(lab: Lab, high_kind: str) -> None:
    low_kind = "keepalived" if high_kind == "hacluster" else "hacluster"
    sw = lab.namespace("sw")
    lab.bridge(sw)
    hi_ns, lo_ns = lab.namespace("hi"), lab.namespace("lo")
    lab.attach(hi_ns, "eth0", sw, "br0", ["10.82.0.1/24"])
    lab.attach(lo_ns, "eth0", sw, "br0", ["10.82.0.2/24"])
    cap = Capture(lab, lo_ns, "eth0", name="vipless")  # unicast: seen at the receiver
    cap.start()
    hi = make_speaker(high_kind, lab, hi_ns, (instance(HIGH, "10.82.0.1", "10.82.0.2"),),
                      f"hi-{high_kind}")
    lo = make_speaker(low_kind, lab, lo_ns, (instance(LOW, "10.82.0.2", "10.82.0.1"),),
                      f"lo-{low_kind}")

    hi.start()
    hi.wait_state("MASTER", timeout=15)
    lo.start()
    lo.wait_state("BACKUP", timeout=10)
    end = time.monotonic() + 4.5  # past the backup's master-down interval (~3.6 s)
    while time.monotonic() < end:
        assert lo.state() != "MASTER", f"{lo.name} became MASTER:\n{lo.log()}"
        time.sleep(0.05)
    # the master's unicast adverts cross the bridge: VRRPv2, no address in them
    advert = cap.wait_for(lambda f: f.kind == "vrrp" and f.vrid == VRID
                          and f.src == "10.82.0.1", 3.0)
    assert (advert.version, advert.priority, advert.addresses) == (2, HIGH, ())

    hi.crash()
    lo.wait_state("MASTER", timeout=8)
    before = len(lo.states())
    hi.start()
    hi.wait_state("MASTER", timeout=15)
    lo.wait_state("BACKUP", timeout=5, after=before)

    for speaker in (hi, lo):
        if isinstance(speaker, HaclusterPeer):
            status = speaker.status()
            assert {k: v for k, v in status["dropped"].items() if v} == {}
            assert status["instances"]["VI_1"]["adverts_accepted"] > 0
