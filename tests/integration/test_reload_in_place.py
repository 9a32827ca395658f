"""A reload that changes only priority or preemption is taken in place: no transition,
VIPs and announcements untouched, "since" and counters kept (prefix hco)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hacluster.lab.netns import Lab, Netns, sweep
from tests.integration.vrrp_director import HACLUSTER, Director, config_yaml, instance_yaml

pytestmark = [pytest.mark.netns]

PREFIX = "hco"


@pytest.fixture
def lab() -> Iterator[Lab]:
    sweep(PREFIX)
    with Lab(PREFIX) as the_lab:
        yield the_lab


def _master(lab: Lab) -> tuple[Netns, Path, Path, Director]:
    """Director a (VI_1, priority 150) alone on a link, MASTER with its VIP: its
    namespace, config file, control socket and handle."""
    a, b = lab.namespace("a"), lab.namespace("b")
    lab.veth(a, "eth0", b, "eth0")
    lab.add_address(a, "eth0", "10.9.0.1/24")
    config = lab.workdir / "a.yaml"
    sock = lab.workdir / "a.sock"
    config.write_text(config_yaml(instance_yaml(priority=150)))
    env = {**os.environ, "HACLUSTER_LOCK_DIR": str(lab.workdir / "locks")}
    d = Director(lab, a, "a", config, lab.workdir / "a.status.json")
    d.process = lab.start(a, [HACLUSTER, "run", "-f", str(config), "--status-file",
                              str(d.status_path), "--control-socket", str(sock)],
                          log_name="a", env=env)
    d.wait_state("MASTER", timeout=20)  # start-up under load
    d.wait_vip()
    return a, config, sock, d


def test_a_priority_change_is_not_a_flap(lab: Lab) -> None:
    a, config, sock, d = _master(lab)
    time.sleep(0.5)

    def status() -> dict[str, Any]:
        res = lab.run(a, [HACLUSTER, "status", "--json", "--control-socket", str(sock)])
        (inst,) = json.loads(res.stdout)["instances"]
        inst["last_transition"].pop("age_seconds")
        return dict(inst)

    before = status()
    log_before = d.output()
    config.write_text(config_yaml(instance_yaml(priority=120, extra="preempt_delay: 2")))
    res = lab.run(a, [HACLUSTER, "reload", "--control-socket", str(sock)])
    print(res.stdout)
    assert res.stdout == "reloaded: kept instance VI_1; changed in place VI_1 priority " \
        "150 -> 120\n"
    time.sleep(0.5)
    after = status()
    new_lines = d.output()[len(log_before):]
    print(new_lines)
    assert " -> " not in new_lines.replace("150 -> 120", "")  # no state transition
    assert "VIPs" not in new_lines and "gratuitous ARP" not in new_lines
    assert d.has_vip()
    assert (after["state"], after["base_priority"], after["effective_priority"]) == (
        "MASTER", 120, 120)
    assert after["last_transition"] == before["last_transition"]  # "since" kept
    assert after["counters"]["transitions"] == before["counters"]["transitions"]
    assert after["counters"]["adverts_sent_on_wire"] > before["counters"]["adverts_sent_on_wire"]


def test_a_renamed_master_keeps_its_mastership_and_vip(lab: Lab) -> None:
    """The same virtual router under another name: no resignation, the VIP never leaves,
    and the instance runs on as MASTER under its new name."""
    a, config, sock, d = _master(lab)
    # in maintenance (priority 1; with no peer it stays MASTER): the new name is too
    lab.run(a, [HACLUSTER, "maintenance", "VI_1", "on", "--control-socket", str(sock)])
    time.sleep(0.3)
    log_before = d.output()
    config.write_text(config_yaml(instance_yaml("WEB", priority=150)))
    res = lab.run(a, [HACLUSTER, "reload", "--control-socket", str(sock)])
    print(res.stdout)
    assert "renamed VI_1 -> WEB" in res.stdout and "mastership kept by WEB" in res.stdout
    assert d.has_vip()
    d.wait_state("MASTER", instance="WEB", timeout=2)
    time.sleep(0.5)
    new_lines = d.output()[len(log_before):]
    print(new_lines)
    # (the rebuilt unit goes through BACKUP quietly, as any rebuilt master does: it is
    # not notified, and it neither resigns nor lets its VIP go)
    assert "priority 0" not in new_lines and "resign" not in new_lines.lower()
    assert "MASTER -> " not in new_lines and "removed VIP" not in new_lines
    assert d.has_vip()
    res = lab.run(a, [HACLUSTER, "status", "--json", "--control-socket", str(sock)])
    (web,) = json.loads(res.stdout)["instances"]
    assert (web["name"], web["state"], web["maintenance"], web["effective_priority"]) == (
        "WEB", "MASTER", True, 1)
