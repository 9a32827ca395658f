"""One preflight for check-config, run and reload: every problem as FILE:LINE: key: message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hacluster.config.loader import load_config_located
from hacluster.preflight import preflight

HACLUSTER = str(Path(sys.executable).with_name("hacluster"))

CONFIG = """\
global_defs:
  dataplane: nftables
vrrp_scripts:
  chk: {script: /bin/true, user: no-such-user-x}
vrrp_instances:
  VI_1:
    interface: nosuch0
    virtual_router_id: 1
    priority: 100
    virtual_ipaddress: [10.0.0.1/24]
    notify_master: /no/such/notify.sh master
    track_script: [chk]
virtual_servers:
  - ip: 10.99.0.100
    port: 80
    lb_algo: wlc
    lb_kind: DR
    real_servers:
      - ip: 10.0.0.5
        port: 80
        MISC_CHECK: {misc_path: /no/such/probe}
"""


def _write(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "h.yaml"
    path.write_text(text)
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HACLUSTER, *args], capture_output=True, text=True, timeout=60)


def test_check_config_reports_what_run_would_refuse(tmp_path: Path) -> None:
    path = _write(tmp_path)
    res = _cli("check-config", "-f", str(path))
    print(res.stderr)
    assert res.returncode == 1
    assert res.stderr.splitlines() == [
        f"{path}:4: vrrp_scripts.chk.user: [this machine] no such user 'no-such-user-x'",
        f"{path}:7: vrrp_instances.VI_1.interface: [this machine] no interface 'nosuch0'",
        f"{path}:11: vrrp_instances.VI_1.notify_master: [this machine] /no/such/notify.sh: "
        "No such file or directory",
        f"{path}:16: virtual_servers[0].lb_algo: TCP 10.99.0.100:80: scheduler 'wlc' is not "
        "available with dataplane nftables (only rr, wrr, sh); use dataplane: ipvs for it",
        f"{path}:17: virtual_servers[0].lb_kind: TCP 10.99.0.100:80: real server 10.0.0.5:80 "
        "uses lb_kind DR; dataplane nftables does NAT only",
        f"{path}:21: virtual_servers[0].real_servers[0].MISC_CHECK: [this machine] "
        "/no/such/probe: No such file or directory",
        f"{path}: 6 problems",
    ]


def test_offline_leaves_out_what_depends_on_this_machine(tmp_path: Path) -> None:
    path = _write(tmp_path)
    res = _cli("check-config", "--offline", "-f", str(path))
    print(res.stderr)
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert len(lines) == 3 and "[this machine]" not in res.stderr
    fixed = _write(tmp_path, CONFIG.replace("wlc", "wrr").replace("DR", "NAT"))
    res = _cli("check-config", "--offline", "-q", "-f", str(fixed))
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    res = _cli("check-config", "-q", "-f", str(fixed))
    assert res.returncode == 1 and res.stderr.count("[this machine]") == 4


def test_run_refuses_with_the_same_lines_before_touching_anything(tmp_path: Path) -> None:
    path = _write(tmp_path)
    sock = tmp_path / "s.sock"
    res = _cli("run", "-f", str(path), "--control-socket", str(sock))
    check = _cli("check-config", "-f", str(path))
    assert res.returncode == 1
    assert res.stderr.splitlines()[:-1] == check.stderr.splitlines()[:-1]
    assert res.stderr.splitlines()[-1] == f"{path}: refused, 6 problem(s)"
    assert not sock.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="script security guards scripts run as root")
def test_script_security_is_part_of_the_preflight(tmp_path: Path) -> None:
    script = tmp_path / "notify.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o777)  # writable by everyone: refused when run as root
    text = (f"global_defs: {{enable_script_security: true}}\n"
            f"vrrp_instances:\n  VI_1:\n    interface: lo\n    virtual_router_id: 1\n"
            f"    priority: 100\n    virtual_ipaddress: [10.0.0.1/24]\n"
            f"    notify: {script}\n")
    config, lines = load_config_located(_write(tmp_path, text))
    (finding,) = preflight(config, lines)
    assert finding.machine
    assert finding.problem.line == 8
    assert finding.problem.key_path == "vrrp_instances.VI_1.notify"
    assert "refusing to run" in finding.problem.message
    assert preflight(config, lines, offline=True) == []
