"""The systemd unit: the package's paths, our man pages, the hardening kept and left out,
and `systemd-analyze verify` accepts it with and without the ProtectSystem=strict drop-in."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "systemd" / "hacluster.service"
STRICT = REPO / "deploy" / "systemd" / "strict.conf"


def _settings(text: str) -> dict[str, list[str]]:
    """Key → values of a unit file's [Service] and [Unit] sections (keys may repeat)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def test_unit_runs_the_packaged_command_and_names_our_man_pages() -> None:
    s = _settings(UNIT.read_text())
    assert s["ExecStart"] == ["/usr/sbin/hacluster run -f /etc/hacluster/hacluster.yaml"]
    assert s["ExecStartPre"] == [
        "/usr/sbin/hacluster check-config -q -f /etc/hacluster/hacluster.yaml"
    ]
    assert s["Documentation"] == ["man:hacluster(8) man:hacluster.yaml(5)"]
    assert s["Type"] == ["notify"]
    assert s["WatchdogSec"] == ["10"]


def test_unit_hardening_keeps_what_notify_scripts_need() -> None:
    s = _settings(UNIT.read_text())
    assert s["ProtectSystem"] == ["full"]
    caps = set(s["CapabilityBoundingSet"][0].split())
    assert {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SETUID", "CAP_SETGID", "CAP_KILL"} <= caps
    assert "CAP_SYS_ADMIN" not in caps
    for option in ("PrivateTmp", "ProtectHome", "ProtectKernelTunables", "RestrictNamespaces",
                   "SystemCallFilter", "NoNewPrivileges"):
        assert option not in s, f"{option} gets in the way of notify scripts"


def test_strict_drop_in_is_the_one_documented() -> None:
    doc = (REPO / "docs" / "systemd.md").read_text()
    assert f"```ini\n{STRICT.read_text()}```" in doc
    parser = configparser.ConfigParser(strict=False)
    parser.read_string(STRICT.read_text())
    assert parser["Service"]["ProtectSystem"] == "strict"


def _verify(unit_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # --man=no: the man pages Documentation= names are installed by the package only;
    # tests/integration/test_deb.py verifies the installed unit with them.
    assert shutil.which("systemd-analyze"), "systemd-analyze is missing (package systemd)"
    path = tmp_path / "hacluster.service"
    path.write_text(unit_text)
    return subprocess.run(["systemd-analyze", "verify", "--man=no", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("drop_in", [False, True], ids=["unit", "unit+strict"])
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path, drop_in: bool) -> None:
    """The unit as in the repository, its command pointed at this checkout's entry point."""
    command = Path(sys.executable).parent / "hacluster"
    text = UNIT.read_text().replace("/usr/sbin/hacluster", str(command))
    if drop_in:
        text += "\n" + STRICT.read_text()  # its [Service] settings, as a drop-in adds them
    res = _verify(text, tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout + res.stderr == ""


def test_systemd_analyze_verify_catches_a_wrong_command(tmp_path: Path) -> None:
    text = UNIT.read_text().replace("/usr/sbin/hacluster", "/nonexistent/hacluster")
    res = _verify(text, tmp_path)
    assert res.returncode != 0
    assert "/nonexistent/hacluster" in res.stdout + res.stderr
