"""deploy/systemd/hacluster.service: systemd accepts it, and it asks for what the daemon does."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "hacluster.service"


def _service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(UNIT)
    return parser["Service"]


def test_notify_watchdog_reload_and_capabilities() -> None:
    svc = _service()
    assert svc["Type"] == "notify"
    assert svc["NotifyAccess"] == "main"
    assert int(svc["WatchdogSec"]) >= 2  # pinged at half of it by hacluster.sdnotify
    assert svc["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert svc["ExecStart"].split()[1:] == ["run", "-f", "/etc/hacluster/hacluster.yaml"]
    caps = set(svc["CapabilityBoundingSet"].split())
    assert {"CAP_NET_ADMIN", "CAP_NET_RAW"} <= caps
    assert "CAP_SYS_ADMIN" not in caps
    families = set(svc["RestrictAddressFamilies"].split())
    assert {"AF_NETLINK", "AF_PACKET", "AF_INET", "AF_INET6", "AF_UNIX"} <= families
    assert svc["RuntimeDirectory"] == "hacluster"  # where control_socket lives by default


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing (deploy/install-deps.sh installs systemd)"
    # verify insists that ExecStart's program exists: point it at this checkout's command.
    hacluster = Path(sys.executable).parent / "hacluster"
    assert hacluster.exists(), f"{hacluster} missing: pip install -e . first"
    unit = tmp_path / "hacluster.service"
    # The man pages named by Documentation= come with the Debian package, whose test
    # verifies the installed unit whole; here they are not installed.
    text = UNIT.read_text().replace("/usr/sbin/hacluster", str(hacluster))
    text = "\n".join(x for x in text.splitlines() if not x.startswith("Documentation=man:"))
    unit.write_text(text + "\n")
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"}, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "hacluster.service" not in result.stderr, result.stderr
