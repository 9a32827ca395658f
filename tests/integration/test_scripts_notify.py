"""Notify with real scripts: order under a burst, keepalived's arguments, timeouts, event log."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from hacluster import scripts
from hacluster.config.loader import parse_config
from hacluster.config.model import Config
from hacluster.notify import Delivery, Notifier
from vrrp.machine import State


def recorder(tmp_path: Path, log: Path, pause: str = "0.01") -> Path:
    """A script that records the start and end of each of its runs with its arguments."""
    s = tmp_path / "rec.sh"
    s.write_text(
        f'#!/bin/sh\necho "start $*" >> {log}\nsleep {pause}\necho "end $*" >> {log}\n'
    )
    s.chmod(0o755)
    return s


def make_config(
    tmp_path: Path, rec: Path, *, extra_global: str = "", more: str = "", timeout: float = 5
) -> Config:
    instances = "".join(
        f"""
  {name}:
    interface: eth0
    virtual_router_id: {vrid}
    priority: 100
    virtual_ipaddress: [10.0.0.{vrid}/24]
    notify_master: {rec} {name} master
    notify_backup: {rec} {name} backup
    notify_fault: {rec} {name} fault
    notify_stop: {rec} {name} stop
    notify: {rec} generic
"""
        for name, vrid in (("VI_1", 1), ("VI_2", 2))
    )
    text = (
        f"global_defs:\n  notify_timeout: {timeout}\n"
        + extra_global
        + "vrrp_instances:"
        + instances
        + more
    )
    return parse_config(text)


def lines_about(log: Path, word: str) -> list[str]:
    return [line for line in log.read_text().splitlines() if word in line.split()]


async def test_burst_of_transitions_is_delivered_in_order_one_at_a_time(tmp_path: Path) -> None:
    log = tmp_path / "calls"
    rec = recorder(tmp_path, log)
    notifier = Notifier(make_config(tmp_path, rec))
    cycle = [State.BACKUP, State.MASTER, State.FAULT, State.BACKUP, State.MASTER]
    burst = [(cycle[i % len(cycle)], 100 + i) for i in range(15)] + [(State.INITIALIZE, 0)]
    for state, prio in burst:  # both instances change at once, all queued without waiting
        notifier.vrrp_state("VI_1", state, prio, reason="burst")
        notifier.vrrp_state("VI_2", state, prio + 1000, reason="burst")
    assert notifier.pending() > 0
    await notifier.drain()
    assert notifier.pending() == 0
    names = {State.MASTER: "MASTER", State.BACKUP: "BACKUP", State.FAULT: "FAULT",
             State.INITIALIZE: "STOP"}
    for inst, offset in (("VI_1", 0), ("VI_2", 1000)):
        expected: list[str] = []
        for state, prio in burst:
            specific = f"{inst} {names[state].lower()}"
            generic = f"generic INSTANCE {inst} {names[state]} {prio + offset}"
            for call in (specific, generic):
                expected += [f"start {call}", f"end {call}"]
        # Every event is there, in order, and no run of one instance overlaps another.
        assert lines_about(log, inst) == expected


async def test_sync_group_real_server_and_quorum_notifications(tmp_path: Path) -> None:
    log = tmp_path / "calls"
    rec = recorder(tmp_path, log, pause="0")
    more = f"""
vrrp_sync_groups:
  G1:
    group: [VI_1, VI_2]
    notify_master: {rec} G1 master
    notify: {rec} generic
virtual_servers:
  - ip: 10.0.0.100
    port: 80
    quorum_up: {rec} vs up
    quorum_down: {rec} vs down
    real_servers:
      - ip: 10.0.0.11
        port: 80
        notify_up: {rec} rs11 up
        notify_down: {rec} rs11 down
"""
    cfg = make_config(tmp_path, rec, more=more)
    notifier = Notifier(cfg)
    vs = cfg.virtual_servers[0]
    rs = vs.real_servers[0]
    notifier.sync_group_state("G1", State.MASTER)
    notifier.real_server(vs, rs, False, reason="connect refused")
    notifier.quorum(vs, False)
    notifier.real_server(vs, rs, True)
    notifier.quorum(vs, True)
    await notifier.drain()
    ends = [line for line in log.read_text().splitlines() if line.startswith("end ")]
    assert [e for e in ends if "G1" in e] == ["end G1 master", "end generic GROUP G1 MASTER 0"]
    # Real servers and quorum of one virtual server share its queue: in order.
    assert [e for e in ends if "G1" not in e] == [
        "end rs11 down", "end vs down", "end rs11 up", "end vs up",
    ]


async def test_timed_out_script_is_killed_with_its_children_and_the_queue_goes_on(
    tmp_path: Path,
) -> None:
    log = tmp_path / "calls"
    rec = recorder(tmp_path, log, pause="0")
    pids = tmp_path / "pids"
    slow = tmp_path / "slow.sh"
    slow.write_text(f"#!/bin/sh\nsleep 60 &\necho $! >> {pids}\necho $$ >> {pids}\nwait\n")
    slow.chmod(0o755)
    cfg = parse_config(
        f"global_defs:\n  notify_timeout: 1\nvrrp_instances:\n  VI_1:\n"
        f"    interface: eth0\n    virtual_router_id: 1\n    virtual_ipaddress: [10.0.0.1/24]\n"
        f"    notify_master: {slow}\n    notify_backup: {rec} VI_1 backup\n"
    )
    results: list[Delivery] = []
    notifier = Notifier(cfg, on_result=results.append, kill_grace=0.2)
    started = time.monotonic()
    notifier.vrrp_state("VI_1", State.MASTER, 100)
    notifier.vrrp_state("VI_1", State.BACKUP, 100)
    await notifier.drain()
    assert time.monotonic() - started < 5.0  # generous; the slow script wanted 60 s
    assert [d.event.state for d in results] == ["MASTER", "BACKUP"]
    assert results[0].result.timed_out and results[1].result.ok
    assert lines_about(log, "VI_1") == ["start VI_1 backup", "end VI_1 backup"]
    for pid in (int(p) for p in pids.read_text().split()):
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), f"pid {pid} survived"


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] == "Z"
    except (FileNotFoundError, IndexError):
        return True


async def test_event_log_has_one_json_object_per_event(tmp_path: Path) -> None:
    log = tmp_path / "calls"
    rec = recorder(tmp_path, log, pause="0")
    events = tmp_path / "events.jsonl"
    events.write_text('{"earlier": true}\n')  # appended to, never truncated
    cfg = make_config(tmp_path, rec, extra_global=f"  event_log: {events}\n")
    notifier = Notifier(cfg)
    before = time.time()
    notifier.vrrp_state("VI_1", State.MASTER, 150, reason="master down timer")
    notifier.vrrp_state("VI_3", State.BACKUP, 90)  # unknown instance: logged, nothing to run
    notifier.vrrp_state("VI_1", "initialize", 150, reason="shutdown")
    await notifier.drain()
    lines = events.read_text().splitlines()
    assert json.loads(lines[0]) == {"earlier": True}
    objs = [json.loads(line) for line in lines[1:]]
    assert [(o["name"], o["state"], o["priority"]) for o in objs] == [
        ("VI_1", "MASTER", 150), ("VI_3", "BACKUP", 90), ("VI_1", "STOP", 150),
    ]
    assert [o["seq"] for o in objs] == [1, 2, 3]
    monos = [o["monotonic"] for o in objs]
    assert monos == sorted(monos)
    assert objs[0]["reason"] == "master down timer" and objs[0]["kind"] == "vrrp_instance"
    assert objs[0]["commands"] == [
        [str(rec), "VI_1", "master"], [str(rec), "generic", "INSTANCE", "VI_1", "MASTER", "150"],
    ]
    assert objs[1]["commands"] == []
    from datetime import datetime

    stamp = datetime.fromisoformat(objs[0]["time"]).timestamp()
    assert before - 1 <= stamp <= time.time() + 1


async def test_close_runs_everything_still_queued(tmp_path: Path) -> None:
    log = tmp_path / "calls"
    rec = recorder(tmp_path, log, pause="0")
    notifier = Notifier(make_config(tmp_path, rec))
    for state in (State.MASTER, State.BACKUP, State.INITIALIZE):
        notifier.vrrp_state("VI_1", state, 100)
    await notifier.close(timeout=10)
    assert [line for line in lines_about(log, "VI_1") if line.startswith("end VI_1")] == [
        "end VI_1 master", "end VI_1 backup", "end VI_1 stop",
    ]
    # After close nothing more is run (but it is still logged).
    notifier.vrrp_state("VI_1", State.MASTER, 100)
    assert notifier.pending() == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chmod on a root-owned path)")
async def test_insecure_notify_script_is_refused_and_a_bad_reload_keeps_the_old_config(
    tmp_path: Path,
) -> None:
    log = tmp_path / "calls"
    rec = recorder(tmp_path, log, pause="0")
    good = make_config(tmp_path, rec, extra_global="  enable_script_security: true\n")
    notifier = Notifier(good)
    rec.chmod(0o777)
    with pytest.raises(scripts.ScriptSecurityError, match=(
        r"vrrp_instances\.VI_1\.notify_master: refusing to run .*rec\.sh as root: "
        r".*rec\.sh is writable by everyone"
    )):
        Notifier(good)
    with pytest.raises(scripts.ScriptSecurityError):
        notifier.reconfigure(make_config(tmp_path, rec, extra_global=(
            "  enable_script_security: true\n"), timeout=1))
    assert notifier.timeout == 5  # the old configuration stays
    rec.chmod(0o755)
    notifier.vrrp_state("VI_2", State.FAULT, 100)
    await notifier.drain()
    assert lines_about(log, "VI_2")[-1] == "end generic INSTANCE VI_2 FAULT 100"


def test_unknown_state_is_refused(tmp_path: Path) -> None:
    notifier = Notifier(make_config(tmp_path, recorder(tmp_path, tmp_path / "calls")))
    with pytest.raises(ValueError, match="not a VRRP notify state"):
        notifier.vrrp_state("VI_1", "SLEEPING", 100)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (setuid to nobody)")
async def test_notify_commands_run_as_their_own_user_and_group() -> None:
    import grp
    import shutil
    import tempfile

    nobody = scripts.resolve_user("nobody")
    users_gid = grp.getgrnam("users").gr_gid
    assert users_gid != nobody.gid  # else the group could not be told apart
    d = Path(tempfile.mkdtemp(prefix="hcn-"))
    try:
        d.chmod(0o755)  # the script is reachable by nobody; only `out` is writable by all
        out = d / "out"
        out.mkdir()
        out.chmod(0o777)
        who = d / "who.sh"
        who.write_text(f'#!/bin/sh\necho "[$*] $(id -u) $(id -g) $(id -G)" >> {out}/ids\n')
        who.chmod(0o755)
        # One command line for three users: three prepared scripts.
        cfg = parse_config(
            "vrrp_instances:\n  VI_1:\n    interface: eth0\n    virtual_router_id: 1\n"
            "    virtual_ipaddress: [10.0.0.1/24]\n"
            f"    notify_master: {{script: {who}, user: nobody}}\n"
            f"    notify_backup: {{script: {who}, user: nobody, group: users}}\n"
            f"    notify_fault: {who}\n"
            "virtual_servers:\n  - ip: 10.0.0.100\n    port: 80\n"
            f"    quorum_down: {{script: {who} quorum, user: nobody, group: users}}\n"
            "    real_servers:\n      - ip: 10.0.0.11\n        port: 80\n"
            f"        notify_down: {{script: [{who}, rs], user: nobody}}\n"
        )
        notifier = Notifier(cfg)
        notifier.vrrp_state("VI_1", State.MASTER, 100)
        notifier.vrrp_state("VI_1", State.BACKUP, 100)
        notifier.vrrp_state("VI_1", State.FAULT, 100)
        vs = cfg.virtual_servers[0]
        notifier.real_server(vs, vs.real_servers[0], False)
        notifier.quorum(vs, False)
        await notifier.close(timeout=10)
        ids = (out / "ids").read_text().splitlines()
        n, u = nobody.uid, nobody.gid
        # The instance's queue runs in order; the virtual server's queue runs beside it.
        assert [line for line in ids if line.startswith("[]")] == [
            f"[] {n} {u} {u}",  # notify_master: nobody, its own group, no other groups
            f"[] {n} {users_gid} {users_gid}",  # notify_backup: nobody, group users
            "[] 0 0 0",  # notify_fault: the daemon's user (no script_user)
        ]
        assert sorted(line for line in ids if not line.startswith("[]")) == [
            f"[quorum] {n} {users_gid} {users_gid}",
            f"[rs] {n} {u} {u}",
        ]
    finally:
        shutil.rmtree(d, ignore_errors=True)
