"""Daemon health-check benchmark: `hacluster run` checking real servers behind nginx.

The real servers are nginx in a network namespace (``healthchecks.benchtargets``), one
address each; the daemon runs in a second namespace with ``dataplane: none``, pinned to
one CPU (nginx to another). Prints the daemon's CPU per check (user + system, so the
kernel's side of each connection made on its behalf is in it) summed over its processes
(check workers included), checks/s from its own counters, and each process's RSS and PSS;
then, where HAProxy is installed, HAProxy checking the same targets on the same CPU, one
after the other, and the ratio. Nothing is asserted. Needs root.

    .venv/bin/python bench/daemon_checks.py --kind tcp --servers 10000 --duration 20
    .venv/bin/python bench/daemon_checks.py --kind http --servers 5000 --profile 10
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from healthchecks import benchtargets

_METRICS = "127.0.0.1:9650"  # inside the checker's namespace
_CHECKER = {"tcp": "TCP_CHECK", "http": "HTTP_GET", "ssl": "SSL_GET", "ssl12": "SSL_GET"}


def config(kind: str, servers: int, interval: float, timeout: float, sock: Path,
           checker_processes: int | None = None) -> str:
    port = benchtargets.PORTS[kind]
    check: dict[str, Any] = {"connect_timeout": timeout, "retry": 0}
    if kind != "tcp":
        check["url"] = [{"path": "/", "status_code": 200}]
    reals = [{"ip": a, "port": port, _CHECKER[kind]: dict(check)}
             for a in benchtargets.server_addresses(servers)]
    doc = {
        "global_defs": {"router_id": "bench", "dataplane": "none",
                        "control_socket": str(sock), "metrics_listen": _METRICS,
                        **({} if checker_processes is None
                           else {"checker_processes": checker_processes})},
        "virtual_servers": [{"ip": "198.51.100.1", "port": port, "protocol": "TCP",
                             "delay_loop": interval, "lb_algo": "rr", "lb_kind": "NAT",
                             "real_servers": reals}],
    }
    return yaml.safe_dump(doc)


def rss_mib(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def pss_mib(pid: int) -> float:
    """Proportional set size: pages shared with other processes (a forked worker's
    copy-on-write pages, the interpreter) counted as a share each."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the daemon's check workers and other roles)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def tree_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds so far of each process still there."""
    cpu: dict[int, float] = {}
    for p in pids:
        with contextlib.suppress(OSError):
            cpu[p] = benchtargets.process_cpu(p)
    return cpu


def process_name(pid: int, root: int) -> str:
    """What one of the daemon's processes is: the supervisor (``root``), its forked VRRP
    role, or a health-check worker."""
    if pid == root:
        return "supervisor"
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [w.decode(errors="replace") for w in argv if w]
    with contextlib.suppress(OSError):
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        if comm in ("hc-check-worker", "hc-zygote"):  # forked by the zygote
            return "check worker" if comm == "hc-check-worker" else "zygote"
    if any("worker_main" in w for w in words):
        return "check worker"
    return "VRRP role" if "run" in words else " ".join(words[-2:])[:40]


def counters(ns: str) -> tuple[float, int, int] | None:
    """(when asked, checks done so far, of which not passed) from the daemon's /metrics;
    None before it answers.

    The metrics endpoint, not the status file: a status of thousands of servers holds the
    daemon's loop for a second or more, and the runner skips the slots it missed.
    """
    script = (
        "import urllib.request,sys\n"
        f"sys.stdout.write(urllib.request.urlopen('http://{_METRICS}/metrics', timeout=20)"
        ".read().decode())\n"
    )
    asked = time.monotonic()
    out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", script],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return None
    rows = [line for line in out.stdout.splitlines()
            if line.startswith("hacluster_checks_total{")]
    total = sum(float(line.rsplit(" ", 1)[1]) for line in rows)
    failed = sum(float(line.rsplit(" ", 1)[1]) for line in rows
                 if 'result="success"' not in line)
    return asked, int(total), int(failed)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=tuple(_CHECKER), default="tcp")
    ap.add_argument("--servers", type=int, default=5000)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--cpu", type=int, default=0, help="the daemon's (and HAProxy's) CPU")
    ap.add_argument("--no-haproxy", action="store_true")
    ap.add_argument("--checker-processes", type=int, default=None,
                    help="global_defs.checker_processes (0: checks in the daemon itself); "
                         "default: the daemon's own choice")
    ap.add_argument("--profile", type=float, default=0.0,
                    help="also sample the daemon with py-spy for this many seconds")
    args = ap.parse_args()
    if not benchtargets.available():
        ap.error("needs root, nginx, ip and openssl")
    cpus = sorted(os.sched_getaffinity(0))
    pin = args.cpu in cpus and len(cpus) > 1
    nginx_cpu = next((c for c in cpus if c != args.cpu), None) if pin else None
    hacluster = shutil.which("hacluster", path=str(Path(sys.executable).parent))
    if hacluster is None:
        ap.error("the hacluster command is not installed next to this Python")
    work = Path(tempfile.mkdtemp(prefix="hcdaemon-"))
    try:
        with benchtargets.Targets(nginx_cpu) as net:
            cfg = work / "bench.yaml"
            cfg.write_text(config(args.kind, args.servers, args.interval, args.timeout,
                                  work / "ctl.sock", args.checker_processes))
            proc = subprocess.Popen(
                ["ip", "netns", "exec", net.client,
                 *(["taskset", "-c", str(args.cpu)] if pin else []),
                 hacluster, "run", "-f", str(cfg), "--log-level", "warning"],
            )
            try:
                # Started once its metrics answer; then the warm-up spread and a round.
                for _ in range(600):
                    if proc.poll() is not None or counters(net.client) is not None:
                        break
                    time.sleep(0.2)
                time.sleep(args.interval * 2 + 1)
                first = counters(net.client)
                if proc.poll() is not None or first is None:
                    print("the daemon exited or its metrics do not answer", file=sys.stderr)
                    return 1
                t0, n0, f0 = first
                pids = process_tree(proc.pid)
                c0 = tree_cpu(pids)
                time.sleep(args.duration)
                c1 = tree_cpu(pids)
                last = counters(net.client)
                if last is None:
                    print("the daemon's metrics stopped answering", file=sys.stderr)
                    return 1
                t1, n1, f1 = last
                memory = {p: (*rss_mib(p), pss_mib(p)) for p in pids if p in c1}
                names = {p: process_name(p, proc.pid) for p in memory}
                if args.profile:
                    profile(proc.pid, args.profile, work)
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            rate = (n1 - n0) / (t1 - t0)
            cpu = sum(c1[p] - c0[p] for p in c1 if p in c0)
            ours = cpu / (rate * args.duration) if rate else float("inf")
            print(f"daemon: {_CHECKER[args.kind]} x {args.servers} real servers behind nginx, "
                  f"delay_loop {args.interval:g}s, {args.duration:g}s measured")
            print(f"  checks/s: {rate:.0f} of {args.servers / args.interval:.0f} scheduled; "
                  f"{f1 - f0} of {n1 - n0} did not pass")
            print(f"  CPU: {cpu:.2f} s ({100 * cpu / args.duration:.0f}% of one core), "
                  f"{ours * 1e6:.1f} us per check")
            for p, (rss, hwm, pss) in memory.items():
                print(f"  pid {p} ({names[p]}): CPU {c1[p] - c0.get(p, 0.0):.2f} s; "
                      f"RSS {rss:.1f} MiB (peak {hwm:.1f} MiB), PSS {pss:.1f} MiB")
            print(f"  all {len(memory)} processes: RSS {sum(m[0] for m in memory.values()):.1f}"
                  f" MiB, PSS {sum(m[2] for m in memory.values()):.1f} MiB; "
                  f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
            if args.no_haproxy or not benchtargets.haproxy_available():
                return 0
            run = net.haproxy(
                args.kind, benchtargets.server_addresses(args.servers),
                benchtargets.PORTS[args.kind], args.interval, args.timeout,
                warmup=args.interval + 1.0, duration=args.duration,
                cpu=args.cpu if pin else None,
            )
            hcpu = run.cpu
            theirs = hcpu / (args.servers / args.interval * args.duration)
            settled = (f"all passed a check {run.settled:.1f} s after warm-up"
                       if run.settled is not None else "not all passed a check")
            print(f"HAProxy: {settled}; {run.up} of {args.servers} UP ({run.status}); "
                  f"RSS {run.rss_mib:.1f} MiB, PSS {run.pss_mib:.1f} MiB; CPU {hcpu:.2f} s, "
                  f"{theirs * 1e6:.1f} us per check at the scheduled rate; "
                  f"load average {os.getloadavg()[0]:.1f}")
            print(f"ratio: {ours / theirs:.2f}x HAProxy's CPU per check" if theirs else
                  "ratio: n/a (HAProxy's CPU stayed below the clock tick; run longer)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def profile(pid: int, seconds: float, work: Path) -> None:
    """Where the daemon's time goes: py-spy's samples folded by function, top 25."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        print("py-spy is not installed (pip install py-spy)", file=sys.stderr)
        return
    out = work / "profile.txt"
    subprocess.run([spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-f", "raw",
                    "-o", str(out), "--nonblocking"], check=False, capture_output=True)
    if not out.exists():
        return
    own: dict[str, int] = {}
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        leaf = frames[-1] if frames else "?"
        own[leaf] = own.get(leaf, 0) + n
    print(f"py-spy: {total} samples, by innermost function:")
    for name, n in sorted(own.items(), key=lambda kv: -kv[1])[:25]:
        print(f"  {100 * n / max(total, 1):5.1f}%  {name}")


if __name__ == "__main__":
    raise SystemExit(main())
