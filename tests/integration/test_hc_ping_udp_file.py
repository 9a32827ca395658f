"""PING_CHECK, UDP_CHECK and FILE_CHECK against real targets: loopback, namespaces (prefix hpc),
a real UDP responder and real files."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from hacluster.lab.netns import Lab, Netns, sweep
from healthchecks import (
    FileCheckParams,
    PingCheckParams,
    UdpCheckParams,
    make_checker,
    parse_hex,
)
from healthchecks.file import read_number

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and ip"
)


# --------------------------------------------------------------------------- PING_CHECK


@pytest.mark.parametrize("ip", ["127.0.0.1", "::1"])
async def test_ping_loopback_answers(ip: str) -> None:
    result = await make_checker(PingCheckParams(ip, connect_timeout=1)).check()
    assert result.ok, result


_PING = """
import asyncio, json, sys
from healthchecks import PingCheckParams, make_checker
from healthchecks import ping
async def main():
    out = []
    for ip in sys.argv[1:]:
        r = await make_checker(PingCheckParams(ip, connect_timeout=0.5)).check()
        out.append([ip, r.ok, r.reason])
    print(json.dumps({"results": out, "raw": sorted(ping._raw_only)}))
asyncio.run(main())
"""


@pytest.fixture
def pair() -> Iterator[tuple[Lab, Netns, Netns]]:
    sweep("hpc")
    with Lab("hpc") as lab:
        a, b = lab.namespace("a"), lab.namespace("b")
        lab.veth(a, "eth0", b, "eth0")
        lab.add_address(a, "eth0", "10.82.0.1/24")
        lab.add_address(a, "eth0", "fd00:82::1/64")
        lab.add_address(b, "eth0", "10.82.0.2/24")
        lab.add_address(b, "eth0", "fd00:82::2/64")
        yield lab, a, b


def _ping_from(lab: Lab, ns: Netns, *ips: str) -> dict[str, object]:
    res = lab.run(ns, [sys.executable, "-c", _PING, *ips])
    data: dict[str, object] = json.loads(res.stdout)
    return data


@pytest.mark.netns
@needs_root
@pytest.mark.parametrize("group_range", ["0 2147483647", "1 0"], ids=["datagram", "raw"])
def test_ping_in_namespaces(pair: tuple[Lab, Netns, Netns], group_range: str) -> None:
    lab, a, b = pair
    # ping_group_range decides whether an unprivileged ICMP socket may be opened:
    # "1 0" allows nobody, so the checker must fall back to a raw socket.
    lab.run(a, ["sysctl", "-q", "-w", f"net.ipv4.ping_group_range={group_range}"])
    data = _ping_from(lab, a, "10.82.0.2", "fd00:82::2", "10.82.0.9", "fd00:82::9")
    results = {ip: (ok, reason) for ip, ok, reason in data["results"]}  # type: ignore[attr-defined]
    assert results["10.82.0.2"][0] and results["fd00:82::2"][0], results
    assert not results["10.82.0.9"][0] and "timeout" in results["10.82.0.9"][1]
    assert not results["fd00:82::9"][0]
    raw = data["raw"]
    # IPv6 datagram ICMP sockets follow the same (IPv4-named) sysctl.
    assert raw == ([] if group_range.startswith("0") else [socket.AF_INET, socket.AF_INET6])

    # The target goes away: down.
    lab.set_link(b, "eth0", False)
    data = _ping_from(lab, a, "10.82.0.2")
    # (a timeout, or the send refused while the neighbour entry fails: ENOBUFS)
    assert data["results"][0][:2] == ["10.82.0.2", False], data  # type: ignore[index]


# --------------------------------------------------------------------------- UDP_CHECK


class Responder(asyncio.DatagramProtocol):
    """A real UDP server on loopback: answers each datagram with `reply(data)`, or not."""

    def __init__(self, reply: Callable[[bytes], bytes | None]) -> None:
        self.reply = reply
        self.received: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append(data)
        answer = self.reply(data)
        if answer is not None and self.transport is not None:
            self.transport.sendto(answer, addr)


@pytest.fixture
async def udp() -> AsyncIterator[Callable[..., asyncio.Future[tuple[Responder, int]]]]:
    transports: list[asyncio.DatagramTransport] = []

    async def start(reply: Callable[[bytes], bytes | None], host: str = "127.0.0.1"
                    ) -> tuple[Responder, int]:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(
            lambda: Responder(reply), local_addr=(host, 0))
        transports.append(transport)
        return proto, transport.get_extra_info("sockname")[1]

    yield start  # type: ignore[misc]
    for t in transports:
        t.close()


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_udp_silence_is_up_unless_a_reply_is_required(udp) -> None:  # type: ignore[no-untyped-def]
    server, port = await udp(lambda _d: None)
    up = await make_checker(UdpCheckParams("127.0.0.1", port, connect_timeout=0.3)).check()
    assert up.ok and up.reason == "no ICMP error"
    # keepalived's default payload: 32 bytes of "keepalived check - ..."
    assert server.received == [b"keepalived check - keepalived ch"]
    down = await make_checker(UdpCheckParams(
        "127.0.0.1", port, require_reply=True, connect_timeout=0.3)).check()
    assert not down.ok and "no reply" in down.reason


async def test_udp_closed_port_is_down_by_icmp() -> None:
    port = _free_udp_port()
    result = await make_checker(UdpCheckParams("127.0.0.1", port, connect_timeout=2)).check()
    assert not result.ok and result.reason == "connection refused"


async def test_udp_payload_and_reply_pattern(udp) -> None:  # type: ignore[no-untyped-def]
    server, port = await udp(lambda data: b"\x01\xab" + data)
    payload, _ = parse_hex("de ad be ef", wildcards=False)
    data, mask = parse_hex("01 ax", wildcards=True)
    params = UdpCheckParams("127.0.0.1", port, payload=payload, require_reply=True,
                            reply_data=data, reply_mask=mask, connect_timeout=1)
    result = await make_checker(params).check()
    assert result.ok, result
    assert server.received[-1] == b"\xde\xad\xbe\xef"
    data, mask = parse_hex("01 bx", wildcards=True)
    params = UdpCheckParams("127.0.0.1", port, payload=payload, require_reply=True,
                            reply_data=data, reply_mask=mask, connect_timeout=1)
    result = await make_checker(params).check()
    assert not result.ok and "does not match" in result.reason
    # min/max_reply_length bound the reply (6 bytes here)
    params = UdpCheckParams("127.0.0.1", port, payload=payload, require_reply=True,
                            reply_data=b"\x01", max_reply_length=5, connect_timeout=1)
    assert not (await make_checker(params).check()).ok


async def test_udp_over_ipv6(udp) -> None:  # type: ignore[no-untyped-def]
    _server, port = await udp(lambda data: data, host="::1")
    result = await make_checker(UdpCheckParams(
        "::1", port, require_reply=True, connect_timeout=1)).check()
    assert result.ok, result


# --------------------------------------------------------------------------- FILE_CHECK


@pytest.mark.parametrize(("text", "value"), [
    ("5\n", 5), ("-3", -3), ("0x10", 16), ("010", 8), ("  7 apples", 7), ("abc", 0), ("", 0),
])
def test_file_number_as_keepalived_reads_it(tmp_path: Path, text: str, value: int) -> None:
    path = tmp_path / "value"
    path.write_text(text)
    assert read_number(str(path)) == value


def test_missing_file_reads_as_zero(tmp_path: Path) -> None:
    assert read_number(str(tmp_path / "nope")) == 0


async def test_file_check_states_and_weights(tmp_path: Path) -> None:
    path = tmp_path / "maint"
    check = make_checker(FileCheckParams(str(path), weight=0, base_weight=3))
    r = await check.check()  # missing: 0 -> up with the configured weight
    assert r.ok and r.weight == 3
    path.write_text("1\n")
    assert not (await check.check()).ok  # weight 0: non-zero is down
    reverse = make_checker(FileCheckParams(str(path), weight=0, reverse=True, base_weight=3))
    assert (await reverse.check()).ok  # reverse: non-zero is up
    path.write_text("0\n")
    assert not (await reverse.check()).ok
    weighted = make_checker(FileCheckParams(str(path), weight=2, base_weight=3))
    path.write_text("5")
    r = await weighted.check()
    assert r.ok and r.weight == 13  # 3 + 5 x 2
    path.write_text("-5")
    r = await weighted.check()
    assert r.ok and r.weight == 0  # never below 0


async def test_file_check_ignores_a_number_out_of_range(tmp_path: Path) -> None:
    path = tmp_path / "maint"
    check = make_checker(FileCheckParams(str(path), weight=1, base_weight=1))
    path.write_text("4")
    assert (await check.check()).weight == 5
    path.write_text(str(2**40))  # keepalived: "Invalid number ... ignoring"
    assert (await check.check()).weight == 5
