"""healthchecks.wire: plain-data messages round-trip; anything else is refused, never run."""

from __future__ import annotations

import asyncio
import pickle
import socket
from dataclasses import dataclass
from ipaddress import ip_address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthchecks.params import HttpGetParams, MiscCheckParams, Timing, UrlSpec
from healthchecks.runner import HealthChanged
from healthchecks.wire import MAX_FRAME, Codec, WireError

CODEC = Codec([HttpGetParams, UrlSpec, MiscCheckParams, Timing, HealthChanged])


@dataclass(frozen=True)
class Unknown:
    x: int


def test_messages_of_params_and_events_round_trip() -> None:
    params = HttpGetParams("10.0.0.1", 80, urls=(UrlSpec("/a", ((200, 299),), regex="ok"),),
                           bind_if="eth0", http_protocol="1.1")
    misc = MiscCheckParams("/bin/check --fast", misc_dynamic=True)
    event = HealthChanged("c1", 7, False, False, "timeout", None, 12.5)
    message = ("add", "c1", 7, params, Timing(delay_loop=2.0, alpha=True), misc,
               {("a", 1): [event]}, ip_address("fe80::1"), b"\x00\xff")
    back = CODEC.decode(CODEC.encode(message))
    assert back == message
    assert back[5].argv == ("/bin/check", "--fast")  # built by its constructor


def test_an_unknown_type_is_refused_both_ways() -> None:
    with pytest.raises(WireError):
        CODEC.encode(Unknown(1))
    with pytest.raises(WireError, match="unknown type 'Unknown'"):
        CODEC.decode(b'{"$c":"Unknown","f":{"x":1}}')


@pytest.mark.parametrize("data", [
    b"not json", b'{"$c":"Timing","f":{"bogus":1}}', b'{"$c":"Timing"}',
    b'{"$c":"Timing","f":{"delay_loop":-1}}', pickle.dumps(("events", [])),
])
def test_bad_bytes_are_a_wire_error(data: bytes) -> None:
    with pytest.raises(WireError):
        CODEC.decode(data)


plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(plain)
def test_plain_values_round_trip(value: object) -> None:
    assert CODEC.decode(CODEC.encode(value)) == value


def test_frames_over_a_socketpair_and_a_too_long_frame() -> None:
    async def go() -> None:
        a, b = socket.socketpair()
        reader, keep = await asyncio.open_unix_connection(sock=a)
        _, writer = await asyncio.open_unix_connection(sock=b)
        writer.write(CODEC.frame(("sample",)) + CODEC.frame(("stop",)))
        writer.write((MAX_FRAME + 1).to_bytes(4, "big"))
        await writer.drain()
        assert await CODEC.read(reader) == ("sample",)
        assert await CODEC.read(reader) == ("stop",)
        with pytest.raises(WireError, match="too long"):
            await CODEC.read(reader)
        writer.close()
        keep.close()

    asyncio.run(go())
