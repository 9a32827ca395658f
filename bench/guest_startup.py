"""Benchmark: `hacluster run` on the ipvs dataplane in the QEMU guest, exec to VIP and to table.

Boots the guest (deploy/vm/prepare.sh must have run) and, inside it, starts `hacluster
run` with one address-owner VRRP instance (its VIP is added the moment the instance
runs) and one IPVS virtual server of N real servers, several times. It prints, per run,
how long after the exec the VIP was on the interface and the service in the kernel's
IPVS table (`/proc/net/ip_vs`), and the median of each stage the processes traced
(`hacluster.startuptrace`: the supervisor, the VRRP role, the balancer), so that the
balancer's share shows. Python in the guest runs some 30 times slower than on the host;
the figures are the guest's. Nothing is asserted; run as root:

    .venv/bin/python bench/guest_startup.py [--runs 3] [--rounds 1] [--servers 3]
        [--compiled] [--compare OTHER_TREE]

`--compiled` compiles the packages' bytecode first (into a cache on the guest's tmpfs,
`PYTHONPYCACHEPREFIX`), as an installed package has it; without it, the first run
compiles what it imports into the agent's cache (`hacluster.lab.vm_agent`), and the
others read it. `--compare TREE` measures another source tree too (e.g. an older
commit, unpacked with `git archive`), in the same guest, rounds alternating, and prints
both trees' medians side by side.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import hacluster
from hacluster.lab.vm import REPO, Guest, GuestImage

VIP = "10.79.0.100"
PROC_KEY = "0A4F0064:0050"  # 10.79.0.100:80 as /proc/net/ip_vs writes it
PYCACHE = "/tmp/hc-bench-pyc"
SETUP = """
ip link show hcg0 >/dev/null 2>&1 || {
    ip link add hcg0 type veth peer name hcg1
    ip addr add 10.79.0.1/24 dev hcg0
    ip link set hcg0 up
    ip link set hcg1 up
}
"""


def config(servers: int, sock: str) -> str:
    lines = [
        "global_defs:",
        "  router_id: bench",
        "  dataplane: ipvs",
        f"  control_socket: {sock}",
        "vrrp_instances:",
        "  VI_1:",
        "    interface: hcg0",
        "    virtual_router_id: 52",
        "    priority: 255",
        "    advert_int: 1",
        f"    virtual_ipaddress: [{VIP}/24]",
        "virtual_servers:",
        f"  - ip: {VIP}",
        "    port: 80",
        "    lb_algo: rr",
        "    lb_kind: NAT",
        "    real_servers:",
    ]
    for i in range(servers):
        lines.append(f"      - {{ip: 10.80.{i // 250}.{i % 250 + 1}, port: 80, "
                     "TCP_CHECK: {connect_timeout: 1}}")
    return "\n".join(lines) + "\n"


def _has_vip() -> bool:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", "hcg0"],
                         capture_output=True, text=True, check=False).stdout
    return f"{VIP}/" in out


def _has_service() -> bool:
    with open("/proc/net/ip_vs") as f:
        return PROC_KEY in f.read()


def one_run(servers: int, env: dict[str, str], timeout: float) -> dict[str, float]:
    """Seconds after the exec: "VIP", "IPVS service", and each traced stage."""
    work = Path(tempfile.mkdtemp(prefix="hc-bench-"))
    conf = work / "hacluster.yaml"
    conf.write_text(config(servers, str(work / "hc.sock")))
    trace = work / "trace"
    hacluster = str(Path(sys.executable).with_name("hacluster"))
    found: dict[str, float] = {}
    started = time.time()
    with open(work / "log", "wb") as log:
        proc = subprocess.Popen([hacluster, "run", "-f", str(conf)],
                                env={**env, "HACLUSTER_STARTUP_TRACE": str(trace)},
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        while len(found) < 2 and time.time() - started < timeout:
            if proc.poll() is not None:
                raise RuntimeError("hacluster exited:\n" + (work / "log").read_text())
            if "VIP" not in found and _has_vip():
                found["VIP"] = time.time() - started
            if "IPVS service" not in found and _has_service():
                found["IPVS service"] = time.time() - started
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        subprocess.run(["ipvsadm", "-C"], check=False)
    for line in trace.read_text().splitlines() if trace.exists() else ():
        stamp, _pid, _cpu, stage = line.split(" ", 3)
        found.setdefault(stage, float(stamp) - started)
    return found


def inside(args: argparse.Namespace) -> int:
    subprocess.run(["sh", "-c", SETUP], check=True)
    env = dict(os.environ)
    if args.compiled:
        env["PYTHONPYCACHEPREFIX"] = PYCACHE
        t = time.monotonic()
        tree = Path(hacluster.__file__).resolve().parents[1]  # the tree measured
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0",
                        *(str(tree / p) for p in ("hacluster", "vrrp", "healthchecks"))],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        print(f"bytecode compiled in the guest in {time.monotonic() - t:.1f} s")
    runs = []
    for i in range(args.runs):
        found = one_run(args.servers, env, args.timeout)
        runs.append(found)
        print(f"run {i + 1}: VIP after {found.get('VIP', float('nan')):.1f} s, "
              f"IPVS service after {found.get('IPVS service', float('nan')):.1f} s", flush=True)
    at: dict[str, list[float]] = defaultdict(list)
    for found in runs:
        for stage, t in found.items():
            at[stage].append(t)
    print(f"median seconds after exec ({args.runs} runs, {args.servers} real servers, "
          f"bytecode {'compiled first' if args.compiled else 'as the agent caches it'}):")
    for stage, values in sorted(at.items(), key=lambda kv: statistics.median(kv[1])):
        print(f"  {statistics.median(values):7.2f}  {stage}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per round (3)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds (1)")
    parser.add_argument("--servers", type=int, default=3)
    parser.add_argument("--compiled", action="store_true")
    parser.add_argument("--compare", type=Path, default=None, metavar="TREE",
                        help="another source tree (e.g. `git archive` of an older commit), "
                        "measured in the same guest, rounds alternating with this one")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        return inside(args)
    trees = [("this tree", REPO)]
    if args.compare is not None:
        trees.insert(0, (f"{args.compare}", args.compare.resolve()))
    figures: dict[str, list[tuple[float, float]]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="hcvm-bench-") as workdir:
        guest = Guest(GuestImage.find(), workdir=Path(workdir))
        guest.start()
        try:
            print(f"guest kernel {guest.info['kernel']}: booted in {guest.boot_seconds:.1f} s")
            for round_ in range(args.rounds):
                for label, tree in trees:
                    print(f"=== {label}, round {round_ + 1}", flush=True)
                    argv = [str(guest.python), str(REPO / "bench" / "guest_startup.py"),
                            "--inside", "--runs", str(args.runs), "--servers",
                            str(args.servers), "--timeout", str(args.timeout)]
                    argv += ["--compiled"] if args.compiled else []
                    result = guest.run(argv, timeout=args.runs * (args.timeout + 150) + 600,
                                       check=False, env={"PYTHONPATH": str(tree)})
                    sys.stdout.write(result.stdout)
                    sys.stderr.write(result.stderr)
                    if result.returncode != 0:
                        return result.returncode
                    for line in result.stdout.splitlines():
                        words = line.replace(",", "").split()
                        if line.startswith("run ") and len(words) == 11:
                            figures[label].append((float(words[4]), float(words[9])))
        finally:
            guest.close()
    print(f"\nmedian seconds after exec, {args.servers} real servers:")
    for label, runs in figures.items():
        vip = statistics.median(v for v, _ in runs)
        table = statistics.median(t for _, t in runs)
        gap = statistics.median(t - v for v, t in runs)
        print(f"  {label}: VIP {vip:.1f}, IPVS service {table:.1f}, "
              f"table after VIP {gap:.1f} ({len(runs)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
