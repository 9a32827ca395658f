"""The minimal DNS codec: query layout and response header parsing."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthchecks.dnswire import DnsFormatError, build_query, encode_name, parse_response


def test_encode_name() -> None:
    assert encode_name(".") == b"\x00"
    assert encode_name("example.com.") == encode_name("example.com") == (
        b"\x07example\x03com\x00"
    )


def test_query_layout() -> None:
    q = build_query(0x1234, "a.b", 28)
    assert q[:12] == struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    assert q[12:] == b"\x01a\x01b\x00" + struct.pack("!HH", 28, 1)


def _response(qid: int, flags: int, ancount: int, question: bytes) -> bytes:
    return struct.pack("!HHHHHH", qid, flags, 1, ancount, 0, 0) + question


def test_parse_response() -> None:
    question = b"\x01a\x00" + struct.pack("!HH", 1, 1)
    answer = parse_response(_response(7, 0x8180, 2, question) + b"\xc0\x0c...")
    assert (answer.query_id, answer.rcode, answer.ancount) == (7, 0, 2)
    assert answer.question == question
    nx = parse_response(_response(7, 0x8183, 0, question))
    assert nx.rcode_name == "NXDOMAIN"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x01", "short"),
        (_response(1, 0x0100, 0, b"\x00\x00\x01\x00\x01"), "QR=0"),
        (_response(1, 0x8180, 0, b"\x05ab"), "past the end"),
        (_response(1, 0x8180, 0, b"\x00\x00"), "question runs past"),
        (_response(1, 0x8180, 0, b"\x80abc"), "label type"),
    ],
)
def test_malformed_responses(data: bytes, message: str) -> None:
    with pytest.raises(DnsFormatError, match=message):
        parse_response(data)


labels = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)


@given(st.lists(labels, min_size=1, max_size=5), st.integers(0, 0xFFFF),
       st.sampled_from([1, 2, 5, 6, 15, 16, 28]))
def test_query_round_trips_as_its_own_echo(parts: list[str], qid: int, qtype: int) -> None:
    query = build_query(qid, ".".join(parts), qtype)
    echoed = query[:2] + bytes([query[2] | 0x80]) + query[3:]  # the same message, QR=1
    answer = parse_response(echoed)
    assert (answer.query_id, answer.rcode, answer.ancount) == (qid, 0, 0)
    assert answer.question == query[12:]


@given(st.binary(max_size=64))
def test_any_bytes_parse_or_fail_with_a_format_error(data: bytes) -> None:
    try:
        answer = parse_response(data)
    except DnsFormatError:
        return
    assert answer.question == data[12 : 12 + len(answer.question)]
    assert answer.query_id == int.from_bytes(data[:2], "big")
