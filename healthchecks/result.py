"""Values a checker returns and the failure reasons it names. Does no I/O."""

from __future__ import annotations

import asyncio
import errno
import ssl
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's outcome.

    ``weight`` is set only by a dynamic checker (MISC_CHECK with misc_dynamic) that
    reports a new real-server weight; ``None`` means "weight unchanged".
    """

    ok: bool
    reason: str
    weight: int | None = None

    @classmethod
    def up(cls, reason: str = "ok", weight: int | None = None) -> CheckResult:
        return cls(True, reason, weight)

    @classmethod
    def down(cls, reason: str) -> CheckResult:
        return cls(False, reason)


def result_label(result: CheckResult) -> str:
    """How metrics sort a result: success, timeout, error (the checker could not run) or failure."""
    if result.ok:
        return "success"
    if result.reason.startswith("timeout"):
        return "timeout"
    if result.reason.startswith(("checker raised", "cannot run")):
        return "error"
    return "failure"


_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "timeout",
    errno.EADDRNOTAVAIL: "address not available",
    errno.EPIPE: "connection closed",
    errno.ENODEV: "no such device",
}


def describe_error(exc: BaseException, timeout: float | None = None) -> str:
    """A short, stable reason for a failed check (``timeout``, ``connection refused``...)."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timeout" if timeout is None else f"timeout after {timeout:g}s"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, OSError):
        if exc.errno in _ERRNO_REASONS:
            return _ERRNO_REASONS[exc.errno]
        if isinstance(exc, ConnectionRefusedError):
            return "connection refused"
        if isinstance(exc, ConnectionResetError):
            return "connection reset"
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    if isinstance(exc, EOFError | asyncio.IncompleteReadError):
        return "connection closed"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
