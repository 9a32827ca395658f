"""Plain-data messages between processes: JSON of named frozen dataclasses, length-prefixed.

A message is any nesting of None, bool, int, float, str, list, tuple, dict (or mapping
proxy), bytes, IP addresses, interfaces and networks, paths and instances of the
dataclasses a `Codec` was given. Decoding builds only those types (by name, through
their constructors, so their own checks run): bytes a peer sends can never make the
receiver run code of the peer's choosing, as unpickling would. Frames are a 4-byte
big-endian length and the JSON text; `Codec.read` refuses a frame longer than
`MAX_FRAME`. Does no I/O but `Codec.read` on a stream.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import json
import struct
import types
from collections.abc import Iterable
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # (`hacluster run` encodes its first message before importing asyncio)
    import asyncio

_LEN = struct.Struct("!I")
#: The longest frame accepted (a status of 10,000 real servers is ~5 MB).
MAX_FRAME = 64 << 20

# Markers start with "$", which no dataclass field name can: a type's fields never
# look like a marker.
_TUPLE, _DICT, _TYPE, _IP, _BYTES = "$t", "$d", "$c", "$ip", "$b"
_IFACE, _NET, _PATH = "$if", "$net", "$path"
_SCALARS = (bool, int, float, str)


class WireError(ValueError):
    """A message that does not decode into known plain data."""


class Codec:
    """Encodes and decodes messages made of plain values and the given dataclasses."""

    def __init__(self, types: Iterable[type]) -> None:
        self._types: dict[str, type] = {}
        for cls in types:
            if not dataclasses.is_dataclass(cls):
                raise TypeError(f"{cls.__name__} is not a dataclass")
            self._types[cls.__name__] = cls
        self._fields = {
            name: tuple(f.name for f in dataclasses.fields(cls) if f.init)
            for name, cls in self._types.items()
        }
        self._decoder = json.JSONDecoder(object_hook=self._hook)

    # -- encoding ------------------------------------------------------------------

    def _plain(self, obj: Any) -> Any:
        if obj is None or isinstance(obj, bool | int | float | str):
            return obj
        if isinstance(obj, tuple):
            return {_TUPLE: [self._plain(v) for v in obj]}
        if isinstance(obj, list):
            if all(v is None or type(v) in _SCALARS for v in obj):
                return obj  # (rows of counters: thousands of these, no walk needed)
            return [self._plain(v) for v in obj]
        if isinstance(obj, dict | types.MappingProxyType):
            return {_DICT: [[self._plain(k), self._plain(v)] for k, v in obj.items()]}
        if isinstance(obj, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
            return {_IFACE: str(obj)}  # (an interface is also an address: first)
        if isinstance(obj, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return {_IP: str(obj)}
        if isinstance(obj, ipaddress.IPv4Network | ipaddress.IPv6Network):
            return {_NET: str(obj)}
        if isinstance(obj, PurePath):
            return {_PATH: str(obj)}
        if isinstance(obj, bytes):
            return {_BYTES: base64.b64encode(obj).decode()}
        name = type(obj).__name__
        names = self._fields.get(name)
        if names is None or self._types[name] is not type(obj):
            raise WireError(f"{name} is not a type this codec carries")
        return {_TYPE: name, "f": {n: self._plain(getattr(obj, n)) for n in names}}

    def encode(self, message: Any) -> bytes:
        return json.dumps(self._plain(message), separators=(",", ":")).encode()

    def frame(self, message: Any) -> bytes:
        body = self.encode(message)
        return _LEN.pack(len(body)) + body

    # -- decoding ------------------------------------------------------------------

    def _hook(self, d: dict[str, Any]) -> Any:
        if len(d) == 1:
            ((key, value),) = d.items()
            if key == _TUPLE and isinstance(value, list):
                return tuple(value)
            if key == _DICT and isinstance(value, list):
                return {_key(k): v for k, v in value}
            if key == _IP and isinstance(value, str):
                return ipaddress.ip_address(value)
            if key == _IFACE and isinstance(value, str):
                return ipaddress.ip_interface(value)
            if key == _NET and isinstance(value, str):
                return ipaddress.ip_network(value)
            if key == _PATH and isinstance(value, str):
                return Path(value)
            if key == _BYTES and isinstance(value, str):
                return base64.b64decode(value, validate=True)
        if set(d) == {_TYPE, "f"} and isinstance(d["f"], dict):
            cls = self._types.get(d[_TYPE])
            if cls is None:
                raise WireError(f"unknown type {d[_TYPE]!r}")
            return cls(**d["f"])
        if _TYPE in d:
            raise WireError(f"bad typed value: {sorted(d)!r}")
        return d  # a type's fields, consumed by the object around it

    def decode(self, data: bytes) -> Any:
        try:
            return self._decoder.decode(data.decode())
        except WireError:
            raise
        except (ValueError, TypeError) as exc:  # bad JSON, bad fields for a type
            raise WireError(str(exc)) from None

    async def read(self, reader: asyncio.StreamReader) -> Any:
        """The next message; IncompleteReadError at the end, WireError if it is bad."""
        (size,) = _LEN.unpack(await reader.readexactly(_LEN.size))
        if size > MAX_FRAME:
            raise WireError(f"frame of {size} bytes is too long")
        return self.decode(await reader.readexactly(size))


def _key(k: Any) -> Any:
    if isinstance(k, list):  # a dict key is hashable: lists come back as tuples
        return tuple(_key(v) for v in k)
    return k
