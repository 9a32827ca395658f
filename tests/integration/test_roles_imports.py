"""A VRRP-only role, started as `hacluster run` starts it, never imports pyroute2 nor scapy:
its start path is a measured hot path (vrrp.rtnl, vrrp.frames); its metrics are built
after its instances run, and still count what happened before. Run in a namespace of its
own (prefix hcri), with a VIP, so that addresses, announcements and address following ran."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from hacluster.lab.netns import Lab, sweep

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parents[2]

# As `hacluster run` does it: fork the role first (from a process that has imported
# only what run.py has by then), load the file meanwhile, release, wait until it runs.
PROBE = r'''
import json, sys
from hacluster.roles.vrrp import VrrpRole, release
role = VrrpRole()
before_fork = sorted({m.partition(".")[0] for m in sys.modules})
role.fork()
import asyncio
from hacluster.config.loader import load_config
from hacluster.daemon_options import DaemonOptions

async def main():
    config = load_config(sys.argv[1])
    release(role, config, DaemonOptions(role="supervisor"))
    await role.start()  # (RoleFailed if it died first)
    started = True
    running = await role.call("modules")
    families = await role.metric_families()  # built after start, when asked for
    after = await role.call("modules")
    status = await role.snapshot()
    await role.stop()
    samples = {f"{name}{sorted(labels.items())}": value for f in families
               for name, labels, value in f[3] if name.startswith("hacluster_vrrp_")}
    print(json.dumps({"before_fork": before_fork, "started": started, "running": running,
                      "after_metrics": after, "samples": samples,
                      "states": [i["state"] for i in status["instances"]]}))

asyncio.run(main())
'''


def test_a_vrrp_only_role_never_imports_pyroute2_nor_scapy(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("needs root and iproute2 (netns marker)")
    sweep("hcri")
    with Lab("hcri") as lab:
        ns = lab.namespace("role")
        peer = lab.namespace("peer")
        lab.veth(ns, "d0", peer, "p0")
        lab.add_address(ns, "d0", "10.92.0.2/24")
        conf = tmp_path / "c.yaml"
        conf.write_text(yaml.safe_dump({
            "global_defs": {"dataplane": "none"},
            "vrrp_instances": {"VI_1": {
                "interface": "d0", "virtual_router_id": 72, "priority": 255,
                "advert_int": 1, "track_interface": ["d0"],
                "virtual_ipaddress": ["10.92.0.100/32"]}},
        }))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        res = lab.run(ns, [sys.executable, "-c", PROBE, str(conf)], env=env, timeout=60)
        out = json.loads(res.stdout.splitlines()[-1])
    assert out["started"] is True
    assert out["states"] == ["MASTER"]  # it ran: VIP added, announced, adverts sent
    heavy = {"pyroute2", "scapy", "aiohttp"}
    assert heavy & set(out["before_fork"]) == set()
    assert {"asyncio", "prometheus_client"} & set(out["before_fork"]) == set()
    assert heavy & set(out["running"]) == set()
    # The metrics come when asked for, still without pyroute2 or scapy, and count the
    # transition made before they existed.
    samples = out["samples"]
    vi_1 = "[('instance', 'VI_1'), ('state', '{}')]".format
    assert samples["hacluster_vrrp_transitions_total" + vi_1("MASTER")] == 1
    assert samples["hacluster_vrrp_state" + vi_1("MASTER")] == 1
    assert samples["hacluster_vrrp_state" + vi_1("BACKUP")] == 0
    assert {"pyroute2", "scapy"} & set(out["after_metrics"]) == set()
    assert "prometheus_client" in out["after_metrics"]
