"""Trackers running for real: vrrp_scripts, track_file (inotify and polling), and
track_interface on a veth."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hacluster import scripts
from hacluster.config.loader import parse_config
from hacluster.config.model import Config
from hacluster.lab.netns import Lab, Netns, sweep
from hacluster.tracking import TrackChange, Tracking
from vrrp.machine import FaultCleared, FaultRaised, PriorityChanged

PREFIX = "hct"


def flag_script(tmp_path: Path, name: str, flag: Path) -> Path:
    """A check that succeeds while `flag` exists."""
    s = tmp_path / f"{name}.sh"
    s.write_text(f"#!/bin/sh\n[ -e {flag} ]\n")
    s.chmod(0o755)
    return s


def cfg_text(scripts_yaml: str, tracks: str, extra: str = "") -> Config:
    return parse_config(
        (f"vrrp_scripts:\n{scripts_yaml}" if scripts_yaml else "")
        + "vrrp_instances:\n  VI_1:\n    interface: eth0\n    virtual_router_id: 1\n"
        + "    virtual_ipaddress: [10.0.0.1/24]\n"
        + "".join(f"    {line}\n" for line in tracks.strip().splitlines())
        + extra
    )


async def wait_for(changes: list[TrackChange], wanted: TrackChange, timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while wanted not in changes:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{wanted} not seen; got {changes}")
        await asyncio.sleep(0.01)


async def test_vrrp_script_results_move_priority_and_fault(tmp_path: Path) -> None:
    up_flag, fault_flag = tmp_path / "up", tmp_path / "ok"
    up_flag.touch()
    chk = flag_script(tmp_path, "chk", up_flag)
    chk0 = flag_script(tmp_path, "chk0", fault_flag)  # missing: failing from the start
    cfg = cfg_text(
        f"  chk: {{script: {chk}, interval: 0.05, timeout: 3, weight: -20, fall: 2, rise: 2}}\n"
        f"  chk0: {{script: {chk0}, interval: 0.05, timeout: 3}}\n",
        "track_script: [chk, chk0]",
    )
    changes: list[TrackChange] = []
    tracking = Tracking(cfg, changes.append)
    try:
        await tracking.start()
        # The first results are in before start() returns: chk0 failed, chk passed.
        assert changes == [TrackChange("VI_1", FaultRaised("track_script chk0 failed"))]
        up_flag.unlink()
        await wait_for(changes, TrackChange("VI_1", PriorityChanged(-20)))
        fault_flag.touch()
        await wait_for(changes, TrackChange("VI_1", FaultCleared("track_script chk0 failed")))
        up_flag.touch()
        await wait_for(changes, TrackChange("VI_1", PriorityChanged(0)))
        assert tracking.replay("VI_1") == []
    finally:
        await tracking.stop()


async def test_script_timeout_counts_as_failure_and_stop_kills_running_scripts(
    tmp_path: Path,
) -> None:
    pids = tmp_path / "pids"
    slow = tmp_path / "slow.sh"
    slow.write_text(f"#!/bin/sh\necho $$ >> {pids}\nexec sleep 30\n")
    slow.chmod(0o755)
    cfg = cfg_text(
        f"  slow: {{script: {slow}, interval: 5, timeout: 0.2}}\n", "track_script: [slow]"
    )
    changes: list[TrackChange] = []
    tracking = Tracking(cfg, changes.append)
    try:
        await tracking.start()
        assert changes == [TrackChange("VI_1", FaultRaised("track_script slow failed"))]
    finally:
        await tracking.stop()
    first = int(pids.read_text().split()[0])
    assert not Path(f"/proc/{first}").exists()


async def test_stop_kills_a_script_in_flight(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    slow = tmp_path / "slow.sh"
    slow.write_text(f"#!/bin/sh\necho $$ >> {pids}\nexec sleep 30\n")
    slow.chmod(0o755)
    cfg = cfg_text(f"  slow: {{script: {slow}, interval: 30}}\n", "track_script: [slow]")
    tracking = Tracking(cfg, lambda change: None)
    await tracking.start(wait_first=False)
    for _ in range(200):
        if pids.exists() and pids.read_text().strip():
            break
        await asyncio.sleep(0.01)
    pid = int(pids.read_text().split()[0])
    assert Path(f"/proc/{pid}").exists()
    await tracking.stop()
    assert not Path(f"/proc/{pid}").exists()


async def test_track_file_is_polled_and_init_file_creates_it(tmp_path: Path) -> None:
    value = tmp_path / "prio"
    cfg = cfg_text(
        "",
        "track_file: [tf]",
        extra=f"vrrp_track_files:\n  tf: {{file: {value}, weight: -3, init_file: 2}}\n",
    )
    changes: list[TrackChange] = []
    tracking = Tracking(cfg, changes.append, file_poll_interval=0.02)
    try:
        await tracking.start()
        assert value.read_text().strip() == "2"
        assert changes == [TrackChange("VI_1", PriorityChanged(-6))]
        value.write_text("10\n")
        await wait_for(changes, TrackChange("VI_1", PriorityChanged(-30)))
        value.write_text("100\n")  # -300 < -253: fault
        await wait_for(changes, TrackChange("VI_1", FaultRaised("track_file tf below -253")))
        value.unlink()  # missing reads as 0
        await wait_for(changes, TrackChange("VI_1", FaultCleared("track_file tf below -253")))
        assert changes[-2:] == [
            TrackChange("VI_1", PriorityChanged(0)),
            TrackChange("VI_1", FaultCleared("track_file tf below -253")),
        ]
    finally:
        await tracking.stop()


async def test_track_file_change_is_seen_at_once_without_polling(tmp_path: Path) -> None:
    # Polling every 10 minutes: only the inotify watch can report these in time.
    value = tmp_path / "prio"
    value.write_text("1\n")
    cfg = cfg_text(
        "",
        "track_file: [tf]",
        extra=f"vrrp_track_files:\n  tf: {{file: {value}, weight: -3}}\n",
    )
    changes: list[TrackChange] = []
    tracking = Tracking(cfg, changes.append, file_poll_interval=600)
    try:
        await tracking.start()
        assert changes == [TrackChange("VI_1", PriorityChanged(-3))]
        value.write_text("5\n")  # written in place
        await wait_for(changes, TrackChange("VI_1", PriorityChanged(-15)))
        fresh = tmp_path / "prio.new"
        fresh.write_text("2\n")
        fresh.rename(value)  # replaced by a rename, as editors and `mv` do
        await wait_for(changes, TrackChange("VI_1", PriorityChanged(-6)))
        (tmp_path / "other").write_text("9\n")  # another file in the directory: no change
        value.unlink()  # missing reads as 0
        await wait_for(changes, TrackChange("VI_1", PriorityChanged(0)))
        assert [c.event for c in changes] == [
            PriorityChanged(-3), PriorityChanged(-15), PriorityChanged(-6), PriorityChanged(0)
        ]
    finally:
        await tracking.stop()


async def test_reconfigure_keeps_unchanged_scripts_and_starts_new_ones(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    runs = tmp_path / "runs"
    counting = tmp_path / "count.sh"
    counting.write_text(f"#!/bin/sh\necho x >> {runs}\n[ -e {flag} ]\n")
    counting.chmod(0o755)
    other = flag_script(tmp_path, "other", tmp_path / "never")
    a = f"  a: {{script: {counting}, interval: 0.05, timeout: 3, weight: -10}}\n"
    cfg = cfg_text(a, "track_script: [a]")
    changes: list[TrackChange] = []
    tracking = Tracking(cfg, changes.append)
    try:
        await tracking.start()
        assert changes == [TrackChange("VI_1", PriorityChanged(-10))]
        b = f"  b: {{script: {other}, interval: 0.05, timeout: 3}}\n"
        await tracking.reconfigure(cfg_text(a + b, "track_script: [a, b]"))
        # a kept its state (no repeat of -10); b's first result is a fault.
        await wait_for(changes, TrackChange("VI_1", FaultRaised("track_script b failed")))
        assert changes.count(TrackChange("VI_1", PriorityChanged(-10))) == 1
        # An unusable script in a reload is refused and nothing changes.
        with pytest.raises(scripts.ScriptError, match=r"vrrp_scripts\.c: /nonexistent/c: No such"):
            await tracking.reconfigure(
                cfg_text(a + b + "  c: {script: /nonexistent/c}\n", "track_script: [a, b, c]")
            )
        flag.touch()
        await wait_for(changes, TrackChange("VI_1", PriorityChanged(0)))
    finally:
        await tracking.stop()
    count = len(runs.read_text().split())
    await asyncio.sleep(0.2)
    assert len(runs.read_text().split()) == count  # nothing runs after stop


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chmod on a root-owned path)")
def test_insecure_vrrp_script_is_refused_at_build(tmp_path: Path) -> None:
    chk = flag_script(tmp_path, "chk", tmp_path / "x")
    chk.chmod(0o777)
    cfg = cfg_text(f"  chk: {{script: {chk}}}\n", "track_script: [chk]",
                   extra="global_defs: {enable_script_security: true}\n")
    with pytest.raises(scripts.ScriptSecurityError, match=(
        r"^vrrp_scripts\.chk: refusing to run .*chk\.sh as root: .* writable by everyone"
    )):
        Tracking(cfg, lambda change: None)


# --------------------------------------------------------------------------- track_interface

CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from hacluster.config.loader import parse_config
    from hacluster.tracking import Tracking

    async def main() -> None:
        out = open(sys.argv[1], "a", buffering=1)
        cfg = parse_config(sys.argv[2])
        def record(change):
            out.write(json.dumps([change.instance, type(change.event).__name__,
                                  getattr(change.event, "cause", None),
                                  getattr(change.event, "delta", None)]) + "\\n")
        tracking = Tracking(cfg, record)
        await tracking.start()
        out.write('"ready"\\n')
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


@pytest.fixture
def hct_lab() -> Iterator[Lab]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2")
    sweep(PREFIX)
    with Lab(PREFIX) as lab:
        yield lab


def read_events(path: Path) -> list[object]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class EventReader:
    """Reads the child's JSON lines; `expect` waits for an event after the last one found."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cursor = 0

    def all(self) -> list[object]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]

    def expect(self, *wanted: object, timeout: float = 20.0) -> list[object]:
        """Wait for all of `wanted` (any order) after the cursor; return what came, move on."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.all()
            fresh = events[self.cursor:]
            if all(w in fresh for w in wanted):
                end = self.cursor + max(fresh.index(w) for w in wanted) + 1
                seen, self.cursor = events[self.cursor:end], end
                return seen
            if time.monotonic() > deadline:
                raise AssertionError(f"{wanted} not seen after #{self.cursor}; got {events}")
            time.sleep(0.02)


def wait_carrier(lab: Lab, ns: Netns, ifname: str, timeout: float = 5.0) -> None:
    """A fresh veth takes a moment to report carrier; start from a settled link."""
    deadline = time.monotonic() + timeout
    while "LOWER_UP" not in lab.run(ns, ["ip", "-o", "link", "show", "dev", ifname]).stdout:
        if time.monotonic() > deadline:
            raise AssertionError(f"{ifname} has no carrier")
        time.sleep(0.02)


@pytest.mark.netns
def test_track_interface_follows_a_real_veth_in_a_namespace(hct_lab: Lab) -> None:
    ns = hct_lab.namespace("dir")
    hct_lab.veth(ns, "hcta", ns, "hctb")
    wait_carrier(hct_lab, ns, "hcta")
    config = (
        "vrrp_instances:\n  VI_1:\n    interface: hcta\n    virtual_router_id: 1\n"
        "    virtual_ipaddress: [10.0.0.1/24]\n"
        "    track_interface: [hcta, {name: hctb, weight: -30}, hctgone]\n"
    )
    events = hct_lab.workdir / "events.jsonl"
    proc = hct_lab.start(ns, [sys.executable, "-c", CHILD, str(events), config],
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    reader = EventReader(events)
    down = ["VI_1", "FaultRaised", "track_interface hcta down", None]
    back = ["VI_1", "FaultCleared", "track_interface hcta down", None]
    # Both veth ends are up; the interface that does not exist is down: one fault, and
    # nothing else (the starting picture is reported in one go, without transients).
    assert reader.expect("ready") == [
        ["VI_1", "FaultRaised", "track_interface hctgone down", None], "ready",
    ]
    # Taking hctb down drops hcta's carrier too: the weight and a fault.
    hct_lab.set_link(ns, "hctb", False)
    assert len(reader.expect(down, ["VI_1", "PriorityChanged", None, -30])) == 2
    hct_lab.set_link(ns, "hctb", True)
    reader.expect(["VI_1", "PriorityChanged", None, 0])
    reader.expect(back)
    # Deleting the pair removes both ends: down again.
    hct_lab.run(ns, ["ip", "link", "del", "dev", "hcta"])
    reader.expect(down)
    # Created again (new interface indexes): it comes back.
    hct_lab.veth(ns, "hcta", ns, "hctb")
    reader.expect(back)
    assert reader.all().count(back) == 2
    assert proc.running()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (setuid to nobody)")
async def test_a_new_script_user_on_reload_restarts_the_script_as_that_user() -> None:
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="hct-"))
    try:
        d.chmod(0o755)
        out = d / "out"
        out.mkdir()
        out.chmod(0o777)
        (out / "uids").touch(mode=0o666)
        (out / "uids").chmod(0o666)
        who = d / "who.sh"
        who.write_text(f"#!/bin/sh\nid -u >> {out}/uids\n")
        who.chmod(0o755)
        scripts_yaml = f"  who: {{script: {who}, interval: 0.05, timeout: 3}}\n"
        tracking = Tracking(cfg_text(scripts_yaml, "track_script: [who]"), lambda c: None)
        await tracking.start()
        try:
            await tracking.reconfigure(cfg_text(
                scripts_yaml, "track_script: [who]", extra="global_defs: {script_user: nobody}\n"
            ))
            nobody = str(scripts.resolve_user("nobody").uid)
            for _ in range(300):
                if (out / "uids").read_text().split()[-1] == nobody:
                    break
                await asyncio.sleep(0.01)
        finally:
            await tracking.stop()
        uids = (out / "uids").read_text().split()
        assert uids[0] == "0" and uids[-1] == nobody
        # Once switched, every later run is as nobody.
        assert uids[uids.index(nobody):] == [nobody] * (len(uids) - uids.index(nobody))
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (setuid to nobody)")
async def test_vrrp_script_runs_as_its_user_and_group() -> None:
    import grp
    import tempfile

    nobody = scripts.resolve_user("nobody")
    users_gid = grp.getgrnam("users").gr_gid
    assert users_gid != nobody.gid  # else the group could not be told apart
    d = Path(tempfile.mkdtemp(prefix="hct-"))
    try:
        d.chmod(0o755)
        out = d / "out"
        out.mkdir()
        out.chmod(0o777)
        who = d / "who.sh"
        who.write_text(f'#!/bin/sh\necho "$1 $(id -u) $(id -g) $(id -G)" >> {out}/ids\n')
        who.chmod(0o755)
        scripts_yaml = (
            f"  grouped: {{script: {who} grouped, interval: 30, user: nobody, group: users}}\n"
            f"  own: {{script: {who} own, interval: 30, user: nobody}}\n"
            f"  root: {{script: {who} root, interval: 30}}\n"
        )
        changes: list[TrackChange] = []
        tracking = Tracking(
            cfg_text(scripts_yaml, "track_script: [grouped, own, root]"), changes.append
        )
        try:
            await tracking.start()  # every script has run once when it returns
        finally:
            await tracking.stop()
        assert changes == []  # all passed
        ids = sorted((out / "ids").read_text().splitlines())
        n, u = nobody.uid, nobody.gid
        assert ids == [
            f"grouped {n} {users_gid} {users_gid}",
            f"own {n} {u} {u}",
            "root 0 0 0",
        ]
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_unknown_vrrp_script_user_or_group_names_the_key(tmp_path: Path) -> None:
    chk = flag_script(tmp_path, "chk", tmp_path / "flag")
    cfg = cfg_text(
        f"  a: {{script: {chk}, user: no-such-user-hc}}\n"
        f"  b: {{script: {chk}, user: nobody, group: no-such-group-hc}}\n",
        "track_script: [a, b]",
    )
    with pytest.raises(scripts.ScriptError) as exc:
        Tracking(cfg, lambda c: None)
    assert str(exc.value) == (
        "vrrp_scripts.a.user: no such user 'no-such-user-hc'; "
        "vrrp_scripts.b.group: no such group 'no-such-group-hc'"
    )
