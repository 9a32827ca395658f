"""Functions the VM tests call inside the guest (through its agent): the netlink backend,
the CLI, real servers in guest namespaces and client traffic.

Everything here runs in the QEMU guest, whose kernel has IPVS. One `NetlinkBackend`
lives for the whole session on the agent's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Collection, Sequence

from hacluster.config.loader import parse_config
from hacluster.ipvs.backend import ApplyResult, Op
from hacluster.ipvs.model import IpvsInfo, ServiceKey, Table, TableStats, Timeouts
from hacluster.ipvs.netlink import NetlinkBackend, SyncDaemon, SyncState
from hacluster.ipvs.reconcile import ALL, reconcile
from hacluster.lvs_sync import SyncFollower
from vrrp.machine import State

_backend: NetlinkBackend | None = None
_children: dict[int, subprocess.Popen[bytes]] = {}


def backend() -> NetlinkBackend:
    global _backend
    if _backend is None:
        _backend = NetlinkBackend()
    return _backend


async def dump() -> Table:
    return await backend().dump()


async def stats() -> TableStats:
    return await backend().stats()


async def info() -> IpvsInfo:
    return await backend().info()


async def apply(ops: Sequence[Op]) -> ApplyResult:
    return await backend().apply(ops)


async def flush() -> None:
    await backend().flush()


async def reconcile_to(
    desired: Table, managed: Collection[ServiceKey] | None = None
) -> tuple[list[Op], ApplyResult, Table]:
    """Reconcile the kernel to `desired` (owning `managed` services, default all of them);
    the ops, the result and the table read back afterwards."""
    ops = reconcile(desired, await backend().dump(), managed=ALL if managed is None else managed)
    result = await backend().apply(ops)
    return ops, result, await backend().dump()


async def timed_reconcile(desired: Table) -> tuple[int, float, float, ApplyResult]:
    """Dump, reconcile and apply, timed: (ops, seconds to dump, seconds to apply, result)."""
    started = time.perf_counter()
    actual = await backend().dump()
    dumped = time.perf_counter()
    ops = reconcile(desired, actual, managed=ALL)
    result = await backend().apply(ops)
    return len(ops), dumped - started, time.perf_counter() - dumped, result


async def get_timeouts() -> Timeouts:
    return await backend().get_timeouts()


async def set_timeouts(timeouts: Timeouts) -> None:
    await backend().set_timeouts(timeouts)


_follower: SyncFollower | None = None


async def _settled() -> None:
    assert _follower is not None
    for _ in range(500):
        if _follower.settled:
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("the sync follower did not settle")


async def follower_start(config_yaml: str) -> list[SyncDaemon]:
    """A SyncFollower (global_defs.lvs_sync_daemon at run time) on the session's backend."""
    global _follower
    _follower = SyncFollower(backend(), parse_config(config_yaml, "guest.yaml"))
    await _follower.start()
    return await backend().sync_daemons()


async def follower_state(instance: str, state: str) -> list[SyncDaemon]:
    assert _follower is not None
    _follower.vrrp_state(instance, State[state])
    await _settled()
    return await backend().sync_daemons()


async def follower_stop() -> list[SyncDaemon]:
    global _follower
    if _follower is not None:
        await _follower.stop()
        _follower = None
    return await backend().sync_daemons()


async def sync_daemons() -> list[SyncDaemon]:
    return await backend().sync_daemons()


async def start_sync(daemon: SyncDaemon) -> None:
    await backend().start_sync_daemon(daemon)


async def stop_sync(state: SyncState) -> bool:
    return await backend().stop_sync_daemon(state)


async def follow_sync(daemon: SyncDaemon) -> list[SyncDaemon]:
    await backend().follow_sync_role(daemon)
    return await backend().sync_daemons()


def cli(argv: Sequence[str]) -> tuple[int, str, str]:
    """`hacluster ARGV` run in this process: (exit status, stdout, stderr)."""
    from hacluster.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def spawn(argv: Sequence[str]) -> int:
    """Start a long-running process; its pid (stop it with `stop`)."""
    proc = subprocess.Popen(
        list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _children[proc.pid] = proc
    return proc.pid


def stop(pid: int) -> None:
    proc = _children.pop(pid)
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_listening(address: str, port: int, timeout: float = 20.0) -> None:
    """Wait until something accepts TCP connections on address:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=2.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def connect_many(address: str, port: int, count: int, timeout: float = 5.0) -> Counter[str]:
    """Open `count` TCP connections one after another; what each server answered."""
    answers: Counter[str] = Counter()
    for _ in range(count):
        with socket.create_connection((address, port), timeout=timeout) as conn:
            chunks = []
            while True:
                data = conn.recv(256)
                if not data:
                    break
                chunks.append(data)
        answers[b"".join(chunks).decode().strip() or "<empty>"] += 1
    return answers


def spawn_logged(argv: Sequence[str], log: str) -> int:
    """Start a long-running process whose output goes to the file `log`; its pid (stop
    it with `stop`)."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)
    _children[proc.pid] = proc
    return proc.pid


def signal_pid(pid: int, sig: int) -> None:
    os.kill(pid, sig)


def pids_named(name: str) -> list[int]:
    """The pids of the processes whose name (/proc/PID/comm) is `name`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == name:
                        found.append(int(entry))
            except OSError:
                continue
    return sorted(found)


def ipvs_lines() -> list[str]:
    """The kernel's IPVS table as /proc/net/ip_vs lists it, without its connection
    counts: one line per service and per destination (under its service)."""
    with open("/proc/net/ip_vs") as f:
        lines = f.read().splitlines()[3:]
    out = []
    for line in lines:
        words = line.split()
        if words and words[0] == "->":
            words = words[:4]  # "->", address:port, forward, weight
        out.append(" ".join(words))
    return out


class _TableWatch(threading.Thread):
    """Reads /proc/net/ip_vs every few tens of ms and keeps each table seen, in order."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: list[tuple[str, ...]] = []
        self.reads = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            table = tuple(ipvs_lines())
            self.reads += 1
            if not self.seen or self.seen[-1] != table:
                self.seen.append(table)
            time.sleep(0.02)

    def finish(self) -> tuple[int, list[tuple[str, ...]]]:
        self._done.set()
        self.join()
        return self.reads, self.seen


_watch: _TableWatch | None = None


def watch_start() -> tuple[str, ...]:
    """Start watching the kernel's IPVS table (see `watch_stop`); the table now."""
    global _watch
    _watch = _TableWatch()
    _watch.start()
    while not _watch.seen:
        time.sleep(0.01)
    return _watch.seen[0]


def watch_stop() -> tuple[int, list[tuple[str, ...]]]:
    """How many times the table was read since `watch_start`, and each distinct table
    seen, in order (one: it never changed)."""
    global _watch
    assert _watch is not None
    watch, _watch = _watch, None
    return watch.finish()


def wait_exit(pid: int, timeout: float) -> int | None:
    """Wait for a process `spawn_logged` started to exit (killed after `timeout`); its
    exit status."""
    proc = _children.pop(pid)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()
