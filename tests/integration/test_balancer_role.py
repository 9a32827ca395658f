"""The balancer role process with real nftables in a namespace (prefix hcbr).

- a SIGKILLed balancer is started again: the restart is logged and counted, it reads
  the nftables table back and finds it as it should be, so no rule or element is
  removed and added again (the ruleset is compared before and after, and `nft monitor`
  watches the table meanwhile: it sees nothing); a real server that was down stays
  down, and one with `alpha` that had come up stays up (a fresh start would have put
  either the other way), and the checks go on;
- a frozen balancer (SIGSTOP) is replaced by the supervisor, and the VRRP role and
  the supervisor's WATCHDOG pings go on meanwhile;
- the status document, summary and per-service view are served from the role;
- SIGTERM to the supervisor: the VRRP master resigns first, then the balancer and its
  check workers stop.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from hacluster.api import DaemonUnreachable, call
from hacluster.lab.netns import Lab, LabProcess, Netns
from tests.integration.daemon_rig import HACLUSTER, RunningDaemon, wait_for
from tests.integration.proctree import alive

VS = "10.93.0.100"
UP, DOWN, ALPHA = "10.93.0.11", "10.93.0.12", "10.93.0.13"
VS_NAME = f"{VS}:80/TCP"

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None,
                       reason="needs root and nft"),
]

LISTENER = (
    "import socket, sys, time\n"
    "socks = []\n"
    "for ip in sys.argv[1:]:\n"
    "    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "    s.bind((ip, 80)); s.listen(128); socks.append(s)\n"
    "print('listening', flush=True)\n"
    "time.sleep(600)\n"
)


class Rig(RunningDaemon):
    def __init__(self, lab: Lab, director: Netns, real: Netns) -> None:
        super().__init__(lab, lab.workdir / "ctl.sock")
        self.director, self.real = director, real
        self.conf = lab.workdir / "hacluster.yaml"
        self.notes = lab.workdir / "notes"
        check = {"connect_timeout": 0.5, "retry": 0, "delay_before_retry": 0.1}
        self.conf.write_text(yaml.safe_dump({
            "global_defs": {"dataplane": "nftables", "control_socket": str(self.sock),
                            "checker_processes": 1, "reconcile_interval": 1.0},
            "vrrp_instances": {"VI_1": {
                "interface": "d0", "virtual_router_id": 93, "priority": 200,
                "state": "MASTER", "advert_int": 0.1, "version": 3,
                "virtual_ipaddress": [f"{VS}/32"]}},
            "virtual_servers": [{
                "ip": VS, "port": 80, "protocol": "TCP", "lb_algo": "wrr", "lb_kind": "NAT",
                "delay_loop": 0.3,
                "real_servers": [
                    {"ip": UP, "port": 80, "TCP_CHECK": dict(check)},
                    {"ip": DOWN, "port": 80, "TCP_CHECK": dict(check),
                     "notify_down": self.note("down")},
                    {"ip": ALPHA, "port": 80, "alpha": True, "TCP_CHECK": dict(check),
                     "notify_up": self.note("alpha up")},
                ],
            }],
        }, sort_keys=False))

    def note(self, text: str) -> str:
        """A notify script (no shell) that appends `text` to the notes file."""
        code = f"open({str(self.notes)!r}, 'a').write({text + chr(10)!r})"
        return f'{sys.executable} -c "{code}"'

    def noted(self) -> list[str]:
        return self.notes.read_text().splitlines() if self.notes.exists() else []

    def start(self, env: dict[str, str] | None = None, *extra: str) -> LabProcess:
        self.proc = self.lab.start(self.director,
                                   [HACLUSTER, "run", "-f", str(self.conf), *extra],
                                   log_name="daemon", env=env)
        wait_for("the API", lambda: self.try_api("/v1/summary") is not None, 30, self.output)
        return self.proc

    def try_api(self, path: str, method: str = "GET") -> Any:
        try:
            code, data = asyncio.run(call(self.sock, method, path))
        except (OSError, DaemonUnreachable):
            return None
        return data if code == 200 else None

    def servers(self) -> dict[str, dict[str, Any]]:
        status = self.api("/v1/status")
        return {rs["name"]: rs for vs in status["virtual_servers"]
                for rs in vs["real_servers"]}

    def ups(self) -> dict[str, bool]:
        return {name.split(":")[0]: row["up"] for name, row in self.servers().items()}

    def balancer_pids(self) -> list[int]:
        found = re.findall(r"balancer pid (\d+)|the balancer runs again \(pid (\d+)\)",
                           self.output())
        return [int(a or b) for a, b in found]

    def worker_pids(self) -> list[int]:
        """The check workers: forked by the zygote (a child of the supervisor)."""
        return [w for z in self.children_named("hc-zygote")
                for w in self.children_named("hc-check-worker", z)]

    def ruleset(self) -> str:
        text = self.lab.run(self.director, ["nft", "list", "table", "inet", "hacluster"]).stdout
        return re.sub(r"packets \d+ bytes \d+", "", text)


@pytest.fixture
def rig() -> Iterator[Rig]:
    with Lab("hcbr") as lab:
        director, real = lab.namespace("dir"), lab.namespace("rs")
        lab.veth(director, "d0", real, "r0")
        lab.add_address(director, "d0", "10.93.0.1/24")
        for address in ("10.93.0.2/24", f"{UP}/24", f"{DOWN}/24", f"{ALPHA}/24"):
            lab.add_address(real, "r0", address)
        listener = lab.start(real, [sys.executable, "-c", LISTENER, UP, ALPHA],
                             log_name="listener")
        wait_for("the listener", lambda: "listening" in listener.output(), 10, listener.output)
        r = Rig(lab, director, real)
        try:
            yield r
        finally:
            if r.proc is not None:
                r.proc.kill()


def test_a_killed_balancer_restarts_without_touching_the_table(rig: Rig) -> None:
    rig.start()
    wanted = {UP: True, DOWN: False, ALPHA: True}
    wait_for("the servers' states", lambda: rig.ups() == wanted, 20,
             lambda: f"{rig.ups()}\n{rig.output()}")
    wait_for("the notify scripts", lambda: len(rig.noted()) == 2, 10, rig.output)
    # The table as it should be: the live servers in, the dead one out.
    before = wait_for("the table", lambda: (lambda t: t if UP in t and ALPHA in t else None)(
        rig.ruleset()), 10, rig.output)
    assert DOWN not in before
    [balancer] = rig.balancer_pids()
    workers = rig.worker_pids()
    assert workers, "the balancer has its check workers forked by the zygote"
    monitor = rig.lab.start(rig.director, ["nft", "monitor"], log_name="monitor")
    time.sleep(0.5)  # the monitor is listening

    os.kill(balancer, signal.SIGKILL)
    wait_for("the restart", lambda: "the balancer runs again" in rig.output(), 30, rig.output)
    [_, new] = rig.balancer_pids() or [0, 0]
    assert new and new != balancer
    wait_for("the old workers gone", lambda: not any(alive(w) for w in workers), 10)
    # The new balancer's workers are forked by the same zygote (it asks the zygote the
    # supervisor started; they die with the balancer that asked for them).
    wait_for("new workers from the zygote", lambda: len(rig.worker_pids()) == len(workers), 10,
             rig.output)
    # A few check rounds and full reconcile passes (reconcile_interval 1 s) later:
    time.sleep(3.0)
    assert rig.ups() == wanted, rig.output()
    # The notifications ran once, in the supervisor, and not again after the restart.
    assert sorted(rig.noted()) == ["alpha up", "down"]
    after = rig.ruleset()
    assert after == before
    changes = monitor.output().strip()
    assert changes == "", f"the table was written while the balancer restarted:\n{changes}"
    # The checks run again (in new workers), and the restart is logged and counted.
    runs = {n: row["checks"][0]["runs"] for n, row in rig.servers().items()}
    wait_for("more runs of every check", lambda: all(
        row["checks"][0]["runs"] > runs[n] for n, row in rig.servers().items()), 10)
    text = rig.output()
    assert re.search(r"the balancer exited after [\d.]+ s; starting it again", text), text
    assert "handed 2 real server state(s)" in text, text  # DOWN went down, ALPHA came up
    metrics = rig.metrics()
    assert 'hacluster_role_restarts_total{role="balancer"} 1.0' in metrics
    # The balancer's families (checks, dataplane, real servers) once each, beside ours.
    types = [line for line in metrics.splitlines() if line.startswith("# TYPE ")]
    assert len(types) == len(set(types))
    assert 'hacluster_real_server_up{real_server="10.93.0.12:80"' in metrics
    assert "hacluster_checks_total{" in metrics
    assert rig.api("/v1/status")["counters"]["role_restarts"]["balancer"] == 1

    # The monitor does see a change when there is one: a drain rewrites the service.
    rig.api(f"/v1/servers/{VS}:80/{UP}:80/drain", "POST")
    wait_for("the drain in the monitor", lambda: monitor.output().strip(), 10, rig.output)
    view = rig.api(f"/v1/virtual_servers/{VS}:80")
    assert view["name"] == VS_NAME
    rows = {r["name"]: r for r in view["real_servers"]}
    assert rows[f"{UP}:80"]["drained"] is True
    assert rows[f"{UP}:80"]["effective_weight"] == 0
    summary = rig.api("/v1/summary")
    assert summary["virtual_servers"][0]["real_servers_up"] == 2


def test_a_frozen_balancer_is_replaced_and_the_watchdog_goes_on(rig: Rig) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = rig.lab.workdir / "notify.sock"
    listener.bind(str(path))
    listener.settimeout(0.2)

    def pings(seconds: float) -> int:
        seen = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                seen += b"WATCHDOG=1" in listener.recv(4096)
            except TimeoutError:
                continue
        return seen

    try:
        rig.start(env={**os.environ, "NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"})
        wanted = {UP: True, DOWN: False, ALPHA: True}
        wait_for("the servers' states", lambda: rig.ups() == wanted, 20, rig.output)
        [balancer] = rig.balancer_pids()
        os.kill(balancer, signal.SIGSTOP)
        try:
            # A hung balancer is the supervisor's to replace, not systemd's: the
            # watchdog pings go on (every 0.5 s) while it is frozen.
            assert pings(4.0) >= 6
            wait_for("the replacement",
                     lambda: "the balancer runs again" in rig.output(), 90, rig.output)
        finally:
            if alive(balancer):
                os.kill(balancer, signal.SIGCONT)
        text = rig.output()
        assert re.search(rf"the balancer \(pid {balancer}\) has not answered for", text), text
        assert not alive(balancer)
        assert rig.ups() == wanted
        assert rig.api("/v1/status")["instances"][0]["state"] == "MASTER"
        assert pings(2.0) >= 3
    finally:
        listener.close()


def test_supervisor_sigterm_stops_the_balancer_and_its_workers(rig: Rig) -> None:
    proc = rig.start()
    wait_for("the servers' states", lambda: rig.ups().get(UP) is True, 20, rig.output)
    [balancer] = rig.balancer_pids()
    workers = wait_for("the check workers", rig.worker_pids, 10, rig.output)
    proc.signal(signal.SIGTERM)
    assert proc.popen.wait(20) == 0
    assert not alive(balancer)
    # The workers follow their balancer's socket closing (and their zygote's end).
    wait_for("the workers gone", lambda: not any(alive(w) for w in workers), 5)
    text = rig.output()
    # VRRP first: the master resigns (priority 0) before the balancer stops.
    assert text.index("[VI_1] MASTER -> INITIALIZE (shutdown)") < text.index(
        "load balancer stopped"), text


def test_single_process_runs_the_balancer_in_its_own_loop(rig: Rig) -> None:
    rig.start(None, "--single-process")
    wanted = {UP: True, DOWN: False, ALPHA: True}
    wait_for("the servers' states", lambda: rig.ups() == wanted, 20, rig.output)
    assert rig.balancer_pids() == []
    status = rig.api("/v1/status")
    assert status["status_age_seconds"] is not None and status["ipvs"]
    assert "role_restarts" not in status["counters"]
    summary = rig.api("/v1/summary")
    assert summary["virtual_servers"][0]["real_servers_up"] == 2
    rig.api(f"/v1/servers/{VS}:80/{UP}:80/drain", "POST")
    view = rig.api(f"/v1/virtual_servers/{VS}:80")
    rows = {r["name"]: r for r in view["real_servers"]}
    assert rows[f"{UP}:80"]["drained"] is True
    assert "hacluster_checks_total" in rig.metrics()
