"""Benchmark targets in network namespaces: nginx as the real servers, HAProxy as a yardstick.

Two namespaces are made for one run (``hcb-{pid}-c`` for the checker, ``hcb-{pid}-s`` for
nginx), linked by a veth pair created inside them (nothing touches the machine's own
interfaces). The server namespace treats the whole of 198.18.0.0/16 (RFC 2544's benchmark
range) as local, so every check has a real server address of its own and one nginx answers
them all. Both namespaces are removed afterwards, even on failure. Needs root.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

_SERVERS = ipaddress.ip_network("198.18.0.0/16")
_CLIENT_IP = "198.19.0.1"
_SERVER_IP = "198.19.0.2"
PORTS = {"tcp": 80, "http": 80, "ssl": 443, "ssl12": 8443}
_TICK = os.sysconf("SC_CLK_TCK")


def server_addresses(n: int) -> list[str]:
    """The first ``n`` real server addresses (skipping .0 and .255 of each /24)."""
    out: list[str] = []
    base = int(_SERVERS.network_address)
    i = 0
    while len(out) < n:
        i += 1
        if i % 256 in (0, 255):
            continue
        out.append(str(ipaddress.ip_address(base + i)))
    if n > 60000:
        raise ValueError("at most 60,000 real servers")
    return out


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def available() -> bool:
    tools = ("nginx", "ip", "openssl")
    return os.geteuid() == 0 and all(shutil.which(t) is not None for t in tools)


def haproxy_available() -> bool:
    return shutil.which("haproxy") is not None


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (and its reaped children) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


class Targets:
    """The two namespaces, nginx running in one; ``client`` is where checkers run."""

    def __init__(self, cpu: int | None, prefix: str = "hcb") -> None:
        self.client = f"{prefix}-{os.getpid()}-c"
        self.server = f"{prefix}-{os.getpid()}-s"
        self._cpu = cpu
        self._dir = Path(tempfile.mkdtemp(prefix="hcbench-"))
        self._nginx: subprocess.Popen[bytes] | None = None
        self._made: list[str] = []

    def __enter__(self) -> Targets:
        try:
            self._namespaces()
            self._start_nginx()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _namespaces(self) -> None:
        for ns in (self.client, self.server):
            _ip("netns", "add", ns)
            self._made.append(ns)
        _ip("-n", self.client, "link", "add", "veth0", "type", "veth",
            "peer", "name", "veth1", "netns", self.server)
        _ip("-n", self.client, "addr", "add", f"{_CLIENT_IP}/24", "dev", "veth0")
        _ip("-n", self.server, "addr", "add", f"{_SERVER_IP}/24", "dev", "veth1")
        for ns, dev in ((self.client, "veth0"), (self.server, "veth1")):
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", dev, "up")
        _ip("-n", self.server, "route", "add", "local", str(_SERVERS), "dev", "lo")
        _ip("-n", self.client, "route", "add", str(_SERVERS), "via", _SERVER_IP)
        # Many short connections a second from one address: widen the port range.
        subprocess.run(["ip", "netns", "exec", self.client, "sysctl", "-qw",
                        "net.ipv4.ip_local_port_range=1024 65000"], check=True)

    def _start_nginx(self) -> None:
        d = self._dir
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=bench.test",
             "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
            check=True, capture_output=True,
        )
        (d / "tmp").mkdir()
        temp = "".join(f"    {k}_temp_path {d}/tmp;\n"
                       for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        tls = (f"        ssl_certificate {d}/cert.pem;\n"
               f"        ssl_certificate_key {d}/key.pem;\n")
        conf = (
            f"daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\n"
            f"error_log {d}/error.log warn;\nworker_rlimit_nofile 100000;\n"
            "events { worker_connections 60000; multi_accept on; }\n"
            "http {\n    access_log off;\n" + temp +
            f"    server {{\n        listen {PORTS['http']} backlog=8192;\n"
            f"        listen {PORTS['ssl']} ssl backlog=8192;\n"
            "        ssl_protocols TLSv1.2 TLSv1.3;\n" + tls +
            "        location / { return 200 \"ok\\n\"; }\n    }\n"
            f"    server {{\n        listen {PORTS['ssl12']} ssl backlog=8192;\n"
            "        ssl_protocols TLSv1.2;\n" + tls +
            "        location / { return 200 \"ok\\n\"; }\n    }\n}\n"
        )
        (d / "nginx.conf").write_text(conf)
        pin = [] if self._cpu is None else ["taskset", "-c", str(self._cpu)]
        self._nginx = subprocess.Popen(
            ["ip", "netns", "exec", self.server, *pin, "nginx", "-c", str(d / "nginx.conf"),
             "-p", str(d), "-e", str(d / "error.log")],
        )
        for _ in range(100):
            probe = subprocess.run(
                ["ip", "netns", "exec", self.client, "bash", "-c",
                 f"exec 3<>/dev/tcp/{server_addresses(1)[0]}/{PORTS['http']}"],
                capture_output=True,
            )
            if probe.returncode == 0:
                return
            if self._nginx.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"nginx did not start: {(d / 'error.log').read_text()[-500:]}")

    def haproxy(
        self, kind: str, addresses: list[str], port: int, interval: float, timeout: float,
        warmup: float, duration: float, cpu: int | None, settle_limit: float = 60.0,
    ) -> HaproxyRun:
        """HAProxy checking the same targets: CPU seconds over ``duration``, servers up, and
        the commonest check status.

        The measurement starts once every server has passed a check (or ``settle_limit``
        seconds after ``warmup``): on a loaded machine HAProxy's first round of checks
        can take longer than one interval, and its start-up is not what is measured.
        """
        d = self._dir
        sock = d / "haproxy.sock"
        (d / "haproxy.cfg").write_text(
            haproxy_config(kind, addresses, port, interval, timeout, sock))
        pin = [] if cpu is None else ["taskset", "-c", str(cpu)]
        return measure_haproxy(
            ["ip", "netns", "exec", self.client, *pin, "haproxy", "-db",
             "-f", str(d / "haproxy.cfg")],
            sock, len(addresses), warmup, duration, settle_limit)

    def close(self) -> None:
        if self._nginx is not None and self._nginx.poll() is None:
            self._nginx.send_signal(signal.SIGQUIT)  # nginx's graceful stop
            try:
                self._nginx.wait(5)
            except subprocess.TimeoutExpired:
                self._nginx.kill()
                self._nginx.wait()
        for ns in reversed(self._made):
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("netns", "del", ns)
        self._made.clear()
        shutil.rmtree(self._dir, ignore_errors=True)


def haproxy_config(kind: str, addresses: list[str], port: int, interval: float,
                   timeout: float, stats: Path) -> str:
    """An HAProxy configuration checking `addresses` as keepalived would: a TCP connect
    (`kind` "tcp"), or keepalived's request judged by its status ("http"; "ssl"...
    over TLS), every `interval` seconds, one backend, its stats socket at `stats`."""
    mode = "tcp" if kind == "tcp" else "http"
    lines = [
        "global", "    nbthread 1", "    maxconn 1000",
        f"    stats socket {stats} mode 600 level admin",
        "defaults", f"    mode {mode}", f"    timeout connect {int(timeout * 1000)}ms",
        f"    timeout check {int(timeout * 1000)}ms",
        "    timeout client 10s", "    timeout server 10s",
        "backend targets",
    ]
    check = f"check inter {int(interval * 1000)}ms rise 1 fall 1"
    if kind != "tcp":
        # keepalived's request: GET / HTTP/1.0, judged by its status.
        lines += ["    option httpchk", "    http-check send meth GET uri / ver HTTP/1.0",
                  "    http-check expect status 200"]
    if kind.startswith("ssl"):
        check += " check-ssl verify none"
    lines += [f"    server s{i} {a}:{port} {check}" for i, a in enumerate(addresses)]
    return "\n".join(lines) + "\n"


def measure_haproxy(argv: list[str], stats: Path, count: int, warmup: float,
                    duration: float, settle_limit: float = 60.0) -> HaproxyRun:
    """Run HAProxy (`argv`, in the foreground: `-db`) checking `count` servers: its CPU
    seconds over `duration`, once every server has passed a check (or `settle_limit`
    seconds after `warmup`), then stopped."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(warmup)
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"haproxy exited: {err[-500:]}")
        settled = _wait_all_passed(stats, count, settle_limit)
        c0 = process_cpu(proc.pid)
        time.sleep(duration)
        c1 = process_cpu(proc.pid)
        result = _stats(stats)
        rss, pss = _memory_mib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return HaproxyRun(c1 - c0, len(result.passed), result.status, settled, rss, pss)


class HaproxyRun(NamedTuple):
    """What one HAProxy run measured."""

    cpu: float  # CPU seconds over the measured duration
    up: int  # servers UP after it, each after a check that passed
    status: str  # the commonest check status
    settled: float | None  # seconds after warmup until every server had passed a check
    rss_mib: float = 0.0  # its resident set at the end
    pss_mib: float = 0.0  # and its proportional set (shared pages counted as a share)


def _memory_mib(pid: int) -> tuple[float, float]:
    """RSS and PSS of one process, in MiB (0 for what cannot be read)."""
    values = {"Rss:": 0.0, "Pss:": 0.0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key = line.split(" ", 1)[0]
            if key in values:
                values[key] = int(line.split()[1]) / 1024
    return values["Rss:"], values["Pss:"]


def _wait_all_passed(path: Path, count: int, limit: float) -> float | None:
    """Seconds until each of the ``count`` servers has been seen UP after a check that
    passed (seen across polls of the stats socket: a server whose checks time out now
    and then on a loaded machine still counts once one passed); None when ``limit``
    seconds pass first."""
    start = time.monotonic()
    passed: set[str] = set()
    while True:
        passed |= _stats(path).passed
        waited = time.monotonic() - start
        if len(passed) >= count:
            return waited
        if waited >= limit:
            return None
        time.sleep(0.25 if count <= 1000 else 1.0)


class _Stats(NamedTuple):
    passed: frozenset[str]  # servers UP with a check that passed (not INI: not yet checked)
    status: str  # the commonest check status


def _stats(path: Path) -> _Stats:
    """HAProxy's servers from its stats socket.

    HAProxy starts each server UP before its first check (check status INI), so UP
    alone does not say a check passed; an L4OK / L6OK / L7OK check status does.
    """
    data = b""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(15)
        try:
            sock.connect(str(path))
            sock.sendall(b"show stat\n")
            while chunk := sock.recv(65536):
                data += chunk
        except OSError as exc:  # a HAProxy too busy to answer: no count, not a crash
            return _Stats(frozenset(), f"stats socket: {exc}")
    lines = data.decode().splitlines()
    header = lines[0].lstrip("# ").split(",") if lines else []
    col = {name: i for i, name in enumerate(header)}
    passed: set[str] = set()
    statuses: dict[str, int] = {}
    for line in lines[1:]:
        row = line.split(",")
        if len(row) < len(header) or row[0] != "targets" or not row[1].startswith("s"):
            continue
        check = row[col["check_status"]]
        if row[col["status"]] == "UP" and check.endswith("OK"):
            passed.add(row[1])
        desc = f"{check} {row[col['last_chk']]}".strip()
        statuses[desc] = statuses.get(desc, 0) + 1
    common = max(statuses, key=lambda k: statuses[k]) if statuses else "?"
    return _Stats(frozenset(passed), common)
