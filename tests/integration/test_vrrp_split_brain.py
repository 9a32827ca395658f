"""A split brain healing: the winner re-announces and a client's ARP entry follows it."""

from __future__ import annotations

import json
import time

import pytest

from hacluster.lab.netns import ping
from tests.integration.vrrp_director import VIP4, PairLab, config_yaml, instance_yaml

pytestmark = pytest.mark.netns

# Only VRRP between the directors is cut: both still reach the client, as when a
# switch between two halves of a segment drops the adverts (or a firewall does).
_CUT = """
table inet hc_cut {
    chain in { type filter hook input priority 0; ip protocol vrrp drop; }
    chain out { type filter hook output priority 0; ip protocol vrrp drop; }
}
"""


def _neighbour(pair: PairLab, address: str) -> str | None:
    """The client's neighbour-table MAC for `address` (None without an entry)."""
    out = pair.lab.run(pair.obs, ["ip", "-j", "neigh", "show", "to", address, "dev", "eth0"])
    for entry in json.loads(out.stdout or "[]"):
        mac = entry.get("lladdr")
        if mac:
            return str(mac)
    return None


def _wait_neighbour(pair: PairLab, mac: str, timeout: float) -> float | None:
    """Seconds until the client's entry for the VIP is `mac`, or None at the timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if _neighbour(pair, VIP4) == mac:
            return time.monotonic() - start
        time.sleep(0.01)
    return None


def test_after_a_healed_split_brain_the_client_follows_the_winner(pair: PairLab) -> None:
    # higher_prio_send_advert makes the heal deterministic whichever advert crosses
    # first: the loser advertises before yielding, so the winner always hears a lower
    # advert and re-announces (garp_lower_prio_repeat, keepalived's default 5).
    extra = "higher_prio_send_advert: true"
    a = pair.director("a", config_yaml(instance_yaml(priority=200, extra=extra))).start()
    b = pair.director("b", config_yaml(instance_yaml(priority=100, extra=extra))).start()
    a.wait_state("MASTER")
    b.wait_state("BACKUP")
    a.wait_vip()
    mac_a, mac_b = pair.mac("a"), pair.mac("b")
    assert ping(pair.lab, pair.obs, VIP4)
    assert _neighbour(pair, VIP4) == mac_a

    pair.lab.run(pair.a_ns, ["nft", "-f", "-"], input=_CUT)
    cut_at = time.monotonic()
    try:
        b.wait_state("MASTER", timeout=5)
        assert a.state() == "MASTER"  # both masters: the split brain
        # The loser's takeover GARPs moved the client over to it.
        assert _wait_neighbour(pair, mac_b, timeout=3) is not None
        time.sleep(max(0.0, 3.0 - (time.monotonic() - cut_at)))
    finally:
        pair.lab.run(pair.a_ns, ["nft", "delete", "table", "inet", "hc_cut"])
    healed = time.monotonic()
    back = _wait_neighbour(pair, mac_a, timeout=3)
    print(f"\nsplit brain healed after {healed - cut_at:.2f}s cut: client's ARP entry "
          f"back on the winner {back if back is None else round(back * 1000)} ms after the heal")
    assert back is not None, (
        f"client still on the loser's MAC 3 s after the heal\n{a.output()[-3000:]}")
    b.wait_state("BACKUP", timeout=3)
    a.wait_log("lower priority advert heard")
    assert a.state() == "MASTER"
    assert not b.has_vip()


def test_lower_prio_no_advert_and_zero_repeat_stay_silent(pair: PairLab) -> None:
    # The opt-outs keepalived has: no advert back, no GARPs; the heal still converges
    # (on the winner's next periodic advert), only the client is not told.
    extra = "lower_prio_no_advert: true\ngarp_lower_prio_repeat: 0"
    a = pair.director("a", config_yaml(instance_yaml(priority=200, extra=extra))).start()
    b = pair.director("b", config_yaml(instance_yaml(priority=100))).start()
    a.wait_state("MASTER")
    b.wait_state("BACKUP")
    pair.lab.run(pair.a_ns, ["nft", "-f", "-"], input=_CUT)
    try:
        b.wait_state("MASTER", timeout=5)
        time.sleep(0.5)
    finally:
        pair.lab.run(pair.a_ns, ["nft", "delete", "table", "inet", "hc_cut"])
    b.wait_state("BACKUP", timeout=3)
    time.sleep(0.3)
    assert "lower priority advert heard" not in a.output()
    assert a.state() == "MASTER"
