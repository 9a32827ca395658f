"""The VIPs this process added, kept in a small file, so a restart after a crash removes them first.

A director killed with SIGKILL leaves its VIPs on the interfaces. Its successor must take
them off before anything slow happens (importing pyroute2 and asyncio, parsing a large
configuration: hundreds of milliseconds), or clients are sent to a director that no
longer answers for them while the peer already holds them too. So `Addresses` records
each VIP it adds (and forgets each one it removes) in a state file, rewritten atomically,
and `hacluster run` calls `clear_leftovers()` before anything else.

This module imports only the standard library's light parts and vrrp.rtnl (no asyncio,
no pyroute2, no dataclasses: its types are named tuples); its RTM_DELADDR is the one
`vrrp/addresses.py` sends (`rtnl.encode_address`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from vrrp import rtnl

#: Where `hacluster run` keeps its state unless told otherwise (`--state-dir`).
DEFAULT_STATE_DIR = Path("/run/hacluster")

# Answers meaning the address is not there (any more): nothing to remove.
_GONE = (errno.EADDRNOTAVAIL, errno.ENOENT, errno.ENODEV)


class Recorded(NamedTuple):
    """One VIP as recorded: "address/prefix" and its interface."""

    address: str
    dev: str

    def __str__(self) -> str:
        return f"{self.address} dev {self.dev}"


def state_file(state_dir: Path, config_file: Path) -> Path:
    """The state file of a daemon: one per network namespace and configuration file, so
    several directors on one host (each in its namespace) keep apart."""
    try:
        netns = os.stat("/proc/self/ns/net").st_ino
    except OSError:
        netns = 0
    key = hashlib.sha256(str(config_file.resolve()).encode()).hexdigest()[:12]
    return state_dir / f"vips-{netns}-{key}.json"


def read(path: Path) -> list[Recorded]:
    """The VIPs recorded in `path` (none when it is missing or unreadable)."""
    return _read(path)[1]


def _read(path: Path) -> tuple[int | None, list[Recorded]]:
    try:
        data = json.loads(path.read_bytes())
        vips = [Recorded(str(v["address"]), str(v["dev"])) for v in data["vips"]]
        pid = data.get("pid")
        return (pid if isinstance(pid, int) else None), vips
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, []


def _still_running(pid: int | None) -> bool:
    """True when the process that wrote the file is a live `hacluster` other than us
    (a second `hacluster run` by mistake must not strip the running one's VIPs)."""
    if pid is None or pid == os.getpid():
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"hacluster" in cmdline


class VipRecord:
    """Keeps the file listing the VIPs this process added and has not removed since."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._held: dict[Recorded, None] = dict.fromkeys(read(path))
        self.errors = 0

    @property
    def held(self) -> list[Recorded]:
        return list(self._held)

    def added(self, vips: Iterable[Recorded]) -> None:
        new = [v for v in vips if v not in self._held]
        if new:
            self._held.update(dict.fromkeys(new))
            self._write()

    def removed(self, vips: Iterable[Recorded]) -> None:
        gone = [v for v in vips if v in self._held]
        if gone:
            for v in gone:
                del self._held[v]
            self._write()

    def _write(self) -> None:
        # Write a new file and rename it over the old: a crash mid-write leaves one or the
        # other, never half of one. No fsync: /run is tmpfs, lost at a reboot anyway.
        data = {"pid": os.getpid(), "vips": [vars_of(v) for v in self._held]}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data))
            os.replace(tmp, self.path)
        except OSError:
            self.errors += 1  # never fatal: the start-up clean-up from the config remains
            with contextlib.suppress(OSError):
                tmp.unlink()


def vars_of(vip: Recorded) -> dict[str, str]:
    return {"address": vip.address, "dev": vip.dev}


class Cleared(NamedTuple):
    """What `clear_leftovers` did: removed, already gone, failed (with why), how long."""

    removed: list[Recorded]
    absent: list[Recorded]
    errors: list[tuple[Recorded, str]]
    seconds: float
    owner_running: int | None = None  # the writer is alive: nothing was touched

    def report(self) -> list[tuple[str, str]]:
        """(level, message) lines to log once logging is set up."""
        lines: list[tuple[str, str]] = []
        if self.owner_running is not None:
            lines.append(("warning", f"VIP state file belongs to running pid "
                                     f"{self.owner_running}: its VIPs left alone"))
        if self.removed:
            lines.append(("warning", "removed VIPs a crashed run left behind, "
                                     f"{self.seconds * 1000:.1f} ms into start-up: "
                                     + ", ".join(map(str, self.removed))))
        lines += [("error", f"cannot remove leftover VIP {v}: {why}") for v, why in self.errors]
        return lines


def clear_leftovers(path: Path) -> Cleared:
    """Remove every VIP recorded in `path` by a previous run, then forget them.

    Called first thing by `hacluster run`: the process that wrote the file is gone (a
    running daemon holds the control socket, and a second one would fail there too).
    """
    start = time.monotonic()
    pid, recorded = _read(path)
    if recorded and _still_running(pid):
        return Cleared([], [], [], time.monotonic() - start, owner_running=pid)
    removed: list[Recorded] = []
    absent: list[Recorded] = []
    errors: list[tuple[Recorded, str]] = []
    if recorded:
        try:
            outcome = delete_addresses(recorded)
        except OSError as exc:
            errors = [(v, str(exc)) for v in recorded]
        else:
            for vip, code in zip(recorded, outcome, strict=True):
                if code == 0:
                    removed.append(vip)
                elif code in _GONE:
                    absent.append(vip)
                else:
                    errors.append((vip, os.strerror(code)))
        left = [v for v, _ in errors]
        if left:
            VipRecord(path).removed([v for v in recorded if v not in left])
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    return Cleared(removed, absent, errors, time.monotonic() - start)


def delete_addresses(vips: list[Recorded]) -> list[int]:
    """Delete each address; one errno per VIP (0: removed; ENODEV: no such interface)."""
    codes = [errno.ENODEV] * len(vips)
    requests: list[bytes] = []
    for seq, vip in enumerate(vips, start=1):
        try:
            index = socket.if_nametoindex(vip.dev)
            requests.append(rtnl.encode_address("del", vip.address, index, seq=seq))
        except (OSError, ValueError):
            continue
    if requests:
        for seq, code in rtnl.request(requests).items():
            codes[seq - 1] = code
    return codes
