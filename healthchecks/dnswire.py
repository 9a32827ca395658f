"""Minimal DNS wire format (RFC 1035): build one query, read a response's header. Does no I/O."""

from __future__ import annotations

import struct
from dataclasses import dataclass

_HEADER = struct.Struct("!HHHHHH")
QR = 0x8000
RD = 0x0100
TC = 0x0200
CLASS_IN = 1
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


class DnsFormatError(ValueError):
    """A response that is not a well-formed answer to our query."""


def encode_name(name: str) -> bytes:
    """A domain name as labels (RFC 1035 section 3.1); ``.`` is the root."""
    if not isinstance(name, str):
        raise ValueError(f"name: {name!r} is not a string")
    stripped = name.rstrip(".") if name != "." else ""
    out = bytearray()
    if stripped:
        for label in stripped.split("."):
            raw = label.encode("idna") if not label.isascii() else label.encode()
            if not 0 < len(raw) <= 63:
                raise ValueError(f"name: {name!r} has an empty or over-long label")
            out.append(len(raw))
            out += raw
    out.append(0)
    if len(out) > 255:
        raise ValueError(f"name: {name!r} is longer than 255 bytes")
    return bytes(out)


def build_query(query_id: int, name: str, qtype: int) -> bytes:
    """A recursive query with one question."""
    return _HEADER.pack(query_id, RD, 1, 0, 0, 0) + encode_name(name) + struct.pack(
        "!HH", qtype, CLASS_IN
    )


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    query_id: int
    rcode: int
    truncated: bool
    qdcount: int
    ancount: int
    question: bytes  # the raw question section as echoed

    @property
    def rcode_name(self) -> str:
        return RCODES.get(self.rcode, f"RCODE {self.rcode}")


def _skip_name(data: bytes, pos: int) -> int:
    while True:
        if pos >= len(data):
            raise DnsFormatError("name runs past the end")
        length = data[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:  # compression pointer ends the name
            return pos + 2
        if length & 0xC0:
            raise DnsFormatError("bad label type")
        pos += 1 + length


def parse_response(data: bytes) -> DnsAnswer:
    """Read the header and the first question of a response."""
    if len(data) < _HEADER.size:
        raise DnsFormatError(f"short response ({len(data)} bytes)")
    qid, flags, qd, an, _ns, _ar = _HEADER.unpack_from(data)
    if not flags & QR:
        raise DnsFormatError("not a response (QR=0)")
    pos = _HEADER.size
    question = b""
    if qd:
        end = _skip_name(data, pos) + 4
        if end > len(data):
            raise DnsFormatError("question runs past the end")
        question = data[pos:end]
    return DnsAnswer(qid, flags & 0x000F, bool(flags & TC), qd, an, question)
