"""`hacluster lab drill / up / down` through the real CLI: drills judged, nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hacluster.lab.netns import list_namespaces, sweep
from hacluster.lab.topology import process_start_time

pytestmark = pytest.mark.netns

DRILLS = (
    "drill 1/8: a real server dies and comes back",
    "drill 2/8: the master director (lvs-a) is killed (SIGKILL)",
    "drill 3/8: lvs-a comes back and preempts",
    "drill 4/8: graceful hand-over: lvs-a stops on SIGTERM",
)


def _prefix(kind: str) -> str:
    return f"hcd{kind}{os.getpid() % 10000}"  # unique per run, at most 8 characters


def _lab(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hacluster.cli", "lab", *args],
                          capture_output=True, text=True, timeout=timeout)


def test_failover_drills_run_report_and_clean_up(tmp_path: Path) -> None:
    prefix = _prefix("d")
    try:
        res = _lab("drill", "--prefix", prefix, "--json", str(tmp_path / "drill.json"),
                   "--drills", "real-server,kill,preempt,handover")
        out = res.stdout
        print(out, res.stderr)
        assert "summary" in out and "lab removed" in out
        # This kernel has no IPVS: the lab says so and balances with nftables.
        assert "dataplane nftables: no IPVS here" in out
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
    res = _lab("drill", "--prefix", _prefix("x"), "--only", "1,9")
    assert res.returncode == 2 and "--only" in res.stderr and "'9'" in res.stderr
    res = _lab("drill", "--prefix", _prefix("x"), "--drills", "kill,meteor")
    assert res.returncode == 2 and "'meteor'" in res.stderr and "crash-loop" in res.stderr
    res = _lab("drill", "--prefix", _prefix("x"), "--drills", "kill", "--only", "2")
    assert res.returncode == 2 and "not both" in res.stderr
    res = _lab("drill", "--prefix", _prefix("x"), "--dataplane", "lvs")
    assert res.returncode == 2 and "--dataplane" in res.stderr
    res = _lab("drill", "--prefix", _prefix("x"), "--time-scale", "0")
    assert res.returncode == 2 and "--time-scale" in res.stderr
    assert list_namespaces(_prefix("x")) == []


def _drill(data: dict[str, Any], number: int) -> dict[str, Any]:
    (found,) = [d for d in data["drills"] if d["number"] == number]
    return found


def _check(drill: dict[str, Any], start: str) -> bool:
    """The verdict of the drill's check whose text starts with `start`."""
    (found,) = [c for c in drill["checks"] if c["text"].startswith(start)]
    return bool(found["passed"])


def _line(drill: dict[str, Any], label: str) -> str:
    (found,) = [line for line in drill["report"] if line.startswith(label)]
    return str(found)


def test_fault_drills_report_what_they_saw(tmp_path: Path) -> None:
    """Partition, starvation, crash loop and reload: each drill's verdicts follow from what
    it observed (adverts, gratuitous ARPs, who held the VIP, the client's ARP entry)."""
    prefix = _prefix("f")
    try:
        res = _lab("drill", "--prefix", prefix, "--json", str(tmp_path / "faults.json"),
                   "--drills", "reload,partition,starvation,crash-loop")
        out = res.stdout
        print(out, res.stderr)
        assert "lab removed" in out and "Traceback" not in res.stderr
        data = json.loads((tmp_path / "faults.json").read_text())
        assert [d["number"] for d in data["drills"]] == [5, 6, 7, 8]  # catalogue order
        assert data["passed"] == (res.returncode == 0)

        part = _drill(data, 5)
        assert "drill 5/8: partition: lvs-a and lvs-b cut apart, then healed" in out
        assert _check(part, "both directors were MASTER during the cut")
        assert _check(part, "lvs-b's lower-priority advert crossed the healed link")
        assert _check(part, "lvs-a re-announced the VIP after the heal")
        assert _check(part, "after the heal lvs-a MASTER and lvs-b BACKUP")
        assert _check(part, "the VIP held by lvs-a alone at the end")
        assert part["figures"]["split_s"] > 0
        # The client followed lvs-b during the split: that is what a heal must undo.
        assert "the VIP's entry named lvs-b at the heal" in _line(part, "client ARP")
        # Only the master's gratuitous ARPs move a client back (here the backup's own
        # nftables table keeps serving it otherwise).
        garps = part["figures"]["master_garps_after_heal"]
        reached = _check(part, "the client reached lvs-a within")
        assert reached == (garps > 0), (garps, part["report"])
        assert reached == ("reach_master_s" in part["figures"]
                           and part["figures"]["reach_master_s"] <= 2.0)
        # keepalived's rule: the master answers the lower-priority advert with its
        # garp_lower_prio_repeat (5) gratuitous ARPs, and the client comes back at once.
        assert garps >= 5 and part["passed"], part["checks"]

        starve = _drill(data, 6)
        assert _check(starve, "lvs-b took over while lvs-a was frozen")
        assert _check(starve, "after SIGCONT lvs-a MASTER (preempt) and lvs-b BACKUP")
        assert 0 < starve["figures"]["takeover_s"] < 5.4  # while frozen (3 x 1.8 s)
        assert "the VIP's entry named lvs-b at the SIGCONT" in _line(starve, "client ARP")
        assert starve["passed"], starve["checks"]

        crash = _drill(data, 7)
        assert "10 crashes (SIGSTOP then SIGKILL of the process group)" in out
        both = crash["figures"]["both_held_s"]
        assert _check(crash, "both directors held the VIP at most 0.50 s") == (both <= 0.5)
        assert _check(crash, "after the last restart lvs-a MASTER and lvs-b BACKUP")
        assert _check(crash, "the VIP held by lvs-a alone at the end")
        assert _check(crash, "traffic settled on lvs-a")
        assert crash["figures"]["convergence_s"] > 0
        # A restarted director removes its predecessor's VIPs first thing.
        assert crash["passed"], crash["checks"]

        reload = _drill(data, 8)
        assert reload["passed"], reload["checks"]
        assert 1 <= reload["figures"]["reloads_done"] <= 30
        assert reload["figures"]["failed"] == 0
        assert res.returncode == 0 and "4 of 4 drills passed" in out
    finally:
        leftover = list_namespaces(prefix)
        sweep(prefix)
    assert leftover == []
