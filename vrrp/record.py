"""Cheap immutable records: the base of the VRRP machine's events, actions and status.

A measured start-up cost: Python 3.11 compiles every method `@dataclass` generates
(`__init__`, `__repr__`, `__eq__`, `__hash__`, the frozen `__setattr__`/`__delattr__`)
and rebuilds the class for `slots=True`; for the machine's ~17 event/action types that
was ~10 ms of the VRRP role's preparation, on the path to its first advert. A record
lists its fields, in order, in `__match_args__` (and `__slots__`) and has a hand-written
`__init__`; this base gives what the frozen dataclass gave: equality with the same
class only, hashing, repr, copying, and no assignment after `__init__`. tests/unit/test_record.py
checks them against the dataclass they replace.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any, ClassVar


class Record:
    """A frozen slotted record; a subclass lists its fields in `__match_args__`."""

    __slots__ = ()
    #: The fields, in order (a subclass's `__slots__` is the same tuple).
    __match_args__: ClassVar[tuple[str, ...]] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in self.__match_args__])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Record)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__match_args__)
        return f"{type(self).__qualname__}({fields})"

    def __getstate__(self) -> tuple[Any, ...]:
        return self._values()

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        for name, value in zip(self.__match_args__, state, strict=True):
            setfield(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")


#: How a record's `__init__` sets its fields (its own `__setattr__` refuses).
setfield = object.__setattr__
