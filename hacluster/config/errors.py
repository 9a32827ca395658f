"""Configuration problems (file, line, key path, message) and their error. Does no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from vrrp.slotted import slotted


@slotted(frozen=True)
class Problem:
    """One thing wrong with a configuration file, located by line and key path."""

    file: str
    line: int  # 1-based; 0 when the problem has no single line (e.g. a missing file)
    key_path: str  # dotted, e.g. "vrrp_instances.VI_1.priority"; "" for the whole file
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line > 0 else self.file
        if self.key_path:
            return f"{where}: {self.key_path}: {self.message}"
        return f"{where}: {self.message}"


def line_of(lines: Mapping[str, int], path: str, default: int) -> int:
    """The line of key path `path` in `lines`, else of its nearest parent there (`a.b[2].c`
    -> `a.b[2]` -> `a.b` -> `a`), else `default`."""
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return default


class ConfigError(Exception):
    """A configuration could not be loaded; `problems` lists every problem found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(
            sorted(problems, key=lambda p: (p.file, p.line, p.key_path, p.message))
        )
        super().__init__("\n".join(str(p) for p in self.problems))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)
