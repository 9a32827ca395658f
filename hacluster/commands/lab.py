"""`hacluster lab up / drill / down`: the director-pair namespace lab and its failover drills."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hacluster.lab.drill import DrillSpec
    from hacluster.lab.topology import Topology

DEFAULT_PREFIX = "hclab"
DRILL_PREFIX = "hcdrill"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from hacluster.lab.topology import DEFAULT_STATE_DIR

    parser.description = (
        "A network-namespace lab on this machine: two directors running hacluster, real "
        "servers and a client, and failover drills over it. Needs root, ip and nft."
    )
    sub = parser.add_subparsers(dest="lab_command", required=True, metavar="ACTION")
    up = sub.add_parser("up", help="build the lab and leave it running",
                        description="Build the lab (namespaces, bridges, directors, real "
                        "servers, client) and leave it running; `lab down` removes it.")
    down = sub.add_parser("down", help="stop the lab's processes and remove its namespaces",
                          description="Stop the processes of a lab built by `lab up` and "
                          "remove its namespaces.")
    drill = sub.add_parser("drill", help="build a lab, run the failover drills, remove it",
                           description="Build a lab, run the failover and fault drills "
                           "(real server down, master killed, preempt, hand-over, partition, "
                           "starvation, crash loop, reload under traffic), print a verdict "
                           "and figures for each, and remove the lab.")
    for p, prefix in ((up, DEFAULT_PREFIX), (down, DEFAULT_PREFIX), (drill, DRILL_PREFIX)):
        p.add_argument("--prefix", default=prefix,
                       help=f"namespace name prefix, 1-8 lowercase letters/digits "
                            f"(default {prefix})")
    for p in (up, down):
        p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                       help=f"where the lab's state file, configs and logs live "
                            f"(default {DEFAULT_STATE_DIR})")
    for p in (up, drill):
        p.add_argument("--advert-int", type=float, default=None,
                       help="VRRP advert interval of the directors, seconds "
                            "(default 0.5 x --time-scale)")
        p.add_argument("--dataplane", choices=("ipvs", "nftables"), default=None,
                       help="what the directors balance with (default: ipvs when this "
                            "kernel has IPVS, else nftables)")
        p.add_argument("--time-scale", type=float, default=1.0, metavar="F",
                       help="multiply every lab timing (check intervals and timeouts, the "
                            "client's pacing and timeouts, settle times and bounds) by F, "
                            "for a slow machine or VM (default 1)")
        p.add_argument("--client-rate", type=float, default=None, metavar="N",
                       help="requests per second the lab client sends through the VIP "
                            "(default 100 / --time-scale)")
    drill.add_argument("--drills", default=None, metavar="NAME,...",
                       help="which drills to run, by name or number, in catalogue order: "
                            + ", ".join(f"{d.number} {d.name}" for d in _catalogue())
                            + " (default all)")
    drill.add_argument("--only", default=None, metavar="N,...",
                       help="the same as --drills (kept for scripts that use it)")
    drill.add_argument("--json", type=Path, default=None, metavar="FILE",
                       help="also write the results (verdicts, checks, figures) as JSON")


def _catalogue() -> tuple[DrillSpec, ...]:
    from hacluster.lab.drill import CATALOGUE

    return CATALOGUE


def run(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("hacluster lab: needs root (it creates network namespaces)", file=sys.stderr)
        return 1
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            print(f"hacluster lab: `{tool}` not found: run deploy/install-deps.sh",
                  file=sys.stderr)
            return 1
    if not re.fullmatch(r"[a-z][a-z0-9]{0,7}", args.prefix):
        print(f"hacluster lab: --prefix must be 1-8 lowercase letters/digits, starting with "
              f"a letter: {args.prefix!r}", file=sys.stderr)
        return 2
    if args.lab_command != "down":
        if not 0.1 <= args.time_scale <= 100:
            print("hacluster lab: --time-scale must be between 0.1 and 100", file=sys.stderr)
            return 2
        if args.client_rate is not None and not 0.5 <= args.client_rate <= 1000:
            print("hacluster lab: --client-rate must be between 0.5 and 1000 requests/s",
                  file=sys.stderr)
            return 2
        if args.advert_int is not None and not 0.01 <= args.advert_int <= 40:
            print("hacluster lab: --advert-int must be between 0.01 and 40 seconds",
                  file=sys.stderr)
            return 2
    if args.lab_command == "up":
        return _up(args)
    if args.lab_command == "down":
        return _down(args)
    return _drill(args)


class _Stop(Exception):
    """SIGTERM or SIGHUP arrived: clean up as after Ctrl-C."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def _hold_signals() -> None:
    """Nothing may interrupt a teardown once it has begun."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)


def _drill(args: argparse.Namespace) -> int:
    from hacluster.lab.drill import as_json, run_drills, select, summary
    from hacluster.lab.faults import FaultDrills
    from hacluster.lab.netns import Lab, LabError, sweep
    from hacluster.lab.topology import build

    if args.drills is not None and args.only is not None:
        print("hacluster lab drill: give --drills or --only, not both", file=sys.stderr)
        return 2
    option = "--only" if args.only is not None else "--drills"
    try:
        only = select(args.only or args.drills or "all")
    except ValueError as exc:
        print(f"hacluster lab drill: {option}: {exc}", file=sys.stderr)
        return 2
    from hacluster.lab.topology import DEFAULT_STATE_DIR, state_file

    if state_file(DEFAULT_STATE_DIR, args.prefix).exists():
        # Its namespaces carry the pid of the `lab up` that exited: they would look like
        # leftovers of a crashed drill.
        print(f"hacluster lab drill: prefix {args.prefix} belongs to a lab made by `hacluster "
              f"lab up`; choose another --prefix", file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_stop)
    leftovers = sweep(args.prefix)
    if leftovers:
        print(f"removed {len(leftovers)} namespaces left by an earlier crashed run")
    topo, why = _topology(args)
    lab = Lab(args.prefix)
    started = time.monotonic()
    status = 1
    try:
        print(f"building the lab (namespaces {lab.tag}-*): 2 directors running "
              f"`hacluster run` (dataplane {topo.dataplane}: {why}), 3 real servers, 1 client"
              + (f"; timings x{args.time_scale:g}" if args.time_scale != 1 else "")
              + f"; advert_int {topo.advert_int:g} s", flush=True)
        run = build(topo, lab)
        results = run_drills(FaultDrills(run, sys.stdout), only)
        summary(results, sys.stdout)
        if args.json is not None:
            args.json.write_text(json.dumps(as_json(results), indent=1) + "\n")
        status = 0 if results and all(r.passed for r in results) else 1
    except (KeyboardInterrupt, _Stop) as exc:
        print(f"\ninterrupted ({str(exc) or 'Ctrl-C'}): removing the lab", flush=True)
        status = 130
    except (LabError, OSError) as exc:
        print(f"hacluster lab drill: {exc}", file=sys.stderr, flush=True)
        status = 1
    finally:
        _hold_signals()
        try:
            lab.close()
        except LabError as exc:
            print(f"hacluster lab drill: {exc}", file=sys.stderr)
            status = status or 1
    print(f"lab removed; {time.monotonic() - started:.1f} s in all", flush=True)
    return status


def _up(args: argparse.Namespace) -> int:
    from hacluster.lab.netns import Lab, LabError, list_namespaces
    from hacluster.lab.topology import build, state_file, teardown, write_state

    path = state_file(args.state_dir, args.prefix)
    if path.exists() or list_namespaces(args.prefix):
        if list_namespaces(args.prefix):
            print(f"hacluster lab up: a lab with prefix {args.prefix} is already up; "
                  f"run `hacluster lab down --prefix {args.prefix}` first", file=sys.stderr)
            return 1
        teardown(args.prefix, args.state_dir)  # a stale state file of a lab that is gone
    workdir = args.state_dir / args.prefix
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_stop)
    topo, _ = _topology(args)
    lab = Lab(args.prefix, workdir=workdir)
    try:
        run = build(topo, lab)
        write_state(run, path)
        # Both bounds scale with --time-scale (a slow machine or VM): the balancer, in
        # its own process, may install the table a while after the VIPs came.
        master = run.wait_state(topo.directors[0].name, "MASTER", topo.startup)
        answer = None
        deadline = time.monotonic() + topo.startup
        while master is not None and time.monotonic() < deadline:
            answer = run.probe()
            if answer is not None and answer.ok:
                break
            time.sleep(0.5)
        write_state(run, path)
    except (KeyboardInterrupt, _Stop, LabError, OSError) as exc:
        _hold_signals()
        print(f"hacluster lab up: {str(exc) or 'interrupted'}: removing the lab", file=sys.stderr)
        try:
            lab.close()
        finally:
            teardown(args.prefix, args.state_dir)
        return 1
    _hold_signals()
    a, b = (d.name for d in topo.directors)
    client = run.ns["client"].name
    print(f"lab {args.prefix} is up: VIP {topo.vip}:{topo.port}; "
          f"{a} {run.vrrp_state(a)}, {b} {run.vrrp_state(b)}")
    for role, ns in run.ns.items():
        print(f"  {role:<7} {ns.name}")
    print(f"  ask through the VIP:  ip netns exec {client} {sys.executable} -m "
          f"hacluster.lab.client --host {topo.vip} --once")
    if shutil.which("curl"):
        print(f"                        ip netns exec {client} curl -si http://{topo.vip}/")
    table = ("ipvsadm -L -n" if topo.dataplane == "ipvs" else "nft list table inet hacluster")
    print(f"  a director's table:   ip netns exec {run.ns['lvsa'].name} {table}")
    print(f"  configs, logs, status: {workdir}/")
    print(f"  remove it:            hacluster lab down --prefix {args.prefix}"
          + ("" if args.state_dir == _default_state_dir() else
             f" --state-dir {args.state_dir}"))
    if answer is None or not answer.ok:
        why = "no director became MASTER" if master is None else (
            f"the VIP does not answer ({answer.error if answer else 'no answer'})")
        print(f"\nthe lab is up but not serving: {why}", file=sys.stderr)
        for line in run.diagnose():
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"  answered: {answer.rs} via {answer.director}")
    return 0


def _topology(args: argparse.Namespace) -> tuple[Topology, str]:
    """The lab's topology from the arguments, and why it uses the dataplane it uses."""
    from hacluster.lab.topology import Topology

    fields: dict[str, object] = {"prefix": args.prefix}
    if args.advert_int is not None:
        fields["advert_int"] = args.advert_int
    if args.client_rate is not None:
        # Up to 4 workers, each sending one request at a time at its own pace.
        workers = max(1, min(4, round(args.client_rate)))
        fields["client_workers"] = workers
        fields["client_interval"] = workers / args.client_rate
    if args.dataplane is not None:
        fields["dataplane"], why = args.dataplane, "chosen with --dataplane"
    else:
        problem = _ipvs_problem()
        fields["dataplane"] = "nftables" if problem else "ipvs"
        why = f"no IPVS here: {problem}" if problem else "this kernel has IPVS"
    return Topology.paced(args.time_scale, **fields), why


def _ipvs_problem() -> str | None:
    """None when this kernel's IPVS can be driven, else why not (in a few words)."""
    import asyncio

    if Path("/proc/net/ip_vs").exists():
        # ip_vs is loaded: no need to import pyroute2 (seconds on a slow machine) to ask.
        return None
    try:
        from hacluster.ipvs.netlink import probe
    except ImportError as exc:
        return f"the netlink backend cannot be loaded ({exc})"
    problem = asyncio.run(probe())
    if problem is None:
        return None
    return "the kernel has no IPVS" if problem.startswith("the kernel has no IPVS") else problem


def _default_state_dir() -> Path:
    from hacluster.lab.topology import DEFAULT_STATE_DIR

    return DEFAULT_STATE_DIR


def _down(args: argparse.Namespace) -> int:
    from hacluster.lab.topology import state_file, teardown

    _hold_signals()
    had_state = state_file(args.state_dir, args.prefix).exists()
    report = teardown(args.prefix, args.state_dir)
    if not had_state and not report.namespaces:
        print(f"no lab with prefix {args.prefix} (no state file in {args.state_dir}, "
              "no namespaces)")
        return 0
    print(f"lab {args.prefix} removed: stopped {len(report.stopped)} processes"
          + (f" ({', '.join(report.stopped)})" if report.stopped else "")
          + f", deleted {len(report.namespaces)} namespaces")
    for problem in report.problems:
        print(f"  problem: {problem}", file=sys.stderr)
    return 1 if report.problems else 0
