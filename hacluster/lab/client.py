"""The lab client: sends HTTP requests through the VIP without pause and records each one.

Several workers each open a new TCP connection per request (so every request is a new
connection the director must schedule), with short timeouts so that an outage is seen
at a fine grain. Each request becomes one JSON line in the output file:
`{"t0": start, "t1": end, "ok": bool, "status": 200, "rs": "rs1", "dir": "lvs-a",
"err": null}` where the times are CLOCK_MONOTONIC seconds (shared by every network
namespace, so the drill compares them with its own clock). `read_records` parses the
file. Run as `python -m hacluster.lab.client`.
"""

from __future__ import annotations

import argparse
import errno
import json
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any


@dataclass(frozen=True, slots=True)
class Record:
    """One request as the client saw it."""

    t0: float  # monotonic time the connection was opened
    t1: float  # monotonic time the answer (or the error) was complete
    ok: bool  # a 200 answer naming a real server and a director
    status: int | None
    rs: str | None
    director: str | None
    error: str | None


def _error_name(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    if isinstance(exc, OSError) and exc.errno is not None:
        return errno.errorcode.get(exc.errno, str(exc.errno)).lower()
    return type(exc).__name__


def parse_response(data: bytes) -> tuple[int | None, dict[str, str]]:
    """Status code and (lower-case) headers of a raw HTTP/1.0 answer."""
    head, _, _ = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2) if lines else []
    status = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return status, headers


def request(host: str, port: int, connect_timeout: float, read_timeout: float) -> Record:
    """One GET / over a new connection."""
    t0 = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=connect_timeout) as sock:
            sock.settimeout(read_timeout)
            sock.sendall(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            chunks: list[bytes] = []
            while chunk := sock.recv(4096):
                chunks.append(chunk)
    except OSError as exc:
        return Record(t0, time.monotonic(), False, None, None, None, _error_name(exc))
    t1 = time.monotonic()
    status, headers = parse_response(b"".join(chunks))
    rs, director = headers.get("x-real-server"), headers.get("x-director")
    ok = status == 200 and rs is not None and director is not None
    return Record(t0, t1, ok, status, rs, director, None if ok else "bad answer")


def _to_json(r: Record) -> str:
    return json.dumps({"t0": round(r.t0, 6), "t1": round(r.t1, 6), "ok": r.ok,
                       "status": r.status, "rs": r.rs, "dir": r.director, "err": r.error})


def record_from_json(line: str) -> Record | None:
    """A record from one output line; None for a partial or foreign line."""
    try:
        d: Any = json.loads(line)
        return Record(float(d["t0"]), float(d["t1"]), bool(d["ok"]), d.get("status"),
                      d.get("rs"), d.get("dir"), d.get("err"))
    except (ValueError, KeyError, TypeError):
        return None


class RecordReader:
    """Reads the records a running client appends to its file, a complete line at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: list[Record] = []
        self._offset = 0
        self._partial = b""

    def poll(self) -> list[Record]:
        """Records written since the last poll (also kept in `records`)."""
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        new = [r for r in (record_from_json(x.decode(errors="replace")) for x in lines if x)
               if r is not None]
        self.records.extend(new)
        return new


def read_records(path: Path) -> list[Record]:
    """Every complete record in a client output file."""
    reader = RecordReader(path)
    reader.poll()
    return reader.records


def _worker(args: argparse.Namespace, out: IO[str], lock: threading.Lock,
            stop: threading.Event, offset: float) -> None:
    next_at = time.monotonic() + offset
    while not stop.is_set():
        delay = next_at - time.monotonic()
        if delay > 0 and stop.wait(delay):
            break
        next_at = max(next_at + args.interval, time.monotonic())
        rec = request(args.host, args.port, args.connect_timeout, args.read_timeout)
        with lock:
            out.write(_to_json(rec) + "\n")
            out.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hacluster.lab.client")
    parser.add_argument("--host", required=True, help="the VIP")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--interval", type=float, default=0.04,
                        help="seconds between the starts of one worker's requests")
    parser.add_argument("--connect-timeout", type=float, default=0.3)
    parser.add_argument("--read-timeout", type=float, default=1.0)
    parser.add_argument("--once", action="store_true",
                        help="send one request, print its record; exit 0 if it succeeded")
    parser.add_argument("--out", type=Path, help="JSON lines output file (not with --once)")
    args = parser.parse_args(argv)
    if args.once:
        rec = request(args.host, args.port, args.connect_timeout, args.read_timeout)
        print(_to_json(rec))
        return 0 if rec.ok else 1
    if args.out is None:
        parser.error("--out is required (or --once)")
    if args.workers < 1 or args.interval <= 0:
        parser.error("--workers must be >= 1 and --interval > 0")
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    lock = threading.Lock()
    with args.out.open("a") as out:
        threads = [
            threading.Thread(target=_worker, daemon=True,
                             args=(args, out, lock, stop, i * args.interval / args.workers))
            for i in range(args.workers)
        ]
        for t in threads:
            t.start()
        stop.wait()
        for t in threads:
            t.join(args.connect_timeout + args.read_timeout + 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
