"""DNS_CHECK: up when a UDP query of ``type`` for ``name`` is answered with records."""

from __future__ import annotations

import asyncio
import secrets
import struct

from healthchecks.base import DatagramReply
from healthchecks.dnswire import (
    CLASS_IN,
    DnsFormatError,
    build_query,
    encode_name,
    parse_response,
)
from healthchecks.params import DNS_TYPES, DnsCheckParams
from healthchecks.result import CheckResult, describe_error


class _Exchange(DatagramReply):
    """Waits for the first datagram that carries our query id."""

    def __init__(self, query_id: int, done: asyncio.Future[bytes | BaseException]) -> None:
        super().__init__(done)
        self._id = query_id

    def accepts(self, data: bytes) -> bool:
        # A stray datagram with another id is ignored, as a resolver would.
        return len(data) >= 2 and int.from_bytes(data[:2], "big") == self._id


class DnsCheck:
    __slots__ = ("_qtype", "_question", "params")

    def __init__(self, params: DnsCheckParams) -> None:
        self.params = params
        self._qtype = DNS_TYPES[params.type]
        self._question = encode_name(params.name) + struct.pack("!HH", self._qtype, CLASS_IN)

    @property
    def kind(self) -> str:
        return "DNS_CHECK"

    @property
    def timeout(self) -> float:
        return self.params.connect_timeout

    async def check(self) -> CheckResult:
        p = self.params
        loop = asyncio.get_running_loop()
        query_id = secrets.randbits(16)
        done: asyncio.Future[bytes | BaseException] = loop.create_future()
        transport: asyncio.DatagramTransport | None = None
        try:
            sock = p.source.connected_datagram(p.connect_ip, p.connect_port)
            async with asyncio.timeout(p.connect_timeout):
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Exchange(query_id, done), sock=sock
                )
                transport.sendto(build_query(query_id, p.name, self._qtype))
                reply = await done
        except (OSError, TimeoutError) as exc:
            return CheckResult.down(describe_error(exc, p.connect_timeout))
        finally:
            if transport is not None:
                transport.close()
        if isinstance(reply, BaseException):
            return CheckResult.down(describe_error(reply))
        return self._judge(reply)

    def _judge(self, reply: bytes) -> CheckResult:
        try:
            answer = parse_response(reply)
        except DnsFormatError as exc:
            return CheckResult.down(f"bad DNS response: {exc}")
        if answer.rcode:
            return CheckResult.down(f"rcode {answer.rcode_name}")
        if answer.qdcount and answer.question.lower() != self._question.lower():
            return CheckResult.down("answer is for another question")
        if answer.ancount == 0:
            return CheckResult.down(f"no {self.params.type} records")
        return CheckResult.up(f"{answer.ancount} {self.params.type} record(s)")

    async def close(self) -> None:
        return None
