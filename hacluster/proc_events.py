"""Process events for vrrp_track_process: the kernel's proc connector, with a /proc scan at start.

Like keepalived, this subscribes to the process-events connector (NETLINK_CONNECTOR,
CN_IDX_PROC: PROC_EVENT_FORK / EXEC / COMM / EXIT), then reads /proc once, and from then
on only reads /proc/PID/comm (and /proc/PID/cmdline when a tracked process matches on its
command line) for a process that just ran a new program. Lost events (ENOBUFS) lead to
a fresh scan. The kernel answers the connector only in the initial network and PID
namespaces, to root; where it refuses, `ProcessMonitor` polls /proc instead and says so
in the log. The counting itself is `hacluster.process_track.ProcessCounter`.

The connector is spoken with a plain socket: pyroute2 has no proc-connector support,
and the messages are three fixed C structs (linux/connector.h, linux/cn_proc.h).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import struct
from collections.abc import Callable, Iterator, Mapping
from typing import Literal

from hacluster.config.model import VrrpTrackProcess
from hacluster.process_track import ProcessCounter, ProcInfo

log = logging.getLogger("hacluster.track_process")

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
NLMSG_DONE = 3
NLMSG_ERROR = 2

PROC_EVENT_FORK = 0x00000001
PROC_EVENT_EXEC = 0x00000002
PROC_EVENT_COMM = 0x00000200
PROC_EVENT_EXIT = 0x80000000

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_CN_MSG = struct.Struct("=IIIIHH")  # idx, val, seq, ack, len, flags
_PROC_EVENT = struct.Struct("=IIQ")  # what, cpu, timestamp_ns
_TWO_PIDS = struct.Struct("=ii")  # pid, tgid (exec, exit, comm start with these)
_FORK = struct.Struct("=iiii")  # parent pid, parent tgid, child pid, child tgid
_CMDLINE_MAX = 4096

Mode = Literal["connector", "poll"]


# --------------------------------------------------------------------------- /proc


def read_proc(pid: int, cmdline: bool) -> ProcInfo | None:
    """One process as /proc shows it now; None when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read(512)
        argv: tuple[str, ...] | None = None
        if cmdline:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                raw = f.read(_CMDLINE_MAX)
            argv = tuple(a.decode(errors="replace") for a in raw.split(b"\0"))
            if argv and argv[-1] == "":
                argv = argv[:-1]
    except OSError:
        return None
    # "PID (COMM) STATE ...": the name may hold spaces and ')', so take the last ')'
    start, end = stat.find(b"("), stat.rfind(b")")
    if start < 0 or end < start or stat[end + 2:end + 3] == b"Z":
        return None
    return ProcInfo(pid, stat[start + 1:end].decode(errors="replace"), argv)


def scan_proc(cmdline: bool) -> Iterator[ProcInfo]:
    """Every running process (not zombies, not threads)."""
    with os.scandir("/proc") as entries:
        for entry in entries:
            if entry.name.isdigit():
                info = read_proc(int(entry.name), cmdline)
                if info is not None:
                    yield info


# --------------------------------------------------------------------------- connector


def subscribe_message() -> bytes:
    """nlmsghdr + cn_msg + PROC_CN_MCAST_LISTEN, as the kernel wants it."""
    op = struct.pack("=I", PROC_CN_MCAST_LISTEN)
    cn = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(op), 0) + op
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(cn), NLMSG_DONE, 0, 0, 0) + cn


def open_connector() -> socket.socket:
    """A non-blocking socket subscribed to process events; OSError when refused."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC,
                         NETLINK_CONNECTOR)
    try:
        sock.bind((0, CN_IDX_PROC))
        sock.send(subscribe_message())
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


ProcEvent = tuple[str, int, int | str]  # ("fork", parent, child) | ("exec", pid, 0) | ...


def parse_events(data: bytes) -> Iterator[ProcEvent]:
    """The process events of one datagram (threads and other messages left out)."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, mtype, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            return
        body = offset + _NLMSGHDR.size
        offset += (length + 3) & ~3
        if mtype in (NLMSG_ERROR, 1) or length < _NLMSGHDR.size + _CN_MSG.size + _PROC_EVENT.size:
            continue
        idx, val, _seq, ack, _len, _fl = _CN_MSG.unpack_from(data, body)
        if (idx, val) != (CN_IDX_PROC, CN_VAL_PROC) or ack:
            continue
        ev = body + _CN_MSG.size
        what, _cpu, _ts = _PROC_EVENT.unpack_from(data, ev)
        at = ev + _PROC_EVENT.size
        if what == PROC_EVENT_FORK and at + _FORK.size <= len(data):
            _ppid, ptgid, cpid, ctgid = _FORK.unpack_from(data, at)
            if cpid == ctgid:  # a new process, not a new thread
                yield ("fork", ptgid, ctgid)
        elif what in (PROC_EVENT_EXEC, PROC_EVENT_EXIT) and at + _TWO_PIDS.size <= len(data):
            pid, tgid = _TWO_PIDS.unpack_from(data, at)
            if pid == tgid:
                yield ("exec" if what == PROC_EVENT_EXEC else "exit", tgid, 0)
        elif what == PROC_EVENT_COMM and at + _TWO_PIDS.size + 16 <= len(data):
            pid, tgid = _TWO_PIDS.unpack_from(data, at)
            raw = data[at + _TWO_PIDS.size:at + _TWO_PIDS.size + 16]
            if pid == tgid:
                yield ("comm", tgid, raw.split(b"\0", 1)[0].decode(errors="replace"))


# --------------------------------------------------------------------------- glue


class ProcessMonitor:
    """Follows the processes of some vrrp_track_processes and reports `on_change(name, up)`.

    `start()` subscribes, scans /proc and reports every starting state before it
    returns. `reconfigure()` takes new specs (unchanged ones keep their state).
    """

    def __init__(
        self,
        specs: Mapping[str, VrrpTrackProcess],
        on_change: Callable[[str, bool], None],
        *,
        poll_interval: float = 1.0,
        use_connector: bool = True,
    ) -> None:
        self._specs = dict(specs)
        self._on_change = on_change
        self._counter = ProcessCounter(self._specs)
        self._poll_interval = poll_interval
        self._use_connector = use_connector
        self._sock: socket.socket | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.mode: Mode = "poll"
        self.events = 0  # process events handled (for tests and status)

    @property
    def counter(self) -> ProcessCounter:
        return self._counter

    def states(self) -> dict[str, bool]:
        return self._counter.states()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._use_connector:
            try:
                self._sock = open_connector()
            except OSError as exc:
                log.warning("track_process: the kernel's process-events connector refused "
                            "(%s); polling /proc every %gs instead",
                            exc.strerror or exc, self._poll_interval)
        if self._sock is not None:
            self.mode = "connector"
            loop.add_reader(self._sock.fileno(), self._readable)
            log.info("track_process: following process events (proc connector)")
        else:
            self.mode = "poll"
            self._poll_task = asyncio.create_task(self._poll_loop(), name="track-process-poll")
        self._rescan()

    async def stop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        if self._poll_task is not None:
            self._poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll_task
            self._poll_task = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def reconfigure(self, specs: Mapping[str, VrrpTrackProcess]) -> None:
        """New specs: a fresh count, reporting only the states that differ."""
        specs = dict(specs)
        if specs == self._specs:
            return
        before = self._counter.states()
        self._specs = specs
        self._counter = ProcessCounter(specs)
        now = self._now()
        states = self._counter.scan(scan_proc(self._counter.needs_cmdline), now)
        self._report({n: up for n, up in states.items() if before.get(n) != up})

    # ------------------------------------------------------------------ plumbing

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _report(self, changes: Mapping[str, bool]) -> None:
        for name, up in changes.items():
            spec = self._specs[name]
            log.log(logging.INFO if up else logging.WARNING,
                    "track_process %s: %d %s running, quorum %s", name,
                    self._counter.count(name), spec.process.argv[0],
                    "up" if up else "down")
            try:
                self._on_change(name, up)
            except Exception:
                log.exception("track_process %s: on_change failed", name)
        self._arm()

    def _arm(self) -> None:
        due = self._counter.next_deadline()
        if self._timer is not None and due is not None and self._timer.when() == due:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if due is not None:
            self._timer = asyncio.get_running_loop().call_at(due, self._fire)

    def _fire(self) -> None:
        self._timer = None
        # never early: the loop may wake a little before the deadline
        now = max(self._now(), self._counter.next_deadline() or 0.0)
        self._report(self._counter.tick(now))

    def _rescan(self) -> None:
        cmdline = self._counter.needs_cmdline
        self._report(self._counter.scan(scan_proc(cmdline), self._now()))

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            try:
                self._rescan()
            except Exception:
                log.exception("track_process: polling /proc failed")

    def _readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data, (sender, _groups) = self._sock.recvfrom(65536)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # events were lost: read /proc again
                    log.warning("track_process: process events lost; reading /proc again")
                    self._rescan()
                    continue
                log.error("track_process: process events: %s", exc.strerror or exc)
                return
            if sender != 0:  # only the kernel speaks here
                continue
            self._handle(data)

    def _handle(self, data: bytes) -> None:
        now = self._now()
        cmdline = self._counter.needs_cmdline
        changes: dict[str, bool] = {}
        for kind, pid, extra in parse_events(data):
            self.events += 1
            if kind == "fork":
                assert isinstance(extra, int)
                changes.update(self._counter.fork(pid, extra, now))
            elif kind == "exec":
                info = read_proc(pid, cmdline)
                changes.update(self._counter.exit(pid, now) if info is None
                               else self._counter.exec(info, now))
            elif kind == "comm":
                assert isinstance(extra, str)
                changes.update(self._counter.comm(pid, extra, now))
            else:
                changes.update(self._counter.exit(pid, now))
        self._report(changes)
