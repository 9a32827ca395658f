"""A director killed with SIGKILL and started again takes its old VIPs off first thing."""

from __future__ import annotations

import os
import time
from datetime import datetime

import pytest

from hacluster.lab.netns import LabProcess
from tests.integration.vrrp_director import VIP4, Director, PairLab, config_yaml, instance_yaml
from vrrp import vipstate

pytestmark = pytest.mark.netns


def _monitor(pair: PairLab) -> LabProcess:
    """`ip -ts monitor address` in director a's namespace (time-stamped address events)."""
    proc = pair.lab.start(pair.a_ns, ["ip", "-ts", "monitor", "address"],
                          log_name=f"monitor-{time.monotonic_ns()}")
    time.sleep(0.3)  # subscribed before anything happens
    return proc


def _deleted_at(monitor: LabProcess, address: str, after: float, timeout: float = 10.0) -> float:
    """Wall-clock time of the first deletion of `address` logged after `after`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in monitor.output().splitlines():
            if "Deleted" in line and f" {address}/" in line and line.startswith("["):
                stamp = datetime.fromisoformat(line[1 : line.index("]")]).timestamp()
                if stamp >= after:
                    return stamp
        time.sleep(0.02)
    raise AssertionError(f"no deletion of {address} seen\n{monitor.output()}")


def _crashed_master(pair: PairLab) -> tuple[Director, Director]:
    a = pair.director("a", config_yaml(instance_yaml(priority=150))).start()
    b = pair.director("b", config_yaml(instance_yaml(priority=100))).start()
    a.wait_state("MASTER")
    a.wait_vip()
    b.wait_state("BACKUP")
    files = list(a.state_dir.glob("vips-*.json"))
    assert len(files) == 1 and vipstate.read(files[0]) == [
        vipstate.Recorded(f"{VIP4}/24", "eth0")]
    a.proc.kill()
    b.wait_state("MASTER", timeout=5)
    assert a.has_vip() and b.has_vip()  # both hold it until a is back
    return a, b


def _restart_removal(pair: PairLab, a: Director) -> tuple[float, LabProcess]:
    monitor = _monitor(pair)
    t0 = time.time()
    a.start()
    removed = _deleted_at(monitor, VIP4, t0)
    return removed - t0, monitor


def test_kill_9_then_restart_removes_leftovers_before_anything_slow(pair: PairLab) -> None:
    # Without the state file (as before it existed): the clean-up from the configuration,
    # once it is parsed and netlink is loaded.
    a, b = _crashed_master(pair)
    for f in a.state_dir.glob("vips-*.json"):
        f.unlink()
    slow, monitor = _restart_removal(pair, a)
    a.wait_state("MASTER")
    monitor.stop()
    b.wait_state("BACKUP")

    # With it: first thing in `hacluster run`.
    a.proc.kill()
    b.wait_state("MASTER", timeout=5)
    assert a.has_vip()
    fast, monitor = _restart_removal(pair, a)
    a.wait_state("MASTER")
    a.wait_log("removed VIPs a crashed run left behind")
    out = a.output()
    assert out.index("removed VIPs a crashed run left behind") < out.index("INITIALIZE -> BACKUP")
    assert "removed VIPs left behind by a previous run" not in out  # nothing left for later
    load = os.getloadavg()[0]
    print(f"\nexec -> predecessor's VIP removed: {slow * 1000:.0f} ms from the configuration "
          f"(before), {fast * 1000:.0f} ms from the state file (after); load {load:.2f}")


def test_leftovers_go_even_when_the_new_configuration_is_refused(pair: PairLab) -> None:
    # The restarted director cannot run (its file was broken meanwhile): it must still
    # not leave clients pointed at the VIP of a director that is not there.
    a, b = _crashed_master(pair)
    a.config.write_text("vrrp_instances: [\n")
    a.start()
    assert a.proc.popen.wait(timeout=10) == 1
    assert not a.has_vip(), a.output()
    assert "removed VIPs a crashed run left behind" in a.output()
    assert b.state() == "MASTER" and b.has_vip()
