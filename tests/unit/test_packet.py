"""The VRRP codec: known answers, round trips, fuzzing, each rejection reason, scapy checks."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.vrrp import VRRP, VRRPv3
from scapy.packet import Raw

from vrrp.packet import (
    VRRP_MCAST_V4,
    VRRP_MCAST_V6,
    VRRP_PROTO,
    VRRP_TTL,
    Advert,
    AuthType,
    ChecksumVariant,
    DecodeError,
    DecodeReason,
    IPAddress,
    auth_pass_data,
    check_auth,
    decode,
    encode,
    inet_checksum,
    multicast_group,
)

SRC4 = IPv4Address("192.168.0.2")
SRC6 = IPv6Address("fe80::2")
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- known answers, built by hand from the RFC layouts ------------------------------------

# RFC 3768 §5.1: version 2, type 1 | VRID 1 | priority 100 | count 1 | auth 0 | adver int 1 |
# checksum | 192.168.0.1 | 8 bytes of zero auth data. Checksum by hand: 0x2101 + 0x6401 +
# 0x0001 + 0xc0a8 + 0x0001 = 0x145ac -> fold 0x45ad -> complement 0xba52.
V2_VECTOR = bytes.fromhex("21 01 64 01 00 01 ba52 c0a80001 00000000 00000000")

# The same with PASS auth: auth type 1, auth data "secret" NUL-padded to 8 bytes.
# 0x2101 + 0x6401 + 0x0101 + 0xc0a8 + 0x0001 + 0x7365 ("se") + 0x6372 ("cr") + 0x6574 ("et")
# = 0x282f7 -> fold 0x82f9 -> complement 0x7d06.
V2_PASS_VECTOR = bytes.fromhex("21 01 64 01 01 01 7d06 c0a80001") + b"secret\0\0"

# RFC 9568 §5.1: version 3, type 1 | VRID 1 | priority 100 | count 1 | rsvd 0, max adver int
# 100 cs (0x064) | checksum | 192.168.0.1.
# Message sum: 0x3101 + 0x6401 + 0x0064 + 0xc0a8 + 0x0001 = 0x1560f.
# IPv4 pseudo-header 192.168.0.2 -> 224.0.0.18, proto 112, length 12:
#   0xc0a8 + 0x0002 + 0xe000 + 0x0012 + 0x0070 + 0x000c = 0x1a138.
# With it: 0x1560f + 0x1a138 = 0x2f747 -> 0xf749 -> 0x08b6. Without: 0x5610 -> 0xa9ef.
V3_VECTOR_PSEUDO = bytes.fromhex("31 01 64 01 00 64 08b6 c0a80001")
V3_VECTOR_NO_PSEUDO = bytes.fromhex("31 01 64 01 00 64 a9ef c0a80001")


def test_constants() -> None:
    assert VRRP_PROTO == 112
    assert VRRP_TTL == 255
    assert ip_address("224.0.0.18") == VRRP_MCAST_V4 == multicast_group(4)
    assert ip_address("ff02::12") == VRRP_MCAST_V6 == multicast_group(6)
    with pytest.raises(ValueError):
        multicast_group(5)


def test_inet_checksum_rfc1071_example() -> None:
    # RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to 0xddf2 (folded); complement 0x220d.
    assert inet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D
    # An odd length is padded with a zero byte.
    assert inet_checksum(b"\x01") == inet_checksum(b"\x01\x00") == 0xFEFF


def test_v2_known_answer() -> None:
    advert = Advert(version=2, vrid=1, priority=100, max_advert_int=1, addresses=(
        IPv4Address("192.168.0.1"),))
    assert encode(advert, SRC4, VRRP_MCAST_V4) == V2_VECTOR
    decoded = decode(V2_VECTOR, SRC4, VRRP_MCAST_V4)
    assert decoded.advert == advert
    assert decoded.checksum is ChecksumVariant.V2
    assert decoded.advert.auth_data == bytes(8)


def test_v2_pass_known_answer() -> None:
    advert = Advert(2, 1, 100, 1, (IPv4Address("192.168.0.1"),), AuthType.PASS,
                    auth_pass_data("secret"))
    assert encode(advert, SRC4, VRRP_MCAST_V4) == V2_PASS_VECTOR
    decoded = decode(V2_PASS_VECTOR, SRC4, VRRP_MCAST_V4)
    assert decoded.advert.auth_type == 1
    assert decoded.advert.auth_data == b"secret\0\0"
    check_auth(decoded.advert, AuthType.PASS, "secret")


def test_v3_ipv4_known_answer_both_checksums() -> None:
    advert = Advert(3, 1, 100, 1.0, (IPv4Address("192.168.0.1"),))
    assert encode(advert, SRC4, VRRP_MCAST_V4) == V3_VECTOR_PSEUDO
    assert encode(advert, SRC4, VRRP_MCAST_V4, pseudo_header=False) == V3_VECTOR_NO_PSEUDO

    with_pseudo = decode(V3_VECTOR_PSEUDO, SRC4, VRRP_MCAST_V4)
    assert with_pseudo.advert == advert
    assert with_pseudo.checksum is ChecksumVariant.V3_PSEUDO

    without = decode(V3_VECTOR_NO_PSEUDO, SRC4, VRRP_MCAST_V4)
    assert without.advert == advert
    assert without.checksum is ChecksumVariant.V3_NO_PSEUDO


def test_v3_ipv6_known_answer() -> None:
    # RFC 9568 §5.1 over IPv6, VRID 7, priority 255, 0.5 s (50 cs = 0x032), fe80::1.
    # Message: 0x3107 + 0xff01 + 0x0032 + 0xfe80 + 0x0001 = 0x22ebb.
    # Pseudo-header fe80::2 -> ff02::12, length 24, next header 112:
    #   0xfe80 + 0x0002 + 0xff02 + 0x0012 + 0x0018 + 0x0070 = 0x1fe1e.
    # Total 0x22ebb + 0x1fe1e = 0x42cd9 -> 0x2cdd -> complement 0xd322.
    vector = bytes.fromhex("31 07 ff 01 00 32 d322") + IPv6Address("fe80::1").packed
    advert = Advert(3, 7, 255, 0.5, (IPv6Address("fe80::1"),))
    assert encode(advert, SRC6, VRRP_MCAST_V6) == vector
    # The switch is about IPv4 only: IPv6 always carries the pseudo-header.
    assert encode(advert, SRC6, VRRP_MCAST_V6, pseudo_header=False) == vector
    decoded = decode(vector, "fe80::2%lo", "ff02::12")  # a scoped source, as recvfrom gives
    assert decoded.advert == advert
    assert decoded.advert.family == 6
    assert decoded.checksum is ChecksumVariant.V3_PSEUDO


def test_unicast_destination_is_in_the_pseudo_header() -> None:
    advert = Advert(3, 1, 100, 1.0, (IPv4Address("192.168.0.1"),))
    unicast = encode(advert, SRC4, "192.168.0.3")
    assert unicast != V3_VECTOR_PSEUDO
    assert decode(unicast, SRC4, "192.168.0.3").advert == advert
    with pytest.raises(DecodeError) as exc:
        decode(unicast, SRC4, VRRP_MCAST_V4)
    assert exc.value.reason is DecodeReason.BAD_CHECKSUM


def test_v3_reserved_bits_are_ignored_on_receipt() -> None:
    pkt = IP(src=str(SRC4), dst=str(VRRP_MCAST_V4)) / VRRPv3(
        vrid=9, priority=50, addrlist=["10.1.1.1"], res=0xF, adv=25)
    decoded = decode(bytes(pkt[VRRPv3]), SRC4, VRRP_MCAST_V4)
    assert decoded.advert.max_advert_int == 0.25
    assert decoded.advert.vrid == 9


def test_v2_auth_data_is_ignored_without_auth() -> None:
    pkt = IP(src=str(SRC4), dst=str(VRRP_MCAST_V4)) / VRRP(
        vrid=9, authtype=0, auth1=0xDEADBEEF, addrlist=["10.1.1.1"])
    decoded = decode(bytes(pkt[VRRP]), SRC4, VRRP_MCAST_V4)
    assert decoded.advert.auth_type == 0
    assert decoded.advert.auth_data == bytes(8)


def test_no_addresses_and_the_most_addresses() -> None:
    empty = Advert(3, 1, 100, 1.0)
    assert decode(encode(empty, SRC6, VRRP_MCAST_V6), SRC6, VRRP_MCAST_V6).advert == empty
    many = Advert(3, 1, 100, 1.0, tuple(IPv6Address(f"2001:db8::{i:x}") for i in range(255)))
    wire = encode(many, SRC6, VRRP_MCAST_V6)
    assert len(wire) == 8 + 255 * 16
    assert decode(wire, SRC6, VRRP_MCAST_V6).advert == many


# --- round trips ----------------------------------------------------------------------------

ipv4s: st.SearchStrategy[IPv4Address] = st.builds(IPv4Address, st.integers(0, 2**32 - 1))
ipv6s: st.SearchStrategy[IPv6Address] = st.builds(IPv6Address, st.integers(0, 2**128 - 1))


@st.composite
def adverts_on_the_wire(draw: st.DrawFn) -> tuple[Advert, IPAddress, IPAddress, bool]:
    version = draw(st.sampled_from([2, 3]))
    family = 4 if version == 2 else draw(st.sampled_from([4, 6]))
    addrs: st.SearchStrategy[IPAddress] = ipv4s if family == 4 else ipv6s
    addresses = tuple(draw(st.lists(addrs, max_size=12)))
    auth_type, auth_data = 0, b""
    if version == 2:
        interval = float(draw(st.integers(1, 255)))
        if draw(st.booleans()):
            auth_type, auth_data = 1, draw(st.binary(max_size=8))
    else:
        interval = draw(st.integers(1, 4095)) / 100
    advert = Advert(
        version=version,
        vrid=draw(st.integers(1, 255)),
        priority=draw(st.integers(0, 255)),
        max_advert_int=interval,
        addresses=addresses,
        auth_type=auth_type,
        auth_data=auth_data,
    )
    src = draw(addrs)
    dst = draw(st.one_of(st.just(multicast_group(family)), addrs))
    return advert, src, dst, draw(st.booleans())


@FAST
@given(adverts_on_the_wire())
def test_round_trip(case: tuple[Advert, IPAddress, IPAddress, bool]) -> None:
    advert, src, dst, pseudo = case
    wire = encode(advert, src, dst, pseudo_header=pseudo)
    assert len(wire) == 8 + len(advert.addresses) * (4 if src.version == 4 else 16) + (
        8 if advert.version == 2 else 0)
    decoded = decode(wire, src, dst)
    assert decoded.advert == advert
    assert decoded.advert.interval_centiseconds == round(advert.max_advert_int * 100)
    if advert.version == 2:
        assert decoded.checksum is ChecksumVariant.V2
    elif pseudo or src.version == 6:
        assert decoded.checksum is ChecksumVariant.V3_PSEUDO
    else:
        assert decoded.checksum is ChecksumVariant.V3_NO_PSEUDO
    if advert.version == 3 and src.version == 4 and not pseudo:
        with pytest.raises(DecodeError) as exc:
            decode(wire, src, dst, accept_no_pseudo=False)
        assert exc.value.reason is DecodeReason.BAD_CHECKSUM


@pytest.mark.parametrize("text, centis", [("0.01", 1), ("0.07", 7), ("0.3", 30), ("1", 100),
                                          ("40.95", 4095)])
def test_v3_interval_is_exact_in_centiseconds(text: str, centis: int) -> None:
    advert = Advert(3, 1, 100, float(text), (IPv4Address("10.0.0.1"),))
    wire = encode(advert, SRC4, VRRP_MCAST_V4)
    assert int.from_bytes(wire[4:6], "big") == centis
    assert decode(wire, SRC4, VRRP_MCAST_V4).advert.max_advert_int == float(text)
    # Arithmetic noise is normalised away, so a computed interval equals a decoded one.
    assert Advert(3, 1, 100, float(text) + 1e-12).max_advert_int == float(text)


# --- fuzzing: nothing but DecodeError escapes ----------------------------------------------

endpoints = st.one_of(
    st.tuples(ipv4s, st.one_of(st.just(VRRP_MCAST_V4), ipv4s)),
    st.tuples(ipv6s, st.one_of(st.just(VRRP_MCAST_V6), ipv6s)),
)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=80), endpoints, st.booleans())
def test_random_bytes_only_raise_decode_error(
    data: bytes, ends: tuple[IPAddress, IPAddress], accept_no_pseudo: bool
) -> None:
    _decode_or_reject(data, ends, accept_no_pseudo)


def _decode_or_reject(data: bytes, ends: tuple[IPAddress, IPAddress],
                      accept_no_pseudo: bool = True) -> None:
    try:
        decoded = decode(data, *ends, accept_no_pseudo=accept_no_pseudo)
    except DecodeError as exc:
        assert isinstance(exc.reason, DecodeReason)
        assert exc.message
    else:
        # Whatever got through is a consistent advert that encodes back to the same bytes,
        # except for the fields ignored on receipt (v2 auth data without auth, v3 rsvd bits).
        again = encode(decoded.advert, *ends,
                       pseudo_header=decoded.checksum is not ChecksumVariant.V3_NO_PSEUDO)
        assert decode(again, *ends).advert == decoded.advert
        if decoded.advert.version == 3:
            assert again[:4] + again[8:] == data[:4] + data[8:]
            assert again[4] & 0x0F == data[4] & 0x0F and again[5] == data[5]
        elif decoded.advert.auth_type == AuthType.PASS:
            assert again[:6] + again[8:] == data[:6] + data[8:]


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=60), st.sampled_from([0x21, 0x31]),
       st.integers(0, 2), endpoints)
def test_plausible_headers_only_raise_decode_error(
    tail: bytes, ver_type: int, count: int, ends: tuple[IPAddress, IPAddress]
) -> None:
    # Random bytes rarely get past the version check; these start like real adverts.
    data = bytes([ver_type, tail[0], 100, count]) + tail[1:]
    _decode_or_reject(data, ends)


def _fix_checksum(data: bytes, src: IPAddress, dst: IPAddress) -> bytes:
    """Recompute a (possibly mutated) message's checksum the way an encoder would."""
    zeroed = data[:6] + b"\0\0" + data[8:]
    summed = zeroed
    if data[0] >> 4 == 3:
        if src.version == 4:
            pseudo = src.packed + dst.packed + bytes([0, VRRP_PROTO]) + len(data).to_bytes(2, "big")
        else:
            pseudo = src.packed + dst.packed + len(data).to_bytes(4, "big") + bytes(
                [0, 0, 0, VRRP_PROTO])
        summed = pseudo + zeroed
    return data[:6] + inet_checksum(summed).to_bytes(2, "big") + data[8:]


@settings(max_examples=100, deadline=None)
@given(adverts_on_the_wire(),
       st.lists(st.tuples(st.integers(0, 7), st.integers(0, 255)), min_size=1, max_size=3),
       st.sampled_from([0, 0, 0, 0, -4, -1, 1, 16]))
def test_mutated_headers_with_valid_checksums(
    case: tuple[Advert, IPAddress, IPAddress, bool],
    edits: list[tuple[int, int]],
    resize: int,
) -> None:
    # Mutate header bytes of a real advert and make the checksum right again, so the
    # checks after the checksum (VRID, interval, auth, count) see arbitrary values too.
    advert, src, dst, _ = case
    data = bytearray(encode(advert, src, dst))
    for offset, value in edits:
        data[offset] = value
    wire = bytes(data[: len(data) + resize] if resize < 0 else data + bytes(resize))
    _decode_or_reject(_fix_checksum(wire, src, dst) if len(wire) >= 8 else wire, (src, dst))


SAMPLES = [
    (Advert(2, 51, 150, 1, (IPv4Address("10.0.0.100"), IPv4Address("10.0.0.101")), 1,
            auth_pass_data("pw")), SRC4, VRRP_MCAST_V4),
    (Advert(3, 51, 150, 0.1, (IPv4Address("10.0.0.100"),)), SRC4, VRRP_MCAST_V4),
    (Advert(3, 51, 150, 0.1, (IPv4Address("10.0.0.100"),)), SRC4, IPv4Address("192.168.0.9")),
    (Advert(3, 51, 0, 2.5, (IPv6Address("fe80::100"), IPv6Address("2001:db8::100"))),
     SRC6, VRRP_MCAST_V6),
]


@pytest.mark.parametrize("advert, src, dst", SAMPLES)
def test_every_single_bit_flip_is_rejected(advert: Advert, src: IPAddress,
                                           dst: IPAddress) -> None:
    wire = encode(advert, src, dst)
    for bit in range(len(wire) * 8):
        broken = bytearray(wire)
        broken[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(DecodeError):
            decode(bytes(broken), src, dst, accept_no_pseudo=False)


# --- every rejection reason -------------------------------------------------------------------


def _v4(layer: VRRP | VRRPv3, dst: str = "224.0.0.18") -> bytes:
    """A message built (and checksummed) by scapy inside an IPv4 header."""
    return bytes((IP(src=str(SRC4), dst=dst) / layer).payload)


def _v6(layer: VRRPv3) -> bytes:
    return bytes((IPv6(src=str(SRC6), dst="ff02::12") / layer).payload)


def _reason(data: bytes, src: IPAddress | str = SRC4, dst: IPAddress | str = VRRP_MCAST_V4,
            **kwargs: object) -> DecodeReason:
    with pytest.raises(DecodeError) as exc:
        decode(data, src, dst, **kwargs)  # type: ignore[arg-type]
    assert str(exc.value).startswith(exc.value.reason.value + ": ")
    return exc.value.reason


GOOD_V2 = _v4(VRRP(vrid=5, priority=100, addrlist=["10.0.0.1"]))
GOOD_V3 = _v4(VRRPv3(vrid=5, priority=100, addrlist=["10.0.0.1"], adv=100))


REJECTIONS = [
    (b"", DecodeReason.TRUNCATED),
    (GOOD_V3[:7], DecodeReason.TRUNCATED),
    (_v4(VRRP(version=1, addrlist=["10.0.0.1"])), DecodeReason.BAD_VERSION),
    (_v4(VRRP(version=4, addrlist=["10.0.0.1"])), DecodeReason.BAD_VERSION),
    (_v4(VRRP(version=0, addrlist=["10.0.0.1"])), DecodeReason.BAD_VERSION),
    (_v4(VRRP(type=2, addrlist=["10.0.0.1"])), DecodeReason.BAD_TYPE),
    (_v4(VRRPv3(type=0, addrlist=["10.0.0.1"])), DecodeReason.BAD_TYPE),
    (_v4(VRRP(ipcount=2, addrlist=["10.0.0.1"])), DecodeReason.COUNT_MISMATCH),
    (_v4(VRRPv3(ipcount=0, addrlist=["10.0.0.1"])), DecodeReason.COUNT_MISMATCH),
    (GOOD_V2[:-8], DecodeReason.COUNT_MISMATCH),  # v2 without its auth data words
    (GOOD_V3 + b"\0", DecodeReason.COUNT_MISMATCH),
    (GOOD_V3[:-1], DecodeReason.COUNT_MISMATCH),
    (GOOD_V2[:6] + b"\0\0" + GOOD_V2[8:], DecodeReason.BAD_CHECKSUM),
    (GOOD_V3[:6] + b"\0\0" + GOOD_V3[8:], DecodeReason.BAD_CHECKSUM),
    (_v4(VRRP(vrid=0, addrlist=["10.0.0.1"])), DecodeReason.BAD_VRID),
    (_v4(VRRPv3(vrid=0, addrlist=["10.0.0.1"])), DecodeReason.BAD_VRID),
    (_v4(VRRP(adv=0, addrlist=["10.0.0.1"])), DecodeReason.BAD_INTERVAL),
    (_v4(VRRPv3(adv=0, addrlist=["10.0.0.1"])), DecodeReason.BAD_INTERVAL),
    (_v4(VRRP(authtype=2, addrlist=["10.0.0.1"])), DecodeReason.BAD_AUTH),
    (_v4(VRRP(authtype=7, addrlist=["10.0.0.1"])), DecodeReason.BAD_AUTH),
]


@pytest.mark.parametrize("data, reason", REJECTIONS)
def test_rejection_reasons_ipv4(data: bytes, reason: DecodeReason) -> None:
    assert _reason(data) is reason


def test_rejection_reasons_families() -> None:
    assert decode(GOOD_V2, SRC4, VRRP_MCAST_V4).advert.vrid == 5
    # VRRPv2 is IPv4 only.
    assert _reason(GOOD_V2, SRC6, VRRP_MCAST_V6) is DecodeReason.BAD_FAMILY
    # Endpoints of different families, or not addresses at all.
    assert _reason(GOOD_V3, SRC4, VRRP_MCAST_V6) is DecodeReason.BAD_FAMILY
    assert _reason(GOOD_V3, "not-an-address", VRRP_MCAST_V4) is DecodeReason.BAD_FAMILY
    # An IPv4-sized list over IPv6 does not add up.
    assert _reason(GOOD_V3, SRC6, VRRP_MCAST_V6) is DecodeReason.COUNT_MISMATCH


def test_rejection_reasons_ipv6() -> None:
    good = _v6(VRRPv3(vrid=5, addrlist=["fe80::1"], adv=10))
    assert decode(good, SRC6, VRRP_MCAST_V6).checksum is ChecksumVariant.V3_PSEUDO
    # Over IPv6 a checksum without the pseudo-header is never accepted.
    advert = decode(good, SRC6, VRRP_MCAST_V6).advert
    no_pseudo = bytearray(good)
    no_pseudo[6:8] = b"\0\0"
    no_pseudo[6:8] = inet_checksum(bytes(no_pseudo)).to_bytes(2, "big")
    assert advert.vrid == 5
    assert _reason(bytes(no_pseudo), SRC6, VRRP_MCAST_V6) is DecodeReason.BAD_CHECKSUM
    # The pseudo-header binds the source: the same bytes from another sender fail.
    assert _reason(good, "fe80::3", VRRP_MCAST_V6) is DecodeReason.BAD_CHECKSUM
    assert _reason(_v6(VRRPv3(vrid=5, addrlist=["fe80::1"], adv=0)), SRC6,
                   VRRP_MCAST_V6) is DecodeReason.BAD_INTERVAL


def test_no_pseudo_checksum_refused_when_switched_off() -> None:
    assert _reason(V3_VECTOR_NO_PSEUDO, accept_no_pseudo=False) is DecodeReason.BAD_CHECKSUM
    assert decode(V3_VECTOR_PSEUDO, SRC4, VRRP_MCAST_V4,
                  accept_no_pseudo=False).checksum is ChecksumVariant.V3_PSEUDO


def test_expected_version() -> None:
    assert decode(GOOD_V3, SRC4, VRRP_MCAST_V4, version=3).advert.version == 3
    assert _reason(GOOD_V3, version=2) is DecodeReason.BAD_VERSION
    assert _reason(GOOD_V2, version=3) is DecodeReason.BAD_VERSION


def test_every_reason_is_covered_here() -> None:
    # A reason added to DecodeReason without a case in REJECTIONS (or, for the family,
    # test_rejection_reasons_families) fails this.
    assert {reason for _, reason in REJECTIONS} | {DecodeReason.BAD_FAMILY} == set(DecodeReason)


def test_every_reason_has_a_stable_label() -> None:
    labels = {reason.value for reason in DecodeReason}
    assert len(labels) == len(DecodeReason)
    assert all(label.islower() and label.replace("_", "").isalpha() for label in labels)
    assert DecodeReason.BAD_CHECKSUM.value == "bad_checksum"


# --- authentication -----------------------------------------------------------------------------


def test_auth_pass_field_is_cut_and_padded_like_keepalived() -> None:
    assert auth_pass_data("secret") == b"secret\0\0"
    assert auth_pass_data("longpassword") == b"longpass"
    assert auth_pass_data(b"12345678") == b"12345678"
    assert auth_pass_data("") == bytes(8)


def _received(auth_type: int, data: bytes = b"") -> Advert:
    advert = Advert(2, 1, 100, 1, (IPv4Address("10.0.0.1"),), auth_type, data)
    return decode(encode(advert, SRC4, VRRP_MCAST_V4), SRC4, VRRP_MCAST_V4).advert


def test_check_auth_accepts_matching() -> None:
    check_auth(_received(1, auth_pass_data("secret")), AuthType.PASS, "secret")
    # keepalived compares only the first 8 bytes of the password.
    check_auth(_received(1, auth_pass_data("longpassword")), AuthType.PASS, "longpass-else")
    check_auth(_received(0), AuthType.NONE, None)
    check_auth(Advert(3, 1, 100, 1.0), AuthType.NONE)


@pytest.mark.parametrize(
    "advert, auth_type, auth_pass",
    [
        (Advert(2, 1, 100, 1, (), 1, auth_pass_data("secret")), 1, "Secret"),
        (Advert(2, 1, 100, 1, (), 1, auth_pass_data("secret")), 1, "secret1"),
        (Advert(2, 1, 100, 1, (), 1, auth_pass_data("secret")), 0, None),
        (Advert(2, 1, 100, 1), 1, "secret"),
        (Advert(3, 1, 100, 1.0), 1, "secret"),
    ],
)
def test_check_auth_rejects(advert: Advert, auth_type: int, auth_pass: str | None) -> None:
    with pytest.raises(DecodeError) as exc:
        check_auth(advert, auth_type, auth_pass)
    assert exc.value.reason is DecodeReason.BAD_AUTH


# --- local misuse is a ValueError, not a decode error --------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"version": 1},
        {"vrid": 0},
        {"vrid": 256},
        {"priority": -1},
        {"priority": 256},
        {"max_advert_int": 0},
        {"max_advert_int": 1.5},  # v2 is whole seconds
        {"max_advert_int": 256},
        {"max_advert_int": float("inf")},
        {"version": 3, "max_advert_int": float("inf")},
        {"max_advert_int": "1"},
        {"version": 3, "max_advert_int": 0.005},
        {"version": 3, "max_advert_int": 40.96},
        {"version": 3, "max_advert_int": 0.123},
        {"version": 3, "max_advert_int": float("nan")},
        {"addresses": (IPv6Address("fe80::1"),)},  # v2 is IPv4 only
        {"version": 3, "addresses": (IPv4Address("10.0.0.1"), IPv6Address("fe80::1"))},
        {"addresses": tuple(IPv4Address(i) for i in range(256))},
        {"addresses": "10.0.0.1"},
        {"auth_type": 2},
        {"auth_type": 1, "auth_data": b"123456789"},
        {"auth_type": 0, "auth_data": b"pw"},
        {"version": 3, "max_advert_int": 1.0, "auth_type": 1, "auth_data": b"pw"},
    ],
)
def test_invalid_advert_values(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"version": 2, "vrid": 1, "priority": 100, "max_advert_int": 1}
    fields.update(kwargs)
    with pytest.raises(ValueError):
        Advert(**fields)  # type: ignore[arg-type]


def test_encode_refuses_mismatched_families() -> None:
    v3_4 = Advert(3, 1, 100, 1.0, (IPv4Address("10.0.0.1"),))
    with pytest.raises(ValueError):
        encode(v3_4, SRC6, VRRP_MCAST_V6)
    with pytest.raises(ValueError):
        encode(v3_4, SRC4, VRRP_MCAST_V6)
    with pytest.raises(ValueError):
        encode(Advert(2, 1, 100, 1), SRC6, VRRP_MCAST_V6)


def test_addresses_given_as_text_are_parsed() -> None:
    advert = Advert(3, 1, 100, 1.0, ("10.0.0.1", "10.0.0.2"))  # type: ignore[arg-type]
    assert advert.addresses == (IPv4Address("10.0.0.1"), IPv4Address("10.0.0.2"))
    assert advert.family == 4


# --- cross-checks against scapy's layers --------------------------------------------------------
#
# scapy 2.8's VRRPv3 computes its checksum with ``in4_chksum`` under an IPv4 header, that is
# WITH the IPv4 pseudo-header (the keepalived/FRR convention, our default), and with
# ``in6_chksum`` under IPv6. Its VRRP (v2) layer sums the message alone and always carries the
# two auth data words. So our default encoding must equal scapy's bytes exactly.


def _scapy_build(advert: Advert, src: IPAddress, dst: IPAddress) -> bytes:
    addrs = [str(a) for a in advert.addresses]
    layer: VRRP | VRRPv3
    if advert.version == 2:
        layer = VRRP(vrid=advert.vrid, priority=advert.priority, authtype=advert.auth_type,
                     adv=int(advert.max_advert_int), addrlist=addrs,
                     auth1=int.from_bytes(advert.auth_data[:4], "big"),
                     auth2=int.from_bytes(advert.auth_data[4:], "big"))
    else:
        layer = VRRPv3(vrid=advert.vrid, priority=advert.priority,
                       adv=advert.interval_centiseconds, addrlist=addrs)
    under = IP(src=str(src), dst=str(dst)) if src.version == 4 else IPv6(src=str(src),
                                                                          dst=str(dst))
    return bytes((under / layer).payload)


@settings(max_examples=40, deadline=None)
@given(adverts_on_the_wire())
def test_matches_scapy_bytes(case: tuple[Advert, IPAddress, IPAddress, bool]) -> None:
    advert, src, dst, _ = case
    theirs = _scapy_build(advert, src, dst)
    assert encode(advert, src, dst) == theirs
    decoded = decode(theirs, src, dst)
    assert decoded.advert == advert
    expected = ChecksumVariant.V2 if advert.version == 2 else ChecksumVariant.V3_PSEUDO
    assert decoded.checksum is expected


@settings(max_examples=40, deadline=None)
@given(adverts_on_the_wire())
def test_scapy_parses_ours(case: tuple[Advert, IPAddress, IPAddress, bool]) -> None:
    advert, src, dst, pseudo = case
    ours = encode(advert, src, dst, pseudo_header=pseudo)
    layer: VRRP | VRRPv3
    if advert.version == 2:
        pkt = IP(bytes(IP(src=str(src), dst=str(dst), proto=VRRP_PROTO) / Raw(ours)))
        layer = pkt[VRRP]
    else:
        # scapy's dispatch takes any message under 16 bytes for v2 (a v3 IPv4 advert with
        # 0 or 1 address), so parse the v3 layer directly, under its IP header.
        under = (IP(src=str(src), dst=str(dst), proto=VRRP_PROTO) if src.version == 4
                 else IPv6(src=str(src), dst=str(dst), nh=VRRP_PROTO))
        layer = VRRPv3(ours, _underlayer=under)
    assert layer.version == advert.version
    assert layer.vrid == advert.vrid
    assert layer.priority == advert.priority
    assert layer.ipcount == len(advert.addresses)
    assert [ip_address(a) for a in layer.addrlist] == list(advert.addresses)
    assert layer.chksum == int.from_bytes(ours[6:8], "big")
    if advert.version == 2:
        assert layer.adv == advert.max_advert_int
        assert layer.authtype == advert.auth_type
        assert (layer.auth1, layer.auth2) == (
            int.from_bytes(advert.auth_data[:4], "big"), int.from_bytes(advert.auth_data[4:],
                                                                         "big"))
    else:
        assert layer.adv == advert.interval_centiseconds
