"""A second `hacluster run` of a running director is refused before it touches anything."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

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


def _director(lab: Lab, ns: Netns, name: str, text: str) -> Director:
    path = lab.workdir / f"{name}.yaml"
    path.write_text(text)
    return Director(lab, ns, name, path, lab.workdir / f"{name}.status.json")


def _second_run(lab: Lab, ns: Netns, config: Path, sock: Path, env: dict[str, str]
                ) -> subprocess.CompletedProcess[str]:
    return lab.run(ns, [HACLUSTER, "run", "-f", str(config), "--control-socket", str(sock)],
                   check=False, env=env)


def test_second_run_is_refused_and_the_first_is_untouched(lab: Lab) -> None:
    a, b = lab.namespace("a"), lab.namespace("b")
    lab.veth(a, "eth0", b, "eth0")
    lab.add_address(a, "eth0", "10.9.0.1/24")
    lab.add_address(b, "eth0", "10.9.0.2/24")
    locks = lab.workdir / "locks"
    env = {**os.environ, "HACLUSTER_LOCK_DIR": str(locks)}
    text = config_yaml(instance_yaml(priority=150, extra="state: MASTER"))
    first = _director(lab, a, "first", text)
    first.process = lab.start(
        a, [HACLUSTER, "run", "-f", str(first.config), "--status-file",
            str(first.status_path), "--control-socket", str(lab.workdir / "first.sock")],
        log_name="first", env=env)
    first.wait_state("MASTER", timeout=20)
    first.wait_vip()
    # Same interface names and VRID in another namespace: another router, not refused.
    other = _director(lab, b, "other", text)
    other.process = lab.start(
        b, [HACLUSTER, "run", "-f", str(other.config), "--status-file",
            str(other.status_path), "--control-socket", str(lab.workdir / "other.sock")],
        log_name="other", env=env)
    other.wait_log("hacluster started", timeout=20)
    before = first.transitions()

    # Another control socket: refused by the instance's lock, naming the first's PID.
    started = time.monotonic()
    res = _second_run(lab, a, first.config, lab.workdir / "second.sock", env)
    waited = time.monotonic() - started
    print(res.stderr)
    assert res.returncode == 1
    assert f"is already run by process {first.proc.pid}" in res.stderr
    assert "VRRP instance VI_1 (eth0 VRID 51 IPv4)" in res.stderr
    assert not (lab.workdir / "second.sock").exists()
    assert waited >= 1.9  # the lock was waited for before refusing
    # The same control socket: refused by the socket's lock; the socket is not replaced.
    sock = lab.workdir / "first.sock"
    ino = sock.stat().st_ino
    res = _second_run(lab, a, first.config, sock, env)
    print(res.stderr)
    assert res.returncode == 1
    assert f"control socket {sock} is already run by process {first.proc.pid}" in res.stderr
    assert sock.stat().st_ino == ino

    # The first director never noticed: still MASTER with its VIP, no transition.
    assert first.has_vip()
    assert first.fresh_status()["instances"]["VI_1"]["state"] == "MASTER"
    assert first.transitions() == before
    assert "left behind" not in first.output()

    # Once it stops, its locks go with it and a new run starts.
    assert first.proc.stop() == 0
    again = _director(lab, a, "again", text)
    again.process = lab.start(
        a, [HACLUSTER, "run", "-f", str(first.config), "--status-file",
            str(again.status_path), "--control-socket", str(lab.workdir / "again.sock")],
        log_name="again", env=env)
    again.wait_log("hacluster started", timeout=20)
    again.wait_state("BACKUP")  # the other namespace's director took over meanwhile
