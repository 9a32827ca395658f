"""Alert mail, sent in the background: queued, retried, and never in the way of VRRP.

`Mailer.submit()` only appends to a bounded queue and returns; one asyncio task sends
the queue in order over plain SMTP (keepalived speaks no TLS either) with aiosmtplib,
so a slow or dead server costs the event loop nothing but a socket waiting for it.
A mail that cannot be delivered is retried after each of `retry_delays` (seconds), then
given up; every failed attempt and every mail given up or dropped from a full queue is
logged and counted (`on_count("sent" | "failed" | "given_up" | "dropped")`).

The message is keepalived's: Date, From, Subject, To, X-Mailer and the body; the
envelope sender and recipients are the addresses (``Name <a@b>`` gives ``a@b``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import email.utils
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib

from hacluster.alerts import Mail, local_name, sender
from hacluster.config.model import GlobalDefs

log = logging.getLogger("hacluster.mail")

#: Waits before the 2nd, 3rd, ... attempt of one mail (then it is given up).
RETRY_DELAYS: tuple[float, ...] = (5.0, 30.0, 120.0, 600.0)
QUEUE_MAX = 256


def envelope_address(text: str) -> str:
    """The bare address of ``Name <a@b>`` or ``a@b`` (keepalived's RCPT TO rule)."""
    _name, address = email.utils.parseaddr(text)
    return address or text.strip()


def build_message(mail: Mail, g: GlobalDefs) -> EmailMessage:
    msg = EmailMessage()
    msg["Date"] = email.utils.formatdate(localtime=True)
    msg["From"] = sender(g)
    msg["Subject"] = mail.subject
    msg["X-Mailer"] = "hacluster"
    msg["To"] = ", ".join(g.notification_email)
    msg.set_content(mail.body + "\n")
    return msg


@dataclass(slots=True)
class _Pending:
    mail: Mail
    attempts: int = 0


class Mailer:
    """One queue of alert mails for the server in `global_defs`; see the module doc."""

    def __init__(
        self,
        g: GlobalDefs,
        *,
        on_count: Callable[[str], None] | None = None,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        queue_max: int = QUEUE_MAX,
    ) -> None:
        self._g = g
        self._on_count = on_count
        self._retry_delays = tuple(retry_delays)
        self._queue: collections.deque[_Pending] = collections.deque()
        self._queue_max = queue_max
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.sent = 0
        self.failed = 0  # failed attempts
        self.given_up = 0
        self.dropped = 0

    def reconfigure(self, g: GlobalDefs) -> None:
        """Settings for the next attempt (mails already queued go to the new server)."""
        self._g = g

    def submit(self, mail: Mail) -> None:
        """Queue `mail`; never blocks. A full queue drops its oldest mail (logged)."""
        if self._closed:
            return
        if len(self._queue) >= self._queue_max:
            old = self._queue.popleft()
            self.dropped += 1
            self._count("dropped")
            log.error("mail queue full (%d): dropped %r", self._queue_max, old.mail.subject)
        self._queue.append(_Pending(mail))
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="mailer")

    def pending(self) -> int:
        return len(self._queue)

    async def drain(self) -> None:
        """Wait until the queue is empty (sent or given up)."""
        while self._queue:
            await asyncio.sleep(0.01)

    async def close(self, timeout: float = 5.0) -> None:
        """Send what is queued for at most `timeout` seconds, then stop."""
        self._closed = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.drain()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._queue:
            log.warning("mail: %d alert(s) not sent at stop", len(self._queue))

    def _count(self, what: str) -> None:
        if self._on_count is not None:
            try:
                self._on_count(what)
            except Exception:
                log.exception("mail: counting failed")

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            item = self._queue[0]
            item.attempts += 1
            error = await self._send(item.mail)
            if error is None:
                self.sent += 1
                self._count("sent")
                log.info("mail sent: %s", item.mail.subject)
                if self._queue and self._queue[0] is item:
                    self._queue.popleft()
                continue
            self.failed += 1
            self._count("failed")
            if item.attempts > len(self._retry_delays):
                self.given_up += 1
                self._count("given_up")
                log.error("mail to %s given up after %d attempts: %s (%s)",
                          self._g.smtp_server, item.attempts, item.mail.subject, error)
                if self._queue and self._queue[0] is item:
                    self._queue.popleft()
                continue
            delay = self._retry_delays[item.attempts - 1]
            log.warning("mail to %s failed (attempt %d): %s; retrying in %gs",
                        self._g.smtp_server, item.attempts, error, delay)
            await asyncio.sleep(delay)

    async def _send(self, mail: Mail) -> str | None:
        """None when the server took the mail, else why not."""
        g = self._g
        server = g.smtp_server
        if server is None or not g.notification_email:
            return "no smtp_server or notification_email"
        message = build_message(mail, g)
        try:
            await aiosmtplib.send(
                message,
                sender=envelope_address(sender(g)),
                recipients=[envelope_address(a) for a in g.notification_email],
                hostname=server.host,
                port=server.port,
                local_hostname=g.smtp_helo_name or local_name(),
                timeout=g.smtp_connect_timeout,
                use_tls=False,
                start_tls=False,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # anything else must not stop the queue either
            log.exception("mail: unexpected failure")
            return f"{type(exc).__name__}: {exc}"
        return None
