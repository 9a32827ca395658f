"""`hacluster run` end to end in namespaces (prefix hcm): a director with the nftables dataplane,
real HTTP servers behind it, a client in front; reload, crash, API, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from hacluster.api import call
from hacluster.lab.client import Record, read_records
from hacluster.lab.netns import Lab, LabProcess, Netns, sweep

PREFIX = "hcm"
HACLUSTER = str(Path(sys.executable).with_name("hacluster"))
VIP = "10.77.0.100"
VIP2 = "10.77.0.101"
VIP3 = "10.77.0.102"
GW = "10.78.0.1"
RS_IPS = ("10.78.0.11", "10.78.0.12", "10.78.0.13")

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("ip") is None,
    reason="needs root, ip and nft",
)


def wait_for(what: str, predicate: Callable[[], Any], timeout: float = 10.0,
             detail: Callable[[], str] = lambda: "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{detail()}")
        time.sleep(0.05)


def instance(vrid: int, vips: list[str], *, priority: int = 100, **extra: Any) -> dict[str, Any]:
    return {
        "interface": "eth0",
        "state": "MASTER",
        "virtual_router_id": vrid,
        "priority": priority,
        "advert_int": 0.2,
        "version": 3,
        "garp_master_delay": 0,
        "virtual_ipaddress": [f"{v}/24" for v in vips],
        **extra,
    }


def http_check() -> dict[str, Any]:
    return {"url": [{"path": "/health", "status_code": 200}], "connect_timeout": 1,
            "retry": 0, "delay_before_retry": 0.2}


def virtual_server(ip: str, port: int, reals: list[tuple[str, int]], **extra: Any
                   ) -> dict[str, Any]:
    return {
        "ip": ip, "port": port, "protocol": "TCP", "lb_algo": "rr", "lb_kind": "NAT",
        "delay_loop": 0.5,
        "real_servers": [{"ip": rip, "port": rport, "weight": 1, "HTTP_GET": http_check()}
                         for rip, rport in reals],
        **extra,
    }


@dataclass
class Rig:
    """The namespaces and processes of one test; everything goes with the lab."""

    lab: Lab
    director: Netns
    client: Netns
    reals: list[Netns]
    socket: Path
    config_path: Path
    daemon: LabProcess | None = None
    logs: list[LabProcess] = field(default_factory=list)

    # -- configuration and the daemon ------------------------------------------------

    def write_config(self, doc: dict[str, Any] | str) -> None:
        text = doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.config_path)

    def base_globals(self, **extra: Any) -> dict[str, Any]:
        return {"router_id": "hcm-dir", "dataplane": "nftables",
                "control_socket": str(self.lab.workdir / "unused.sock"),
                "reconcile_interval": 1.0, **extra}

    def start_daemon(self, *extra: str, env: dict[str, str] | None = None) -> LabProcess:
        argv = [HACLUSTER, "run", "-f", str(self.config_path), "--control-socket",
                str(self.socket), "--state-dir", str(self.lab.workdir / "state"), *extra]
        self.daemon = self.lab.start(self.director, argv, env=env,
                                     log_name=f"daemon-{time.monotonic_ns()}")
        self.logs.append(self.daemon)
        self.wait_api()
        return self.daemon

    @property
    def proc(self) -> LabProcess:
        assert self.daemon is not None
        return self.daemon

    def output(self) -> str:
        return self.proc.output()

    def all_output(self) -> str:
        return "\n".join(p.output() for p in self.logs)

    def wait_log(self, text: str, timeout: float = 10.0) -> None:
        wait_for(f"{text!r} in the daemon log", lambda: text in self.output(), timeout,
                 self.output)

    def wait_api(self, timeout: float = 20.0) -> None:
        def up() -> bool:
            if not self.proc.running():
                raise AssertionError(f"daemon exited:\n{self.output()}")
            try:
                code, _ = self.api("GET", "/v1/status")
            except Exception:
                return False
            return code == 200
        wait_for("the control API", up, timeout, self.output)

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return asyncio.run(call(self.socket, method, path, body=body))

    def status(self) -> dict[str, Any]:
        code, data = self.api("GET", "/v1/status")
        assert code == 200, data
        assert isinstance(data, dict)
        return data

    def instance(self, name: str) -> dict[str, Any]:
        for inst in self.status()["instances"]:
            if inst["name"] == name:
                return dict(inst)
        raise AssertionError(f"no instance {name} in the status")

    def wait_state(self, name: str, state: str, timeout: float = 10.0) -> None:
        wait_for(f"{name} {state}", lambda: self.instance(name)["state"] == state, timeout,
                 self.output)

    def metrics(self) -> str:
        async def get() -> str:
            import aiohttp

            async with (
                aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(self.socket)))
                as session,
                session.get("http://hacluster/metrics") as resp,
            ):
                assert resp.status == 200
                return await resp.text()
        return asyncio.run(get())

    def stop_daemon(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        proc = self.proc
        if sig == signal.SIGKILL:  # a crash: the whole process group, frozen first
            return proc.kill()
        proc.signal(sig)
        try:
            return proc.popen.wait(timeout)
        except Exception as exc:
            raise AssertionError(f"daemon did not stop:\n{self.output()}") from exc

    # -- the network ---------------------------------------------------------------

    def has_vip(self, vip: str) -> bool:
        return self.lab.has_address(self.director, "eth0", vip)

    def nft(self, *args: str) -> str:
        return self.lab.run(self.director, ["nft", *args]).stdout

    def nft_json(self) -> list[dict[str, Any]]:
        res = self.lab.run(self.director, ["nft", "-j", "list", "ruleset"])
        items: list[dict[str, Any]] = json.loads(res.stdout)["nftables"]
        return items

    def probe(self, vip: str = VIP, port: int = 80) -> Record:
        from hacluster.lab.client import record_from_json

        res = self.lab.run(self.client, [sys.executable, "-c", _PROBE, vip, str(port)],
                           check=False)
        rec = record_from_json(res.stdout.strip())
        assert rec is not None, res.stdout + res.stderr
        return rec

    def probes(self, count: int, vip: str = VIP, port: int = 80) -> list[Record]:
        res = self.lab.run(self.client, [sys.executable, "-c", _PROBE, vip, str(port),
                                         str(count)], check=False)
        from hacluster.lab.client import record_from_json

        out = [record_from_json(line) for line in res.stdout.splitlines()]
        return [r for r in out if r is not None]

    def start_client(self, out: Path, vip: str = VIP, port: int = 80) -> LabProcess:
        argv = [sys.executable, "-m", "hacluster.lab.client", "--host", vip, "--port",
                str(port), "--out", str(out), "--workers", "2", "--interval", "0.03",
                "--connect-timeout", "1.0", "--read-timeout", "2.0"]
        return self.lab.start(self.client, argv, log_name=f"client-{port}")


_PROBE = """
import sys
from hacluster.lab.client import request, _to_json
host, port = sys.argv[1], int(sys.argv[2])
count = int(sys.argv[3]) if len(sys.argv) > 3 else 1
for _ in range(count):
    print(_to_json(request(host, port, 1.0, 2.0)), flush=True)
"""

_SCRAPE = """
import urllib.request
print(urllib.request.urlopen("http://127.0.0.1:9650/metrics", timeout=5).read().decode())
"""


@pytest.fixture(scope="session", autouse=True)
def _sweep_hcm_leftovers() -> None:
    if os.geteuid() == 0 and shutil.which("ip"):
        sweep(PREFIX)


def build_rig(lab: Lab, reals: int = 3, ports: tuple[int, ...] = (80, 8080)) -> Rig:
    """sw holds two bridges: br0 (client, director eth0) and br1 (director eth1, reals)."""
    sw = lab.namespace("sw")
    lab.bridge(sw, "br0")
    lab.bridge(sw, "br1")
    director = lab.namespace("dir")
    lab.attach(director, "eth0", sw, "br0", ["10.77.0.2/24"])
    lab.attach(director, "eth1", sw, "br1", [f"{GW}/24"])
    lab.run(director, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
    client = lab.namespace("client")
    lab.attach(client, "eth0", sw, "br0", ["10.77.0.50/24"])
    rs_ns = []
    for i in range(reals):
        ns = lab.namespace(f"rs{i + 1}")
        lab.attach(ns, "eth0", sw, "br1", [f"{RS_IPS[i]}/24"])
        lab.run(ns, ["ip", "route", "add", "default", "via", GW])
        argv = [sys.executable, "-m", "hacluster.lab.realserver", "--name", f"rs{i + 1}"]
        for port in ports:
            argv += ["--listen", f"{port}=dir"]
        lab.start(ns, argv, log_name=f"rs{i + 1}")
        rs_ns.append(ns)
    workdir = lab.workdir
    return Rig(lab, director, client, rs_ns, workdir / "ctl.sock", workdir / "hacluster.yaml")


@pytest.fixture
def rig() -> Iterator[Rig]:
    with Lab(PREFIX) as lab:
        r = build_rig(lab)
        try:
            yield r
        finally:
            if r.daemon is not None and r.daemon.running():
                r.daemon.signal(signal.SIGTERM)
                try:
                    r.daemon.popen.wait(10)
                except Exception:
                    r.daemon.kill()


def served_by(records: list[Record]) -> set[str]:
    return {r.rs for r in records if r.ok and r.rs is not None}



def _cli(rig: Rig, *args: str) -> tuple[int, str, str]:
    import subprocess

    res = subprocess.run([HACLUSTER, *args, "--control-socket", str(rig.socket)],
                         capture_output=True, text=True, timeout=30)
    return res.returncode, res.stdout, res.stderr


@pytest.mark.netns
@needs_root
def test_daemon_serves_through_vip_and_is_operable(rig: Rig) -> None:
    """VRRP + checks + nftables in one daemon: status, metrics, drain, maintenance, stop."""
    notes = rig.lab.workdir / "notify.txt"
    rig.write_config({
        "global_defs": rig.base_globals(lvs_flush_on_stop=True, metrics_listen="127.0.0.1:9650"),
        "vrrp_instances": {"VI_1": instance(51, [VIP], notify=(
            f"/bin/sh -c 'echo \"$@\" >> {notes}' notify"))},
        "virtual_servers": [virtual_server(VIP, 80, [(RS_IPS[0], 80), (RS_IPS[1], 80)])],
    })
    sd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sd_path = rig.lab.workdir / "notify.sock"
    sd.bind(str(sd_path))
    sd.settimeout(0.2)
    messages: list[str] = []
    done = threading.Event()

    def listen() -> None:  # a unix datagram queue holds 10: read as they come
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                messages.append(sd.recv(4096).decode())
    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    env = {**os.environ, "NOTIFY_SOCKET": str(sd_path), "WATCHDOG_USEC": "300000"}
    rig.start_daemon(env=env)
    rig.wait_state("VI_1", "MASTER")
    wait_for("the VIP", lambda: rig.has_vip(VIP), 5, rig.output)

    # Traffic through the VIP reaches both real servers (rr).
    records = rig.probes(8)
    assert all(r.ok for r in records), records
    assert served_by(records) == {"rs1", "rs2"}

    # `hacluster status`, human and JSON, over the unix socket.
    code, out, err = _cli(rig, "status")
    assert code == 0, err
    assert "VI_1" in out and "MASTER" in out and f"{VIP}:80/TCP" in out
    assert f"{RS_IPS[0]}:80" in out and f"{RS_IPS[1]}:80" in out
    code, out, err = _cli(rig, "status", "--json")
    assert code == 0, err
    doc = json.loads(out)
    (inst,) = doc["instances"]
    assert inst["state"] == "MASTER" and inst["base_priority"] == 100
    assert inst["effective_priority"] == 100
    assert inst["last_transition"]["state"] == "MASTER"
    assert inst["counters"]["adverts_sent_on_wire"] > 0
    (vs,) = doc["virtual_servers"]
    assert vs["name"] == f"{VIP}:80/TCP"
    assert [rs["up"] for rs in vs["real_servers"]] == [True, True]
    assert doc["dataplane"] == "nftables"
    assert {row["destination"] for row in doc["ipvs"]} == {f"{ip}:80" for ip in RS_IPS[:2]}

    # Metrics on metrics_listen (inside the director's namespace) and on the control
    # socket: the instance's state and the real servers up.
    def metrics_ready() -> str | None:
        res = rig.lab.run(rig.director, [sys.executable, "-c", _SCRAPE], check=False)
        text = res.stdout
        return text if 'hacluster_vrrp_adverts_sent_total{instance="VI_1"}' in text else None
    text = wait_for("advert metrics", metrics_ready, 5)
    assert 'hacluster_vrrp_state{instance="VI_1",state="MASTER"} 1.0' in rig.metrics()
    assert 'hacluster_vrrp_state{instance="VI_1",state="MASTER"} 1.0' in text
    assert 'hacluster_vrrp_state{instance="VI_1",state="BACKUP"} 0.0' in text
    assert "_created" not in text
    assert (f'hacluster_real_server_up{{real_server="{RS_IPS[0]}:80",'
            f'virtual_server="{VIP}:80/TCP"}} 1') in text

    # Drain rs1 through the API: new connections all go to rs2; undrain brings it back.
    vs_url = f"{VIP}:80%2FTCP"
    code, body = rig.api("POST", f"/v1/servers/{vs_url}/{RS_IPS[0]}:80/drain")
    assert code == 200, body
    records = rig.probes(6)
    assert all(r.ok for r in records) and served_by(records) == {"rs2"}, records
    code, body = rig.api("POST", f"/v1/servers/{vs_url}/{RS_IPS[0]}:80/undrain")
    assert code == 200, body
    assert served_by(rig.probes(6)) == {"rs1", "rs2"}
    code, body = rig.api("POST", f"/v1/servers/{vs_url}/10.78.0.99:80/drain")
    assert code == 404 and "no real server" in body["error"]

    # Maintenance: effective priority 1 (no peer to hand over to: stays MASTER), then back.
    code, body = rig.api("POST", "/v1/instances/VI_1/maintenance", {"on": True})
    assert code == 200, body
    inst = rig.instance("VI_1")
    assert inst["maintenance"] is True and inst["effective_priority"] == 1
    code, body = rig.api("POST", "/v1/instances/VI_1/maintenance", {"on": False})
    assert rig.instance("VI_1")["effective_priority"] == 100
    code, body = rig.api("POST", "/v1/instances/VI_9/maintenance", {"on": True})
    assert code == 404

    # SIGTERM: VIP released, STOP notified, nftables services flushed (lvs_flush_on_stop).
    assert rig.stop_daemon() == 0
    time.sleep(0.3)
    done.set()
    listener.join()
    sd.close()
    ready = [m for m in messages if "READY=1" in m]
    assert len(ready) == 1, messages
    assert "STOPPING=1" in messages, messages
    assert messages.index(ready[0]) < messages.index("STOPPING=1")
    assert messages.count("WATCHDOG=1") >= 3, messages
    assert not rig.has_vip(VIP)
    assert "INSTANCE VI_1 STOP" in notes.read_text()
    assert "svc_" not in rig.nft("list", "ruleset")
    assert not rig.socket.exists()
    assert "hacluster stopped" in rig.output()


def _sid(ip: str, port: int) -> str:
    from ipaddress import ip_address

    from hacluster.ipvs.model import Protocol, ServiceKey
    from hacluster.ipvs.nftables import service_id

    return service_id(ServiceKey(4, Protocol.TCP, ip_address(ip), port))


@pytest.mark.netns
@needs_root
def test_reload_by_diff_under_traffic(rig: Rig) -> None:
    """SIGHUP: unchanged instance and service untouched (no transition, no nft rewrite,
    no failed request); a changed master keeps mastership; removed and added ones go
    and come."""
    vip4 = "10.77.0.103"
    reals = [(RS_IPS[0], 80), (RS_IPS[1], 80)]
    old = {
        "global_defs": rig.base_globals(),
        "vrrp_instances": {
            "VI_1": instance(51, [VIP]),
            "VI_2": instance(52, [VIP2]),
            "VI_3": instance(53, [VIP3]),
        },
        "virtual_servers": [virtual_server(VIP, 80, reals),
                            virtual_server(VIP, 8080, [(ip, 8080) for ip, _ in reals])],
    }
    rig.write_config(old)
    rig.start_daemon()
    for name in ("VI_1", "VI_2", "VI_3"):
        rig.wait_state(name, "MASTER")
    wait_for("VIPs", lambda: all(rig.has_vip(v) for v in (VIP, VIP2, VIP3)), 5, rig.output)
    out = rig.lab.workdir / "client.jsonl"
    client = rig.start_client(out)
    wait_for("client traffic", lambda: len(read_records(out)) > 20, 10)
    monitor = rig.lab.start(rig.director, ["nft", "monitor"], log_name="nft-monitor")
    time.sleep(0.5)
    mark = len(rig.output())

    new = json.loads(json.dumps(old))
    new["vrrp_instances"]["VI_1"]["notify_master"] = "/bin/true"  # taken in place
    new["vrrp_instances"]["VI_2"]["priority"] = 120
    # A priority change alone is taken in place (test_reload_in_place); with another
    # interval the instance is rebuilt, keeping its mastership.
    new["vrrp_instances"]["VI_2"]["advert_int"] = 0.3
    del new["vrrp_instances"]["VI_3"]
    new["vrrp_instances"]["VI_4"] = instance(54, [vip4])
    new["virtual_servers"][1]["real_servers"].append(
        {"ip": RS_IPS[2], "port": 8080, "weight": 1, "HTTP_GET": http_check()})
    rig.write_config(new)
    hup_at = time.monotonic()
    rig.proc.signal(signal.SIGHUP)
    rig.wait_log("reload done")
    done_at = time.monotonic()
    rig.wait_state("VI_4", "MASTER")
    wait_for("rs3 behind :8080", lambda: "rs3" in served_by(rig.probes(6, port=8080)), 10,
             rig.output)
    time.sleep(1.0)  # traffic keeps flowing after the reload too
    client.stop()
    monitor.stop()
    after = rig.output()[mark:]

    # The unchanged instance saw nothing; the changed master kept its VIP and mastership.
    assert "[VI_1]" not in after.replace("[VI_1] notify", ""), after
    assert "mastership kept by VI_2" in after and "kept instance VI_1" in after, after
    assert "[VI_2] BACKUP -> MASTER (reload: mastership kept)" in after
    assert "MASTER -> BACKUP" not in after and "priority 0" not in after
    inst = rig.instance("VI_2")
    assert inst["state"] == "MASTER" and inst["effective_priority"] == 120
    assert rig.has_vip(VIP2) and rig.has_vip(vip4)
    assert not rig.has_vip(VIP3)  # removed: resigned and released
    assert "[VI_3] MASTER -> INITIALIZE (shutdown)" in after
    assert "VI_3" not in {i["name"] for i in rig.status()["instances"]}

    # Not one request failed, before, during or after the reload.
    records = read_records(out)
    assert len([r for r in records if r.t0 > done_at]) > 10
    assert [r for r in records if hup_at - 0.1 <= r.t0 <= done_at], (hup_at, done_at)
    failed = [r for r in records if not r.ok]
    assert not failed, failed[:5]
    assert served_by(records) == {"rs1", "rs2"}

    # nftables: the changed service was rewritten, the unchanged one not touched at all.
    changes = monitor.output()
    def touched(sid: str) -> bool:  # t4_..._80 is a prefix of t4_..._8080
        return re.search(re.escape(sid) + r"(?![0-9])", changes) is not None
    assert touched(_sid(VIP, 8080)), changes
    assert not touched(_sid(VIP, 80)), changes

    # A reload through the API with nothing changed is a no-op.
    code, body = rig.api("POST", "/v1/reload")
    assert code == 200 and body["message"] == "no change", body


@pytest.mark.netns
@needs_root
def test_bad_reload_is_refused_and_service_continues(rig: Rig) -> None:
    rig.write_config({
        "global_defs": rig.base_globals(),
        "vrrp_instances": {"VI_1": instance(51, [VIP])},
        "virtual_servers": [virtual_server(VIP, 80, [(RS_IPS[0], 80), (RS_IPS[1], 80)])],
    })
    rig.start_daemon()
    rig.wait_state("VI_1", "MASTER")
    good = rig.config_path.read_text()
    bad = good.replace("priority: 100", "priority: 300").replace(
        "lb_algo: rr", "lb_algo: rr\n  bogus_key: 1")
    rig.write_config(bad)
    rig.proc.signal(signal.SIGHUP)
    rig.wait_log("reload refused")
    time.sleep(0.2)
    log_text = rig.output()
    assert "vrrp_instances.VI_1.priority" in log_text, log_text
    assert "bogus_key" in log_text, log_text
    assert rig.proc.running()
    assert rig.instance("VI_1")["base_priority"] == 100
    records = rig.probes(4)
    assert all(r.ok for r in records), records

    # The API says why, with HTTP 422, and nothing changes either.
    code, body = rig.api("POST", "/v1/reload")
    assert code == 422 and "bogus_key" in body["error"], body
    # A file the nftables dataplane cannot carry out is refused too.
    rig.write_config(good.replace("lb_algo: rr", "lb_algo: lc"))
    code, body = rig.api("POST", "/v1/reload")
    assert code == 422 and "lc" in body["error"], body
    assert "hacluster_config_reloads_total{result=\"refused\"} 3.0" in rig.metrics()
    assert all(r.ok for r in rig.probes(4))

    # SIGTERM without lvs_flush_on_stop: the VIP goes, the service entries stay.
    chains = _svc_chains(rig)
    assert len(chains) == 1
    assert rig.stop_daemon() == 0
    assert not rig.has_vip(VIP)
    assert _svc_chains(rig) == chains
    assert "IPVS entries left" in rig.output()


def _svc_chains(rig: Rig) -> list[str]:
    return [o["chain"]["name"] for o in rig.nft_json()
            if "chain" in o and o["chain"]["name"].startswith("svc_")]


@pytest.mark.netns
@needs_root
def test_crash_then_restart_cleans_up_and_reconciles(rig: Rig) -> None:
    """SIGKILL leaves the VIP and the nftables table behind; the next run removes the
    VIP before taking over again, and finds its table instead of adding it twice."""
    rig.write_config({
        "global_defs": rig.base_globals(),
        "vrrp_instances": {"VI_1": instance(51, [VIP])},
        "virtual_servers": [virtual_server(VIP, 80, [(RS_IPS[0], 80), (RS_IPS[1], 80)])],
    })
    rig.start_daemon()
    rig.wait_state("VI_1", "MASTER")
    wait_for("the VIP", lambda: rig.has_vip(VIP), 5, rig.output)
    assert served_by(rig.probes(4)) == {"rs1", "rs2"}
    chains = _svc_chains(rig)
    assert len(chains) == 1

    rig.stop_daemon(signal.SIGKILL)
    assert rig.has_vip(VIP)  # a crash releases nothing
    assert _svc_chains(rig) == chains
    before = rig.nft("list", "ruleset")

    rig.start_daemon("--log-format", "json")
    rig.wait_state("VI_1", "MASTER")
    wait_for("the VIP", lambda: rig.has_vip(VIP), 5, rig.output)
    text = rig.output()
    assert "removed VIPs a crashed run left behind" in text, text
    # The table it left was found as it is: nothing added, nothing duplicated.
    assert _svc_chains(rig) == chains
    assert rig.nft("list", "ruleset") == before
    status = rig.status()
    assert sorted(row["destination"] for row in status["ipvs"]) == [
        f"{RS_IPS[0]}:80", f"{RS_IPS[1]}:80"]
    records = rig.probes(6)
    assert all(r.ok for r in records) and served_by(records) == {"rs1", "rs2"}

    # --log-format json: every line is an object naming what it concerns.
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert lines and all("subject" in entry for entry in lines)
    states = [e for e in lines if e.get("event") == "state"]
    assert states and all(e["instance"] == "VI_1" == e["subject"] for e in states)
    assert any(e["subject"] == f"{VIP}:80/TCP" for e in lines), lines

    # Crash again, and the table drifts meanwhile (a hand-made change): the next run
    # puts our service right and leaves a service it does not manage alone.
    rig.stop_daemon(signal.SIGKILL)
    drift = rig.lab.workdir / "drift.yaml"
    drift.write_text(yaml.safe_dump({
        "global_defs": {"dataplane": "nftables"},
        "virtual_servers": [
            virtual_server(VIP, 80, [(RS_IPS[0], 80), (RS_IPS[1], 80), (RS_IPS[2], 80)]),
            virtual_server(VIP, 9090, [(RS_IPS[0], 9090)]),
        ],
    }))
    rig.lab.run(rig.director, [HACLUSTER, "ipvs", "apply", "-f", str(drift)])
    assert len(_svc_chains(rig)) == 2
    rig.start_daemon()
    rig.wait_state("VI_1", "MASTER")

    def repaired() -> bool:
        rows = rig.status()["ipvs"]
        return sorted((r["service"], r["destination"]) for r in rows) == [
            (f"{VIP}:80/TCP", f"{RS_IPS[0]}:80"), (f"{VIP}:80/TCP", f"{RS_IPS[1]}:80"),
            (f"{VIP}:9090/TCP", f"{RS_IPS[0]}:9090")]
    wait_for("the table repaired", repaired, 5, rig.output)
    assert len(_svc_chains(rig)) == 2
    assert served_by(rig.probes(6)) == {"rs1", "rs2"}


@pytest.mark.netns
@needs_root
def test_maintenance_hands_over_to_the_peer_and_back(rig: Rig) -> None:
    """Maintenance lowers the effective priority to 1: a preempting peer takes the VIP;
    leaving maintenance restores the priority and the master preempts back."""
    peer_ns = rig.lab.namespace("dir2")
    sw = Netns(rig.director.name.replace("-dir", "-sw"), "sw")
    rig.lab.attach(peer_ns, "eth0", sw, "br0", ["10.77.0.3/24"])
    rig.write_config({"global_defs": rig.base_globals(),
                      "vrrp_instances": {"VI_1": instance(51, [VIP])}})
    peer_conf = rig.lab.workdir / "peer.yaml"
    peer_sock = rig.lab.workdir / "peer.sock"
    peer_conf.write_text(yaml.safe_dump({
        "global_defs": {"router_id": "hcm-peer", "dataplane": "none",
                        "control_socket": str(peer_sock)},
        "vrrp_instances": {"VI_1": instance(51, [VIP], priority=90, state="BACKUP")},
    }))
    peer = rig.lab.start(peer_ns, [HACLUSTER, "run", "-f", str(peer_conf)], log_name="peer")
    rig.logs.append(peer)
    rig.start_daemon()
    rig.wait_state("VI_1", "MASTER")

    def peer_state() -> str | None:
        try:
            code, data = asyncio.run(call(peer_sock, "GET", "/v1/status"))
        except Exception:
            return None
        return str(data["instances"][0]["state"]) if code == 200 else None
    wait_for("the peer BACKUP", lambda: peer_state() == "BACKUP", 10, peer.output)

    code, body = rig.api("POST", "/v1/instances/VI_1/maintenance?on=1")
    assert code == 200, body
    wait_for("the peer MASTER", lambda: peer_state() == "MASTER", 10, rig.all_output)
    rig.wait_state("VI_1", "BACKUP")
    inst = rig.instance("VI_1")
    assert inst["maintenance"] and inst["effective_priority"] == 1
    assert inst["last_transition"]["reason"] != "", inst
    wait_for("the VIP on the peer", lambda: rig.lab.has_address(peer_ns, "eth0", VIP), 5)
    assert not rig.has_vip(VIP)

    code, body = rig.api("POST", "/v1/instances/VI_1/maintenance?on=0")
    assert code == 200, body
    rig.wait_state("VI_1", "MASTER")
    wait_for("the peer BACKUP again", lambda: peer_state() == "BACKUP", 10, rig.all_output)
    assert rig.instance("VI_1")["effective_priority"] == 100
    wait_for("the VIP back", lambda: rig.has_vip(VIP), 5, rig.output)
    peer.stop()


@pytest.mark.netns
@needs_root
def test_reload_rebuilds_a_sync_group_with_tracking_and_maintenance(rig: Rig) -> None:
    """A changed sync group is rebuilt with its masters kept; a maintenance in force and
    tracker weights (lone instances only: keepalived ignores them in sync groups) carry
    over to the rebuilt machines. An instance whose VRID changed is another virtual
    router: it resigns and starts over."""
    vip5 = "10.77.0.105"
    doc: dict[str, Any] = {
        "global_defs": rig.base_globals(),
        "vrrp_scripts": {"chk": {"script": "/bin/false", "interval": 0.2, "weight": -20}},
        "vrrp_instances": {
            "VI_1": instance(51, [VIP]),
            "VI_2": instance(52, [VIP2]),
            "VI_3": instance(53, [VIP3], track_script=["chk"]),
            "VI_5": instance(55, [vip5]),
        },
        "vrrp_sync_groups": {"G1": {"group": ["VI_1", "VI_2"]}},
    }
    rig.write_config(doc)
    rig.start_daemon()
    for name in ("VI_1", "VI_2", "VI_3", "VI_5"):
        rig.wait_state(name, "MASTER")
    assert rig.instance("VI_3")["effective_priority"] == 80
    code, body = rig.api("POST", "/v1/instances/VI_1/maintenance", {"on": True})
    assert code == 200, body
    mark = len(rig.output())

    doc["vrrp_scripts"]["chk"]["weight"] = -30
    doc["vrrp_instances"]["VI_2"]["priority"] = 110
    doc["vrrp_instances"]["VI_2"]["advert_int"] = 0.3  # not in place: the group is rebuilt
    doc["vrrp_instances"]["VI_3"]["advert_int"] = 0.3
    doc["vrrp_instances"]["VI_5"]["virtual_router_id"] = 56  # another router: starts over
    rig.write_config(doc)
    code, body = rig.api("POST", "/v1/reload")
    assert code == 200, body
    assert "mastership kept by VI_1, VI_2, VI_3" in body["message"], body
    rig.wait_state("VI_5", "MASTER")
    after = rig.output()[mark:]
    assert "MASTER -> BACKUP" not in after and "-> FAULT" not in after, after
    assert "[VI_5] MASTER -> INITIALIZE (shutdown)" in after, after
    assert "[VI_5] BACKUP -> MASTER (initial state MASTER)" in after, after
    assert rig.instance("VI_5")["virtual_router_id"] == 56
    wait_for("the new tracker weight",
             lambda: rig.instance("VI_3")["effective_priority"] == 70, 5, rig.output)
    states = {i["name"]: i for i in rig.status()["instances"]}
    assert {n: i["state"] for n, i in states.items()} == {
        "VI_1": "MASTER", "VI_2": "MASTER", "VI_3": "MASTER", "VI_5": "MASTER"}
    assert states["VI_2"]["effective_priority"] == 110
    assert states["VI_1"]["maintenance"] and states["VI_1"]["effective_priority"] == 1
    assert all(rig.has_vip(v) for v in (VIP, VIP2, VIP3, vip5))


@pytest.mark.netns
@needs_root
def test_reloads_racing_from_sighup_and_the_api_run_one_after_another(rig: Rig) -> None:
    """SIGHUPs and API reloads fired together are serialised: each one completes, the
    instance never flaps, and the table ends as the new file says."""
    doc = {
        "global_defs": rig.base_globals(),
        "vrrp_instances": {"VI_1": instance(51, [VIP])},
        "virtual_servers": [virtual_server(VIP, 80, [(RS_IPS[0], 80), (RS_IPS[1], 80)])],
    }
    rig.write_config(doc)
    rig.start_daemon()
    rig.wait_state("VI_1", "MASTER")
    wait_for("the VIP", lambda: rig.has_vip(VIP), 5, rig.output)
    first = rig.instance("VI_1")["last_transition"]
    first.pop("age_seconds")
    doc["virtual_servers"] = [virtual_server(VIP, 80, [(ip, 80) for ip in RS_IPS])]
    rig.write_config(doc)
    answers: list[tuple[int, Any]] = []

    def api_reload() -> None:
        answers.append(rig.api("POST", "/v1/reload"))

    threads = [threading.Thread(target=api_reload) for _ in range(3)]
    for thread in threads:
        thread.start()
    for _ in range(3):
        rig.proc.signal(signal.SIGHUP)
    for thread in threads:
        thread.join(30)
    assert [code for code, _ in answers] == [200, 200, 200], answers
    # Signals of one kind that arrive together may merge into one: every SIGHUP the
    # daemon received and every API request is one complete reload.
    def reloads_done() -> bool:
        out = rig.output()
        return out.count("reload done in") == out.count("SIGHUP received") + 3

    wait_for("every reload", reloads_done, 10, rig.output)
    hups = rig.output().count("SIGHUP received")
    assert hups >= 1 and "reload failed part way" not in rig.output()
    assert f"hacluster_config_reloads_total{{result=\"ok\"}} {hups + 3}.0" in rig.metrics()
    assert rig.instance("VI_1")["state"] == "MASTER"
    last = rig.instance("VI_1")["last_transition"]
    last.pop("age_seconds")
    assert last == first  # no flap
    wait_for("three real servers", lambda: served_by(rig.probes(9)) == {"rs1", "rs2", "rs3"},
             10, rig.output)
    assert len(_svc_chains(rig)) == 1
