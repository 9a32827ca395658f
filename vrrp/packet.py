"""VRRP v2/v3 advertisement codec: layouts, checksums and PASS authentication. Does no I/O.

Layouts (all fields in network byte order):

RFC 3768 §5.1 (VRRPv2, IPv4 only)::

    0                   1                   2                   3
    |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
    |   Auth Type   |   Adver Int   |          Checksum             |
    |                      IP Address (1..n)                        |
    |                   Authentication Data (1)                     |
    |                   Authentication Data (2)                     |

RFC 5798 / RFC 9568 §5.1 (VRRPv3, IPv4 or IPv6)::

    |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
    |(rsvd) |     Max Adver Int     |          Checksum             |
    |                 IPvX Address(es) (1..n)                       |

Checksums (the one's complement of the one's complement sum):

- v2: over the VRRP message only (RFC 3768 §5.3.8).
- v3 over IPv6: over the message plus the IPv6 pseudo-header (RFC 8200 §8.1, next header 112).
- v3 over IPv4: RFC 5798 §5.2.8 names only the IPv6 pseudo-header, so vendors split.
  keepalived (default; ``v3_checksum_as_v2`` turns it off) and FRR (default;
  ``checksum-with-ipv4-pseudoheader``) prepend the IPv4 pseudo-header (src, dst, zero,
  protocol 112, VRRP length); Cisco and others do not, and RFC 9568 settles on the reading
  without it. We send with it by default (what the Linux peers we meet send) and
  ``pseudo_header=False`` turns it off; on receive we accept either and report which held.
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address

from vrrp.record import Record, setfield
from vrrp.slotted import slotted

__all__ = [
    "AUTH_DATA_LEN",
    "VRRP_MCAST_V4",
    "VRRP_MCAST_V6",
    "VRRP_PROTO",
    "VRRP_TTL",
    "VRRP_TYPE_ADVERTISEMENT",
    "Advert",
    "AuthType",
    "ChecksumVariant",
    "DecodeError",
    "DecodeReason",
    "Decoded",
    "IPAddress",
    "auth_pass_data",
    "check_auth",
    "decode",
    "encode",
    "inet_checksum",
    "multicast_group",
]

IPAddress = IPv4Address | IPv6Address

VRRP_PROTO = 112  # IANA protocol number (RFC 3768 §5.2.4, RFC 9568 §5.1.1.4)
VRRP_MCAST_V4 = IPv4Address("224.0.0.18")  # RFC 3768 §5.2.2, RFC 9568 §5.1.1.2
VRRP_MCAST_V6 = IPv6Address("ff02::12")  # RFC 9568 §5.1.2.2
VRRP_TTL = 255  # sent with TTL/hop limit 255; less on receipt means off-link (§5.1.1.3)
VRRP_TYPE_ADVERTISEMENT = 1  # the only defined type (RFC 3768 §5.3.2, RFC 9568 §5.2.2)
AUTH_DATA_LEN = 8  # RFC 3768 §5.3.10: two 32-bit words, present in every v2 message

_HEADER_LEN = 8
_V2_MAX_INTERVAL = 255  # seconds, 8-bit field
_V3_MAX_INTERVAL_CS = 0xFFF  # centiseconds, 12-bit field: 40.95 s
_MAX_ADDRESSES = 255  # 8-bit count field
_HEADER = struct.Struct("!BBBBBBH")


class AuthType(enum.IntEnum):
    """VRRPv2 authentication types (RFC 3768 §5.3.6; only NONE and PASS are implemented)."""

    NONE = 0
    PASS = 1  # simple text password, the one keepalived still supports
    AH = 2  # IP Authentication Header; removed from RFC 3768, not supported here


class ChecksumVariant(enum.Enum):
    """Which checksum computation validated a received advertisement."""

    V2 = "v2"
    V3_PSEUDO = "v3_pseudo"
    V3_NO_PSEUDO = "v3_no_pseudo"


class DecodeReason(enum.Enum):
    """Why a received message was rejected; ``.value`` is a stable metric label."""

    TRUNCATED = "truncated"
    BAD_VERSION = "bad_version"
    BAD_TYPE = "bad_type"
    BAD_CHECKSUM = "bad_checksum"
    COUNT_MISMATCH = "count_mismatch"
    BAD_AUTH = "bad_auth"
    BAD_INTERVAL = "bad_interval"
    BAD_VRID = "bad_vrid"
    BAD_FAMILY = "bad_family"


class DecodeError(Exception):
    """A received message is not a valid advertisement (or fails authentication)."""

    def __init__(self, reason: DecodeReason, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message


@slotted(frozen=True)
class Advert:
    """One VRRP advertisement, independent of the wire format.

    ``max_advert_int`` is in seconds: whole seconds 1..255 for v2, 0.01..40.95 in 0.01
    steps for v3 (normalised to ``centiseconds / 100``). For v2, ``auth_data`` is padded
    with NULs to 8 bytes; v3 carries no authentication (``auth_type`` 0, no data).
    Invalid values raise ``ValueError``: an ``Advert`` that exists can always be encoded.
    """

    version: int
    vrid: int
    priority: int
    max_advert_int: float
    addresses: tuple[IPAddress, ...] = ()
    auth_type: int = 0
    auth_data: bytes = b""

    def __post_init__(self) -> None:
        if self.version not in (2, 3):
            raise ValueError(f"VRRP version must be 2 or 3, not {self.version!r}")
        if not 1 <= self.vrid <= 255:
            raise ValueError(f"virtual router id must be 1..255, not {self.vrid!r}")
        if not 0 <= self.priority <= 255:
            raise ValueError(f"priority must be 0..255, not {self.priority!r}")
        object.__setattr__(self, "max_advert_int", _normalise_interval(self))
        addresses = _normalise_addresses(self.addresses)
        if self.version == 2 and addresses and addresses[0].version != 4:
            raise ValueError("VRRPv2 carries IPv4 addresses only (RFC 3768)")
        object.__setattr__(self, "addresses", addresses)
        object.__setattr__(self, "auth_type", int(self.auth_type))
        if self.version == 3:
            if self.auth_type != AuthType.NONE or self.auth_data:
                raise ValueError("VRRPv3 has no authentication fields")
            return
        if self.auth_type not in (AuthType.NONE, AuthType.PASS):
            raise ValueError(f"auth_type must be 0 (none) or 1 (PASS), not {self.auth_type!r}")
        data = bytes(self.auth_data)
        if len(data) > AUTH_DATA_LEN:
            raise ValueError(f"auth_data is at most {AUTH_DATA_LEN} bytes, not {len(data)}")
        data = data.ljust(AUTH_DATA_LEN, b"\0")
        if self.auth_type == AuthType.NONE and any(data):
            raise ValueError("auth_data must be empty when auth_type is 0 (none)")
        object.__setattr__(self, "auth_data", data)

    @property
    def family(self) -> int:
        """4 or 6: the family of the addresses (4 when the list is empty)."""
        return self.addresses[0].version if self.addresses else 4

    @property
    def interval_centiseconds(self) -> int:
        """``max_advert_int`` as a whole number of centiseconds (exact, for timer maths)."""
        return round(self.max_advert_int * 100)


class Decoded(Record):
    """A validated advertisement and the checksum computation that matched it.

    A `Record`, not a frozen dataclass: a measured start-up cost (vrrp/record.py)."""

    __match_args__ = ("advert", "checksum")
    __slots__ = __match_args__
    advert: Advert
    checksum: ChecksumVariant

    def __init__(self, advert: Advert, checksum: ChecksumVariant) -> None:
        setfield(self, "advert", advert)
        setfield(self, "checksum", checksum)


def _normalise_interval(advert: Advert) -> float:
    value = advert.max_advert_int
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValueError(f"max_advert_int must be a number of seconds, not {value!r}")
    if advert.version == 2:
        if not 1 <= value <= _V2_MAX_INTERVAL or value != int(value):
            raise ValueError(f"VRRPv2 advert interval is whole seconds 1..255, not {value!r}")
        return float(int(value))
    if not 0 < value < 41:
        raise ValueError(f"VRRPv3 advert interval is 0.01..40.95 s, not {value!r}")
    centis = round(value * 100)
    if abs(value * 100 - centis) > 1e-6 or not 1 <= centis <= _V3_MAX_INTERVAL_CS:
        raise ValueError(f"VRRPv3 advert interval is 0.01..40.95 s in 0.01 steps, not {value!r}")
    return centis / 100


def _normalise_addresses(addresses: Iterable[IPAddress | str]) -> tuple[IPAddress, ...]:
    if isinstance(addresses, str | bytes):
        raise ValueError("addresses must be a sequence of IP addresses, not a single string")
    result = tuple(_as_address(a) for a in addresses)
    if len(result) > _MAX_ADDRESSES:
        raise ValueError(f"at most {_MAX_ADDRESSES} addresses fit an advert, not {len(result)}")
    if len({a.version for a in result}) > 1:
        raise ValueError("addresses of one advert must all be IPv4 or all IPv6")
    return result


def _as_address(value: IPAddress | str) -> IPAddress:
    # ip_address() on an address object goes through str() and a failed IPv4 parse.
    if isinstance(value, IPv4Address | IPv6Address):
        return value
    if isinstance(value, str) and ":" in value:
        return IPv6Address(value)  # skips ip_address()'s failed IPv4 attempt
    return ipaddress.ip_address(value)


def multicast_group(family: int) -> IPAddress:
    """The VRRP multicast group for address family 4 or 6."""
    if family == 4:
        return VRRP_MCAST_V4
    if family == 6:
        return VRRP_MCAST_V6
    raise ValueError(f"family must be 4 or 6, not {family!r}")


def auth_pass_data(auth_pass: str | bytes) -> bytes:
    """The 8-byte v2 authentication field for a PASS password.

    As keepalived does: the password's bytes, cut to 8 and padded with NULs.
    """
    raw = auth_pass.encode() if isinstance(auth_pass, str) else bytes(auth_pass)
    return raw[:AUTH_DATA_LEN].ljust(AUTH_DATA_LEN, b"\0")


def check_auth(advert: Advert, auth_type: int, auth_pass: str | bytes | None = None) -> None:
    """Check a received advert against our configured authentication.

    Raises ``DecodeError(BAD_AUTH)`` when the type differs from ours or, for PASS, the
    password differs (compared over the 8-byte field, as keepalived does). v3 adverts
    carry no authentication, so they pass only when we expect none.
    """
    expected = int(auth_type)
    if advert.version == 3:
        if expected != AuthType.NONE:
            raise DecodeError(
                DecodeReason.BAD_AUTH, "VRRPv3 carries no authentication, but some is expected"
            )
        return
    if advert.auth_type != expected:
        raise DecodeError(
            DecodeReason.BAD_AUTH,
            f"authentication type {_auth_name(advert.auth_type)}, "
            f"expected {_auth_name(expected)}",
        )
    if expected == AuthType.PASS:
        if auth_pass is None:
            raise ValueError("auth_pass is needed to check PASS authentication")
        import hmac  # here: ~1.5 ms (with _hashlib) off the VRRP role's start, measured

        if not hmac.compare_digest(advert.auth_data, auth_pass_data(auth_pass)):
            raise DecodeError(DecodeReason.BAD_AUTH, "authentication password mismatch")
    elif expected != AuthType.NONE:
        raise ValueError(f"unsupported authentication type {expected}")


def _auth_name(auth_type: int) -> str:
    try:
        return f"{AuthType(auth_type).name}({auth_type})"
    except ValueError:
        return f"unknown({auth_type})"


def inet_checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): one's complement of the one's complement sum."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _pseudo_header(src: IPAddress, dst: IPAddress, length: int) -> bytes:
    if isinstance(src, IPv4Address):
        # RFC 791 / RFC 768 layout: src, dst, zero, protocol, upper-layer length.
        return src.packed + dst.packed + struct.pack("!BBH", 0, VRRP_PROTO, length)
    # RFC 8200 §8.1: src, dst, 32-bit upper-layer length, 3 zero bytes, next header.
    return src.packed + dst.packed + struct.pack("!I3xB", length, VRRP_PROTO)


def _endpoints(src: IPAddress | str, dst: IPAddress | str) -> tuple[IPAddress, IPAddress]:
    """Parse src/dst; raises ValueError when either is not an address or they differ."""
    s = _as_address(src)
    d = _as_address(dst)
    if s.version != d.version:
        raise ValueError(f"source {s} and destination {d} are of different families")
    return s, d


def encode(
    advert: Advert,
    src: IPAddress | str,
    dst: IPAddress | str,
    *,
    pseudo_header: bool = True,
) -> bytes:
    """The VRRP message (no IP header) for ``advert`` sent from ``src`` to ``dst``.

    ``pseudo_header`` applies to v3 over IPv4 only (see the module docstring); v3 over
    IPv6 always includes the pseudo-header and v2 never does. Raises ``ValueError`` when
    the addresses' families disagree or v2 is asked to travel over IPv6.
    """
    s, d = _endpoints(src, dst)
    if advert.addresses and advert.family != s.version:
        raise ValueError(f"IPv{advert.family} addresses cannot travel in an IPv{s.version} advert")
    if advert.version == 2 and s.version != 4:
        raise ValueError("VRRPv2 runs over IPv4 only (RFC 3768)")
    body = b"".join(a.packed for a in advert.addresses)
    if advert.version == 2:
        second = advert.auth_type
        interval = int(advert.max_advert_int)
        body += advert.auth_data
    else:
        centis = advert.interval_centiseconds
        second, interval = centis >> 8, centis & 0xFF  # 4 reserved bits stay zero
    header = _HEADER.pack(
        (advert.version << 4) | VRRP_TYPE_ADVERTISEMENT,
        advert.vrid,
        advert.priority,
        len(advert.addresses),
        second,
        interval,
        0,
    )
    message = header + body
    summed = message
    if advert.version == 3 and (pseudo_header or s.version == 6):
        summed = _pseudo_header(s, d, len(message)) + message
    checksum = inet_checksum(summed)
    return message[:6] + struct.pack("!H", checksum) + message[8:]


def decode(
    data: bytes,
    src: IPAddress | str,
    dst: IPAddress | str,
    *,
    accept_no_pseudo: bool = True,
    version: int | None = None,
) -> Decoded:
    """Validate and parse a received VRRP message (the IP payload) sent from src to dst.

    Checks, in order: length, version (and ``version`` when given), type, family,
    address count against length, checksum, VRID, interval, v2 auth type. For v3 over
    IPv4 the checksum with the pseudo-header is tried first, then (when
    ``accept_no_pseudo``) without it. Raises ``DecodeError`` and nothing else.
    """
    buf = bytes(data)
    try:
        s, d = _endpoints(src, dst)
    except ValueError as exc:
        raise DecodeError(DecodeReason.BAD_FAMILY, f"bad endpoints: {exc}") from None
    if len(buf) < _HEADER_LEN:
        raise DecodeError(
            DecodeReason.TRUNCATED, f"{len(buf)} bytes, shorter than the {_HEADER_LEN}-byte header"
        )
    ver_type, vrid, priority, count, second, interval, _ = _HEADER.unpack_from(buf)
    ver, kind = ver_type >> 4, ver_type & 0x0F
    if ver not in (2, 3):
        raise DecodeError(DecodeReason.BAD_VERSION, f"version {ver} is not 2 or 3")
    if version is not None and ver != version:
        raise DecodeError(DecodeReason.BAD_VERSION, f"version {ver}, expected {version}")
    if kind != VRRP_TYPE_ADVERTISEMENT:
        raise DecodeError(DecodeReason.BAD_TYPE, f"type {kind} is not 1 (advertisement)")
    if ver == 2 and s.version != 4:
        raise DecodeError(DecodeReason.BAD_FAMILY, "VRRPv2 message over IPv6")

    addr_len = 4 if s.version == 4 else 16
    trailer = AUTH_DATA_LEN if ver == 2 else 0
    expected_len = _HEADER_LEN + count * addr_len + trailer
    if len(buf) != expected_len:
        raise DecodeError(
            DecodeReason.COUNT_MISMATCH,
            f"{count} IPv{s.version} addresses need {expected_len} bytes, got {len(buf)}",
        )

    variant = _verify_checksum(buf, ver, s, d, accept_no_pseudo)

    if vrid == 0:
        raise DecodeError(DecodeReason.BAD_VRID, "virtual router id 0")
    if ver == 2:
        seconds: float = interval
        auth_type = second
        if seconds == 0:
            raise DecodeError(DecodeReason.BAD_INTERVAL, "advertisement interval 0")
        if auth_type not in (AuthType.NONE, AuthType.PASS):
            raise DecodeError(
                DecodeReason.BAD_AUTH, f"unsupported authentication type {_auth_name(auth_type)}"
            )
        # RFC 3768 §5.3.10: with no authentication the field is ignored on receipt.
        auth_data = buf[-AUTH_DATA_LEN:] if auth_type == AuthType.PASS else b""
    else:
        centis = ((second & 0x0F) << 8) | interval  # the 4 reserved bits are ignored
        if centis == 0:
            raise DecodeError(DecodeReason.BAD_INTERVAL, "maximum advertisement interval 0")
        seconds = centis / 100
        auth_type, auth_data = AuthType.NONE, b""

    packed = buf[_HEADER_LEN : _HEADER_LEN + count * addr_len]
    make = IPv4Address if addr_len == 4 else IPv6Address
    addresses = tuple(make(packed[i : i + addr_len]) for i in range(0, len(packed), addr_len))
    advert = Advert(
        version=ver,
        vrid=vrid,
        priority=priority,
        max_advert_int=seconds,
        addresses=addresses,
        auth_type=auth_type,
        auth_data=auth_data,
    )
    return Decoded(advert=advert, checksum=variant)


def _verify_checksum(
    buf: bytes, ver: int, src: IPAddress, dst: IPAddress, accept_no_pseudo: bool
) -> ChecksumVariant:
    if ver == 2:
        if inet_checksum(buf) == 0:
            return ChecksumVariant.V2
        raise DecodeError(DecodeReason.BAD_CHECKSUM, "VRRPv2 checksum does not match")
    if inet_checksum(_pseudo_header(src, dst, len(buf)) + buf) == 0:
        return ChecksumVariant.V3_PSEUDO
    if src.version == 4 and accept_no_pseudo and inet_checksum(buf) == 0:
        return ChecksumVariant.V3_NO_PSEUDO
    raise DecodeError(
        DecodeReason.BAD_CHECKSUM,
        f"VRRPv3 checksum does not match from {src} to {dst}"
        + (" (with or without the pseudo-header)" if src.version == 4 and accept_no_pseudo else ""),
    )
