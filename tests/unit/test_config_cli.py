"""`hacluster check-config` through the real command line: exit codes, summary, problem lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hacluster.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


@pytest.mark.parametrize("name", ["director-a.yaml", "director-b.yaml"])
def test_examples_are_valid(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    # --offline: the examples are for a director (IPVS, eth0), not for this test host.
    assert main(["check-config", "--offline", "-f", str(EXAMPLES / name)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert f"{EXAMPLES / name}: valid" in out
    assert "vrrp_instance VI_1: eth0 VRID 51" in out
    assert "3 real servers" in out


def test_quiet_prints_nothing_on_success(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--offline", "-q", "-f",
                 str(EXAMPLES / "director-a.yaml")]) == 0
    assert capsys.readouterr() == ("", "")


def test_a_key_accepted_but_not_carried_out_is_noted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "lb.yaml"
    path.write_text(
        "global_defs: {dataplane: none}\n"
        "virtual_servers:\n"
        "  - {ip: 10.0.0.1, port: 80, ha_suspend: true,\n"
        "     real_servers: [{ip: 10.0.1.1, port: 80}]}\n"
    )
    assert main(["check-config", "--offline", "-f", str(path)]) == 0
    out, _ = capsys.readouterr()
    assert ("  note: virtual_server 10.0.0.1:80/TCP: ha_suspend is not supported and is "
            "ignored") in out


def test_invalid_file_prints_one_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "lb.yaml"
    path.write_text(
        "vrrp_instances:\n"
        "  VI_1:\n"
        "    interface: eth0\n"
        "    virtual_router_id: 300\n"
        "    priority: 0\n"
        "    virtual_ipaddress: [10.0.0.1/24]\n"
    )
    assert main(["check-config", "-f", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{path}:4: vrrp_instances.VI_1.virtual_router_id: must be 1..255, got 300",
        f"{path}:5: vrrp_instances.VI_1.priority: must be 1..255, got 0",
        f"{path}: 2 problems",
    ]


def test_missing_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "absent.yaml"
    assert main(["check-config", "-f", str(missing)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[0] == f"{missing}: no such file"


def test_console_script_in_a_subprocess(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("global_defs:\n  routerid: x\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "hacluster.cli", "check-config", "--offline", "-f"]
    ok = subprocess.run(
        [*cmd, str(EXAMPLES / "director-b.yaml")], capture_output=True, text=True, env=env
    )
    assert ok.returncode == 0, ok.stderr
    assert "MASTER" not in ok.stdout and "BACKUP priority 100" in ok.stdout
    failed = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, env=env)
    assert failed.returncode == 1
    assert (
        f"{bad}:2: global_defs.routerid: unknown key (did you mean 'router_id'?)"
        in failed.stderr.splitlines()
    )
