"""deploy/install-deps.sh: the demo installs only what the lab uses; the full install
(deploy/test-all.sh) installs everything, the demo's packages included."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "install-deps.sh"
# The programs `hacluster lab drill` runs besides Python: hacluster/lab/netns.py and
# topology.py (ip netns, sysctl), the nftables dataplane (nft -f).
LAB_COMMANDS = ("ip", "nft", "sysctl")


def _packages(*args: str) -> list[str]:
    res = subprocess.run([str(SCRIPT), *args, "--print"], capture_output=True, text=True,
                         timeout=30, check=True)
    return res.stdout.split()


def test_demo_installs_a_subset_without_test_tools() -> None:
    demo, full = _packages("--demo"), _packages()
    print("demo:", " ".join(demo))
    print("full:", " ".join(full))
    assert set(demo) < set(full)
    for heavy in ("qemu-system-x86", "keepalived", "ipvsadm", "tcpdump", "mandoc", "lintian"):
        assert heavy not in demo
        assert heavy in full


@pytest.mark.parametrize("command", LAB_COMMANDS)
def test_demo_packages_provide_what_the_lab_runs(command: str) -> None:
    path = shutil.which(command)
    assert path is not None, f"{command} is not installed"
    owner = subprocess.run(["dpkg", "-S", str(Path(path).resolve())], capture_output=True,
                           text=True, timeout=30, check=False)
    if owner.returncode != 0:  # usrmerge: dpkg knows the /sbin or /bin name
        alt = "/" + str(Path(path).resolve()).removeprefix("/usr/").lstrip("/")
        owner = subprocess.run(["dpkg", "-S", alt], capture_output=True, text=True,
                               timeout=30, check=True)
    package = owner.stdout.split(":")[0]
    assert package in _packages("--demo"), f"{command} comes from {package}"


def test_demo_and_test_all_use_their_profiles() -> None:
    assert "deploy/install-deps.sh --demo\n" in (REPO / "deploy" / "demo.sh").read_text()
    assert "deploy/install-deps.sh\n" in (REPO / "deploy" / "test-all.sh").read_text()


def test_unknown_argument_is_refused() -> None:
    res = subprocess.run([str(SCRIPT), "--nope"], capture_output=True, text=True, timeout=30,
                         check=False)
    assert res.returncode == 2
    assert "unknown argument --nope" in res.stderr
