"""The Mailer against a real SMTP server (aiosmtpd) on 127.0.0.1: delivery, order, retries,
giving up, a full queue, and that submitting never waits for the server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from hacluster.alerts import Mail
from hacluster.config.model import GlobalDefs, SmtpServer
from hacluster.mailer import Mailer


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes, str]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        self.messages.append(
            (envelope.mail_from or "", list(envelope.rcpt_tos), content, session.host_name or "")
        )
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@contextlib.contextmanager
def smtp_server(port: int) -> Iterator[Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


def defs(port: int, timeout: float = 2.0) -> GlobalDefs:
    return GlobalDefs(
        notification_email=("ops@example.net", "Night Shift <night@example.net>"),
        notification_email_from="LB A <lb-a@example.net>",
        smtp_server=SmtpServer("127.0.0.1", port), smtp_helo_name="lb-a.example.net",
        smtp_connect_timeout=timeout,
    )


@pytest.fixture
async def counts() -> AsyncIterator[list[str]]:
    yield []


async def wait_until(pred: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_mail_is_delivered_in_order_with_keepalived_s_headers(counts: list[str]) -> None:
    port = free_port()
    with smtp_server(port) as inbox:
        mailer = Mailer(defs(port), on_count=counts.append)
        mailer.submit(Mail("[lb-a] VRRP Instance VI_1 - Entering BACKUP state", "=> one <="))
        mailer.submit(Mail("[lb-a] VRRP Instance VI_1 - Entering MASTER state", "=> two <="))
        await wait_until(lambda: len(inbox.messages) == 2)
        await mailer.close()
    first, second = inbox.messages
    assert first[0] == "lb-a@example.net"
    assert first[1] == ["ops@example.net", "night@example.net"]
    assert first[3] == "lb-a.example.net"
    text = first[2].decode()
    assert "Subject: [lb-a] VRRP Instance VI_1 - Entering BACKUP state" in text
    assert "From: LB A <lb-a@example.net>" in text
    assert "To: ops@example.net, Night Shift <night@example.net>" in text
    assert "X-Mailer: hacluster" in text and "Date: " in text
    assert text.rstrip().endswith("=> one <=")
    assert "Entering MASTER state" in second[2].decode()
    assert counts == ["sent", "sent"]


async def test_down_server_is_retried_then_delivered(counts: list[str]) -> None:
    port = free_port()
    mailer = Mailer(defs(port), on_count=counts.append, retry_delays=(0.3, 0.3, 0.3))
    mailer.submit(Mail("subject", "body"))
    await wait_until(lambda: counts.count("failed") >= 1)
    with smtp_server(port) as inbox:
        await wait_until(lambda: len(inbox.messages) == 1)
        await mailer.close()
    assert counts[-1] == "sent" and "given_up" not in counts
    assert mailer.sent == 1 and mailer.failed >= 1


async def test_a_mail_is_given_up_after_its_retries(counts: list[str],
                                                    caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    mailer = Mailer(defs(port), on_count=counts.append, retry_delays=(0.05, 0.05))
    mailer.submit(Mail("lost", "body"))
    mailer.submit(Mail("also lost", "body"))
    await wait_until(lambda: counts.count("given_up") == 2)
    await mailer.close()
    assert counts.count("failed") == 6  # three attempts each
    assert "given up after 3 attempts: lost" in caplog.text


async def test_submit_never_waits_and_a_full_queue_drops_the_oldest(counts: list[str]) -> None:
    # A server that accepts and never answers: the first mail hangs in its attempt.
    with socket.socket() as hang:
        hang.bind(("127.0.0.1", 0))
        hang.listen(8)
        port = hang.getsockname()[1]
        mailer = Mailer(defs(port, timeout=30), on_count=counts.append,
                        queue_max=3)
        started = time.perf_counter()
        for i in range(5):
            mailer.submit(Mail(f"mail {i}", "body"))
        spent = time.perf_counter() - started
        print(f"5 submits with the server hanging: {spent * 1e6:.0f} us")
        await asyncio.sleep(0.2)
        assert mailer.pending() == 3 and counts == ["dropped", "dropped"]
        await mailer.close(timeout=0.1)
