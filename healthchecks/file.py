"""FILE_CHECK: the number in a file (keepalived's track_file) gives up, down or a weight."""

from __future__ import annotations

import os

from healthchecks.params import FileCheckParams
from healthchecks.result import CheckResult

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1


def read_number(path: str) -> int:
    """The file's number as keepalived reads it: strtol of the first 127 bytes, base
    auto (0x.., 0..), 0 when the file is missing, empty or does not start with one."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        data = os.read(fd, 127)
    except OSError:
        return 0
    finally:
        os.close(fd)
    return _strtol(data.decode("latin-1"))


def _strtol(text: str) -> int:
    s = text.lstrip(" \t\n\r\f\v")
    sign = 1
    if s[:1] in "+-" and s:
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    base = 10
    if s[:2].lower() == "0x" and len(s) > 2 and s[2] in "0123456789abcdefABCDEF":
        base, s = 16, s[2:]
    elif s[:1] == "0":
        base = 8
    digits = "0123456789abcdef"[:base]
    end = 0
    while end < len(s) and s[end].lower() in digits:
        end += 1
    return sign * int(s[:end], base) if end else 0


def judge(value: int, params: FileCheckParams) -> CheckResult:
    """keepalived's update_track_file_status for a checker, as a result."""
    mult = -1 if params.reverse else 1
    if params.weight == 0:
        failed = (value != 0) if mult == 1 else (value == 0)
        if failed:
            return CheckResult.down(f"file holds {value}")
        return CheckResult.up(f"file holds {value}", weight=params.base_weight)
    delta = value * params.weight * mult
    if delta <= _INT32_MIN:
        return CheckResult.down(f"file holds {value} (weight {delta})")
    return CheckResult.up(f"file holds {value}", weight=max(0, params.base_weight + delta))


class FileCheck:
    """Reads the file at each run; the result's weight is the real server's new weight.

    A number outside -2**31..2**31 is ignored and the last one kept (keepalived logs
    "Invalid number ... ignoring").
    """

    __slots__ = ("_last", "params")

    def __init__(self, params: FileCheckParams) -> None:
        self.params = params
        self._last = 0

    @property
    def kind(self) -> str:
        return "FILE_CHECK"

    @property
    def timeout(self) -> float:
        return 1.0

    async def check(self) -> CheckResult:
        # A read of a small local file: cheaper than handing it to a thread.
        value = read_number(self.params.path)
        if _INT32_MIN <= value <= _INT32_MAX + 1:
            self._last = value
        return judge(self._last, self.params)

    async def close(self) -> None:
        return None
