"""LoadBalancer with its checks in worker processes: same table, status and metrics; a killed
worker is replaced with no flap and no dataplane operation.

Real listeners on 127.0.0.1 and real worker processes; the memory backend records what
the load balancer applies.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from hacluster.config.loader import parse_config
from hacluster.loadbalancer import LoadBalancer, checker_processes
from hacluster.metrics import Metrics
from tests.unit.test_loadbalancer import FAST, Recording, Tcp, make_config, tcps, wait_until

__all__ = ["tcps"]  # the fixture, used by name


def test_worker_count_follows_the_check_rate_capped_at_the_cpus() -> None:
    def cfg(servers: int, delay: float, workers: int | None = None) -> int:
        rs = "\n".join(f"      - {{ip: 10.0.{i // 250}.{i % 250 + 1}, port: 80, "
                       f"TCP_CHECK: {{delay_loop: {delay}}}}}" for i in range(servers))
        g = "" if workers is None else f"global_defs: {{checker_processes: {workers}}}\n"
        text = g + "virtual_servers:\n  - ip: 10.9.0.1\n    port: 80\n    real_servers:\n" + rs
        return checker_processes(parse_config(text, "t.yaml"), cpus=4)

    assert cfg(10, 1) == 1
    assert cfg(5000, 1) == 2
    assert cfg(20000, 0.5) == 4  # capped at the CPU count
    assert cfg(5000, 1, workers=0) == 0
    assert cfg(10, 1, workers=3) == 3
    assert checker_processes(parse_config("{}", "t.yaml")) == 0  # nothing to check


def test_the_cap_is_the_cpus_this_process_may_run_on() -> None:
    # Pinned to one CPU (as systemd's CPUAffinity= or taskset would), 20,000 checks a
    # second get one worker, not one per CPU of the machine.
    code = (
        "import os\n"
        "from hacluster.config.loader import parse_config\n"
        "from hacluster.loadbalancer import checker_processes\n"
        "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
        "rs = ''.join(f'      - {{ip: 10.0.{i // 250}.{i % 250 + 1}, port: 80, '\n"
        "             'TCP_CHECK: {delay_loop: 0.5}}\\n' for i in range(10000))\n"
        "text = 'virtual_servers:\\n  - ip: 10.9.0.1\\n    port: 80\\n    real_servers:\\n'\n"
        "print(checker_processes(parse_config(text + rs, 't.yaml')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "1"


async def test_checks_running_returns_once_the_workers_run(tmp_path: Path,
                                                           tcps: list[Tcp]) -> None:
    # What the balancer role waits for before it says it is ready (and the supervisor
    # sends READY): its check workers are there, not only asked for.
    config = make_config(tmp_path, [tcps[0].rs(weight=3)])
    lb = LoadBalancer(config, Recording(), metrics=Metrics(process=False), workers=2)
    await lb.start()
    try:
        await lb.checks_running()
        assert lb._sharded is not None
        pids = lb._sharded.worker_pids
        assert len(pids) == 2
        for pid in pids:
            os.kill(pid, 0)  # alive
    finally:
        await lb.stop()


async def test_killed_worker_replaced_without_a_flap(tmp_path: Path, tcps: list[Tcp]) -> None:
    live = tcps[0]
    dead = Tcp()  # a port nobody listens on: refused
    await dead.start()
    await dead.stop()
    config = make_config(tmp_path, [
        live.rs(weight=3, alpha=True),  # down until it passes, then up
        {"ip": "127.0.0.1", "port": dead.port, "weight": 2, "TCP_CHECK": dict(FAST)},
    ])
    backend = Recording()
    metrics = Metrics(process=False)
    lb = LoadBalancer(config, backend, metrics=metrics, workers=1)
    await lb.start()
    try:
        await wait_until(lambda: backend.weights() == {live.name: 3}, 10)
        assert lb._sharded is not None
        [pid] = lb._sharded.worker_pids
        applied = len(backend.ops())
        os.kill(pid, signal.SIGKILL)
        await wait_until(lambda: lb._sharded is not None
                         and lb._sharded.worker_pids not in ([], [pid]), 10)
        # Several check intervals of the new worker: the table is not touched, and
        # neither server changes state.
        await asyncio.sleep(1.0)
        assert len(backend.ops()) == applied
        assert backend.weights() == {live.name: 3}
        await lb.refresh(max_age=0)
        rows = {r["name"]: r for r in lb.status()["virtual_servers"][0]["real_servers"]}
        assert rows[live.name]["up"] and not rows[dead.name]["up"]
        check = rows[dead.name]["checks"][0]
        assert check["ok"] is False and check["runs"] >= 1
        assert check["duration_seconds"] is not None
        await wait_until(lambda: lb.counters["checks"] > 10, 5)
        text = metrics.render()[0].decode()
        assert 'hacluster_checks_total{checker="TCP_CHECK",result="success"}' in text
    finally:
        await lb.stop()
