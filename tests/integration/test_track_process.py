"""vrrp_track_process with real processes: started, renamed (prctl PR_SET_NAME and
/proc/self/comm), forked and ended, followed through the kernel's process-events
connector in the initial network namespace; in another namespace the connector
refuses and /proc is polled (said in the log)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from hacluster.config.loader import parse_config
from hacluster.lab.netns import Lab, sweep
from hacluster.proc_events import ProcessMonitor
from hacluster.tracking import TrackChange, Tracking
from tests.integration.vrrp_director import PairLab, config_yaml, instance_yaml
from vrrp.machine import FaultCleared, FaultRaised, PriorityChanged

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the proc connector needs root")

NAME = f"hct{os.getpid() % 100000}"  # a process name nothing else on the machine has

# A child that obeys lines on stdin: "prctl NAME", "comm NAME", "fork", "exit".
CHILD = textwrap.dedent("""
    import ctypes, os, sys
    libc = ctypes.CDLL(None)
    kids = []
    for line in sys.stdin:
        word, _, arg = line.strip().partition(" ")
        if word == "prctl":
            libc.prctl(15, arg.encode(), 0, 0, 0)   # PR_SET_NAME
        elif word == "comm":
            with open("/proc/self/comm", "w") as f:
                f.write(arg)
        elif word == "fork":
            pid = os.fork()
            if pid == 0:
                os.read(0, 1)  # the child lives until stdin closes
                os._exit(0)
            kids.append(pid)
        print("ok", flush=True)
    for pid in kids:
        os.waitpid(pid, 0)
""")


class Child:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True,
        )

    def do(self, line: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok"

    def end(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture
def children() -> Iterator[list[Child]]:
    made: list[Child] = []
    yield made
    for c in made:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait()


async def wait_for(changes: list[TrackChange], wanted: TrackChange, timeout: float = 5) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while wanted not in changes:
        if loop.time() > deadline:
            raise AssertionError(f"{wanted} not seen; got {changes}")
        await asyncio.sleep(0.01)


def config(extra: str = "") -> str:
    return (
        "vrrp_track_processes:\n"
        f"  two: {{process: {NAME}, quorum: 2, weight: -20}}\n"
        f"  one: {{process: {NAME}x, quorum_max: 1{extra}}}\n"
        "vrrp_instances:\n  VI_1:\n    interface: eth0\n    virtual_router_id: 1\n"
        "    virtual_ipaddress: [10.0.0.1/24]\n    track_process: [two, one]\n"
    )


async def test_processes_starting_renamed_forked_and_exiting(
    children: list[Child], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "hacluster.track_process")
    changes: list[TrackChange] = []
    tracking = Tracking(parse_config(config()), changes.append)
    await tracking.start()
    try:
        assert "following process events (proc connector)" in caplog.text
        # nothing runs yet: "two" lacks its quorum (-20), "one" too (weight 0: FAULT)
        assert TrackChange("VI_1", PriorityChanged(-20)) in changes
        assert TrackChange("VI_1", FaultRaised("track_process one quorum lost")) in changes
        changes.clear()

        a = Child()
        children.append(a)
        a.do(f"prctl {NAME}x")  # one process named NAMEx: quorum 1..1 holds
        await wait_for(changes, TrackChange("VI_1", FaultCleared("track_process one quorum lost")))

        b = Child()
        children.append(b)
        b.do(f"comm {NAME}x")  # a second one: above quorum_max
        await wait_for(changes, TrackChange("VI_1", FaultRaised("track_process one quorum lost")))
        b.do(f"comm {NAME}")  # renamed away from NAMEx, into NAME: one of two
        await wait_for(changes, TrackChange("VI_1", FaultCleared("track_process one quorum lost")),)
        assert PriorityChanged(0) not in [c.event for c in changes]

        b.do("fork")  # the child is a NAME too: two of two
        await wait_for(changes, TrackChange("VI_1", PriorityChanged(0)))
        changes.clear()
        b.end()  # parent and child exit
        await wait_for(changes, TrackChange("VI_1", PriorityChanged(-20)))
        a.end()
        await wait_for(changes, TrackChange("VI_1", FaultRaised("track_process one quorum lost")))
    finally:
        await tracking.stop()


async def test_terminate_delay_hides_a_quick_restart(children: list[Child]) -> None:
    states: list[tuple[str, bool]] = []
    cfg = parse_config(config(", terminate_delay: 1.0"))
    first = Child()
    children.append(first)
    first.do(f"prctl {NAME}x")
    monitor = ProcessMonitor(cfg.vrrp_track_processes, lambda n, up: states.append((n, up)))
    await monitor.start()
    try:
        assert ("one", True) in states
        states.clear()
        first.end()
        second = Child()  # the restart, well inside the delay
        children.append(second)
        second.do(f"prctl {NAME}x")
        await asyncio.sleep(1.5)
        assert ("one", False) not in states
        second.end()
        loop = asyncio.get_running_loop()
        gone = loop.time()
        while ("one", False) not in states:
            assert loop.time() - gone < 5
            await asyncio.sleep(0.01)
        assert loop.time() - gone >= 0.9  # the delay held the loss back
        assert monitor.events > 0
    finally:
        await monitor.stop()


@pytest.mark.netns
def test_outside_the_initial_namespace_it_polls_and_says_so(tmp_path: Path) -> None:
    sweep("hctp")
    script = tmp_path / "poll.py"
    script.write_text(textwrap.dedent(f"""
        import asyncio, logging, subprocess, sys
        from hacluster.config.loader import parse_config
        from hacluster.proc_events import ProcessMonitor
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        cfg = parse_config({config()!r})
        async def main():
            seen = []
            m = ProcessMonitor(cfg.vrrp_track_processes, lambda n, up: seen.append((n, up)),
                               poll_interval=0.2)
            await m.start()
            p = subprocess.Popen([sys.executable, "-c",
                "import ctypes,time; ctypes.CDLL(None).prctl(15, b'{NAME}x', 0, 0, 0);"
                "time.sleep(30)"])
            for _ in range(100):
                if ("one", True) in seen:
                    break
                await asyncio.sleep(0.1)
            p.kill(); p.wait()
            for _ in range(100):
                if seen[-1] == ("one", False):
                    break
                await asyncio.sleep(0.1)
            print("MODE", m.mode, "SEEN", seen)
            await m.stop()
        asyncio.run(main())
    """))
    with Lab("hctp") as lab:
        ns = lab.namespace("a")
        out = subprocess.run(
            ["ip", "netns", "exec", ns.name, sys.executable, str(script)],
            capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2],
        )
    assert "MODE poll SEEN [('one', False), ('two', False), ('one', True), ('one', False)]" \
        in out.stdout, out.stdout + out.stderr
    assert "process-events connector refused" in out.stderr
    assert "polling /proc every 0.2s instead" in out.stderr


@pytest.mark.netns
def test_a_daemon_in_a_namespace_faults_without_its_process(pair: PairLab) -> None:
    """End to end: `hacluster run` in a namespace (the connector refuses there, so it
    polls /proc) holds its instance in FAULT while the tracked process is missing."""
    name = f"{NAME}d"
    a = pair.director("a", f"vrrp_track_processes:\n  p: {{process: {name}}}\n"
                      + config_yaml(instance_yaml(extra="track_process: [p]"))).start()
    a.wait_state("FAULT")
    a.wait_log("polling /proc")
    child = subprocess.Popen([sys.executable, "-c",
                              f"import ctypes,time; ctypes.CDLL(None).prctl(15, b'{name}', 0, 0,"
                              " 0); time.sleep(60)"])
    try:
        a.wait_state("MASTER", timeout=10)
    finally:
        child.kill()
        child.wait()
    a.wait_state("FAULT", timeout=10)
