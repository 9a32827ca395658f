"""What an import deals in: parsed statements, notes of what is left out, results, errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Statement:
    """One keepalived statement: its words, where it was written, and its `{ }` block if any."""

    words: tuple[str, ...]
    file: str
    line: int
    block: tuple[Statement, ...] | None = None

    @property
    def keyword(self) -> str:
        return self.words[0]

    @property
    def args(self) -> tuple[str, ...]:
        return self.words[1:]


@dataclass(frozen=True, slots=True)
class Skipped:
    """A keyword (or value) of the keepalived file that the YAML does not carry."""

    file: str
    line: int
    keyword: str  # keepalived keyword path, e.g. "virtual_server.persistence_granularity"
    message: str
    # False when the imported configuration behaves as keepalived does with the file
    # anyway: keepalived ignores or rewrites the same thing (and warns), or the keyword
    # only tunes keepalived's own processes. See `_Converter.skip` and `_NO_EFFECT`.
    changes_behaviour: bool = True

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.keyword}: {self.message}"


@dataclass(frozen=True, slots=True)
class ImportResult:
    """The converted configuration: the YAML text, its data, and everything left out."""

    yaml_text: str
    data: dict[str, Any] = field(hash=False, compare=False)
    skipped: tuple[Skipped, ...]


class KeepalivedSyntaxError(Exception):
    """The keepalived file cannot be read or its structure cannot be parsed."""

    def __init__(self, file: str, line: int, message: str) -> None:
        self.file = file
        self.line = line
        self.message = message
        where = f"{file}:{line}" if line > 0 else file
        super().__init__(f"{where}: {message}")


class _Unreadable(KeepalivedSyntaxError):
    """A file that cannot be read (for an included file: noted and skipped, as keepalived)."""
