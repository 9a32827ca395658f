"""`hacluster run` refuses a bad configuration with file:line problems and exit status 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HACLUSTER = str(Path(sys.executable).with_name("hacluster"))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HACLUSTER, "run", *args], capture_output=True, text=True, timeout=60)


def test_config_errors_exit_1_with_one_line_per_problem(tmp_path: Path) -> None:
    conf = tmp_path / "bad.yaml"
    conf.write_text(
        "vrrp_instances:\n"
        "  VI_1:\n"
        "    interface: eth0\n"
        "    virtual_router_id: 300\n"
        "    priorty: 100\n"
        "    virtual_ipaddress: [10.0.0.1/24]\n"
    )
    res = _run("-f", str(conf))
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert f"{conf}:4: vrrp_instances.VI_1.virtual_router_id:" in res.stderr
    assert any(line.startswith(f"{conf}:5: vrrp_instances.VI_1.priorty") for line in lines)
    assert all(line.startswith(f"{conf}:") for line in lines)
    assert "Traceback" not in res.stderr


def test_missing_file_exits_1_with_a_clear_message(tmp_path: Path) -> None:
    res = _run("-f", str(tmp_path / "nope.yaml"))
    assert res.returncode == 1
    assert "nope.yaml" in res.stderr and "Traceback" not in res.stderr


def test_missing_interface_exits_1_naming_the_instance(tmp_path: Path) -> None:
    conf = tmp_path / "noif.yaml"
    conf.write_text(
        "vrrp_instances:\n"
        "  VI_7:\n"
        "    interface: hcwnosuchif0\n"
        "    virtual_router_id: 7\n"
        "    virtual_ipaddress: [10.0.0.1/24]\n"
    )
    res = _run("-f", str(conf))
    assert res.returncode == 1
    assert "noif.yaml:3: vrrp_instances.VI_7.interface: [this machine] no interface " \
        "'hcwnosuchif0'" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
