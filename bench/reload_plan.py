"""Reload planning benchmark: how long a reload's pure part takes with many real servers.

Builds a configuration of N real servers under TCP_CHECK (and HTTP_GET on every tenth),
then times, for a few typical edits, the one diff (`diff_configs`), the load balancer's
`prepare` (lowering checks again only where the diff says the context changed) and the
balancer plan (`plan_balancer_reload`). Nothing runs and nothing is asserted:

    .venv/bin/python bench/reload_plan.py [--servers 5000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import yaml

from hacluster.config.diff import diff_configs
from hacluster.config.loader import parse_config
from hacluster.config.model import Config
from hacluster.loadbalancer import prepare
from hacluster.reload_balancer import plan_balancer_reload
from hacluster.reload_checks import RunningServer


def config(servers: int, *, weight_of_first: int = 1, algo: str = "wrr",
           script_user: str | None = None) -> Config:
    per_vs = 250
    vss = []
    for v in range(max(1, servers // per_vs)):
        reals = []
        for i in range(per_vs):
            n = v * per_vs + i
            rs: dict[str, object] = {
                "ip": f"10.{n // 65536 + 1}.{n // 256 % 256}.{n % 256}", "port": 80,
                "weight": weight_of_first if n == 0 else 1,
                "TCP_CHECK": {"delay_loop": 1, "connect_timeout": 1},
            }
            if n % 10 == 0:
                rs["HTTP_GET"] = {"url": [{"path": "/health", "status_code": 200}],
                                  "delay_loop": 1}
            reals.append(rs)
        vss.append({"ip": f"10.200.{v // 256}.{v % 256}", "port": 80, "lb_algo": algo,
                    "lb_kind": "NAT", "real_servers": reals})
    doc: dict[str, object] = {"virtual_servers": vss}
    if script_user is not None:
        doc["global_defs"] = {"script_user": script_user}
    return parse_config(yaml.safe_dump(doc, sort_keys=False), "bench.yaml")


def timed(fn: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--servers", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    old = config(args.servers)
    wanted = prepare(old)
    running = {k: RunningServer(True, w.plans) for k, w in wanted.items()}
    print(f"{len(wanted)} real servers, load average {os.getloadavg()[0]:.2f}")
    print(f"{'edit':<34}{'diff':>9}{'prepare':>10}{'plan':>9}  (ms, median of "
          f"{args.runs})")
    edits = {
        "none (the same file)": config(args.servers),
        "one real server's weight": config(args.servers, weight_of_first=5),
        "every scheduler": config(args.servers, algo="rr"),
        "a global setting (script_user)": config(args.servers, script_user="nobody"),
    }
    for what, new in edits.items():
        d = diff_configs(old, new)
        t_diff = timed(lambda new=new: diff_configs(old, new), args.runs)  # type: ignore[misc]
        t_prep = timed(lambda new=new, d=d: prepare(new, wanted, d), args.runs)  # type: ignore[misc]
        after = {k: w.plans for k, w in prepare(new, wanted, d).items()}
        t_plan = timed(lambda new=new, d=d, after=after: plan_balancer_reload(  # type: ignore[misc]
            old, new, running, diff=d, after=after), args.runs)
        plan = plan_balancer_reload(old, new, running, diff=d, after=after)
        print(f"{what:<34}{t_diff:>9.1f}{t_prep:>10.1f}{t_plan:>9.1f}  "
              f"services changed {len(plan.services_changed)}, checks kept "
              f"{len(plan.checks.kept)}, restarted {len(plan.checks.changed)}")


if __name__ == "__main__":
    main()
