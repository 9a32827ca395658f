"""SMTP_CHECK: up when the server greets with 220 and answers ``HELO`` with 250."""

from __future__ import annotations

import asyncio
import contextlib
import socket

from healthchecks.base import family_of
from healthchecks.params import SmtpCheckParams
from healthchecks.result import CheckResult, describe_error

_MAX_LINE = 4096
_MAX_LINES = 64


class SmtpError(Exception):
    """The server said something that is not the expected reply."""


async def _read_reply(reader: asyncio.StreamReader) -> tuple[int, str]:
    """One SMTP reply (RFC 5321 section 4.2): lines ``NNN-text`` then ``NNN text``."""
    for _ in range(_MAX_LINES):
        line = await reader.readline()
        if not line:
            raise EOFError
        if not line.endswith(b"\n"):
            raise SmtpError("over-long reply line")
        text = line.decode("latin-1").rstrip("\r\n")
        if len(text) < 3 or not text[:3].isdigit() or (len(text) > 3 and text[3] not in " -"):
            raise SmtpError(f"malformed reply {text[:40]!r}")
        if len(text) == 3 or text[3] == " ":
            return int(text[:3]), text[4:]
    raise SmtpError("reply has too many lines")


class SmtpCheck:
    __slots__ = ("_helo", "params")

    def __init__(self, params: SmtpCheckParams) -> None:
        self.params = params
        self._helo = params.helo_name or socket.gethostname() or "localhost"

    @property
    def kind(self) -> str:
        return "SMTP_CHECK"

    @property
    def timeout(self) -> float:
        return self.params.connect_timeout

    async def check(self) -> CheckResult:
        p = self.params
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(p.connect_timeout):
                sock = p.source.open(family_of(p.connect_ip), socket.SOCK_STREAM)
                try:
                    await asyncio.get_running_loop().sock_connect(
                        sock, (p.connect_ip, p.connect_port)
                    )
                    reader, writer = await asyncio.open_connection(sock=sock, limit=_MAX_LINE)
                except BaseException:
                    sock.close()  # idempotent if a transport already closed it
                    raise
                code, text = await _read_reply(reader)
                if code != 220:
                    return CheckResult.down(f"banner {code} {text}".strip())
                writer.write(f"HELO {self._helo}\r\n".encode())
                code, text = await _read_reply(reader)
                if code != 250:
                    return CheckResult.down(f"HELO answered {code} {text}".strip())
                writer.write(b"QUIT\r\n")
                with contextlib.suppress(OSError):
                    await writer.drain()
                return CheckResult.up("HELO answered 250")
        except SmtpError as exc:
            return CheckResult.down(str(exc))
        except (OSError, TimeoutError, EOFError, ValueError) as exc:
            # ValueError: StreamReader's line limit (LimitOverrunError) was hit.
            return CheckResult.down(describe_error(exc, p.connect_timeout))
        finally:
            if writer is not None:
                writer.close()

    async def close(self) -> None:
        return None
