"""`hacluster run` forks its check workers from a zygote (namespaces, prefix hczy).

- the workers are the zygote's children, and the zygote the supervisor's;
- a killed zygote is started again (logged, counted in the metrics and the status)
  while the workers keep checking; a worker killed then comes from the new zygote, and
  the servers keep their state (the down one stays down, the alpha one up);
- `kill -9` of the supervisor leaves no process: VRRP role, zygote, workers (also those
  of the zygote that was killed).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Iterator

import pytest
import yaml

from hacluster.lab.netns import Lab, LabProcess, Netns
from tests.integration.daemon_rig import HACLUSTER, RunningDaemon, wait_for
from tests.integration.proctree import alive, children, comm

REAL = "10.92.0.2"
UP, DOWN = 8080, 8081

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root"),
]

LISTENER = (
    "import socket, time\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    f"s.bind(('{REAL}', {UP})); s.listen(128)\n"
    "while True:\n"
    "    c, _ = s.accept(); c.close()\n"
)


class Director(RunningDaemon):
    def __init__(self, lab: Lab, ns: Netns) -> None:
        super().__init__(lab, lab.workdir / "ctl.sock")
        self.conf = lab.workdir / "c.yaml"
        check = {"connect_timeout": 1, "retry": 0}
        self.conf.write_text(yaml.safe_dump({
            "global_defs": {"dataplane": "none", "checker_processes": 2},
            "vrrp_instances": {"VI_1": {
                "interface": "d0", "virtual_router_id": 72, "priority": 200,
                "state": "MASTER", "advert_int": 0.1, "version": 3,
                "virtual_ipaddress": ["10.92.0.100/32"]}},
            "virtual_servers": [{
                "ip": "10.92.0.200", "port": 80, "lb_algo": "rr", "lb_kind": "NAT",
                "delay_loop": 0.2,
                "real_servers": [
                    {"ip": REAL, "port": DOWN, "TCP_CHECK": check},
                    {"ip": REAL, "port": UP, "alpha": True, "TCP_CHECK": check},
                ],
            }],
        }))
        self.proc: LabProcess = lab.start(ns, [HACLUSTER, "run", "-f", str(self.conf),
                                               "--control-socket", str(self.sock)])

    def servers(self) -> dict[int, bool] | None:
        try:
            [vs] = self.api("/v1/status")["virtual_servers"]
        except Exception:
            return None
        return {int(rs["name"].rsplit(":", 1)[1]): rs["up"] for rs in vs["real_servers"]}

    def zygote(self) -> int | None:
        found = self.children_named("hc-zygote")
        return found[0] if found else None

    def workers(self) -> list[int]:
        zygote = self.zygote()
        return self.children_named("hc-check-worker", zygote) if zygote else []

    def checks_total(self) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in self.metrics().splitlines()
                   if line.startswith("hacluster_checks_total{"))


@pytest.fixture
def director() -> Iterator[Director]:
    with Lab("hczy") as lab:
        ns, peer = lab.namespace("dir"), lab.namespace("peer")
        lab.veth(ns, "d0", peer, "p0")
        lab.add_address(ns, "d0", "10.92.0.1/24")
        lab.add_address(peer, "p0", f"{REAL}/24")
        listener: LabProcess = lab.start(peer, [sys.executable, "-c", LISTENER])
        d = Director(lab, ns)
        try:
            yield d
        finally:
            d.proc.kill()
            listener.kill()


def test_a_killed_zygote_is_restarted_and_the_workers_keep_checking(director: Director) -> None:
    d = director
    wait_for("the servers' state", lambda: d.servers() == {DOWN: False, UP: True}, 30, d.output)
    workers = wait_for("two workers", lambda: len(d.workers()) == 2 and d.workers(), 10,
                       d.output)
    zygote = d.zygote()
    assert zygote is not None
    os.kill(zygote, signal.SIGKILL)
    wait_for("a new zygote", lambda: d.zygote() not in (None, zygote), 20, d.output)
    assert "the zygote (pid" in d.output() and "starting it again (restart 1)" in d.output()
    assert all(alive(p) for p in workers)  # orphaned, still checking
    before = d.checks_total()
    wait_for("the orphaned workers' checks", lambda: d.checks_total() > before + 5, 20,
             d.output)  # two checks every 0.2 s
    metrics = d.metrics()
    assert 'hacluster_role_restarts_total{role="zygote"} 1.0' in metrics
    assert d.api("/v1/status")["counters"]["role_restarts"]["zygote"] == 1
    # A worker killed now is forked by the new zygote, and no server changes state.
    os.kill(workers[0], signal.SIGKILL)
    wait_for("a worker of the new zygote", lambda: len(d.workers()) == 1, 20, d.output)
    wait_for("the worker's replacement", lambda: "exited; starting another" in d.output(),
             20, d.output)
    before = d.checks_total()
    wait_for("a few rounds of checks", lambda: d.checks_total() > before + 5, 20, d.output)
    assert d.servers() == {DOWN: False, UP: True}
    # One change each since the start (down found once, alpha passed once): neither
    # the zygote's restart nor the new worker made a server flap.
    text = d.output()
    assert text.count(f"real server {REAL}:{DOWN} DOWN") == 1, text
    assert text.count(f"real server {REAL}:{UP} UP") == 1, text
    assert f"{REAL}:{DOWN} UP" not in text and f"{REAL}:{UP} DOWN" not in text

    # kill -9 of the supervisor: nothing is left, the old zygote's worker included.
    family = [d.proc.pid, *children(d.proc.pid), *workers[1:], *d.workers()]
    os.kill(d.proc.pid, signal.SIGKILL)
    d.proc.popen.wait(5)
    for pid in family:
        wait_for(f"process {pid} ({comm(pid)}) gone", lambda p=pid: not alive(p), 10,  # type: ignore[misc]
                 d.output)
