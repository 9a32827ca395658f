"""A lab real server: a tiny HTTP server that answers with its own name and the director's.

It listens on one port per director (`--listen 8081=lvs-a --listen 8082=lvs-b`): each
director's configuration reaches the real servers on its own port, so the port a request
arrived on says which director forwarded it. Every answer carries `X-Real-Server` and
`X-Director` headers and the body `NAME DIRECTOR`; `/health` answers `ok` for the
directors' HTTP_GET checks. Run as `python -m hacluster.lab.realserver`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, port: int, name: str, director: str) -> None:
        self.lab_name = name
        self.lab_director = director
        super().__init__(("0.0.0.0", port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        if self.path.startswith("/health"):
            body = b"ok\n"
        else:
            body = f"{self.server.lab_name} {self.server.lab_director}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Real-Server", self.server.lab_name)
        self.send_header("X-Director", self.server.lab_director)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # thousands of requests per drill: keep the log for errors only


def parse_listen(text: str) -> tuple[int, str]:
    """`8081=lvs-a` -> (8081, "lvs-a")."""
    port_text, sep, director = text.partition("=")
    if not sep or not port_text.isdigit() or not director or not 0 < int(port_text) < 65536:
        raise argparse.ArgumentTypeError(f"expected PORT=DIRECTOR, got {text!r}")
    return int(port_text), director


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hacluster.lab.realserver")
    parser.add_argument("--name", required=True, help="this real server's name (rs1, ...)")
    parser.add_argument("--listen", type=parse_listen, action="append", required=True,
                        metavar="PORT=DIRECTOR", help="a port and the director that uses it")
    args = parser.parse_args(argv)
    servers = [_Server(port, args.name, director) for port, director in args.listen]
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2},
                                daemon=True) for s in servers]
    for t in threads:
        t.start()
    ports = ", ".join(str(s.server_address[1]) for s in servers)
    print(f"{args.name}: listening on {ports}", file=sys.stderr, flush=True)
    stop.wait()
    for s in servers:
        s.shutdown()
        s.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
