"""Isolation benchmark: does checking many real servers delay VRRP adverts or the control API?

Two namespaces joined by a veth. The peer side has nginx on port 80 and a /16 routed to
itself as local, so every real server address (10.87.x.y) is answered by it. The
director runs `hacluster run` with N real servers (HTTP_GET or TCP_CHECK, delay_loop 1,
nftables dataplane) and a VRRP instance at advert_int 0.1 (v3, address owner, so it is
master at once); a raw socket on the peer side timestamps every advert in the kernel
(SO_TIMESTAMPNS). Each case runs "before" (`--single-process`, `checker_processes: 0`:
VRRP, checks, dataplane and API in one process) and "after" (the supervisor with a
VRRP role process at `vrrp_rt_priority 20`, a balancer role process and its check
workers of the derived count),
with and without `GET /v1/status` every 0.5 s. Printed per case:

- checks/s done (from hacluster_checks_total), of the N/s configured, and CPU per check
  done (of the check workers, and of all the daemon's processes);
- CPU per process and per role (supervisor, VRRP role, balancer role, the check
  workers together) and PSS per process (median of five samples), per role and in total;
- the largest gap between two adverts minus advert_int, and gaps longer than the
  master-down interval (a backup would have taken over);
- /v1/status latency p50/p99/max and how many timed out (10 s).

With `--anchor haproxy` (the default where HAProxy is installed), HAProxy then checks the
same real servers from the director's namespace, the same way (a TCP connect, or
keepalived's request judged by its status, every second, connect timeout 2 s), measured
over the same number of seconds once every server has passed a check: its CPU is the
yardstick printed after each kind's cases.

Nothing is asserted; run as root:

    .venv/bin/python bench/isolation.py [--servers 5000] [--tcp-servers 10000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import itertools
import os
import shutil
import socket
import statistics
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from hacluster.lab.netns import Lab, Netns
from healthchecks.benchtargets import haproxy_config, measure_haproxy

SO_TIMESTAMPNS = 35
CLONE_NEWNET = 0x40000000
ADVERT_INT = 0.1
MASTER_DOWN = 3 * ADVERT_INT + (256 - 255) * ADVERT_INT / 256
HACLUSTER = str(Path(sys.executable).with_name("hacluster"))
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")


def in_netns(ns: Netns, make: type[socket.socket] = socket.socket, *args: int) -> socket.socket:
    """A socket created inside `ns`."""
    fd = os.open(f"/run/netns/{ns.name}", os.O_RDONLY)
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        _setns(fd)
        return make(*args)
    finally:
        _setns(own)
        os.close(fd)
        os.close(own)


def addresses(servers: int) -> list[str]:
    """The real servers' addresses (all answered by the peer's nginx)."""
    return [f"10.87.{i // 250}.{i % 250 + 1}" for i in range(servers)]


def config(kind: str, servers: int, sock: Path, workers: int | None, rt: bool) -> str:
    check = ("HTTP_GET: {url: [{path: /}], connect_timeout: 2}" if kind == "HTTP_GET"
             else "TCP_CHECK: {connect_timeout: 2}")
    lines = [
        "global_defs:",
        "  dataplane: nftables",
        f"  control_socket: {sock}",
        *([f"  checker_processes: {workers}"] if workers is not None else []),
        *(["  vrrp_rt_priority: 20"] if rt else []),
        "vrrp_instances:",
        "  VI_1:",
        "    interface: d0",
        "    virtual_router_id: 61",
        "    priority: 255",
        "    version: 3",
        f"    advert_int: {ADVERT_INT}",
        "    virtual_ipaddress: [10.86.0.100/32]",
        "virtual_servers:",
        "  - ip: 10.86.0.200",
        "    port: 80",
        "    lb_algo: rr",
        "    lb_kind: NAT",
        "    delay_loop: 1",
        "    real_servers:",
    ]
    for address in addresses(servers):
        lines.append(f"      - {{ip: {address}, port: 80, {check}}}")
    return "\n".join(lines) + "\n"


def http_get(sock_path: Path, path: str, timeout: float = 10.0) -> bytes:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    try:
        s.connect(str(sock_path))
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        chunks = []
        while chunk := s.recv(1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        s.close()


def checks_total(sock_path: Path) -> float | None:
    """hacluster_checks_total summed; None when /metrics did not answer within 30 s."""
    total = 0.0
    try:
        text = http_get(sock_path, "/metrics", timeout=30).decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("hacluster_checks_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def family(pid: int) -> list[int]:
    """`pid` and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


#: Process names (prctl PR_SET_NAME) the daemon's processes give themselves.
ROLE_NAMES = {"hc-vrrp": "VRRP role", "hc-balancer": "balancer", "hc-zygote": "zygote",
              "hc-check-worker": "check worker"}


def role_names(pids: list[int], top: int) -> dict[int, str]:
    """Each process's role, from the name it gave itself (the supervisor: `top`; a
    check worker exec'ed by the library's runner: by its command line)."""
    names: dict[int, str] = {}
    for pid in pids:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        if pid == top:
            names[pid] = "supervisor"
        elif b"worker_main" in cmd:
            names[pid] = "check worker"
        else:
            names[pid] = ROLE_NAMES.get(comm, comm)
    return names


@dataclass
class Result:
    label: str
    checks_per_s: float | None = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    pss: dict[str, float] = field(default_factory=dict)
    max_late_ms: float = 0.0
    takeovers: int = 0
    adverts: int = 0
    status_ms: list[float] = field(default_factory=list)
    status_timeouts: int = 0


def run_case(lab: Lab, director: Netns, peer: Netns, label: str, text: str,
             seconds: float, poll_status: bool, single: bool,
             hacluster: str = HACLUSTER) -> Result:
    sock_path = lab.workdir / "ctl.sock"
    conf = lab.workdir / "c.yaml"
    conf.write_text(text)
    rx = in_netns(peer, socket.socket, socket.AF_INET, socket.SOCK_RAW, 112)
    rx.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                  socket.inet_aton("224.0.0.18") + socket.inet_aton("10.86.0.2"))
    rx.settimeout(1.0)
    proc = lab.start(director, [hacluster, "run", "-f", str(conf),
                                *(["--single-process"] if single else [])])
    result = Result(label)
    try:
        deadline = time.monotonic() + 60
        while not sock_path.exists():
            if time.monotonic() > deadline or not proc.running:
                raise RuntimeError("daemon did not start:\n" + proc.output())
            time.sleep(0.1)
        time.sleep(5)  # checks spread over their first interval
        pids = family(proc.pid)
        cpu0 = {p: cpu_seconds(p) for p in pids}
        checks0, t0 = checks_total(sock_path), time.monotonic()
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    http_get(sock_path, "/v1/status")
                    result.status_ms.append((time.monotonic() - started) * 1000)
                except OSError:
                    result.status_timeouts += 1
                stop.wait(max(0.0, 0.5 - (time.monotonic() - started)))

        poller = threading.Thread(target=poll, daemon=True)
        if poll_status:
            poller.start()
        # Adverts queued since the socket was opened (start-up, the warm-up above) are
        # dropped: once the queue is full the kernel drops new ones, which would show as
        # one long gap that is the bench's, not the daemon's.
        rx.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                rx.recv(2048)
        rx.settimeout(1.0)
        stamps: list[float] = []
        # PSS moves with what a process is doing at the moment (a status being built, a
        # table read back): sampled five times over the run, the median is printed.
        pss_samples: dict[int, list[float]] = {p: [] for p in pids}
        next_sample = time.monotonic()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if time.monotonic() >= next_sample:
                next_sample += seconds / 5
                for p in pids:
                    with contextlib.suppress(OSError):
                        pss_samples[p].append(pss_mb(p))
            try:
                _, anc, _, _ = rx.recvmsg(2048, 64)
            except TimeoutError:
                continue
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", data[:16])
                    stamps.append(sec + nsec / 1e9)
        stop.set()
        if poll_status:
            poller.join(15)
        elapsed = time.monotonic() - t0
        checks1 = checks_total(sock_path)
        result.checks_per_s = (
            None if checks0 is None or checks1 is None else (checks1 - checks0) / elapsed
        )
        roles = role_names(pids, proc.pid)
        for p in pids:
            try:
                name = f"{roles[p]} {p}"
                result.cpu[name] = (cpu_seconds(p) - cpu0[p]) / elapsed * 100
                result.pss[name] = statistics.median(pss_samples[p] or [pss_mb(p)])
            except OSError:
                pass
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        result.adverts = len(stamps)
        result.max_late_ms = (max(gaps) - ADVERT_INT) * 1000 if gaps else float("nan")
        result.takeovers = sum(g > MASTER_DOWN for g in gaps)
    finally:
        rx.close()
        proc.stop(30)
    return result


def by_role(values: dict[str, float]) -> dict[str, float]:
    """Values keyed "role pid" summed per role (the check workers together)."""
    out: dict[str, float] = {}
    for key, value in values.items():
        role = key.rsplit(" ", 1)[0]
        out[role] = out.get(role, 0.0) + value
    return out


def show(r: Result, wanted: int) -> None:
    print(f"== {r.label}")
    if r.checks_per_s is None:
        print("   checks/s unknown: /metrics did not answer within 30 s")
    else:
        print(f"   checks/s {r.checks_per_s:.0f} of {wanted} ({r.checks_per_s / wanted:.0%})")
    print("   CPU %: " + ", ".join(f"{k} {v:.0f}" for k, v in r.cpu.items()))
    print("   CPU % by role: " + ", ".join(f"{k} {v:.0f}" for k, v in by_role(r.cpu).items()))
    if r.checks_per_s:
        # CPU per check done: comparable across runs that kept different rates (a loaded
        # machine), where CPU % alone is not.
        roles = by_role(r.cpu)
        workers = roles.get("check worker", 0.0)
        print(f"   CPU per check: check workers {workers / 100 / r.checks_per_s * 1e6:.1f} us, "
              f"all processes {sum(roles.values()) / 100 / r.checks_per_s * 1e6:.1f} us")
    print("   PSS MB: " + ", ".join(f"{k} {v:.0f}" for k, v in r.pss.items())
          + f"; total {sum(r.pss.values()):.0f}")
    print("   PSS MB by role: " + ", ".join(f"{k} {v:.0f}" for k, v in by_role(r.pss).items())
          + f"; total {sum(r.pss.values()):.0f}")
    print(f"   adverts {r.adverts}; largest gap - advert_int {r.max_late_ms:.1f} ms; "
          f"gaps > master-down {r.takeovers}")
    if r.status_ms or r.status_timeouts:
        ms = sorted(r.status_ms) or [float("nan")]
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
        first = r.status_ms[0] if r.status_ms else float("nan")
        print(f"   /v1/status p50 {statistics.median(ms):.0f} ms, p90 {p90:.0f}, p99 {p99:.0f}, "
              f"max {ms[-1]:.0f} (first {first:.0f}); {len(r.status_ms)} answered, "
              f"{r.status_timeouts} timed out")


def anchor(lab: Lab, director: Netns, kind: str, servers: int, seconds: float) -> None:
    """HAProxy checking the same real servers from the director's namespace."""
    sock = lab.workdir / "haproxy.sock"
    cfg = lab.workdir / "haproxy.cfg"
    cfg.write_text(haproxy_config("tcp" if kind == "TCP_CHECK" else "http", addresses(servers),
                                  80, 1.0, 2.0, sock))
    run = measure_haproxy(["ip", "netns", "exec", director.name, "haproxy", "-db", "-f",
                           str(cfg)], sock, servers, 2.0, seconds)
    print(f"== {servers} {kind}, HAProxy (anchor, same servers, inter 1s)")
    # (HAProxy counts no checks: CPU per check assumes it kept its interval.)
    print(f"   CPU per check {run.cpu / seconds / servers * 1e6:.1f} us, if at {servers}/s")
    settled = "not all" if run.settled is None else f"all after {run.settled:.0f} s"
    print(f"   CPU % {run.cpu / seconds * 100:.0f}; servers up {run.up} of {servers} "
          f"(passed a check: {settled}); commonest check status {run.status}; "
          f"PSS MB {run.pss_mib:.0f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--servers", type=int, default=5000, help="HTTP_GET real servers")
    ap.add_argument("--tcp-servers", type=int, default=10000, help="TCP_CHECK real servers")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--only", choices=("HTTP_GET", "TCP_CHECK"))
    ap.add_argument("--status", choices=("with", "without", "both"), default="both")
    ap.add_argument("--variant", choices=("before", "after", "both"), default="both")
    ap.add_argument("--hacluster", action="append", default=[], metavar="PATH",
                    help="the hacluster command to measure (default: the one beside this "
                         "Python); given twice or more, each is measured in turn, case by "
                         "case (another checkout's, to compare)")
    ap.add_argument("--anchor", choices=("haproxy", "none"),
                    default="haproxy" if shutil.which("haproxy") else "none",
                    help="measure HAProxy checking the same servers after each kind")
    args = ap.parse_args()
    print("load average before:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    with Lab("hciso") as lab:
        director, peer = lab.namespace("dir"), lab.namespace("peer")
        lab.veth(director, "d0", peer, "p0")
        lab.add_address(director, "d0", "10.86.0.1/24")
        lab.add_address(peer, "p0", "10.86.0.2/24")
        lab.run(peer, ["ip", "route", "add", "local", "10.87.0.0/16", "dev", "lo"])
        lab.run(director, ["ip", "route", "add", "10.87.0.0/16", "via", "10.86.0.2"])
        nginx_conf = lab.workdir / "nginx.conf"
        nginx_conf.write_text(
            f"worker_processes 1; pid {lab.workdir}/nginx.pid; daemon off;\n"
            f"error_log {lab.workdir}/nginx.err;\n"
            "events { worker_connections 8192; }\n"
            "http { access_log off; server { listen 80 backlog=8192 reuseport; "
            "location / { return 200 'ok'; } } }\n")
        nginx = lab.start(peer, ["nginx", "-c", str(nginx_conf)])
        try:
            cases = [("HTTP_GET", args.servers), ("TCP_CHECK", args.tcp_servers)]
            for kind, n in cases:
                if args.only not in (None, kind):
                    continue
                polls = {"with": [True], "without": [False], "both": [False, True]}[args.status]
                for poll in polls:
                    for workers, single, what in (
                        (0, True, "before: one process"),
                        (None, False, "after: VRRP role (vrrp_rt_priority 20), balancer role, "
                                       "check workers"),
                    ):
                        if args.variant not in ("both", "before" if single else "after"):
                            continue
                        for command in args.hacluster or [HACLUSTER]:
                            label = (f"{n} {kind}, {what}, "
                                     f"{'with' if poll else 'without'} /v1/status every 0.5 s"
                                     + (f" [{command}]" if len(args.hacluster) > 1 else ""))
                            text = config(kind, n, lab.workdir / "ctl.sock", workers,
                                          not single)
                            show(run_case(lab, director, peer, label, text, args.seconds,
                                          poll, single, command), n)
                            print("   load average:",
                                  " ".join(f"{x:.2f}" for x in os.getloadavg()))
                if args.anchor == "haproxy":
                    anchor(lab, director, kind, n, args.seconds)
                    print("   load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
        finally:
            nginx.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
