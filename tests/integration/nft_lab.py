"""Namespace lab for the nftables dataplane: a client, a director and real servers.

Also runnable as a script inside a namespace (stdlib only):
  nft_lab.py serve NAME PORT              a TCP server answering its NAME, then echoing lines
  nft_lab.py count HOST PORT N [SRC...]   N sequential connections; JSON {name: count}
  nft_lab.py churn HOST PORT SECONDS      connections without pause from 4 workers plus 3
                                          long-lived echo sessions; JSON summary at the end
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hacluster.lab.netns import Lab, Netns

HERE = Path(__file__).resolve()
PORT = 8080
VIP = "10.98.0.100"
VIP_FWMARK = "10.98.0.101"
VIP6 = "fd00:98::100"


# --------------------------------------------------------------------------- in-namespace programs


async def _serve(name: str, port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(f"{name}\n".encode())
            await writer.drain()
            while line := await reader.readline():
                writer.write(line)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    # host None: every address of both families.
    server = await asyncio.start_server(handle, None, port, backlog=512)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def _one(host: str, port: int, source: str | None = None) -> str:
    with socket.create_connection(
        (host, port), timeout=3, source_address=(source, 0) if source else None
    ) as sock:
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(64)
            if not chunk:
                break
            data += chunk
        return data.decode().strip()


def _count(host: str, port: int, n: int, sources: list[str]) -> None:
    names: Counter[str] = Counter()
    by_source: dict[str, Counter[str]] = {}
    for i in range(n):
        source = sources[i % len(sources)] if sources else None
        try:
            name = _one(host, port, source)
        except OSError as exc:
            name = f"error:{type(exc).__name__}"
        names[name] += 1
        if source:
            by_source.setdefault(source, Counter())[name] += 1
    print(json.dumps({"names": names, "by_source": by_source}))


async def _churn(host: str, port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    ok = 0
    errors: list[str] = []
    long_ok: list[bool] = []

    async def short_worker() -> None:
        nonlocal ok
        while time.monotonic() < deadline:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 3)
                line = await asyncio.wait_for(reader.readline(), 3)
                writer.close()
                if line.strip():
                    ok += 1
                else:
                    errors.append("empty answer")
            except (TimeoutError, OSError) as exc:
                errors.append(f"short: {type(exc).__name__} {exc}")

    async def long_session() -> None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 3)
            await reader.readline()
            rounds = 0
            while time.monotonic() < deadline:
                writer.write(f"ping {rounds}\n".encode())
                await writer.drain()
                echo = await asyncio.wait_for(reader.readline(), 3)
                if echo.decode().strip() != f"ping {rounds}":
                    raise ConnectionError(f"bad echo {echo!r}")
                rounds += 1
                await asyncio.sleep(0.05)
            writer.close()
            long_ok.append(rounds > 0)
        except (TimeoutError, OSError) as exc:
            errors.append(f"long: {type(exc).__name__} {exc}")
            long_ok.append(False)

    await asyncio.gather(*(short_worker() for _ in range(4)), *(long_session() for _ in range(3)))
    print(json.dumps({"ok": ok, "errors": errors, "long_ok": long_ok}), flush=True)


def main(argv: list[str]) -> None:
    match argv:
        case ["serve", name, port]:
            asyncio.run(_serve(name, int(port)))
        case ["count", host, port, n, *sources]:
            _count(host, int(port), int(n), sources)
        case ["churn", host, port, seconds]:
            asyncio.run(_churn(host, int(port), float(seconds)))
        case _:
            raise SystemExit(__doc__)


# --------------------------------------------------------------------------- lab builder


@dataclass
class DirectorLab:
    """Client 10.98.1.2 -> director (VIPs 10.98.0.100/101) -> servers 10.98.1N.2 (N = 1..).

    IPv6 alike: client fd00:98:1::2, VIP fd00:98::100, servers fd00:98:1N::2.
    """

    lab: Lab
    client: Netns
    director: Netns
    servers: dict[str, str] = field(default_factory=dict)  # name -> address
    servers6: dict[str, str] = field(default_factory=dict)  # name -> IPv6 address

    def server_address(self, name: str) -> str:
        return self.servers[name]


def build(lab: Lab, n_servers: int = 3, client_sources: int = 1) -> DirectorLab:
    """Wire the namespaces and start a named TCP server in each real-server namespace."""
    client = lab.namespace("client")
    director = lab.namespace("lb")
    lab.veth(client, "eth0", director, "cl0")
    for i in range(client_sources):
        lab.add_address(client, "eth0", f"10.98.1.{2 + i}/24")
    lab.add_address(director, "cl0", "10.98.1.1/24")
    lab.add_address(director, "cl0", f"{VIP}/32")
    lab.add_address(director, "cl0", f"{VIP_FWMARK}/32")
    lab.add_address(client, "eth0", "fd00:98:1::2/64")
    lab.add_address(director, "cl0", "fd00:98:1::1/64")
    lab.add_address(director, "cl0", f"{VIP6}/128")
    lab.run(client, ["ip", "route", "add", "default", "via", "10.98.1.1"])
    lab.run(client, ["ip", "-6", "route", "add", "default", "via", "fd00:98:1::1"])
    lab.run(director, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
    lab.run(director, ["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"])
    out = DirectorLab(lab, client, director)
    procs = []
    for i in range(1, n_servers + 1):
        name = f"s{i}"
        ns = lab.namespace(name)
        lab.veth(director, f"rs{i}", ns, "eth0")
        lab.add_address(director, f"rs{i}", f"10.98.1{i}.1/24")
        lab.add_address(ns, "eth0", f"10.98.1{i}.2/24")
        lab.run(ns, ["ip", "route", "add", "default", "via", f"10.98.1{i}.1"])
        lab.add_address(director, f"rs{i}", f"fd00:98:1{i}::1/64")
        lab.add_address(ns, "eth0", f"fd00:98:1{i}::2/64")
        lab.run(ns, ["ip", "-6", "route", "add", "default", "via", f"fd00:98:1{i}::1"])
        out.servers6[name] = f"fd00:98:1{i}::2"
        procs.append(lab.start(ns, [sys.executable, str(HERE), "serve", name, str(PORT)]))
        out.servers[name] = f"10.98.1{i}.2"
    deadline = time.monotonic() + 10
    for proc in procs:
        assert proc.log_path is not None
        while "ready" not in proc.log_path.read_text():
            if not proc.running() or time.monotonic() > deadline:
                raise RuntimeError(f"server {proc.argv} did not start: {proc.output()}")
            time.sleep(0.02)
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
