"""One daemon per control socket and per VRRP instance: flock'ed lock files held while it runs.

A lock next to the control socket (`SOCKET.lock`) and one per VRRP instance — keyed by
network namespace, interface, VRID and family — under `/run/hacluster/` (the directory
is `HACLUSTER_LOCK_DIR` when set, for tests). A second `hacluster run` of the same
director, even with another control socket, finds a lock held and is refused before it
touches anything, naming the PID written in the lock file by its holder.

The locks are `flock` locks on file descriptions opened close-on-exec: the kernel drops
them when the holder exits, however it exits, and scripts the daemon runs do not
inherit them. A lock still held by a process on its way out (a restart right after a
crash or a stop) is waited for, up to `WAIT` seconds, before refusing.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterable
from pathlib import Path

from hacluster.config.model import Config
from vrrp.slotted import slotted

DEFAULT_DIR = Path("/run/hacluster")
#: Seconds a held lock is waited for before refusing (its holder may be exiting).
WAIT = 2.0
_POLL = 0.05


class AlreadyRunning(Exception):
    """A lock is held by another process; the message names the lock and its holder."""


def lock_dir() -> Path:
    """Where the per-instance locks live: `HACLUSTER_LOCK_DIR`, else /run/hacluster."""
    return Path(os.environ.get("HACLUSTER_LOCK_DIR") or DEFAULT_DIR)


def netns_id() -> str:
    """The network namespace this process runs in, as its inode number: several
    namespaces may each have an eth0 with VRID 51, and those are not the same router."""
    try:
        return str(os.stat("/proc/self/ns/net").st_ino)
    except OSError:
        return "host"


@slotted(frozen=True)
class LockSpec:
    """One lock to take: its file and what it protects (for messages)."""

    path: Path
    what: str


def lock_specs(config: Config, directory: Path | None = None) -> list[LockSpec]:
    """The locks a daemon running `config` holds: the control socket's, then one per
    VRRP instance (sorted by file name, so two daemons take them in the same order)."""
    base = lock_dir() if directory is None else directory
    sock = config.global_defs.control_socket
    specs = [LockSpec(sock.with_name(sock.name + ".lock"), f"control socket {sock}")]
    ns = netns_id()
    per_instance = {}
    for name, inst in config.vrrp_instances.items():
        file = (f"vrrp-ns{ns}-{inst.interface}-vrid{inst.virtual_router_id}"
                f"-ipv{inst.family}.lock")
        per_instance[file] = LockSpec(
            base / file,
            f"VRRP instance {name} ({inst.interface} VRID {inst.virtual_router_id} "
            f"IPv{inst.family})",
        )
    return specs + [per_instance[k] for k in sorted(per_instance)]


def holder(path: Path) -> int | None:
    """The PID its holder wrote into a lock file, if it is there and readable."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class Locks:
    """The lock files a daemon holds; released by `release()` or by its exit."""

    def __init__(self) -> None:
        self._held: dict[Path, int] = {}

    @property
    def paths(self) -> list[Path]:
        return list(self._held)

    def acquire(self, specs: Iterable[LockSpec], *, wait: float = WAIT) -> None:
        """Take every lock in `specs` not held yet; on refusal release those taken by
        this call and raise AlreadyRunning (or OSError when a lock file cannot be made)."""
        taken: list[Path] = []
        try:
            for spec in specs:
                if spec.path in self._held:
                    continue
                self._held[spec.path] = _take(spec, wait)
                taken.append(spec.path)
        except BaseException:
            self.release(taken)
            raise

    def keep_only(self, specs: Iterable[LockSpec]) -> None:
        """Release the held locks that are not in `specs` (instances gone at a reload)."""
        wanted = {s.path for s in specs}
        self.release([p for p in self._held if p not in wanted])

    def release(self, paths: Iterable[Path] | None = None) -> None:
        for path in list(self._held if paths is None else paths):
            fd = self._held.pop(path, None)
            if fd is None:
                continue
            # Emptied before unlocking: a reader never takes our PID for a live holder.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)


def _take(spec: LockSpec, wait: float) -> int:
    spec.path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd = os.open(spec.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                os.close(fd)
                raise
        if time.monotonic() >= deadline:
            os.close(fd)
            pid = holder(spec.path)
            who = f"process {pid}" if pid is not None else "another process"
            raise AlreadyRunning(
                f"{spec.what} is already run by {who} (lock {spec.path} held)"
            )
        time.sleep(_POLL)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
