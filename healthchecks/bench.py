"""Benchmark: N checks against local listeners; prints rate, start lateness, CPU and RSS.

    python -m healthchecks.bench --checks 10000 --kind tcp --interval 1 --duration 20
    python -m healthchecks.bench --checks 5000 --kind http --interval 1 --duration 20
    python -m healthchecks.bench --checks 2000 --kind ssl --target local --workers 2

``--target nginx`` (the default where nginx is installed and we are root) checks real
servers behind nginx in a network namespace, each check a real server address of its own
(``benchtargets``); the checker runs in a second namespace, pinned to ``--cpu`` and nginx
to another CPU. Where HAProxy is installed it then checks the same targets, on the same
CPU, after ours (not at the same time), and the ratio of CPU per check is printed.
``--target local`` uses listeners in a child process on loopback instead. With
``--workers N`` the checks run in N worker processes (``ShardedRunner``); CPU is then
the workers' and the parent's together; with ``--zygote`` the workers are forked from a
zygote (`healthchecks.zygote`) rather than exec'ed, and the PSS of the workers and the
zygote is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import math
import os
import re
import resource
import selectors
import signal
import socket
import subprocess
import sys
import time
from array import array

from healthchecks import benchtargets, gcsettle, zygote
from healthchecks.base import Checker
from healthchecks.http import HttpCheck, HttpSessions
from healthchecks.params import HttpGetParams, TcpCheckParams, Timing
from healthchecks.runner import CheckSpec, Runner
from healthchecks.sharded import ShardedRunner
from healthchecks.tcp import TcpCheck

_HTTP_REPLY = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
    b"Connection: close\r\n\r\nok"
)


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def serve(kind: str, listeners: int) -> None:
    """Child process: accept on ``listeners`` loopback ports; tcp closes, http answers 200."""
    raise_nofile()
    sel = selectors.DefaultSelector()
    ports = []
    for i in range(listeners):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((f"127.0.0.{1 + i % 250}", 0))
        s.listen(4096)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, None)
        ports.append(f"{s.getsockname()[0]}:{s.getsockname()[1]}")
    print(" ".join(ports), flush=True)
    parent = os.getppid()
    if kind == "tcp":
        # Sweep the accept queues on a short tick instead of waking per connection:
        # the listeners then cost little CPU next to the checker being measured (the
        # kernel completes handshakes without us; we only empty the queues).
        socks = [k.fileobj for k in sel.get_map().values()]
        while True:
            for sock in socks:
                assert isinstance(sock, socket.socket)
                while True:
                    try:
                        conn, _ = sock.accept()
                    except (BlockingIOError, ConnectionAbortedError):
                        break
                    conn.close()
            time.sleep(0.002)
            if os.getppid() != parent:
                return  # the benchmark died without stopping us
    while True:
        if os.getppid() != parent:
            return
        for key, _ in sel.select(1.0):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if key.data is None:
                while True:
                    try:
                        conn, _ = sock.accept()
                    except (BlockingIOError, ConnectionAbortedError):
                        break
                    conn.setblocking(False)
                    sel.register(conn, selectors.EVENT_READ, b"")
            else:
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                buf = key.data + data
                if data and b"\r\n\r\n" not in buf:
                    sel.modify(sock, selectors.EVENT_READ, buf)
                    continue
                sel.unregister(sock)
                if data:
                    with contextlib.suppress(OSError):
                        sock.send(_HTTP_REPLY)
                sock.close()


def _pct(sorted_values: array[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def _checks(
    args: argparse.Namespace, targets: list[tuple[str, int]], sessions: HttpSessions
) -> list[CheckSpec]:
    timing = Timing(delay_loop=args.interval, retry=0, warmup=args.interval)
    specs = []
    for i in range(args.checks):
        ip, port = targets[i % len(targets)]
        checker: Checker
        if args.kind == "tcp":
            checker = TcpCheck(TcpCheckParams(ip, port, connect_timeout=args.timeout))
        else:
            tls = args.kind.startswith("ssl")
            params = HttpGetParams(ip, port, connect_timeout=args.timeout, tls=tls)
            checker = HttpCheck(params, sessions)
        specs.append(CheckSpec(f"c{i}", (ip, port, i), checker, timing))
    return specs


def _report(
    args: argparse.Namespace, elapsed: float, runs: int, failures: int, reasons: list[str],
    lateness: array[float], user: float, system: float, rss_kib: float, loop_name: str,
) -> None:
    cpu = user + system
    late = array("d", sorted(lateness))
    mode = "in one process" if not args.workers else f"in {args.workers} worker processes"
    print(f"kind={args.kind} checks={args.checks} interval={args.interval}s "
          f"duration={elapsed:.1f}s loop={loop_name} {mode} target={args.target} "
          f"cpus={sorted(os.sched_getaffinity(0))}")
    print(f"checks done: {runs} ({runs / elapsed:.0f}/s of {args.checks / args.interval:.0f}/s"
          f" scheduled), failures: {failures}"
          + (f" e.g. {reasons}" if reasons else ""))
    print(f"start lateness: p50 {_pct(late, 0.5) * 1e3:.2f} ms,"
          f" p99 {_pct(late, 0.99) * 1e3:.2f} ms,"
          f" max {(late[-1] if late else float('nan')) * 1e3:.2f} ms (n={len(late)})")
    print(f"CPU: {cpu:.2f} s in {elapsed:.1f} s ({100 * cpu / elapsed:.0f}% of one core), "
          f"{1000 * cpu / max(runs, 1):.3f} s per 1000 checks "
          f"(user {1000 * user / max(runs, 1):.3f}, system {1000 * system / max(runs, 1):.3f})")
    print(f"peak RSS: {rss_kib / 1024:.1f} MiB"
          + (" (largest process)" if args.workers else "")
          + f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


def _pss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def run_sharded(args: argparse.Namespace, targets: list[tuple[str, int]]) -> None:
    loop = asyncio.get_running_loop()
    runner = ShardedRunner(
        args.workers, max_concurrency=args.max_concurrency, measure=True, uvloop=args.uvloop,
        zygote=zygote.current(),
    )
    # The checks are rebuilt in the workers: these sessions are never opened here.
    for spec in _checks(args, targets, HttpSessions()):
        runner.add(spec)
    async with runner:
        await asyncio.sleep(args.interval)  # the warm-up spread
        before = await runner.sample()
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = loop.time()
        await asyncio.sleep(args.duration)
        after = await runner.sample()
        t1 = loop.time()
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        z = zygote.current()
        pids = [*runner.worker_pids, *([z.pid] if z is not None and z.pid else [])]
        pss = {pid: _pss_mib(pid) for pid in pids}
    print("PSS MiB: " + ", ".join(f"{pid} {v:.1f}" for pid, v in pss.items())
          + f"; total {sum(pss.values()):.1f}" + (" (workers and zygote)" if z else ""))
    lateness: array[float] = array("d")
    for s in after:
        lateness.extend(s.lateness)
    reasons = sorted({r for s in after for r in s.failure_reasons})[:3]
    _report(
        args, t1 - t0,
        sum(s.runs for s in after) - sum(s.runs for s in before),
        sum(s.failures for s in after), reasons, lateness,
        sum(s.cpu_user for s in after) - sum(s.cpu_user for s in before)
        + r1.ru_utime - r0.ru_utime,
        sum(s.cpu_system for s in after) - sum(s.cpu_system for s in before)
        + r1.ru_stime - r0.ru_stime,
        max([s.max_rss_kib for s in after] + [r1.ru_maxrss]), type(loop).__module__,
    )


async def run(args: argparse.Namespace, targets: list[tuple[str, int]]) -> None:
    lateness: array[float] = array("d")
    measure_from = 0.0
    measure_until = math.inf
    started_total = 0

    def on_launch(_check_id: str, due: float, started: float) -> None:
        nonlocal started_total
        started_total += 1
        if measure_from <= due < measure_until:
            lateness.append(started - due)

    pauses: array[float] = array("d")
    gc_started = 0.0

    def on_gc(phase: str, _info: dict[str, int]) -> None:
        nonlocal gc_started
        if phase == "start":
            gc_started = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - gc_started)

    runner = Runner(max_concurrency=args.max_concurrency, on_launch=on_launch)
    sessions = HttpSessions()
    for spec in _checks(args, targets, sessions):
        runner.add(spec)

    loop = asyncio.get_running_loop()
    # The first interval is the warm-up spread; measure the steady state after it.
    measure_from = loop.time() + args.interval
    await runner.start()
    if args.gc == "freeze":
        gc.freeze()
    elif args.gc == "settle":  # what the daemon and the check workers do after start-up
        gcsettle.settle(args.gc_gen0)
    await asyncio.sleep(args.interval)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    # Counted from the launch hook: a walk over every check's status would hold the loop
    # up for tens of ms and show as lateness of the checks due meanwhile.
    runs0 = started_total
    gc.callbacks.append(on_gc)
    gc0 = [g["collections"] for g in gc.get_stats()]
    t0 = loop.time()
    await asyncio.sleep(args.duration)
    t1 = measure_until = loop.time()
    runs = started_total - runs0
    gc.callbacks.remove(on_gc)
    collections = [g["collections"] - c for g, c in zip(gc.get_stats(), gc0, strict=True)]
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    statuses = [runner.status(c) for c in runner.check_ids()]
    failures = sum(s.failures for s in statuses)
    reasons = sorted({s.last_failure for s in statuses if s.last_failure})[:3]
    await runner.stop()
    await sessions.close()
    _report(
        args, t1 - t0, runs, failures, reasons, lateness, r1.ru_utime - r0.ru_utime,
        r1.ru_stime - r0.ru_stime, r1.ru_maxrss, type(loop).__module__,
    )
    # Why a start can be late besides our own work: collector pauses, and the kernel
    # giving the CPU to someone else (involuntary switches) on a busy machine.
    print(f"GC pauses: {len(pauses)} (by generation {'/'.join(map(str, collections))}), "
          f"longest {max(pauses, default=0.0) * 1e3:.2f} ms, "
          f"total {sum(pauses) * 1e3:.1f} ms; involuntary context switches: "
          f"{r1.ru_nivcsw - r0.ru_nivcsw}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m healthchecks.bench", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--checks", type=int, default=10000)
    ap.add_argument("--kind", choices=("tcp", "http", "ssl", "ssl12"), default="tcp",
                    help="ssl: TLS as the server offers (1.3 with nginx); ssl12: TLS 1.2")
    ap.add_argument("--target", choices=("nginx", "local"),
                    default="nginx" if benchtargets.available() else "local",
                    help="real servers behind nginx in a namespace, or local listeners")
    ap.add_argument("--no-haproxy", action="store_true",
                    help="do not run HAProxy against the same targets afterwards")
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--listeners", type=int, default=32)
    ap.add_argument("--timeout", type=float, default=2.0, help="connect_timeout per check")
    ap.add_argument("--max-concurrency", type=int, default=4096)
    ap.add_argument("--cpu", type=int, default=0,
                    help="pin the checker to this CPU and the listeners to the others (-1: no)")
    ap.add_argument("--workers", type=int, default=0,
                    help="run the checks in this many worker processes (0: in this one)")
    ap.add_argument("--gc", choices=("settle", "freeze", "default"), default="settle",
                    help="once the checks are set up: settle (collect, freeze, raise the "
                         "young threshold: what the daemon and its workers do), freeze "
                         "(gc.freeze() alone) or default (leave the collector alone)")
    ap.add_argument("--gc-gen0", type=int, default=gcsettle.GEN0_THRESHOLD,
                    help="young-generation threshold that --gc settle sets")
    ap.add_argument("--uvloop", action="store_true", help="use uvloop if it is installed")
    ap.add_argument("--zygote", action="store_true",
                    help="with --workers: fork them from a zygote rather than exec them")
    ap.add_argument("--serve", choices=("tcp", "http", "ssl"), help=argparse.SUPPRESS)
    ap.add_argument("--in-netns", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        serve(args.serve, args.listeners)
        return 0
    if args.checks < 1 or args.interval <= 0 or args.duration <= 0 or args.listeners < 1:
        ap.error("--checks, --interval, --duration and --listeners must be positive")
    if args.workers < 0:
        ap.error("--workers must be 0 or more")
    hard = raise_nofile()
    if args.max_concurrency + 64 > hard:
        ap.error(f"--max-concurrency must stay under the open-files limit ({hard})")
    if args.target == "nginx" and not args.in_netns:
        if not benchtargets.available():
            ap.error("--target nginx needs root, nginx and ip")
        return _against_nginx(args, sys.argv[1:] if argv is None else argv)
    if args.kind.startswith("ssl") and args.target == "local":
        ap.error("--kind ssl needs --target nginx")
    if args.in_netns:
        if args.cpu >= 0 and args.cpu in os.sched_getaffinity(0):
            os.sched_setaffinity(0, {args.cpu})
        port = benchtargets.PORTS[args.kind]
        targets = [(a, port) for a in benchtargets.server_addresses(args.checks)]
        return _measure(args, targets)
    cpus = sorted(os.sched_getaffinity(0))
    # Workers would inherit the pinning and share one CPU: they are not pinned.
    pin = args.cpu >= 0 and args.cpu in cpus and len(cpus) > 1 and not args.workers
    server = subprocess.Popen(
        ([] if not pin else ["taskset", "-c", ",".join(str(c) for c in cpus if c != args.cpu)])
        + [sys.executable, "-m", "healthchecks.bench", "--serve", args.kind,
         "--listeners", str(args.listeners)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line:
            print("bench: the listener process failed to start", file=sys.stderr)
            return 1
        if pin:
            os.sched_setaffinity(0, {args.cpu})
        targets = [(a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1])) for a in line.split()]
        _measure(args, targets)
    finally:
        server.terminate()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return 0


def _measure(args: argparse.Namespace, targets: list[tuple[str, int]]) -> int:
    if args.uvloop:
        try:
            import uvloop  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            print("bench: uvloop is not installed; using asyncio's loop", file=sys.stderr)
        else:
            uvloop.install()
    started = time.monotonic()
    if args.zygote and args.workers:
        zygote.Zygote().start()  # before the loop: forked from this small process
    asyncio.run(run_sharded(args, targets) if args.workers else run(args, targets))
    print(f"wall: {time.monotonic() - started:.1f} s, pid {os.getpid()}", flush=True)
    return 0


_PER_1000 = re.compile(r"([0-9.]+) s per 1000 checks")


def _against_nginx(args: argparse.Namespace, argv: list[str]) -> int:
    """Ours, then HAProxy, against the same nginx targets; prints both and the ratio."""
    cpus = sorted(os.sched_getaffinity(0))
    pin = args.cpu >= 0 and args.cpu in cpus and len(cpus) > 1 and not args.workers
    checker_cpu = args.cpu if pin else None
    others = [c for c in cpus if c != args.cpu]
    nginx_cpu = others[0] if pin and others else None
    with benchtargets.Targets(nginx_cpu) as net:
        inner = ["ip", "netns", "exec", net.client, sys.executable, "-m", "healthchecks.bench",
                 *argv, "--in-netns", "--cpu", str(args.cpu)]
        out = subprocess.run(inner, stdout=subprocess.PIPE, text=True, check=False)
        sys.stdout.write(out.stdout)
        if out.returncode != 0:
            return out.returncode
        found = _PER_1000.search(out.stdout)
        if args.no_haproxy or not benchtargets.haproxy_available() or found is None:
            return 0
        ours = float(found.group(1)) / 1000
        addresses = benchtargets.server_addresses(args.checks)
        run = net.haproxy(
            args.kind, addresses, benchtargets.PORTS[args.kind], args.interval, args.timeout,
            warmup=args.interval + 1.0, duration=args.duration, cpu=checker_cpu,
        )
        cpu = run.cpu
        checks = args.checks / args.interval * args.duration  # as scheduled: inter each
        theirs = cpu / checks
        print(f"{_haproxy_version()} against the same targets: " + (
            f"every server passed a check {run.settled:.1f} s after its warm-up"
            if run.settled is not None else "not every server passed a check"
        ) + f"; {run.up} of {args.checks} servers UP (check status: {run.status}); "
              f"CPU {cpu:.2f} s in {args.duration:.1f} s "
              f"({100 * cpu / args.duration:.0f}% of one core), "
              f"{theirs * 1e6:.1f} us per check at the scheduled {args.checks / args.interval:.0f}"
              f"/s; load average {os.getloadavg()[0]:.1f}")
        if theirs:
            print(f"ratio: {ours * 1e6:.1f} us / {theirs * 1e6:.1f} us = "
                  f"{ours / theirs:.2f}x HAProxy's CPU per check")
        else:
            print("ratio: n/a (HAProxy's CPU stayed below the clock tick; run longer)")
    return 0


def _haproxy_version() -> str:
    out = subprocess.run(["haproxy", "-v"], capture_output=True, text=True, check=False).stdout
    m = re.search(r"version (\S+)", out)
    return f"HAProxy {m.group(1)}" if m else "HAProxy"


if __name__ == "__main__":
    raise SystemExit(main())
