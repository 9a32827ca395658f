"""Where each converted value came from, and the marker of a list item dropped later."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class _Origin:
    file: str
    line: int
    keyword: str


_DROPPED: Any = object()  # a list item taken out after the loader refused it
