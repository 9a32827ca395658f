"""Start-up benchmark: exec of `hacluster run` to its first VRRP advert on the wire; prints figures.

Two namespaces joined by a veth: the director runs `hacluster run` in one with an
address owner instance (priority 255, so the first advert goes out the moment the
instance runs); a raw IP-protocol-112 socket in the other timestamps adverts in the
kernel (SO_TIMESTAMPNS, CLOCK_REALTIME), compared with the wall-clock time taken just
before the exec. Run with a VRRP-only configuration (--servers 0) and with N real servers
under TCP_CHECK in the same file. Nothing is asserted; run as root:

    .venv/bin/python bench/startup.py [--runs 5] [--servers 0 5000] [--keepalived]

With --keepalived, keepalived 2.2 with the same instance is started turn by turn with
hacluster (exec of `keepalived -n` to its first advert): the anchor, under the same load.

The packages' bytecode is compiled first (`compileall`), as an installed package has
it (pip and deploy/build-deb.sh compile it): a source tree run with
PYTHONDONTWRITEBYTECODE would otherwise compile every module on every start.

The breakdown: the daemon's processes write a timestamp per stage they pass when
HACLUSTER_STARTUP_TRACE names a file (hacluster.startuptrace); the median of each
stage, in ms after the exec, is printed beside the advert's arrival, so that the
supervisor's share (exec -> released) and the role's (released -> first advert) show.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import socket
import statistics
import struct
import sys
import time
from collections import defaultdict
from pathlib import Path

from hacluster.lab.bytecode import compile_tree
from hacluster.lab.keepalived import KeepalivedInstance, render_config
from hacluster.lab.netns import Lab, Netns

SO_TIMESTAMPNS = 35
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)



def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")
HACLUSTER = str(Path(sys.executable).with_name("hacluster"))


def config(servers: int, sock: Path) -> str:
    lines = [
        "global_defs:",
        "  dataplane: nftables",
        f"  control_socket: {sock}",
        "vrrp_instances:",
        "  VI_1:",
        "    interface: d0",
        "    virtual_router_id: 51",
        "    priority: 255",
        "    advert_int: 1",
        "    virtual_ipaddress: [10.83.0.1/32]",
    ]
    if servers:
        lines += ["virtual_servers:", "  - ip: 10.83.0.100", "    port: 80",
                  "    lb_algo: rr", "    lb_kind: NAT", "    real_servers:"]
        for i in range(servers):
            ip = f"10.84.{i // 250}.{i % 250 + 1}"
            lines.append(f"      - {{ip: {ip}, port: 80, TCP_CHECK: {{connect_timeout: 1}}}}")
    return "\n".join(lines) + "\n"


def keepalived_argv(workdir: Path, run: int) -> list[str]:
    """keepalived (VRRP only, foreground) with the same instance: the anchor."""
    conf = workdir / "keepalived.conf"
    conf.write_text(render_config([KeepalivedInstance(
        name="VI_1", interface="d0", virtual_router_id=51, priority=255, state="MASTER",
        version=2, advert_int=1, virtual_ipaddress=("10.83.0.1/32",))], router_id="bench"))
    return ["keepalived", "-P", "-n", "-l", "-D", "-f", str(conf),
            "-p", str(workdir / f"ka-{run}.pid"), "-r", str(workdir / f"ka-vrrp-{run}.pid")]


def first_advert(lab: Lab, director: Netns, argv: list[str], trace: Path,
                 timeout: float = 10.0) -> tuple[float, dict[str, float]]:
    """Seconds from exec to the first advert's arrival on the peer side, and to each
    stage the processes traced."""
    fd = os.open(f"/run/netns/{lab.namespaces[1].name}", os.O_RDONLY)
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        _setns(fd)
        rx = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
    finally:
        _setns(own)
        os.close(fd)
        os.close(own)
    rx.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                  socket.inet_aton("224.0.0.18") + socket.inet_aton("10.83.0.2"))
    rx.settimeout(timeout)
    trace.unlink(missing_ok=True)
    env = dict(os.environ, HACLUSTER_STARTUP_TRACE=str(trace))
    started = time.time()
    proc = lab.start(director, argv, env=env)
    try:
        while True:
            packet, anc, _, _ = rx.recvmsg(2048, 64)
            ihl = (packet[0] & 0x0F) * 4
            if len(packet) < ihl + 3 or packet[ihl + 2] == 0:
                continue  # a priority-0 advert: the previous run resigning
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", data[:16])
                    if sec + nsec / 1e9 >= started:
                        return sec + nsec / 1e9 - started, stages(trace, started)
    except TimeoutError:
        proc.stop(10)
        raise RuntimeError("no advert; daemon output:\n" + proc.output()) from None
    finally:
        rx.close()
        proc.stop(10)
        gone(proc.pid)


def gone(group: int, timeout: float = 60.0) -> None:
    """Wait until every process of the run's group has exited: with thousands of real
    servers its check workers and balancer outlive the supervisor by seconds on a busy
    machine, holding its lock (the next run would be refused) and the CPU."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.killpg(group, signal.SIGKILL)


def stages(trace: Path, started: float) -> dict[str, float]:
    """Seconds after `started` at which each traced stage was first reached, and (as
    "cpu: STAGE") the CPU seconds its process had used by then."""
    found: dict[str, float] = {}
    for _ in range(50):  # the role's last line may come a moment after its advert
        if trace.exists() and "instances running" in trace.read_text():
            break
        time.sleep(0.01)
    for line in trace.read_text().splitlines() if trace.exists() else ():
        stamp, _pid, cpu, stage = line.split(" ", 3)
        found.setdefault(stage, float(stamp) - started)
        found.setdefault(f"cpu: {stage}", float(cpu))
    return found


def report(servers: int, runs: list[tuple[float, dict[str, float]]]) -> None:
    ms = sorted(t * 1000 for t, _ in runs)
    print(f"{servers:5d} real servers: exec -> first advert "
          f"median {statistics.median(ms):.0f} ms, min {ms[0]:.0f}, max {ms[-1]:.0f} "
          f"({len(runs)} runs)")
    at: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    for total, found in runs:
        for stage, t in found.items():
            (cpu[stage[5:]] if stage.startswith("cpu: ") else at[stage]).append(t * 1000)
        at["first advert on the peer"].append(total * 1000)
    print("      median after exec (and CPU its process had used: since exec, the role's "
          "since its fork)")
    for stage, values in sorted(at.items(), key=lambda kv: statistics.median(kv[1])):
        used = f"  (cpu {statistics.median(cpu[stage]):4.0f} ms)" if stage in cpu else ""
        print(f"      {statistics.median(values):6.0f} ms  {stage}{used}")
    # Each side's share, run by run: the supervisor's (exec -> released) and the role's
    # (released -> first advert on the peer).
    shares = [(found["released"] * 1000, (total - found["released"]) * 1000)
              for total, found in runs if "released" in found]
    if shares:
        print(f"      supervisor exec -> released median "
              f"{statistics.median(s for s, _ in shares):.0f} ms; role released -> first "
              f"advert median {statistics.median(r for _, r in shares):.0f} ms")
    print("      load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--servers", type=int, nargs="+", default=[0, 5000],
                    help="real servers in the file, one configuration per number given")
    ap.add_argument("--no-compile", action="store_true",
                    help="do not compile the bytecode first (measure a bare source tree)")
    ap.add_argument("--compare", type=Path, action="append", default=[], metavar="TREE",
                    help="also run the hacluster, vrrp and healthchecks packages of TREE (e.g. "
                    "`git archive main hacluster vrrp healthchecks | tar -x -C TREE`), "
                    "run for run in turn with this tree's, so that both see the same load")
    ap.add_argument("--keepalived", action="store_true",
                    help="also run keepalived with the same VRRP instance (the anchor; VRRP "
                    "only, whatever --servers says), run for run in turn with the trees")
    args = ap.parse_args()
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    root = Path(__file__).resolve().parent.parent
    trees: dict[str, str | None] = {"this tree": None}
    trees.update({str(tree): str(tree.resolve()) for tree in args.compare})
    if not args.no_compile:
        for base in (root, *args.compare):
            compile_tree(base)
    with Lab("hcst") as lab:
        director, peer = lab.namespace("dir"), lab.namespace("peer")
        lab.veth(director, "d0", peer, "p0")
        lab.add_address(director, "d0", "10.83.0.3/24")
        lab.add_address(peer, "p0", "10.83.0.2/24")
        trace = lab.workdir / "trace"
        for servers in args.servers:
            conf = lab.workdir / f"c{servers}.yaml"
            conf.write_text(config(servers, lab.workdir / "s.sock"))
            runs: dict[str, list[tuple[float, dict[str, float]]]] = {t: [] for t in trees}
            if args.keepalived:
                runs["keepalived"] = []
            for run in range(args.runs):
                for name, path in trees.items():
                    os.environ.pop("PYTHONPATH", None)
                    if path is not None:  # first on the path: before the installed tree
                        os.environ["PYTHONPATH"] = path
                    argv = [HACLUSTER, "run", "-f", str(conf)]
                    runs[name].append(first_advert(lab, director, argv, trace))
                os.environ.pop("PYTHONPATH", None)
                if args.keepalived:
                    argv = keepalived_argv(lab.workdir, run)
                    runs["keepalived"].append(first_advert(lab, director, argv, trace))
            for name, done in runs.items():
                if len(runs) > 1:
                    print(f"{name}:")
                report(0 if name == "keepalived" else servers, done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
