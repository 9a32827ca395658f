"""The director-pair lab: namespaces, links, generated configs and processes, plus its state file.

Layout (every namespace named by `hacluster.lab.netns.Lab`, ``PREFIX-PID-N-ROLE``)::

    client 10.213.0.10 ──┐ front bridge (10.213.0.0/24, VIP 10.213.0.100)
    lvsa eth0 .2 ────────┤
    lvsb eth0 .3 ────────┘
    lvsa eth1 .2 ────────┐ back bridge (10.213.1.0/24, gateway VIP 10.213.1.1)
    lvsb eth1 .3 ────────┤
    rs1 .11, rs2 .12, rs3 .13 (default route via the gateway VIP)

Both bridges live in one `sw` namespace. The directors run `hacluster run` with a
generated YAML config: one VRRP v3 instance holding both VIPs (the front one clients use
and the back one the real servers route their answers through, as LVS-NAT needs),
the dataplane the topology names (`ipvs` or `nftables`), and a virtual server VIP:80 with
the three real servers and HTTP_GET checks. Each director reaches the real servers on its
own port (lvs-a 8081, lvs-b 8082) so every answer tells which director forwarded it.

`lab up` records what it started in a state file (namespaces, and PIDs with their start
times so that a recycled PID is never signalled); `lab down` reads it back.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hacluster.lab.client import Record, record_from_json
from hacluster.lab.netns import Lab, LabProcess, Netns, list_namespaces, sweep
from vrrp import timing

DEFAULT_STATE_DIR = Path("/run/hacluster-lab")
INSTANCE = "VI_LAB"
NFT_TABLE = "hacluster"
#: What a director logs once its load balancer runs (`hacluster.loadbalancer`).
BALANCER_STARTED = "load balancer started"


@dataclass(frozen=True, slots=True)
class Director:
    """One director of the pair as the lab sets it up."""

    name: str  # router_id and the X-Director header: lvs-a
    role: str  # namespace role: lvsa
    host: int  # last octet of its own addresses on both networks
    priority: int
    state: str  # initial VRRP state
    rs_port: int  # the port it uses to reach every real server


@dataclass(frozen=True, slots=True)
class Topology:
    """Addresses and timings of a lab; the defaults make a drill last about a minute."""

    prefix: str = "hclab"
    front: str = "10.213.0"  # /24
    back: str = "10.213.1"  # /24
    vip_host: int = 100
    gateway_host: int = 1
    client_host: int = 10
    port: int = 80
    vrid: int = 51
    advert_int: float = 0.5
    delay_loop: float = 1.0
    connect_timeout: float = 1.0
    retry: int = 1
    delay_before_retry: float = 0.5
    dataplane: str = "nftables"  # the directors' global_defs.dataplane: nftables or ipvs
    # The client: each worker opens a new connection every `client_interval` seconds.
    client_workers: int = 4
    client_interval: float = 0.04
    client_connect_timeout: float = 0.3
    client_read_timeout: float = 1.0
    settle: float = 1.5  # seconds of clean traffic that count as settled
    startup: float = 30.0  # bound on a director's start-up (imports, netlink, first checks)
    margin: float = 3.0  # slack on top of protocol times for process and scheduling delays
    directors: tuple[Director, ...] = (
        Director("lvs-a", "lvsa", 2, 150, "MASTER", 8081),
        Director("lvs-b", "lvsb", 3, 100, "BACKUP", 8082),
    )
    real_servers: tuple[str, ...] = ("rs1", "rs2", "rs3")

    @property
    def vip(self) -> str:
        return f"{self.front}.{self.vip_host}"

    @property
    def gateway_vip(self) -> str:
        return f"{self.back}.{self.gateway_host}"

    @property
    def client_ip(self) -> str:
        return f"{self.front}.{self.client_host}"

    @classmethod
    def paced(cls, scale: float = 1.0, **fields: Any) -> Topology:
        """A topology whose timings are all `scale` times the defaults (a slow machine, a VM).

        Explicit `fields` (advert_int, dataplane, ...) are taken as given.
        """
        base = cls()
        scaled: dict[str, Any] = {
            name: getattr(base, name) * scale
            for name in ("advert_int", "delay_loop", "connect_timeout", "delay_before_retry",
                         "client_interval", "client_connect_timeout", "client_read_timeout",
                         "settle", "startup", "margin")
        }
        scaled.update(fields)
        return cls(**scaled)

    def rs_ip(self, index: int) -> str:
        return f"{self.back}.{11 + index}"

    def director(self, name: str) -> Director:
        for d in self.directors:
            if d.name == name:
                return d
        raise KeyError(name)

    def master_down_interval(self, priority: int) -> float:
        """RFC 5798 §6.1: 3 x advert interval + skew time (v3: (256 - priority) x it / 256)."""
        return timing.master_down_interval(priority, self.advert_int, timing.V3)

    def skew_time(self, priority: int) -> float:
        return timing.skew_time(priority, self.advert_int, timing.V3)

    def check_time(self) -> float:
        """Longest time an HTTP_GET check needs to declare a dead real server down."""
        return self.delay_loop + (self.retry + 1) * self.connect_timeout + (
            self.retry * self.delay_before_retry
        )


def director_config(topo: Topology, d: Director, workdir: Path) -> dict[str, Any]:
    """The YAML document (as data) that director `d` runs with."""
    def check() -> dict[str, Any]:  # a fresh dict each time: no YAML anchors
        return {
            "url": [{"path": "/health", "status_code": 200}],
            "connect_timeout": topo.connect_timeout,
            "retry": topo.retry,
            "delay_before_retry": topo.delay_before_retry,
        }

    return {
        "global_defs": {
            "router_id": d.name,
            "dataplane": topo.dataplane,
            "control_socket": str(workdir / f"{d.role}.sock"),
        },
        "vrrp_instances": {
            INSTANCE: {
                "interface": "eth0",
                "state": d.state,
                "virtual_router_id": topo.vrid,
                "priority": d.priority,
                "advert_int": topo.advert_int,
                "version": 3,
                "garp_master_delay": 1,
                # A master that yields to a higher priority advertises once first, so the
                # winner hears a lower-priority advert (and re-announces the VIPs) whichever
                # director's advert crosses a healed link first (keepalived's option).
                "higher_prio_send_advert": True,
                "virtual_ipaddress": [f"{topo.vip}/24", f"{topo.gateway_vip}/24 dev eth1"],
            }
        },
        "virtual_servers": [
            {
                "ip": topo.vip,
                "port": topo.port,
                "protocol": "TCP",
                "lb_algo": "rr",
                "lb_kind": "NAT",
                "delay_loop": topo.delay_loop,
                "real_servers": [
                    {"ip": topo.rs_ip(i), "port": d.rs_port, "weight": 1, "HTTP_GET": check()}
                    for i in range(len(topo.real_servers))
                ],
            }
        ],
    }


def render_config(topo: Topology, d: Director, workdir: Path) -> str:
    head = (f"# hacluster lab director {d.name} (generated by `hacluster lab`)\n")
    return head + yaml.safe_dump(director_config(topo, d, workdir), sort_keys=False)


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of `pid` (clock ticks since boot); None if it has exited."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None  # exited; only waiting to be reaped by its parent
    return int(fields[19])


@dataclass(slots=True)
class RunningLab:
    """A built lab and its processes; `lab.close()` removes all of it."""

    topo: Topology
    lab: Lab
    ns: dict[str, Netns] = field(default_factory=dict)
    procs: dict[str, LabProcess] = field(default_factory=dict)
    # The switch's port of each (namespace role, bridge), e.g. ("lvsa", "brf").
    ports: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def workdir(self) -> Path:
        return self.lab.workdir

    def config_path(self, director: str) -> Path:
        return self.workdir / f"{self.topo.director(director).role}.yaml"

    def status_path(self, director: str) -> Path:
        return self.workdir / f"{self.topo.director(director).role}.status.json"

    @property
    def client_out(self) -> Path:
        return self.workdir / "client.jsonl"

    # -- processes ----------------------------------------------------------------------

    def start_real_server(self, index: int) -> LabProcess:
        name = self.topo.real_servers[index]
        argv = [sys.executable, "-m", "hacluster.lab.realserver", "--name", name]
        for d in self.topo.directors:
            argv += ["--listen", f"{d.rs_port}={d.name}"]
        proc = self.lab.start(self.ns[name], argv, log_name=name)
        self.procs[name] = proc
        return proc

    def start_director(self, name: str) -> LabProcess:
        d = self.topo.director(name)
        status = self.status_path(name)
        with contextlib.suppress(FileNotFoundError):
            status.unlink()  # a stale status must not pass for the new process's
        # The VIP state file (VIPs to remove after a crash) stays in the lab's directory.
        argv = [sys.executable, "-m", "hacluster.cli", "run", "-f", str(self.config_path(name)),
                "--status-file", str(status), "--state-dir", str(self.workdir / "state")]
        proc = self.lab.start(self.ns[d.role], argv, log_name=d.role)
        self.procs[name] = proc
        return proc

    def start_client(self) -> LabProcess:
        t = self.topo
        argv = [sys.executable, "-m", "hacluster.lab.client", "--host", t.vip,
                "--port", str(t.port), "--out", str(self.client_out),
                "--workers", str(t.client_workers), "--interval", str(t.client_interval),
                "--connect-timeout", str(t.client_connect_timeout),
                "--read-timeout", str(t.client_read_timeout)]
        proc = self.lab.start(self.ns["client"], argv, log_name="client")
        self.procs["client"] = proc
        return proc

    def probe(self, timeout: float = 2.0) -> Record | None:
        """One request through the VIP from the client namespace."""
        argv = [sys.executable, "-m", "hacluster.lab.client", "--host", self.topo.vip,
                "--port", str(self.topo.port), "--once", "--connect-timeout", str(timeout / 2),
                "--read-timeout", str(timeout / 2)]
        res = self.lab.run(self.ns["client"], argv, check=False, timeout=timeout + 10)
        return record_from_json(res.stdout.strip())

    def signal_director(self, director: str, signum: int) -> None:
        """Send a signal to the director's whole process group (it runs in its own session)."""
        proc = self.procs[director]
        if proc.running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signum)

    def crash_director(self, director: str) -> None:
        """A crash: freeze every process of the director, then SIGKILL them all, and reap.

        Freezing first means no process of the group sees another die and reacts (a
        child cleaning up after its parent): all stop at one instant, as on a real crash.
        """
        self.signal_director(director, signal.SIGSTOP)
        self.signal_director(director, signal.SIGKILL)
        self.procs[director].popen.wait(10.0)

    def cut_directors(self, cut: bool) -> None:
        """Cut (or heal) the directors' links to each other on both bridges.

        Their switch ports become isolated: an isolated port reaches every port but the
        other isolated one, so the client and the real servers still reach both directors
        while the directors no longer hear each other (a split brain).
        """
        # One `bridge` process for all four ports: the cut (or heal) happens at one moment.
        batch = "".join(f"link set dev {self.ports[d.role, bridge]} isolated "
                        f"{'on' if cut else 'off'}\n"
                        for d in self.topo.directors for bridge in ("brf", "brb"))
        self.lab.run(self.ns["sw"], ["bridge", "-batch", "-"], input=batch)

    def forget_vip_neighbours(self) -> None:
        """Remove the ARP entries for the VIPs (the client's for the VIP, the real servers'
        for the gateway VIP), so that each asks anew who holds them."""
        hosts = [("client", self.topo.vip)] + [(rs, self.topo.gateway_vip)
                                                for rs in self.topo.real_servers]
        for role, address in hosts:
            self.lab.run(self.ns[role], ["ip", "neigh", "flush", "to", address, "dev", "eth0"],
                         check=False)

    # -- observation ----------------------------------------------------------------------

    def vrrp_state(self, director: str) -> str | None:
        """The director's state of the lab's instance from its status file (None: unknown)."""
        proc = self.procs.get(director)
        if proc is None or not proc.running():
            return None
        try:
            data = json.loads(self.status_path(director).read_text())
            return str(data["instances"][INSTANCE]["state"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def wait_state(self, director: str, state: str, timeout: float) -> float | None:
        """Wait until `director` reports `state`; the monotonic time seen, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.vrrp_state(director) == state:
                return time.monotonic()
            proc = self.procs.get(director)
            if proc is not None and not proc.running():
                return None
            time.sleep(0.05)
        return None

    def table_name(self) -> str:
        """What the directors balance with, as an operator would look for it."""
        if self.topo.dataplane == "ipvs":
            return f"IPVS service {self.topo.vip}:{self.topo.port}"
        return f"nftables table inet {NFT_TABLE}"

    def has_table(self, director: str) -> bool:
        """True when the director's namespace holds its load-balancing table for the VIP."""
        ns = self.ns[self.topo.director(director).role]
        if self.topo.dataplane == "ipvs":
            res = self.lab.run(ns, ["ipvsadm", "-L", "-n", "-t",
                                    f"{self.topo.vip}:{self.topo.port}"], check=False)
        else:
            res = self.lab.run(ns, ["nft", "list", "table", "inet", NFT_TABLE], check=False)
        return res.returncode == 0

    def balancer_started(self, director: str) -> bool:
        """True once the director's load balancer has started (its log says so): the
        VRRP side of `hacluster run` may take the VIPs well before that on a slow
        machine, the balancer starting in its own process meanwhile."""
        proc = self.procs.get(director)
        return proc is not None and BALANCER_STARTED in proc.output()

    def log_tail(self, name: str, lines: int = 6) -> list[str]:
        proc = self.procs.get(name)
        if proc is None:
            return []
        return proc.output().splitlines()[-lines:]

    def diagnose(self) -> list[str]:
        """Why traffic may not flow through the VIP: one line per finding."""
        found: list[str] = []
        for d in self.topo.directors:
            proc = self.procs.get(d.name)
            if proc is None:
                continue
            if not proc.running():
                found.append(f"{d.name}: `hacluster run` exited with status "
                             f"{proc.popen.returncode}; its log ends:")
                found += [f"    {line}" for line in self.log_tail(d.name)]
                continue
            state = self.vrrp_state(d.name) or "unknown"
            table = self.has_table(d.name)
            found.append(f"{d.name}: VRRP {state}; {self.table_name()} "
                         f"{'present' if table else 'MISSING'}")
            if not table and not self.balancer_started(d.name):
                found.append(f"{d.name}: `hacluster run`'s load balancer has not started "
                             f"yet (no {BALANCER_STARTED!r} in its log): nothing answers on "
                             "the VIP until it has")
            elif not table:
                found.append(f"{d.name}: `hacluster run` installed no load-balancing table "
                             f"for its virtual server (dataplane {self.topo.dataplane}): the "
                             "daemon is not balancing, so nothing answers on the VIP")
            warnings = [line for line in proc.output().splitlines()
                        if " WARNING " in line or " ERROR " in line]
            found += [f"{d.name} log: {line}" for line in warnings[-3:]]
        for i, name in enumerate(self.topo.real_servers):
            proc = self.procs.get(name)
            if proc is not None and not proc.running():
                found.append(f"{name} ({self.topo.rs_ip(i)}) is not running")
        return found

    # -- state file ----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        procs = []
        for role, proc in self.procs.items():
            if proc.running():
                procs.append({"name": role, "pid": proc.pid, "argv": list(proc.argv),
                              "start_time": process_start_time(proc.pid),
                              "netns": proc.netns.name})
        return {
            "prefix": self.topo.prefix,
            "tag": self.lab.tag,
            "workdir": str(self.workdir),
            "namespaces": {ns.role: ns.name for ns in self.lab.namespaces},
            "processes": procs,
            "vip": self.topo.vip,
            "port": self.topo.port,
        }


def build(topo: Topology, lab: Lab) -> RunningLab:
    """Create namespaces and links, write the configs, start real servers and directors."""
    run = RunningLab(topo, lab)
    sw = lab.namespace("sw")
    lab.bridge(sw, "brf")
    lab.bridge(sw, "brb")
    run.ns["sw"] = sw
    client = lab.namespace("client")
    run.ns["client"] = client
    lab.attach(client, "eth0", sw, "brf", [f"{topo.client_ip}/24"])
    for d in topo.directors:
        ns = lab.namespace(d.role)
        run.ns[d.role] = ns
        run.ports[d.role, "brf"] = lab.attach(ns, "eth0", sw, "brf",
                                              [f"{topo.front}.{d.host}/24"])
        run.ports[d.role, "brb"] = lab.attach(ns, "eth1", sw, "brb",
                                              [f"{topo.back}.{d.host}/24"])
        lab.run(ns, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        run.config_path(d.name).write_text(render_config(topo, d, lab.workdir))
    for i, name in enumerate(topo.real_servers):
        ns = lab.namespace(name)
        run.ns[name] = ns
        lab.attach(ns, "eth0", sw, "brb", [f"{topo.rs_ip(i)}/24"])
        lab.run(ns, ["ip", "route", "add", "default", "via", topo.gateway_vip])
        run.start_real_server(i)
    for d in topo.directors:
        run.start_director(d.name)
    return run


# -- lab up / lab down -------------------------------------------------------------------------


def state_file(state_dir: Path, prefix: str) -> Path:
    return state_dir / f"{prefix}.json"


def write_state(run: RunningLab, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(run.state(), indent=1) + "\n")
    tmp.replace(path)


@dataclass(slots=True)
class TeardownReport:
    """What `lab down` found and removed."""

    stopped: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _ours(entry: dict[str, Any]) -> bool:
    """True while the recorded process still runs as the same process (not a reused PID)."""
    pid, start = entry.get("pid"), entry.get("start_time")
    return isinstance(pid, int) and start is not None and process_start_time(pid) == start


def teardown(prefix: str, state_dir: Path, *, wait: float = 3.0) -> TeardownReport:
    """Stop the processes a `lab up` of `prefix` started and remove its namespaces and files."""
    report = TeardownReport()
    path = state_file(state_dir, prefix)
    state: dict[str, Any] = {}
    if path.exists():
        try:
            state = json.loads(path.read_text())
        except ValueError as exc:
            report.problems.append(f"{path}: unreadable state file ({exc}); removing by prefix")
    entries = [e for e in state.get("processes", []) if isinstance(e, dict) and _ours(e)]
    for e in entries:
        with contextlib.suppress(ProcessLookupError):
            os.kill(e["pid"], signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(_ours(e) for e in entries):
        time.sleep(0.05)
    for e in entries:
        if _ours(e):
            with contextlib.suppress(ProcessLookupError):
                os.kill(e["pid"], signal.SIGKILL)
        report.stopped.append(f"{e.get('name')} (pid {e['pid']})")
    recorded = [n for n in state.get("namespaces", {}).values() if isinstance(n, str)]
    for name in recorded:
        if not name.startswith(prefix + "-") or name not in list_namespaces(prefix):
            continue
        # Whatever still runs in a lab namespace was started by the lab (a daemon's child).
        res = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True,
                             timeout=10)
        for pid_text in res.stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_text), signal.SIGKILL)
        res = subprocess.run(["ip", "netns", "delete", name], capture_output=True, text=True,
                             timeout=30)
        if res.returncode == 0:
            report.namespaces.append(name)
        else:
            report.problems.append(f"ip netns delete {name}: {res.stderr.strip()}")
    # Namespaces of this prefix left by a lab whose creating process is gone (no state file,
    # or a crashed `lab up`).
    report.namespaces += sweep(prefix)
    workdir = state.get("workdir")
    if isinstance(workdir, str) and Path(workdir).parent == state_dir:
        shutil.rmtree(workdir, ignore_errors=True)
    path.unlink(missing_ok=True)
    return report
