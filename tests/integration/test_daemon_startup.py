"""`hacluster run` refusing what it cannot run, and the daemon's pure helpers (no root needed)."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from hacluster.balancer import dataplane_problems
from hacluster.config.loader import parse_config
from hacluster.daemon import DaemonOptions, with_overrides
from hacluster.logs import JsonFormatter as _JsonFormatter
from hacluster.reload_plan import identity, plan_units, plan_vrrp_reload
from vrrp.machine import State

HACLUSTER = str(Path(sys.executable).with_name("hacluster"))

VS = """
virtual_servers:
  - ip: 10.99.0.100
    port: 80
    lb_algo: {algo}
    lb_kind: NAT
    real_servers:
      - {{ip: 10.99.0.11, port: 80}}
"""


def _run(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / "c.yaml"
    conf.write_text(text)
    return subprocess.run(
        [HACLUSTER, "run", "-f", str(conf), "--control-socket", str(tmp_path / "s.sock")],
        capture_output=True, text=True, timeout=60,
    )


def test_run_refuses_a_dataplane_the_kernel_lacks(tmp_path: Path) -> None:
    """This kernel has no IPVS: `dataplane: ipvs` with virtual servers is a clear error."""
    import asyncio

    from hacluster.ipvs.backend import BackendUnavailable
    from hacluster.ipvs.dataplane import open_backend

    async def has_ipvs() -> bool:
        try:
            backend = open_backend("netlink")
        except BackendUnavailable:
            return False
        try:
            await backend.dump()
        except BackendUnavailable:
            return False
        finally:
            await backend.close()
        return True

    if asyncio.run(has_ipvs()):
        pytest.skip("this kernel has IPVS")
    res = _run(tmp_path, "global_defs: {dataplane: ipvs}\n" + VS.format(algo="wrr"))
    assert res.returncode == 1, res.stderr
    assert "dataplane: nftables" in res.stderr, res.stderr
    assert not (tmp_path / "s.sock").exists()


def test_run_refuses_what_nftables_cannot_carry_out(tmp_path: Path) -> None:
    res = _run(tmp_path, "global_defs: {dataplane: nftables}\n" + VS.format(algo="lc"))
    assert res.returncode == 1
    assert "dataplane nftables" in res.stderr and "lc" in res.stderr, res.stderr


def test_run_reports_every_config_problem(tmp_path: Path) -> None:
    res = _run(tmp_path, "global_defs: {dataplane: nowhere, bogus: 1}\n")
    assert res.returncode == 1
    assert "global_defs.bogus" in res.stderr and "global_defs.dataplane" in res.stderr


def _config(text: str) -> object:
    return parse_config(text, "t.yaml")


BASE = """
vrrp_instances:
  VI_1: {interface: eth0, virtual_router_id: 1, priority: 100, virtual_ipaddress: [10.0.0.1/24]}
  VI_2: {interface: eth0, virtual_router_id: 2, priority: 100, virtual_ipaddress: [10.0.0.2/24]}
  VI_3: {interface: eth0, virtual_router_id: 3, priority: 100, virtual_ipaddress: [10.0.0.3/24]}
vrrp_sync_groups:
  G1: {group: [VI_2, VI_3]}
"""


def test_units_follow_sync_groups_and_settings() -> None:
    old = parse_config(BASE, "t.yaml")
    units = plan_units(old)
    assert list(units) == ["group G1", "instance VI_1"]
    assert units["group G1"].names == ("VI_2", "VI_3")
    changed = parse_config(BASE.replace("virtual_router_id: 3, priority: 100",
                                        "virtual_router_id: 3, priority: 120"), "t.yaml")
    # A priority change is taken in place: the group is kept, its member reconfigured.
    plan = plan_vrrp_reload(old, changed, {})
    assert sorted(plan.kept) == ["group G1", "instance VI_1"]
    assert [c.instance for c in plan.in_place] == ["VI_3"]
    # A member's other change rebuilds its whole group; the lone instance is untouched.
    vips = parse_config(BASE.replace("virtual_router_id: 3, priority: 100, virtual_ipaddress: "
                                     "[10.0.0.3/24]", "virtual_router_id: 3, priority: 100, "
                                     "virtual_ipaddress: [10.0.0.9/24]"), "t.yaml")
    plan = plan_vrrp_reload(old, vips, {"VI_3": State.MASTER})
    assert (plan.kept, plan.changed, plan.carry) == (["instance VI_1"], ["group G1"], {"VI_3"})
    # Tracking and notify settings change in place: no rebuild.
    notify = parse_config(BASE.replace("priority: 100, virtual_ipaddress: [10.0.0.1/24]",
                                       "priority: 100, virtual_ipaddress: [10.0.0.1/24], "
                                       "notify_master: /bin/true, track_interface: [eth1]"),
                          "t.yaml")
    assert notify.vrrp_instances["VI_1"] != old.vrrp_instances["VI_1"]
    assert sorted(plan_vrrp_reload(old, notify, {}).kept) == ["group G1", "instance VI_1"]
    # Priority is not identity; the VRID is.
    assert identity(old.vrrp_instances["VI_3"]) == identity(changed.vrrp_instances["VI_3"])
    moved = parse_config(BASE.replace("virtual_router_id: 3,", "virtual_router_id: 4,"),
                         "t.yaml")
    assert identity(old.vrrp_instances["VI_3"]) != identity(moved.vrrp_instances["VI_3"])


def test_control_socket_override_and_dataplane_problems(tmp_path: Path) -> None:
    config = parse_config("global_defs: {dataplane: nftables}\n" + VS.format(algo="sh"),
                          "t.yaml")
    assert dataplane_problems(config) == []
    sock = tmp_path / "x.sock"
    over = with_overrides(config, DaemonOptions(control_socket=sock))
    assert over.global_defs.control_socket == sock
    assert over.virtual_servers == config.virtual_servers
    bad = parse_config("global_defs: {dataplane: nftables}\n" + VS.format(algo="wlc"),
                       "t.yaml")
    (problem,) = dataplane_problems(bad)
    assert "wlc" in problem


def test_json_log_lines_name_their_subject() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_JsonFormatter())
    logger = logging.getLogger("hacluster.test-json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("[10.0.0.1:80/TCP] real server 10.0.0.2:80 DOWN (timeout)")
        logger.warning("[VI_1] BACKUP -> MASTER (x)", extra={"instance": "VI_1"})
        logger.warning("hacluster started")
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["subject"] for e in lines] == ["10.0.0.1:80/TCP", "VI_1", "daemon"]
    assert lines[1]["instance"] == "VI_1"
