"""`hacluster lab drill / up / down` through the real CLI: drills judged, nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hacluster.lab.netns import list_namespaces, sweep
from hacluster.lab.topology import process_start_time

pytestmark = pytest.mark.netns

DRILLS = (
    "drill 1/4: a real server dies and comes back",
    "drill 2/4: the master director (lvs-a) is killed (SIGKILL)",
    "drill 3/4: lvs-a comes back and preempts",
    "drill 4/4: graceful hand-over: lvs-a stops on SIGTERM",
)


def _prefix(kind: str) -> str:
    return f"hcd{kind}{os.getpid() % 10000}"  # unique per run, at most 8 characters


def _lab(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hacluster.cli", "lab", *args],
                          capture_output=True, text=True, timeout=timeout)


def test_drill_runs_every_drill_reports_it_and_cleans_up(tmp_path: Path) -> None:
    prefix = _prefix("d")
    try:
        res = _lab("drill", "--prefix", prefix, "--json", str(tmp_path / "drill.json"))
        out = res.stdout
        print(out, res.stderr)
        assert "summary" in out and "lab removed" in out
        data = json.loads((tmp_path / "drill.json").read_text())
        assert [d["number"] for d in data["drills"]] == [1, 2, 3, 4]
        assert data["passed"] == (res.returncode == 0)
        for title in DRILLS:
            assert f"{title} ... PASS" in out
        for figure in ("failover_s", "preempt_s", "handover_s", "longest_gap_s"):
            assert figure in out
        assert "4 of 4 drills passed" in out
        assert res.returncode == 0
        figures = {k for d in data["drills"] for k in d["figures"]}
        assert {"failover_s", "preempt_s", "handover_s", "back_in_rotation_s"} <= figures
        assert all(d["passed"] and d["checks"] for d in data["drills"])
    finally:
        leftover = list_namespaces(prefix)
        sweep(prefix)  # only if the drill failed to clean up after itself
    assert leftover == []


def _running(entry: dict[str, object]) -> bool:
    pid = entry["pid"]
    assert isinstance(pid, int)
    return process_start_time(pid) == entry["start_time"]


def test_up_then_down_leaves_nothing(tmp_path: Path) -> None:
    prefix = _prefix("u")
    state_dir = tmp_path / "state"
    try:
        up = _lab("up", "--prefix", prefix, "--state-dir", str(state_dir), timeout=120)
        print(up.stdout, up.stderr)
        state = json.loads((state_dir / f"{prefix}.json").read_text())
        names = state["namespaces"]
        assert sorted(names) == ["client", "lvsa", "lvsb", "rs1", "rs2", "rs3", "sw"]
        assert sorted(list_namespaces(prefix)) == sorted(names.values())
        procs = state["processes"]
        assert sorted(p["name"] for p in procs) == ["lvs-a", "lvs-b", "rs1", "rs2", "rs3"]
        assert all(_running(p) for p in procs)
        # The master holds both VIPs and balances the VIP with its nftables table.
        addrs = subprocess.run(["ip", "-n", names["lvsa"], "-br", "addr"], capture_output=True,
                               text=True, check=True).stdout
        assert "10.213.0.100/24" in addrs and "10.213.1.1/24" in addrs
        table = subprocess.run(["ip", "netns", "exec", names["lvsa"], "nft", "list", "table",
                                "inet", "hacluster"], capture_output=True, text=True, check=True)
        assert all(f"10.213.1.{n} . 8081" in table.stdout for n in (11, 12, 13)), table.stdout
        assert f"lab {prefix} is up" in up.stdout and "lab down" in up.stdout
        assert up.returncode == 0 and "answered: rs" in up.stdout
        again = _lab("up", "--prefix", prefix, "--state-dir", str(state_dir), timeout=60)
        assert again.returncode == 1 and "already up" in again.stderr
        assert all(_running(p) for p in procs)  # the refused second `up` touched nothing

        down = _lab("down", "--prefix", prefix, "--state-dir", str(state_dir), timeout=60)
        assert down.returncode == 0, down.stderr
        assert "stopped 5 processes" in down.stdout and "deleted 7 namespaces" in down.stdout
        assert list_namespaces(prefix) == []
        assert not any(_running(p) for p in procs)
        assert not (state_dir / f"{prefix}.json").exists()
        assert not (state_dir / prefix).exists()
        second = _lab("down", "--prefix", prefix, "--state-dir", str(state_dir), timeout=60)
        assert second.returncode == 0 and "no lab" in second.stdout
    finally:
        _lab("down", "--prefix", prefix, "--state-dir", str(state_dir), timeout=60)
    assert list_namespaces(prefix) == []


def test_down_without_a_state_file_removes_the_lab_by_prefix(tmp_path: Path) -> None:
    prefix = _prefix("s")
    state_dir = tmp_path / "state"
    try:
        _lab("up", "--prefix", prefix, "--state-dir", str(state_dir), timeout=120)
        path = state_dir / f"{prefix}.json"
        procs = json.loads(path.read_text())["processes"]
        assert procs and all(_running(p) for p in procs)
        path.unlink()  # as if the state had been lost
        down = _lab("down", "--prefix", prefix, "--state-dir", str(state_dir), timeout=60)
        assert down.returncode == 0, down.stderr
        assert "deleted 7 namespaces" in down.stdout
        assert list_namespaces(prefix) == []
        # Every process ran inside a lab namespace, so removing them stopped them all
        # (SIGKILL is delivered asynchronously: allow a moment).
        deadline = time.monotonic() + 5
        while any(_running(p) for p in procs) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_running(p) for p in procs)
    finally:
        _lab("down", "--prefix", prefix, "--state-dir", str(state_dir), timeout=60)
    assert list_namespaces(prefix) == []


def test_bad_arguments_are_refused_clearly() -> None:
    res = _lab("drill", "--prefix", "Bad-Prefix!")
    assert res.returncode == 2 and "--prefix" in res.stderr
    res = _lab("drill", "--prefix", _prefix("x"), "--only", "1,7")
    assert res.returncode == 2 and "--only" in res.stderr
    assert list_namespaces(_prefix("x")) == []
