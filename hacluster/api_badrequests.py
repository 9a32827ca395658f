"""Malformed HTTP requests to the control API: counted, logged at most once a second, no traceback.

aiohttp answers a request it cannot parse (a garbage request line, a bad Content-Length,
a NUL in a header, an oversized header...) with 400 and reports it through its server
logger with a full traceback, before any handler or token check runs. Anyone who can
reach a listener could flood the daemon's log that way. Each listener's server is given
a logger of its own whose `BadRequestFilter` turns such a report into a count in
`hacluster_api_bad_requests_total{listener,kind}` and, at most once a second for all
listeners together, one line
without the traceback. Anything else aiohttp reports (a real bug) passes through as it is.
A body that turns out malformed while a handler reads it is reported the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from aiohttp.http_exceptions import HttpProcessingError

log = logging.getLogger("hacluster.api")

#: Seconds between two log lines about malformed requests on one listener.
LOG_INTERVAL = 1.0
_MAX_DETAIL = 160


class BadRequestCounter(Protocol):
    def api_bad_request(self, listener: str, kind: str) -> None: ...


class LogBudget:
    """One log line per `LOG_INTERVAL` at most, shared by every listener of a daemon."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.logged = 0
        self._last: float | None = None
        self._unlogged = 0

    def take(self) -> int | None:
        """How many reports were left out since the last line, if a line may go out now."""
        now = self.clock()
        if self._last is not None and now - self._last < LOG_INTERVAL:
            self._unlogged += 1
            return None
        left_out, self._unlogged, self._last = self._unlogged, 0, now
        self.logged += 1
        return left_out


class BadRequestFilter(logging.Filter):
    """Swallows aiohttp's reports of unparsable requests on one listener: counts them,
    and logs a plain line when the shared `LogBudget` allows (saying how many it left
    out in between)."""

    def __init__(
        self,
        listener: str,
        metrics: BadRequestCounter | None,
        budget: LogBudget | None = None,
    ) -> None:
        super().__init__()
        self.listener = listener
        self.metrics = metrics
        self.budget = budget or LogBudget()
        self.seen = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            # The server logger is kept at DEBUG so that every bad request is seen (aiohttp
            # reports some at debug level); anything else keeps the daemon's log level.
            return record.levelno >= log.getEffectiveLevel()
        peer = record.args[0] if isinstance(record.args, tuple) and record.args else None
        self.report(exc, str(peer or ""))
        return False

    def report(self, exc: HttpProcessingError, peer: str) -> None:
        """Count one malformed request; log it unless a line went out less than
        `LOG_INTERVAL` ago (the next line says how many were left out)."""
        self.seen += 1
        kind = type(exc).__name__
        if self.metrics is not None:
            self.metrics.api_bad_request(self.listener, kind)
        left_out = self.budget.take()
        if left_out is None:
            return
        more = f" ({left_out} more since the last report)" if left_out else ""
        log.warning("[api] malformed HTTP request on %s from %s: %s: %s%s",
                    self.listener, peer or "a local client", kind, _one_line(exc), more)


def _one_line(exc: HttpProcessingError) -> str:
    """The parser's message on one line, printable, cut short: it quotes the client."""
    text = " ".join(str(exc.message or exc).split())
    text = text.encode("ascii", "backslashreplace").decode("ascii")
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


def server_logger(listener: str, bad: BadRequestFilter) -> logging.Logger:
    """The logger to hand to aiohttp's server for `listener`, with `bad` on it."""
    logger = logging.getLogger(f"hacluster.api.http.{listener}")
    for old in [f for f in logger.filters if isinstance(f, BadRequestFilter)]:
        logger.removeFilter(old)
    logger.addFilter(bad)
    logger.setLevel(logging.DEBUG)
    return logger
