"""Single-instance locks: which files, who holds them, and the wait for an exiting holder."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from hacluster.config.loader import parse_config
from hacluster.single_instance import AlreadyRunning, Locks, LockSpec, holder, lock_specs

HOLD = """
import sys, time
from pathlib import Path
from hacluster.single_instance import Locks, LockSpec
locks = Locks()
locks.acquire([LockSpec(Path(sys.argv[1]), "test")])
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _holder(path: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def test_lock_files_per_socket_and_instance(tmp_path: Path) -> None:
    config = parse_config(
        "global_defs: {control_socket: /run/x/h.sock}\nvrrp_instances:\n"
        "  B: {interface: eth1, virtual_router_id: 7, priority: 100, "
        "virtual_ipaddress: ['fd00::1/64']}\n"
        "  A: {interface: eth0, virtual_router_id: 7, priority: 100, "
        "virtual_ipaddress: [10.0.0.1/24]}\n", "t.yaml")
    specs = lock_specs(config, tmp_path)
    assert specs[0] == LockSpec(Path("/run/x/h.sock.lock"), "control socket /run/x/h.sock")
    names = [s.path.name for s in specs[1:]]
    assert [n.split("-", 2)[2] for n in names] == ["eth0-vrid7-ipv4.lock",
                                                   "eth1-vrid7-ipv6.lock"]
    assert all(n.startswith("vrrp-ns") for n in names)
    assert specs[1].what == "VRRP instance A (eth0 VRID 7 IPv4)"


def test_a_held_lock_names_its_holder(tmp_path: Path) -> None:
    path = tmp_path / "l.lock"
    proc = _holder(path, 30)
    try:
        assert holder(path) == proc.pid
        started = time.monotonic()
        with pytest.raises(AlreadyRunning) as err:
            Locks().acquire([LockSpec(path, "control socket /x")], wait=0.3)
        assert time.monotonic() - started >= 0.3
        assert str(err.value) == (f"control socket /x is already run by process {proc.pid} "
                                  f"(lock {path} held)")
    finally:
        proc.kill()
        proc.wait()


def test_a_holder_on_its_way_out_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "l.lock"
    proc = _holder(path, 0.5)  # exits within the 2 s wait
    locks = Locks()
    try:
        locks.acquire([LockSpec(path, "x")])
        assert holder(path) is not None and holder(path) != proc.pid
    finally:
        proc.wait()
    locks.release()
    assert holder(path) is None  # emptied on release


def test_a_refusal_releases_what_the_call_took(tmp_path: Path) -> None:
    held = tmp_path / "b.lock"
    proc = _holder(held, 30)
    try:
        locks = Locks()
        with pytest.raises(AlreadyRunning):
            locks.acquire([LockSpec(tmp_path / "a.lock", "a"), LockSpec(held, "b")], wait=0)
        assert locks.paths == []
        Locks().acquire([LockSpec(tmp_path / "a.lock", "a")], wait=0)  # free again
    finally:
        proc.kill()
        proc.wait()
