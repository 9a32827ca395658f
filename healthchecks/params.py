"""Checker parameters with keepalived's names and defaults, validated on construction.

Does no I/O.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from healthchecks.base import Source
from healthchecks.dnswire import encode_name

CheckKind = Literal[
    "HTTP_GET", "SSL_GET", "TCP_CHECK", "MISC_CHECK", "DNS_CHECK", "SMTP_CHECK", "PING_CHECK",
    "UDP_CHECK", "FILE_CHECK",
]

#: keepalived's default delay_loop (seconds between checks of one real server).
DEFAULT_DELAY_LOOP = 60.0
#: keepalived's default connect_timeout.
DEFAULT_CONNECT_TIMEOUT = 5.0

# keepalived.conf(5): "retry ... Default: 1 unless specified below"; DNS_CHECK 3, MISC_CHECK 0.
# FILE_CHECK has no retries: the file's value is the state.
_DEFAULT_RETRY: dict[str, int] = {"DNS_CHECK": 3, "MISC_CHECK": 0, "FILE_CHECK": 0}
# "delay_before_retry ... delay_loop for DNS_CHECK, 3 seconds for HTTP_GET and SSL_GET,
# and 1 second otherwise."
_DEFAULT_DELAY_BEFORE_RETRY: dict[str, float] = {"HTTP_GET": 3.0, "SSL_GET": 3.0}


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


def _check_ip(value: str, key: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{key}: {value!r} is not an IP address") from None


def _check_port(value: int, key: str) -> None:
    _require(
        isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536,
        f"{key}: {value!r} is not a port (1-65535)",
    )


def _check_positive(value: float, key: str, *, zero_ok: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    ok = ok and (value >= 0 if zero_ok else value > 0)
    _require(ok, f"{key}: {value!r} must be a {'non-negative' if zero_ok else 'positive'} number")


_IFNAME = re.compile(r"[^/\s\x00]{1,15}")


def _check_source(p: _Endpoint) -> None:
    if p.bindto is not None:
        _check_ip(p.bindto, "bindto")
        _require(
            ipaddress.ip_address(p.bindto).version == ipaddress.ip_address(p.connect_ip).version,
            f"bindto: {p.bindto} and connect_ip: {p.connect_ip} are of different families",
        )
    if p.bind_port is not None:
        _check_port(p.bind_port, "bind_port")
    if p.bind_if is not None:
        _require(isinstance(p.bind_if, str) and bool(_IFNAME.fullmatch(p.bind_if)),
                 f"bind_if: {p.bind_if!r} is not an interface name")
    if p.fwmark is not None:
        _require(type(p.fwmark) is int and 0 < p.fwmark <= 0xFFFFFFFF,
                 f"fwmark: {p.fwmark!r} must be an integer 1-4294967295")


class _Endpoint:
    """What the network checkers share: the server they connect to and where they connect from."""

    __slots__ = ()

    connect_ip: str
    connect_port: int
    bindto: str | None
    bind_port: int | None
    bind_if: str | None
    fwmark: int | None
    connect_timeout: float

    def _check_endpoint(self) -> None:
        _check_ip(self.connect_ip, "connect_ip")
        _check_port(self.connect_port, "connect_port")
        _check_source(self)
        _check_positive(self.connect_timeout, "connect_timeout")

    @property
    def source(self) -> Source:
        return Source(self.bindto, self.bind_port, self.bind_if, self.fwmark)


@dataclass(frozen=True, slots=True)
class Timing:
    """When a check runs and how its results become up/down (keepalived + HAProxy rise/fall).

    ``None`` fields take keepalived's per-kind default in :meth:`resolved`.
    """

    delay_loop: float = DEFAULT_DELAY_LOOP
    retry: int | None = None
    delay_before_retry: float | None = None
    warmup: float | None = None  # random first delay up to this; default delay_loop; 0 = none
    alpha: bool = False  # start down until the first success
    rise: int = 1
    fall: int = 1

    def __post_init__(self) -> None:
        _check_positive(self.delay_loop, "delay_loop")
        if self.retry is not None:
            _require(
                type(self.retry) is int and self.retry >= 0,
                f"retry: {self.retry!r} must be a non-negative integer",
            )
        if self.delay_before_retry is not None:
            _check_positive(self.delay_before_retry, "delay_before_retry", zero_ok=True)
        if self.warmup is not None:
            _check_positive(self.warmup, "warmup", zero_ok=True)
        for key in ("rise", "fall"):
            value = getattr(self, key)
            _require(
                isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                f"{key}: {value!r} must be an integer >= 1",
            )

    def resolved(self, kind: str) -> Timing:
        """This timing with every unset field given keepalived's default for ``kind``."""
        retry = self.retry if self.retry is not None else _DEFAULT_RETRY.get(kind, 1)
        if self.delay_before_retry is not None:
            dbr = self.delay_before_retry
        elif kind == "DNS_CHECK":
            dbr = self.delay_loop
        else:
            dbr = _DEFAULT_DELAY_BEFORE_RETRY.get(kind, 1.0)
        warmup = self.warmup if self.warmup is not None else self.delay_loop
        return Timing(self.delay_loop, retry, dbr, warmup, self.alpha, self.rise, self.fall)


_RANGE = re.compile(r"^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$")


def parse_status_codes(value: int | str | Iterable[int | str]) -> tuple[tuple[int, int], ...]:
    """keepalived's ``status_code``: a code, ``"200-299"``, or a list/space-separated mix."""
    items: list[int | str]
    if isinstance(value, int | str):
        items = list(value.split()) if isinstance(value, str) else [value]
    else:
        items = list(value)
    _require(bool(items), "status_code: empty")
    ranges: list[tuple[int, int]] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise ValueError(f"status_code: {item!r} is not a code or a range")
        if isinstance(item, int):
            lo = hi = item
        else:
            m = _RANGE.match(item)
            if m is None:
                raise ValueError(f"status_code: {item!r} is not a code or a range like 200-299")
            lo = int(m.group(1))
            hi = int(m.group(2) or lo)
        _require(100 <= lo <= hi <= 599, f"status_code: {item!r} is outside 100-599")
        ranges.append((lo, hi))
    return tuple(ranges)


@dataclass(frozen=True, slots=True)
class UrlSpec:
    """One ``url`` entry of HTTP_GET/SSL_GET."""

    path: str = "/"
    status_code: tuple[tuple[int, int], ...] = ((200, 299),)
    digest: str | None = None  # MD5 of the body, hex, as genhash prints it
    regex: str | None = None
    regex_no_match: bool = False
    virtualhost: str | None = None
    max_body: int = 1 << 20  # bytes read at most when looking for regex

    def __post_init__(self) -> None:
        _require(isinstance(self.path, str) and self.path.startswith("/"),
                 f"url.path: {self.path!r} must start with '/'")
        if self.digest is not None:
            _require(bool(re.fullmatch(r"[0-9a-fA-F]{32}", self.digest)),
                     f"url.digest: {self.digest!r} is not an MD5 hex digest")
            object.__setattr__(self, "digest", self.digest.lower())
        if self.regex is not None:
            try:
                re.compile(self.regex.encode())
            except re.error as exc:
                raise ValueError(f"url.regex: {self.regex!r}: {exc}") from None
        _require(not self.regex_no_match or self.regex is not None,
                 "url.regex_no_match needs url.regex")
        _check_positive(self.max_body, "url.max_body")

    def status_ok(self, status: int) -> bool:
        return any(lo <= status <= hi for lo, hi in self.status_code)


@dataclass(frozen=True, slots=True)
class HttpGetParams(_Endpoint):
    """HTTP_GET (``tls=False``) or SSL_GET (``tls=True``)."""

    connect_ip: str
    connect_port: int
    urls: tuple[UrlSpec, ...] = (UrlSpec(),)
    tls: bool = False
    virtualhost: str | None = None
    bindto: str | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    fwmark: int | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    enable_sni: bool = False
    verify: bool = False  # keepalived does not verify the server certificate
    ca_file: str | None = None
    # keepalived's: 1.0, 1.0C (1.0 + Connection: close), 1.0K (1.0 + Connection:
    # keep-alive) or 1.1 (with Connection: close)
    http_protocol: str = "1.0"

    def __post_init__(self) -> None:
        self._check_endpoint()
        _require(bool(self.urls), "url: at least one url entry is needed")
        _require(all(isinstance(u, UrlSpec) for u in self.urls), "url: entries must be UrlSpec")
        _require(self.http_protocol in ("1.0", "1.0C", "1.0K", "1.1"),
                 f"http_protocol: {self.http_protocol!r} is not one of 1.0, 1.0C, 1.0K, 1.1")

    @property
    def kind(self) -> CheckKind:
        return "SSL_GET" if self.tls else "HTTP_GET"


@dataclass(frozen=True, slots=True)
class TcpCheckParams(_Endpoint):
    """TCP_CHECK: a connect that succeeds within connect_timeout.

    The server's SYN-ACK is the success; by default the connection is then reset without
    the handshake's last ACK (as HAProxy's TCP checks do), so the server never has a
    connection to accept. ``complete_handshake`` sends that ACK first (keepalived's way):
    the server then accepts a connection that is reset at once.
    """

    connect_ip: str
    connect_port: int
    bindto: str | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    fwmark: int | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    complete_handshake: bool = False

    def __post_init__(self) -> None:
        self._check_endpoint()

    @property
    def kind(self) -> CheckKind:
        return "TCP_CHECK"


@dataclass(frozen=True, slots=True)
class MiscCheckParams:
    """MISC_CHECK: a program run without a shell; exit 0 = up."""

    misc_path: str
    misc_timeout: float | None = None  # default: delay_loop
    misc_dynamic: bool = False
    script_user: str | None = None
    script_group: str | None = None
    argv: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        _require(isinstance(self.misc_path, str) and bool(self.misc_path.strip()),
                 "misc_path: empty")
        try:
            argv = tuple(shlex.split(self.misc_path))
        except ValueError as exc:
            raise ValueError(f"misc_path: {self.misc_path!r}: {exc}") from None
        _require(bool(argv), "misc_path: empty")
        object.__setattr__(self, "argv", argv)
        if self.misc_timeout is not None:
            _check_positive(self.misc_timeout, "misc_timeout")
        _require(self.script_group is None or self.script_user is not None,
                 "script_group needs script_user")

    @property
    def kind(self) -> CheckKind:
        return "MISC_CHECK"


# RFC 1035 section 3.2.2 and RFC 3596 (AAAA).
DNS_TYPES: dict[str, int] = {
    "A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "SRV": 33,
}


@dataclass(frozen=True, slots=True)
class DnsCheckParams(_Endpoint):
    """DNS_CHECK: a UDP query of ``type`` for ``name``; up when the answer has records."""

    connect_ip: str
    connect_port: int = 53
    type: str = "SOA"
    name: str = "."
    bindto: str | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    fwmark: int | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT

    def __post_init__(self) -> None:
        self._check_endpoint()
        upper = self.type.upper() if isinstance(self.type, str) else ""
        _require(upper in DNS_TYPES,
                 f"type: {self.type!r} is not one of {', '.join(DNS_TYPES)}")
        object.__setattr__(self, "type", upper)
        encode_name(self.name)

    @property
    def kind(self) -> CheckKind:
        return "DNS_CHECK"


@dataclass(frozen=True, slots=True)
class SmtpCheckParams(_Endpoint):
    """SMTP_CHECK: banner 220, then ``HELO helo_name`` answered 250."""

    connect_ip: str
    connect_port: int = 25
    helo_name: str | None = None  # default: this host's name
    bindto: str | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    fwmark: int | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT

    def __post_init__(self) -> None:
        self._check_endpoint()
        if self.helo_name is not None:
            _require(bool(re.fullmatch(r"[\x21-\x7e]+", self.helo_name)),
                     f"helo_name: {self.helo_name!r} must be printable ASCII without spaces")

    @property
    def kind(self) -> CheckKind:
        return "SMTP_CHECK"


def parse_hex(text: str, *, wildcards: bool) -> tuple[bytes, bytes | None]:
    """keepalived's hex strings (`read_hex_str`): (data, mask or None).

    Pairs of hex digits, spaces and tabs between octets; a lone digit before a space is
    one octet. With `wildcards`, `x` or `X` is a nibble that matches anything: its bits
    are set in the mask. Raises ValueError naming what is wrong.
    """
    data = bytearray()
    mask = bytearray()
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            break
        value, nibble_mask = _hex_nibble(text[i], wildcards, text)
        i += 1
        if i < n and text[i] != " " and text[i] != "\t":
            low, low_mask = _hex_nibble(text[i], wildcards, text)
            i += 1
            value, nibble_mask = (value << 4) | low, (nibble_mask << 4) | low_mask
        data.append(value)
        mask.append(nibble_mask)
    if not data:
        raise ValueError(f"{text!r} holds no hex octets")
    return bytes(data), (bytes(mask) if any(mask) else None)


def _hex_nibble(char: str, wildcards: bool, text: str) -> tuple[int, int]:
    if wildcards and char in "xX":
        return 0, 0x0F
    try:
        return int(char, 16), 0
    except ValueError:
        raise ValueError(f"{text!r} is not a hex string (at {char!r})") from None


#: What keepalived sends when UDP_CHECK has no payload (layer4.c set_buf, 32 bytes).
DEFAULT_UDP_PAYLOAD = (b"keepalived check - " * 2)[:32]


@dataclass(frozen=True, slots=True)
class PingCheckParams(_Endpoint):
    """PING_CHECK: an ICMP / ICMPv6 echo answered within connect_timeout."""

    connect_ip: str
    connect_port: int = 1  # unused: kept so the endpoint checks hold
    bindto: str | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    fwmark: int | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT

    def __post_init__(self) -> None:
        self._check_endpoint()

    @property
    def kind(self) -> CheckKind:
        return "PING_CHECK"


@dataclass(frozen=True, slots=True)
class UdpCheckParams(_Endpoint):
    """UDP_CHECK: send `payload`; up unless an ICMP error comes back within
    connect_timeout, or with `require_reply` when a reply comes that fits."""

    connect_ip: str
    connect_port: int
    payload: bytes = DEFAULT_UDP_PAYLOAD
    require_reply: bool = False
    reply_data: bytes | None = None  # the reply must start with this (mask: any bits)
    reply_mask: bytes | None = None
    min_reply_length: int = 0
    max_reply_length: int = 255
    bindto: str | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    fwmark: int | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT

    def __post_init__(self) -> None:
        self._check_endpoint()
        _require(isinstance(self.payload, bytes) and 0 < len(self.payload) <= 65507,
                 "payload: 1 to 65507 bytes")
        _require(self.reply_data is None or self.require_reply,
                 "reply data needs require_reply")
        _require(self.reply_mask is None or (
            self.reply_data is not None and len(self.reply_mask) == len(self.reply_data)),
            "reply_mask must be as long as reply_data")
        for key in ("min_reply_length", "max_reply_length"):
            value = getattr(self, key)
            _require(type(value) is int and 0 <= value <= 65535, f"{key}: 0..65535")

    @property
    def kind(self) -> CheckKind:
        return "UDP_CHECK"

    def reply_fits(self, reply: bytes) -> bool:
        """keepalived's check_udp_reply: length bounds, then the pattern over the
        shorter of the reply and the pattern."""
        if self.reply_data is None:
            return True
        if not self.min_reply_length <= len(reply) <= self.max_reply_length:
            return False
        mask = self.reply_mask or bytes(len(self.reply_data))
        return all(
            not ((got ^ want) & ~m & 0xFF)
            for got, want, m in zip(reply, self.reply_data, mask, strict=False)
        )


@dataclass(frozen=True, slots=True)
class FileCheckParams:
    """FILE_CHECK: the number in `path` (as keepalived's track_file reads it) decides.

    weight 0: down while the number is non-zero (reverse: while it is 0). Otherwise
    up, with the real server's weight `base_weight + number x weight` (reverse:
    minus), never below 0; down only when that product reaches -2**31.
    """

    path: str
    weight: int = 0
    reverse: bool = False
    base_weight: int = 1

    def __post_init__(self) -> None:
        _require(isinstance(self.path, str) and bool(self.path), "path: empty")
        _require(type(self.weight) is int and abs(self.weight) < 2**31,
                 "weight: -2147483647..2147483647")
        _require(type(self.base_weight) is int and self.base_weight >= 0,
                 "base_weight: a non-negative integer")

    @property
    def kind(self) -> CheckKind:
        return "FILE_CHECK"


CheckParams = (
    HttpGetParams | TcpCheckParams | MiscCheckParams | DnsCheckParams | SmtpCheckParams
    | PingCheckParams | UdpCheckParams | FileCheckParams
)
