"""The daemon's roles crashed and reloaded on the real IPVS dataplane (the QEMU guest).

One `hacluster run` (supervisor, VRRP role, balancer, one check worker) runs in the
guest for the module, over the session's real servers; the kernel's IPVS table is read
every few tens of ms meanwhile (`/proc/net/ip_vs`, weights included), so a service or
destination removed and added again, even for a moment, shows as a table seen:

- a SIGKILLed check worker is replaced and no real server flaps: the table never
  changes;
- a balancer too busy to answer (SIGSTOPped for less than the heartbeat's limit) still
  gives `hacluster status` its servers, as they were, marked stale and saying why;
- a SIGKILLed balancer is started again, reads the table back and reconciles it with no
  operation: the table never changes, and the services' connection counters, which a
  removed and added service would start again from zero, go on; the real server that
  was down stays out and the one with `alpha` that had come up stays in;
- a reload (SIGHUP) that changes one service changes only that one in the kernel: the
  others are never touched, and their counters go on.

Python in the guest runs some 30 times slower than on the host: the checks are slow
(delay_loop 3) and the waits long; nothing here is a timing test.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from hacluster.ipvs.model import Table, TableStats
from tests.vm.conftest import GuestLab

pytestmark = [pytest.mark.vm, pytest.mark.timeout(1200)]

RS1, RS2, RS3 = "192.168.71.11", "192.168.72.11", "192.168.73.11"
SOCK = "/run/hcdrill.sock"


def config(vip: str, *, reloaded: bool = False) -> str:
    check = {"connect_timeout": 5, "retry": 0}
    web = [
        {"ip": RS1, "port": 80, "TCP_CHECK": dict(check)},
        {"ip": RS2, "port": 80, "TCP_CHECK": dict(check)},
        # Comes up with its first passing check: a fresh start would leave it out.
        {"ip": RS3, "port": 80, "alpha": True, "TCP_CHECK": dict(check)},
        # Nothing listens there: down after its first check (a fresh start: back in).
        {"ip": RS1, "port": 81, "TCP_CHECK": dict(check)},
    ]
    other = [{"ip": RS3, "port": 80, "weight": 1, "TCP_CHECK": dict(check)}]
    if reloaded:  # the one service a reload changes
        other = [{"ip": RS3, "port": 80, "weight": 3, "TCP_CHECK": dict(check)},
                 {"ip": RS2, "port": 80, "weight": 1, "TCP_CHECK": dict(check)}]
    return yaml.safe_dump({
        "global_defs": {"router_id": "drills", "dataplane": "ipvs", "control_socket": SOCK,
                        "checker_processes": 1},
        "virtual_servers": [
            {"ip": vip, "port": 80, "lb_algo": "rr", "lb_kind": "NAT", "delay_loop": 3,
             "real_servers": web},
            {"ip": vip, "port": 81, "lb_algo": "wrr", "lb_kind": "NAT", "delay_loop": 3,
             "real_servers": [{"ip": RS1, "port": 80, "weight": 1, "TCP_CHECK": dict(check)},
                              {"ip": RS2, "port": 80, "weight": 2,
                               "TCP_CHECK": dict(check)}]},
            {"ip": vip, "port": 82, "lb_algo": "wrr", "lb_kind": "NAT", "delay_loop": 3,
             "real_servers": other},
        ],
    }, sort_keys=False)


def servers(table: Table) -> dict[int, dict[str, int]]:
    """Each service's port -> its destinations ("ip:port") and their weights."""
    return {
        key.port: {f"{d.address}:{d.port}": d.weight for d in entry.destinations.values()}
        for key, entry in table.entries.items()
    }


WANTED = {
    80: {f"{RS1}:80": 1, f"{RS2}:80": 1, f"{RS3}:80": 1},
    81: {f"{RS1}:80": 1, f"{RS2}:80": 2},
    82: {f"{RS3}:80": 1},
}


@dataclass
class Daemon:
    """`hacluster run` in the guest: its pid, file and log (in the shared work dir)."""

    lab: GuestLab
    pid: int
    conf: Path
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_log(self, text: str, after: int = 0, timeout: float = 300.0) -> str:
        """The log from offset `after` once it holds `text`."""
        deadline = time.monotonic() + timeout
        while True:
            tail = self.text()[after:]
            if text in tail:
                return tail
            assert time.monotonic() < deadline, f"no {text!r} in the log:\n{self.text()}"
            time.sleep(1)

    def wait_table(self, want: Callable[[dict[int, dict[str, int]]], bool],
                   timeout: float = 300.0) -> dict[int, dict[str, int]]:
        deadline = time.monotonic() + timeout
        while True:
            now = servers(self.lab.call("dump"))
            if want(now):
                return now
            assert time.monotonic() < deadline, f"table {now}; log:\n{self.text()}"
            time.sleep(1)

    def counters(self, traffic: int = 6) -> dict[int, int]:
        """Each service's connection counter, after `traffic` new connections to each
        (counted by the kernel within a couple of seconds)."""
        vip = str(self.lab.vip)
        for port in WANTED:
            answers: Counter[str] = self.lab.call("connect_many", vip, port, traffic)
            assert sum(answers.values()) == traffic
        time.sleep(3)
        stats: TableStats = self.lab.call("stats")
        return {key.port: s.conns for key, s in stats.services.items()}

    def status(self) -> str:
        """What `hacluster status` prints (run in the guest's agent: Python starts slowly)."""
        code, out, err = self.lab.call("cli", ["status", "--control-socket", SOCK,
                                               "--timeout", "30"])
        assert code == 0, out + err
        return str(out)

    def pids(self, name: str) -> list[int]:
        found: list[int] = self.lab.call("pids_named", name)
        return found


@pytest.fixture(scope="module")
def daemon(lab: GuestLab) -> Iterator[Daemon]:
    lab.call("flush")
    work = lab.guest.workdir / "drills"
    work.mkdir(exist_ok=True)
    conf, log = work / "hacluster.yaml", work / "hacluster.log"
    conf.write_text(config(str(lab.vip)))
    hacluster = str(Path(lab.guest.python).with_name("hacluster"))
    started = time.monotonic()
    pid: int = lab.call("spawn_logged", [hacluster, "run", "-f", str(conf)], str(log))
    running = Daemon(lab, pid, conf, log)
    try:
        running.wait_log("load balancer started", timeout=600)
        running.wait_table(lambda t: t == WANTED, timeout=300)
        print(f"\nhacluster run in the guest: the table as wanted after "
              f"{time.monotonic() - started:.0f} s")
        yield running
    finally:
        if lab.guest.running:
            lab.call("signal_pid", pid, signal.SIGTERM)
            lab.call("wait_exit", pid, 120)
            print(running.text())
            lab.call("flush")


def _watched(daemon: Daemon, during: Callable[[], Any]) -> tuple[Any, list[tuple[str, ...]]]:
    """`during()`'s result and the distinct tables the kernel had meanwhile."""
    daemon.lab.call("watch_start")
    try:
        result = during()
    finally:
        reads, seen = daemon.lab.call("watch_stop")
    print(f"the table was read {reads} times: {len(seen)} distinct table(s)")
    assert reads > 10
    return result, seen


def test_a_killed_check_worker_is_replaced_and_no_real_server_flaps(daemon: Daemon) -> None:
    (worker,) = daemon.pids("hc-check-worker")
    mark = len(daemon.text())

    def kill_and_replace() -> int:
        daemon.lab.call("signal_pid", worker, signal.SIGKILL)
        daemon.wait_log(f"health-check worker {worker} exited", after=mark)
        deadline = time.monotonic() + 300
        while True:
            new = [p for p in daemon.pids("hc-check-worker") if p != worker]
            if new:
                break
            assert time.monotonic() < deadline, daemon.text()
            time.sleep(1)
        # Some rounds of checks in the new worker (delay_loop 3, slow Python).
        time.sleep(20)
        return new[0]

    new, seen = _watched(daemon, kill_and_replace)
    assert new != worker
    assert len(seen) == 1, seen
    assert servers(daemon.lab.call("dump")) == WANTED
    tail = daemon.text()[mark:]
    assert " UP (" not in tail and " DOWN (" not in tail, tail


def test_a_balancer_too_busy_to_answer_still_gives_a_status(daemon: Daemon) -> None:
    (balancer,) = daemon.pids("hc-balancer")
    assert "10.77.0.1:80/TCP" in daemon.status()  # a part handed over, kept
    # Stopped for less than the heartbeat's HUNG_AFTER (30 s): slow, not hung. Once the
    # copy handed over is no longer current (10 s), the status shows it as it was,
    # marked so, after waiting 8 s for a fresh one.
    daemon.lab.call("signal_pid", balancer, signal.SIGSTOP)
    try:
        time.sleep(11)
        shown = daemon.status()
    finally:
        daemon.lab.call("signal_pid", balancer, signal.SIGCONT)
    print(shown)
    assert "Virtual servers: shown as they were" in shown, shown
    assert "the balancer did not answer within 8 s (busy)" in shown, shown
    assert "Virtual servers (as of" in shown and "10.77.0.1:80/TCP" in shown, shown
    assert daemon.pids("hc-balancer") == [balancer]


def test_a_killed_balancer_reads_the_table_back_and_leaves_it(daemon: Daemon) -> None:
    before = daemon.counters()
    (balancer,) = daemon.pids("hc-balancer")
    assert "10.77.0.1:80/TCP" in daemon.status()
    mark = len(daemon.text())
    shown: list[str] = []

    def kill_and_restart() -> str:
        daemon.lab.call("signal_pid", balancer, signal.SIGKILL)
        # Meanwhile `hacluster status` shows the servers as they were, or says why not.
        shown.append(daemon.status())
        tail = daemon.wait_log("the balancer runs again", after=mark, timeout=600)
        time.sleep(10)  # checks, and a periodic reconcile, in the new balancer
        return tail

    tail, seen = _watched(daemon, kill_and_restart)
    print(tail)
    print("hacluster status while the balancer restarted:\n" + shown[0])
    assert ("10.77.0.1:80/TCP" in shown[0] or
            "Virtual servers: not shown, the balancer is restarting" in shown[0]), shown[0]
    (new,) = daemon.pids("hc-balancer")
    assert new != balancer
    assert "the balancer exited after" in tail
    assert len(seen) == 1, seen  # nothing removed and added, even for a moment
    assert " operation(s)" not in tail, tail  # reconciled with no operation
    assert servers(daemon.lab.call("dump")) == WANTED
    after = daemon.counters()
    for port in WANTED:  # the services lived on: counters go on, not from zero
        assert after[port] >= before[port] + 6, (before, after)


def test_a_reload_touches_only_the_service_it_changes(daemon: Daemon) -> None:
    before = daemon.counters()
    mark = len(daemon.text())
    daemon.conf.write_text(config(str(daemon.lab.vip), reloaded=True))
    changed = {f"{RS3}:80": 3, f"{RS2}:80": 1}

    def reload() -> str:
        daemon.lab.call("signal_pid", daemon.pid, signal.SIGHUP)
        tail = daemon.wait_log("reload done", after=mark, timeout=300)
        daemon.wait_table(lambda t: t.get(82) == changed, timeout=120)
        return tail

    tail, seen = _watched(daemon, reload)
    print(tail)
    # The unchanged services, with their destinations, are the same in every table seen.
    unchanged = [{svc: dests for svc, dests in _groups(table).items()
                  if svc.endswith((":0050 rr", ":0051 wrr"))} for table in seen]
    assert len(unchanged[0]) == 2, seen
    assert all(u == unchanged[0] for u in unchanged), seen
    assert servers(daemon.lab.call("dump")) == {**WANTED, 82: changed}
    after = daemon.counters()
    for port in (80, 81):
        assert after[port] >= before[port] + 6, (before, after)


def _groups(table: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """/proc/net/ip_vs's lines (`ipvs_lines`): each service's line -> its destinations'."""
    groups: dict[str, list[str]] = {}
    service = ""
    for line in table:
        if line.startswith("->"):
            groups[service].append(line)
        else:
            service = line
            groups[service] = []
    return {svc: tuple(dests) for svc, dests in groups.items()}
