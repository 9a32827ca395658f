"""`hacluster run --single-process`: VRRP, the balancer and the API in one process (prefix hcsp).

A director that starts with VRRP alone, then is reloaded with a virtual server and an
event log: the first balancer is built in this process and shares the notifier the
reload made (a real server's notify_down runs, and the event log has its line), the
instance stays MASTER throughout, maintenance goes through the VRRP part, the status
file and the SIGUSR1 dump show the reload and the load balancer, and SIGTERM stops it
all gracefully.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from hacluster.lab.netns import Lab, Netns
from tests.integration.daemon_rig import HACLUSTER, RunningDaemon, wait_for

VS = "10.94.0.100"
UP, DOWN = "10.94.0.11", "10.94.0.12"

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                       reason="needs root and iproute2"),
]

LISTENER = (
    "import socket, sys, time\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind((sys.argv[1], 80)); s.listen(128)\n"
    "print('listening', flush=True)\n"
    "time.sleep(600)\n"
)


class Director(RunningDaemon):
    def __init__(self, lab: Lab, ns: Netns) -> None:
        super().__init__(lab, lab.workdir / "ctl.sock")
        self.ns = ns
        self.conf = lab.workdir / "hacluster.yaml"
        self.status_file = lab.workdir / "status.json"
        self.events = lab.workdir / "events.jsonl"
        self.notes = lab.workdir / "notes"

    def config(self, *, balancer: bool) -> None:
        doc: dict[str, Any] = {
            "global_defs": {"dataplane": "none", "control_socket": str(self.sock)},
            "vrrp_instances": {"VI_1": {
                "interface": "d0", "virtual_router_id": 94, "priority": 200,
                "state": "MASTER", "advert_int": 0.2, "version": 3,
                "virtual_ipaddress": [f"{VS}/32"]}},
        }
        if balancer:
            check = {"connect_timeout": 0.5, "retry": 0, "delay_before_retry": 0.1}
            code = f"open({str(self.notes)!r}, 'a').write('down' + chr(10))"
            doc["global_defs"]["event_log"] = str(self.events)
            doc["virtual_servers"] = [{
                "ip": VS, "port": 80, "protocol": "TCP", "lb_algo": "rr", "lb_kind": "NAT",
                "delay_loop": 0.3,
                "real_servers": [
                    {"ip": UP, "port": 80, "TCP_CHECK": dict(check)},
                    {"ip": DOWN, "port": 80, "TCP_CHECK": dict(check),
                     "notify_down": f'{sys.executable} -c "{code}"'},
                ],
            }]
        self.conf.write_text(yaml.safe_dump(doc, sort_keys=False))

    def start(self) -> None:
        self.proc = self.lab.start(
            self.ns, [HACLUSTER, "run", "-f", str(self.conf), "--single-process",
                      "--status-file", str(self.status_file)], log_name="daemon")
        wait_for("the API", lambda: os.path.exists(self.sock), 30, self.output)

    def instance(self) -> dict[str, Any]:
        [inst] = self.api("/v1/status")["instances"]
        assert isinstance(inst, dict)
        return inst

    def status(self) -> dict[str, Any]:
        data = json.loads(self.status_file.read_text())
        assert isinstance(data, dict)
        return data


@pytest.fixture
def director() -> Iterator[Director]:
    with Lab("hcsp") as lab:
        ns, real = lab.namespace("dir"), lab.namespace("rs")
        lab.veth(ns, "d0", real, "r0")
        lab.add_address(ns, "d0", "10.94.0.1/24")
        for address in ("10.94.0.2/24", f"{UP}/24", f"{DOWN}/24"):
            lab.add_address(real, "r0", address)
        listener = lab.start(real, [sys.executable, "-c", LISTENER, UP], log_name="listener")
        wait_for("the listener", lambda: "listening" in listener.output(), 10, listener.output)
        d = Director(lab, ns)
        try:
            yield d
        finally:
            if d.proc is not None:
                d.proc.kill()


def test_a_reload_brings_the_first_balancer_into_the_same_process(director: Director) -> None:
    d = director
    d.config(balancer=False)
    d.start()
    wait_for("MASTER", lambda: d.instance()["state"] == "MASTER", 20, d.output)
    transitions = d.instance()["counters"]["transitions"]
    assert d.api("/v1/status")["virtual_servers"] == []

    d.config(balancer=True)
    assert d.proc is not None
    d.proc.signal(signal.SIGHUP)
    wait_for("the reload", lambda: "reload done in" in d.output(), 30, d.output)
    servers = lambda: {rs["name"].split(":")[0]: rs["up"]  # noqa: E731
                       for vs in d.api("/v1/status")["virtual_servers"]
                       for rs in vs["real_servers"]}
    wait_for("the servers' states", lambda: servers() == {UP: True, DOWN: False}, 20,
             d.output)
    # The notifier the reload made runs the balancer's notifications too.
    wait_for("notify_down", lambda: d.notes.exists() and d.notes.read_text() == "down\n",
             10, d.output)
    wait_for("the event log", lambda: d.events.exists() and DOWN in d.events.read_text(),
             10, d.output)
    inst = d.instance()
    assert inst["state"] == "MASTER" and inst["counters"]["transitions"] == transitions
    assert d.api("/v1/status")["counters"]["reloads"] == {"ok": 1, "refused": 0}

    d.api("/v1/instances/VI_1/maintenance?on=1", "POST")
    wait_for("maintenance", lambda: d.instance()["effective_priority"] == 1, 10, d.output)
    status = d.status()
    assert status["reloads"] == {"ok": 1, "refused": 0}
    assert status["instances"]["VI_1"]["maintenance"] is True
    assert status["load_balancer"]["virtual_servers"], status

    mark = len(d.output())
    d.proc.signal(signal.SIGUSR1)
    wait_for("the dump", lambda: "reloads: ok=1 refused=0" in d.output()[mark:], 10, d.output)
    wait_for("the dump's servers", lambda: "1/2 real servers up" in d.output()[mark:], 10,
             d.output)

    d.proc.signal(signal.SIGTERM)
    assert d.proc.popen.wait(15) == 0, d.output()
    text = d.output()
    assert "hacluster stopped" in text
    assert "MASTER -> INITIALIZE (shutdown)" in text
    events = [json.loads(line) for line in d.events.read_text().splitlines()]
    assert any(e["name"] == "VI_1" and e["state"] == "STOP" for e in events), events


def _adverts_sent(text: str) -> float:
    prefix = 'hacluster_vrrp_adverts_sent_total{instance="VI_1"} '
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    return 0.0


def test_a_scrape_reads_the_vrrp_counters_as_they_are(director: Director) -> None:
    """No push loop: each /metrics reads the adverts sent up to that moment (advert_int
    0.2: two scrapes 1 s apart differ by about five, and each equals what the status
    counted a moment before, within the adverts sent in between)."""
    d = director
    d.config(balancer=False)
    d.start()
    wait_for("MASTER", lambda: d.instance()["state"] == "MASTER", 20, d.output)
    before_status = d.instance()["counters"]["adverts_sent_on_wire"]
    first = _adverts_sent(d.metrics())
    assert first >= before_status > 0
    wait_for("more adverts", lambda: d.instance()["counters"]["adverts_sent_on_wire"]
             >= before_status + 5, 10, d.output)
    mid_status = d.instance()["counters"]["adverts_sent_on_wire"]
    second = _adverts_sent(d.metrics())
    assert second >= mid_status >= first + 5
