"""DNS_CHECK against a small asyncio UDP responder on 127.0.0.1 and ::1."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Callable
from typing import cast

import pytest

from healthchecks import DnsCheckParams, make_checker

Behaviour = Callable[[bytes], bytes | None]


def answer(ancount: int, rcode: int = 0) -> Callable[[bytes], bytes]:
    """Echo the question with QR set, the given rcode and that many A records."""

    def reply(query: bytes) -> bytes:
        qid, _flags = struct.unpack_from("!HH", query)
        header = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, ancount, 0, 0)
        record = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 1])
        return header + query[12:] + record * ancount

    return reply


def wrong_id(query: bytes) -> bytes:
    return answer(1)(bytes([query[0] ^ 0xFF]) + query[1:])


def other_question(query: bytes) -> bytes:
    qid = query[:2]
    return answer(1)(qid + query[2:12] + b"\x05other\x00" + query[-4:])


def garbage(query: bytes) -> bytes:
    return query[:2] + b"\x81"


def silent(query: bytes) -> None:
    return None


class Responder(asyncio.DatagramProtocol):
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.queries: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queries.append(data)
        out = self.behaviour(data)
        if out is not None and self.transport is not None:
            self.transport.sendto(out, addr)


@pytest.fixture(params=["127.0.0.1", "::1"])
async def responder(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, Responder]]:
    host = request.param
    proto = Responder(answer(1))
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: proto, local_addr=(host, 0))
    try:
        yield host, proto
    finally:
        transport.close()


def port_of(proto: Responder) -> int:
    assert proto.transport is not None
    port: int = proto.transport.get_extra_info("sockname")[1]
    return port


@pytest.mark.parametrize(
    ("behaviour", "qtype", "ok", "reason"),
    [
        (answer(2), "A", True, "2 A record(s)"),
        (answer(1), "AAAA", True, "1 AAAA record(s)"),
        (answer(0), "SOA", False, "no SOA records"),
        (answer(0, rcode=3), "A", False, "rcode NXDOMAIN"),
        (answer(0, rcode=2), "A", False, "rcode SERVFAIL"),
        (other_question, "A", False, "answer is for another question"),
        (garbage, "A", False, "bad DNS response: short response (3 bytes)"),
        (wrong_id, "A", False, "timeout after 0.3s"),  # a stray id is ignored
        (silent, "A", False, "timeout after 0.3s"),
    ],
)
async def test_dns_check(
    responder: tuple[str, Responder], behaviour: Behaviour, qtype: str, ok: bool, reason: str
) -> None:
    host, proto = responder
    proto.behaviour = behaviour
    # Short only where a timeout is the expected outcome: a busy machine must not fail
    # the others by being slow.
    timeout = 0.3 if reason.startswith("timeout") else 3.0
    params = DnsCheckParams(host, port_of(proto), type=qtype, name="www.example.com",
                            connect_timeout=timeout)
    result = await make_checker(params).check()
    assert (result.ok, result.reason) == (ok, reason)
    # The query that went out asked for that name and type, recursively.
    query = proto.queries[-1]
    assert query[12:] == b"\x03www\x07example\x03com\x00" + struct.pack(
        "!HH", {"A": 1, "AAAA": 28, "SOA": 6}[qtype], 1
    )
    assert struct.unpack_from("!H", query, 2)[0] & 0x0100


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_closed_port_is_refused(host: str) -> None:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: the kernel answers with ICMP unreachable
    result = await make_checker(DnsCheckParams(host, port, connect_timeout=3)).check()
    assert (result.ok, result.reason) == (False, "connection refused")
