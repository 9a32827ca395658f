"""The VIPs this process added, kept in a small file, so a restart after a crash removes them first.

A director killed with SIGKILL leaves its VIPs on the interfaces. Its successor must take
them off before anything slow happens (importing pyroute2 and asyncio, parsing a large
configuration: hundreds of milliseconds), or clients are sent to a director that no
longer answers for them while the peer already holds them too. So `Addresses` records
each VIP it adds (and forgets each one it removes) in a state file, rewritten atomically,
and `hacluster run` calls `clear_leftovers()` before anything else.

The no_accept table (hacluster.accept_mode) is recorded there too while it exists: left
by a crash, it would drop traffic to a VIP the next run serves with accept, or under
another table name. `clear_leftovers` deletes it with one `nft delete table` run, only
when one is recorded (the common start pays nothing for it).

This module imports only the standard library's light parts and vrrp.rtnl (no asyncio,
no pyroute2, no dataclasses: its types are named tuples); its RTM_DELADDR is the one
`vrrp/addresses.py` sends (`rtnl.encode_address`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import subprocess

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


class RecordedTable(NamedTuple):
    """One nftables table as recorded: its family and name."""

    family: str
    name: str

    def __str__(self) -> str:
        return f"{self.family} {self.name}"


# What `nft delete table` is given from the file: a family nft knows and a plain
# identifier (nft joins its arguments into one command line: no room for a second one).
_FAMILIES = frozenset({"ip", "ip6", "inet", "arp", "bridge", "netdev"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,255}")


def state_file(state_dir: Path, config_file: Path) -> Path:
    """The state file of a daemon: one per network namespace and configuration file, so
    several directors on one host (each in its namespace) keep apart."""
    try:
        netns = os.stat("/proc/self/ns/net").st_ino
    except OSError:
        netns = 0
    key = _sha256(str(config_file.resolve()).encode()).hexdigest()[:12]
    return state_dir / f"vips-{netns}-{key}.json"


def _sha256(data: bytes) -> Any:
    # `hashlib` loads OpenSSL: ~3 ms of CPU in `hacluster run` before it forks the VRRP
    # role. CPython's own SHA-256 (the same digest) is enough for one short key.
    import importlib

    try:
        sha256 = importlib.import_module("_sha256").sha256
    except ImportError:  # (a Python without it: 3.12 names it _sha2)
        from hashlib import sha256
    return sha256(data)


def read(path: Path) -> list[Recorded]:
    """The VIPs recorded in `path` (none when it is missing or unreadable)."""
    return _read(path)[1]


def read_tables(path: Path) -> list[RecordedTable]:
    """The nftables tables recorded in `path` (none when missing or unreadable)."""
    return _read(path)[2]


def _read(path: Path) -> tuple[int | None, list[Recorded], list[RecordedTable]]:
    import json

    try:
        data = json.loads(path.read_bytes())
        vips = [Recorded(str(v["address"]), str(v["dev"])) for v in data["vips"]]
        tables = [RecordedTable(str(t["family"]), str(t["name"]))
                  for t in data.get("tables", ())]
        pid = data.get("pid")
        return (pid if isinstance(pid, int) else None), vips, tables
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, [], []


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
    """Keeps the file listing the VIPs this process added and has not removed since,
    and the nftables tables it created and has not deleted since."""

    def __init__(self, path: Path) -> None:
        self.path = path
        _, vips, tables = _read(path)
        self._held: dict[Recorded, None] = dict.fromkeys(vips)
        self._tables: dict[RecordedTable, None] = dict.fromkeys(tables)
        self.errors = 0

    @property
    def held(self) -> list[Recorded]:
        return list(self._held)

    @property
    def tables(self) -> list[RecordedTable]:
        return list(self._tables)

    def table_added(self, table: RecordedTable) -> None:
        """Record `table` (before it is created: a crash in between leaves a record of a
        table that is not there, which the clean-up finds absent)."""
        if table not in self._tables:
            self._tables[table] = None
            self._write()

    def table_removed(self, table: RecordedTable) -> None:
        if table in self._tables:
            del self._tables[table]
            self._write()

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
        data: dict[str, object] = {"pid": os.getpid(), "vips": [vars_of(v) for v in self._held]}
        if self._tables:
            data["tables"] = [{"family": t.family, "name": t.name} for t in self._tables]
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        import json

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
    """What `clear_leftovers` did: removed, already gone, failed (with why), how long;
    the same for the recorded nftables tables."""

    removed: list[Recorded]
    absent: list[Recorded]
    errors: list[tuple[Recorded, str]]
    seconds: float
    owner_running: int | None = None  # the writer is alive: nothing was touched
    tables_removed: tuple[RecordedTable, ...] = ()
    tables_absent: tuple[RecordedTable, ...] = ()
    table_errors: tuple[tuple[RecordedTable, str], ...] = ()
    table_seconds: float = 0.0  # spent deleting tables, after the VIPs

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
        if self.tables_removed:
            lines.append(("warning", "removed the no_accept nftables table a crashed run "
                                     f"left behind ({self.table_seconds * 1000:.1f} ms): "
                                     + ", ".join(f"table {t}" for t in self.tables_removed)))
        lines += [("error", f"cannot remove leftover VIP {v}: {why}") for v, why in self.errors]
        lines += [("error", f"cannot remove leftover nftables table {t}: {why}")
                  for t, why in self.table_errors]
        return lines


def clear_leftovers(path: Path) -> Cleared:
    """Remove every VIP and nftables table recorded in `path` by a previous run, then
    forget them.

    Called first thing by `hacluster run`: the process that wrote the file is gone (a
    running daemon holds the control socket, and a second one would fail there too).
    """
    start = time.monotonic()
    pid, recorded, tables = _read(path)
    if (recorded or tables) and _still_running(pid):
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
    table_start = time.monotonic()
    tables_removed, tables_absent, table_errors = _clear_tables(tables)
    table_seconds = time.monotonic() - table_start
    if recorded or tables:
        left = [v for v, _ in errors]
        tables_left = [t for t, _ in table_errors]
        if left or tables_left:
            record = VipRecord(path)
            record.removed([v for v in recorded if v not in left])
            for table in tables:
                if table not in tables_left:
                    record.table_removed(table)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    # (`seconds`: the VIPs' part, done first; the tables' follows it)
    return Cleared(removed, absent, errors, table_start - start,
                   tables_removed=tables_removed, tables_absent=tables_absent,
                   table_errors=table_errors, table_seconds=table_seconds)


def _clear_tables(tables: list[RecordedTable]) -> tuple[
        tuple[RecordedTable, ...], tuple[RecordedTable, ...],
        tuple[tuple[RecordedTable, str], ...]]:
    """Delete each table: (removed, absent, failed with why)."""
    removed: list[RecordedTable] = []
    absent: list[RecordedTable] = []
    errors: list[tuple[RecordedTable, str]] = []
    for table in tables:
        why = delete_table(table)
        if why == "":
            removed.append(table)
        elif why is None:
            absent.append(table)
        else:
            errors.append((table, why))
    return tuple(removed), tuple(absent), tuple(errors)


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


def delete_table(table: RecordedTable, nft: str = "nft") -> str | None:
    """Delete `table` with one `nft delete table` run: "" when deleted, None when it was
    not there, else why not. (subprocess is imported here: only a start that finds a
    table recorded pays for it.)"""
    import subprocess

    if table.family not in _FAMILIES or not _NAME.fullmatch(table.name):
        return "not an nftables table name"
    try:
        res = subprocess.run([nft, "delete", "table", table.family, table.name],
                             stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    except FileNotFoundError:
        return f"{nft} not found"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return _outcome(res)


def _outcome(res: subprocess.CompletedProcess[bytes]) -> str | None:
    if res.returncode == 0:
        return ""
    err = res.stderr.decode(errors="replace").strip()
    if "No such file or directory" in err:
        return None
    return err.splitlines()[0] if err else f"nft exited with {res.returncode}"
