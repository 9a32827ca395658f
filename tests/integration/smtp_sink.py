"""A real SMTP server for tests (aiosmtpd): every mail it takes is appended to a file as one
JSON line (envelope, headers, body). Run as `python smtp_sink.py HOST PORT OUTFILE [closed]`.

With `closed` it starts, prints "ready" and refuses connections (nothing listens) until
SIGUSR1: a test opens the server at the moment it chooses, without waiting for Python
and aiosmtpd to start then (seconds on a loaded machine).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import signal
import sys
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class JsonLines:
    """aiosmtpd handler: records each message."""

    def __init__(self, out: Path) -> None:
        self.out = out

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.content if isinstance(envelope.content, bytes) else b""
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        record: dict[str, Any] = {
            "helo": session.host_name,
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "headers": {k: str(v) for k, v in msg.items()},
            "body": msg.get_body().get_content() if msg.get_body() else "",  # type: ignore[union-attr]
        }
        with self.out.open("a") as f:
            f.write(json.dumps(record) + "\n")
        return "250 OK"


def main(argv: list[str]) -> None:
    host, port, out = argv[0], int(argv[1]), Path(argv[2])
    closed = argv[3:] == ["closed"]
    controller = Controller(JsonLines(out), hostname=host, port=port)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    def open_server() -> None:
        if controller.server is not None:
            return  # open already
        controller.start()
        print(f"listening on {host}:{port}", flush=True)

    if closed:
        loop.add_signal_handler(signal.SIGUSR1, open_server)
        print("ready (closed until SIGUSR1)", flush=True)
    else:
        open_server()
    loop.run_until_complete(stop.wait())
    if controller.server is not None:
        controller.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
