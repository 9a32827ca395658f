"""Build and tear down network-namespace labs safely with `ip` commands (needs root).

Every namespace is named ``{prefix}-{pid}-{n}-{role}`` so that a lab never touches
anything it did not create, and so that `sweep(prefix)` can remove what a crashed run
of the same prefix left behind (namespaces whose creating pid is gone). Interfaces are
created directly inside lab namespaces (never in the host's), so their names cannot
clash with the machine's own.

Typical use::

    with Lab("hck") as lab:
        sw = lab.namespace("sw")
        lab.bridge(sw, "br0")
        a = lab.namespace("a")
        lab.attach(a, "eth0", sw, "br0", ["10.0.0.1/24", "fd00::1/64"])
        proc = lab.start(a, ["sleep", "100"])
        lab.run(a, ["ip", "-br", "addr"])
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

NETNS_DIR = Path("/run/netns")
_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")
_counter = itertools.count(1)


class LabError(RuntimeError):
    """A lab command failed; the message carries the command and its stderr."""


@dataclass(frozen=True, slots=True)
class Netns:
    """A network namespace created by a lab."""

    name: str
    role: str

    def __str__(self) -> str:
        return self.name


@dataclass(slots=True)
class LabProcess:
    """A long-running process started in a namespace (its pid is the command's own pid)."""

    netns: Netns
    argv: tuple[str, ...]
    popen: subprocess.Popen[bytes]
    log_path: Path | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def signal(self, signum: int) -> None:
        """Send a signal to this process (by PID) if it still runs."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, signum)

    def stop(self, timeout: float = 3.0) -> int:
        """SIGTERM, wait up to `timeout`, then SIGKILL; return the exit status."""
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
        return self.popen.wait(timeout)

    def kill(self) -> int:
        """A crash: freeze the whole process group (the command and every process it
        started), SIGKILL it, and reap. Frozen first, so that no process of the group
        sees another die and cleans up behind it (a child told of its parent's death
        resigns gracefully, which a crash must not do)."""
        if self.popen.poll() is None:
            for sig in (signal.SIGSTOP, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, sig)  # started as a session (and group) leader
        return self.popen.wait(5.0)

    def output(self) -> str:
        """Everything the process wrote so far to its log file (stdout + stderr)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")


def _ip(*args: str, netns: Netns | str | None = None, check: bool = True) -> str:
    argv = ["ip"]
    if netns is not None:
        argv += ["-n", str(netns)]
    argv += list(args)
    res = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and res.returncode != 0:
        raise LabError(f"{' '.join(argv)}: {res.stderr.strip()}")
    return res.stdout


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_namespaces(prefix: str) -> list[str]:
    """Names of existing namespaces that belong to labs with `prefix`."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix + "-"))


def sweep(prefix: str) -> list[str]:
    """Delete namespaces of `prefix` left by a previous run whose process is gone.

    Only names of the exact form ``{prefix}-{pid}-...`` are considered, and only when
    that pid no longer exists: a lab of another prefix, or a live run of ours, is safe.
    Processes still running inside a removed namespace are killed (found by their
    network namespace), since they can only be leftovers of that crashed run.
    """
    removed: list[str] = []
    for name in list_namespaces(prefix):
        rest = name[len(prefix) + 1 :]
        pid_text = rest.split("-", 1)[0]
        if not pid_text.isdigit() or _pid_alive(int(pid_text)):
            continue
        for pid in _pids_in_netns(name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _ip("netns", "delete", name, check=False)
        removed.append(name)
    return removed


def _pids_in_netns(name: str) -> list[int]:
    res = subprocess.run(
        ["ip", "netns", "pids", name], capture_output=True, text=True, timeout=10
    )
    return [int(x) for x in res.stdout.split() if x.isdigit()]


class Lab:
    """A set of namespaces, links and processes, all removed on `close()` / context exit."""

    def __init__(self, prefix: str = "hck", *, workdir: Path | None = None) -> None:
        if not _NAME_RE.match(prefix):
            raise ValueError(f"lab prefix must be 1-8 lowercase letters/digits: {prefix!r}")
        self.prefix = prefix
        self.tag = f"{prefix}-{os.getpid()}-{next(_counter)}"
        self.namespaces: list[Netns] = []
        self.processes: list[LabProcess] = []
        self._workdir = workdir
        self._owned_workdir: Path | None = None
        self._closed = False
        self._port_numbers = itertools.count(0)

    # -- context manager -------------------------------------------------------------

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.close()
        except LabError as teardown:
            if exc is None:
                raise
            # Keep the body's own exception; the teardown trouble rides along as a note.
            exc.add_note(str(teardown))

    @property
    def workdir(self) -> Path:
        """A private temporary directory for this lab's files (configs, logs, pid files)."""
        if self._workdir is None:
            import tempfile

            self._owned_workdir = Path(tempfile.mkdtemp(prefix=self.tag + "-"))
            self._workdir = self._owned_workdir
        return self._workdir

    # -- namespaces and links ----------------------------------------------------------

    def namespace(self, role: str) -> Netns:
        """Create a namespace with loopback up; IPv6 DAD off so addresses work at once."""
        if not re.match(r"^[a-z0-9]{1,12}$", role):
            raise ValueError(f"namespace role must be 1-12 lowercase letters/digits: {role!r}")
        ns = Netns(f"{self.tag}-{role}", role)
        _ip("netns", "add", ns.name)
        self.namespaces.append(ns)
        _ip("link", "set", "lo", "up", netns=ns)
        # Interfaces created later inherit these defaults: no DAD delay, no router
        # solicitations/autoconf chatter on the lab wire.
        for key, value in (
            ("net.ipv6.conf.default.accept_dad", "0"),
            ("net.ipv6.conf.all.accept_dad", "0"),
            ("net.ipv6.conf.default.dad_transmits", "0"),
            ("net.ipv6.conf.default.accept_ra", "0"),
            ("net.ipv6.conf.default.router_solicitations", "0"),
        ):
            self.run(ns, ["sysctl", "-q", "-w", f"{key}={value}"], check=False)
        return ns

    def bridge(self, ns: Netns, name: str = "br0") -> None:
        """Create a bridge (inside `ns`, never the host) that forwards at once."""
        _ip("link", "add", name, "type", "bridge", "forward_delay", "0", "stp_state", "0",
            netns=ns)
        # Multicast snooping would drop VRRP multicast to ports without joined members
        # until queries run; a lab bridge floods like a plain switch.
        _ip("link", "set", name, "type", "bridge", "mcast_snooping", "0", netns=ns)
        _ip("link", "set", name, "up", netns=ns)

    def veth(self, ns_a: Netns, name_a: str, ns_b: Netns, name_b: str) -> None:
        """Create a veth pair with its ends directly in `ns_a` and `ns_b`, both up."""
        _ip("link", "add", name_a, "netns", ns_a.name, "type", "veth",
            "peer", "name", name_b, "netns", ns_b.name)
        _ip("link", "set", name_a, "up", netns=ns_a)
        _ip("link", "set", name_b, "up", netns=ns_b)

    def attach(
        self,
        ns: Netns,
        ifname: str,
        bridge_ns: Netns,
        bridge: str = "br0",
        addresses: Sequence[str] = (),
    ) -> str:
        """Link `ns` to a bridge by a veth; return the bridge-side port name."""
        port = f"p{next(self._port_numbers)}{ns.role}"[:15]
        self.veth(ns, ifname, bridge_ns, port)
        _ip("link", "set", port, "master", bridge, netns=bridge_ns)
        for cidr in addresses:
            self.add_address(ns, ifname, cidr)
        return port

    def add_address(self, ns: Netns, ifname: str, cidr: str, *, nodad: bool = True) -> None:
        """Add an IPv4 or IPv6 address (IPv6 with `nodad` so it is usable at once)."""
        iface = ipaddress.ip_interface(cidr)
        args = ["addr", "add", str(iface), "dev", ifname]
        if iface.version == 6 and nodad:
            args.append("nodad")
        _ip(*args, netns=ns)

    def del_address(self, ns: Netns, ifname: str, cidr: str) -> None:
        _ip("addr", "del", str(ipaddress.ip_interface(cidr)), "dev", ifname, netns=ns)

    def set_link(self, ns: Netns, ifname: str, up: bool) -> None:
        _ip("link", "set", ifname, "up" if up else "down", netns=ns)

    def addresses(self, ns: Netns, ifname: str) -> list[str]:
        """Addresses on an interface as `addr/prefix` strings (v4 and v6)."""
        out = _ip("-o", "addr", "show", "dev", ifname, netns=ns)
        found: list[str] = []
        for line in out.splitlines():
            parts = line.split()
            for i, word in enumerate(parts):
                if word in ("inet", "inet6") and i + 1 < len(parts):
                    found.append(parts[i + 1])
        return found

    def has_address(self, ns: Netns, ifname: str, address: str) -> bool:
        """True when `address` (with or without /prefix) is on the interface."""
        want = ipaddress.ip_interface(address).ip
        return any(ipaddress.ip_interface(a).ip == want for a in self.addresses(ns, ifname))

    def link_local(self, ns: Netns, ifname: str, timeout: float = 5.0) -> str:
        """The interface's IPv6 link-local address, waiting for it to appear."""
        deadline = time.monotonic() + timeout
        while True:
            for a in self.addresses(ns, ifname):
                ip = ipaddress.ip_interface(a).ip
                if ip.version == 6 and ip.is_link_local:
                    return str(ip)
            if time.monotonic() > deadline:
                raise LabError(f"{ns}:{ifname}: no IPv6 link-local address")
            time.sleep(0.02)

    def wait_dad(self, ns: Netns, ifname: str, timeout: float = 5.0) -> None:
        """Wait until no address on the interface is tentative (IPv6 DAD finished)."""
        deadline = time.monotonic() + timeout
        while "tentative" in _ip("-o", "addr", "show", "dev", ifname, netns=ns):
            if time.monotonic() > deadline:
                raise LabError(f"{ns}:{ifname}: IPv6 DAD still tentative after {timeout}s")
            time.sleep(0.05)

    def mac(self, ns: Netns, ifname: str) -> str:
        out = _ip("-o", "link", "show", "dev", ifname, netns=ns)
        m = re.search(r"link/ether ([0-9a-f:]{17})", out)
        if m is None:
            raise LabError(f"{ns}:{ifname}: no MAC address")
        return m.group(1)

    # -- commands and processes ------------------------------------------------------------

    def run(
        self,
        ns: Netns,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 30.0,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command to completion inside `ns`, capturing text output."""
        full = ["ip", "netns", "exec", ns.name, *argv]
        res = subprocess.run(full, capture_output=True, text=True, timeout=timeout,
                             env=dict(env) if env is not None else None, input=input)
        if check and res.returncode != 0:
            raise LabError(
                f"{' '.join(full)} exited {res.returncode}: {res.stderr.strip()[-2000:]}"
            )
        return res

    def start(
        self,
        ns: Netns,
        argv: Sequence[str],
        *,
        log_name: str | None = None,
        env: Mapping[str, str] | None = None,
        stdout: IO[Any] | int | None = None,
    ) -> LabProcess:
        """Start a long-running command inside `ns`.

        `ip netns exec` enters the namespace and then execs the command, so the pid is
        the command's own. Output goes to a log file in the lab's workdir (both
        streams) unless `stdout` is given.
        """
        full = ["ip", "netns", "exec", ns.name, *argv]
        log_path: Path | None = None
        if stdout is None:
            name = log_name or f"{ns.role}-{Path(argv[0]).name}-{next(_counter)}"
            log_path = self.workdir / f"{name}.log"
            out: IO[Any] | int = log_path.open("wb")
        else:
            out = stdout
        try:
            popen = subprocess.Popen(
                full,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                start_new_session=True,
            )
        finally:
            if stdout is None and not isinstance(out, int):
                out.close()
        proc = LabProcess(ns, tuple(argv), popen, log_path)
        self.processes.append(proc)
        return proc

    # -- teardown -------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every process we started (by pid), then delete our namespaces."""
        if self._closed:
            return
        self._closed = True
        errors: list[str] = []
        for proc in reversed(self.processes):
            try:
                proc.stop(timeout=2.0)
            except Exception as exc:  # keep tearing down whatever happens
                errors.append(f"stop {proc.argv[0]} pid {proc.pid}: {exc}")
        for ns in reversed(self.namespaces):
            # Anything still alive in the namespace was started by this lab (e.g. a
            # daemon's forked child): kill it by pid so the namespace can go.
            for pid in _pids_in_netns(ns.name):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            res = subprocess.run(["ip", "netns", "delete", ns.name], capture_output=True,
                                 text=True, timeout=30)
            if res.returncode != 0 and (NETNS_DIR / ns.name).exists():
                errors.append(f"delete {ns.name}: {res.stderr.strip()}")
        if self._owned_workdir is not None:
            import shutil

            shutil.rmtree(self._owned_workdir, ignore_errors=True)
        if errors:
            raise LabError("lab teardown: " + "; ".join(errors))


def ping(lab: Lab, ns: Netns, address: str, *, count: int = 1, timeout: float = 2.0) -> bool:
    """True when `address` answers a ping from inside `ns`."""
    import shutil

    tool = ["ping"] if shutil.which("ping") else ["busybox", "ping"]
    argv = [*tool, "-q", "-c", str(count), "-W", str(max(1, int(timeout))), address]
    return lab.run(ns, argv, check=False, timeout=timeout * count + 5).returncode == 0
