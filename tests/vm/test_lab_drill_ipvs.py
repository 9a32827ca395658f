"""`hacluster lab drill` on the real LVS dataplane: the director-pair lab built inside the
QEMU guest, whose kernel has IPVS, so the drill picks `dataplane: ipvs` by itself.

Python in the guest runs some 30 times slower than on the host, so the lab's timings are
stretched (`--time-scale`, a 1 s advert interval) and the client sends a few requests a
second: the real-server drill and the kill drill then take a couple of minutes.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from hacluster.lab.vm import Guest

pytestmark = pytest.mark.vm

PREFIX = "hcvmd"


def _check(drill: dict[str, Any], start: str) -> bool:
    (found,) = [c for c in drill["checks"] if c["text"].startswith(start)]
    return bool(found["passed"])


@pytest.mark.timeout(900)  # the guest boots within it when this test runs first
def test_real_server_and_kill_drills_on_ipvs(guest: Guest) -> None:
    result = guest.workdir / "drill-ipvs.json"
    argv = [str(guest.python), "-m", "hacluster.cli", "lab", "drill", "--prefix", PREFIX,
            "--drills", "real-server,kill", "--time-scale", "5", "--advert-int", "1",
            "--client-rate", "4", "--json", str(result)]
    started = time.monotonic()
    res = guest.run(argv, timeout=900, check=False)
    print(f"\n{res.stdout}{res.stderr}\nin the guest: {time.monotonic() - started:.0f} s")
    # The guest's kernel has IPVS: the drill chose it without being told, and said so.
    assert "dataplane ipvs: this kernel has IPVS" in res.stdout
    data = json.loads(result.read_text())
    real_server, kill = data["drills"]
    assert (real_server["number"], kill["number"]) == (1, 2)
    assert real_server["passed"], real_server["checks"]
    assert kill["passed"], kill["checks"]
    assert res.returncode == 0
    assert _check(real_server, "lvs-a served every answer throughout")
    assert real_server["figures"]["back_in_rotation_s"] > 0
    assert _check(kill, "lvs-b became MASTER")
    assert 0 < kill["figures"]["failover_s"] <= 3 * 1 + 1 + 15  # master-down + margin
    # The crashed master's namespace kept its VIP and its IPVS service: the kernel's
    # table was what balanced, read with ipvsadm.
    assert any("IPVS service 10.213.0.100:80 after the crash" in line
               for line in kill["report"]), kill["report"]
    # Nothing left behind in the guest.
    left = guest.run(["ip", "netns", "list"]).stdout
    assert PREFIX not in left
