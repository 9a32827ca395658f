"""Malformed-request reports: counted every time, logged once a second on one line."""

from __future__ import annotations

import logging

import pytest
from aiohttp.http_exceptions import BadStatusLine, InvalidHeader, LineTooLong

from hacluster.api_badrequests import BadRequestFilter, LogBudget, server_logger


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Counts:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def api_bad_request(self, listener: str, kind: str) -> None:
        self.seen.append((listener, kind))


def test_reports_are_counted_always_and_logged_once_a_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, counts = Clock(), Counts()
    budget = LogBudget(clock)
    bad = BadRequestFilter("tcp", counts, budget)
    other = BadRequestFilter("unix", counts, budget)  # the budget is shared
    caplog.set_level(logging.INFO)
    for i in range(10):
        (bad if i % 2 == 0 else other).report(
            BadStatusLine(b"\x16\x03\x01garbage\nmore"), "10.0.0.9")
        clock.now += 0.25 if i < 9 else 0.0
    lines = [r.getMessage() for r in caplog.records]
    assert len(counts.seen) == 10 and counts.seen[:2] == [("tcp", "BadStatusLine"),
                                                          ("unix", "BadStatusLine")]
    assert len(lines) == 3  # at t = 100, 101, 102
    assert lines[1].endswith("(3 more since the last report)")
    assert all("\n" not in line and "from 10.0.0.9" in line for line in lines)
    assert all(r.exc_info is None for r in caplog.records)


def test_the_server_logger_swallows_parser_errors_and_passes_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counts = Counts()
    logger = server_logger("unix", BadRequestFilter("unix", counts))
    caplog.set_level(logging.INFO)
    for exc in (LineTooLong("header", 8190, 20000), InvalidHeader(b"X-A: a\x00b")):
        try:
            raise exc
        except Exception:
            logger.exception("Error handling request from %s", "")
    logger.debug("Ignored premature client disconnection")  # below the daemon's level
    try:
        raise RuntimeError("a real bug")
    except RuntimeError:
        logger.exception("Unhandled exception")
    assert [kind for _, kind in counts.seen] == ["LineTooLong", "InvalidHeader"]
    kept = [r for r in caplog.records if r.exc_info]
    assert len(kept) == 1 and kept[0].getMessage() == "Unhandled exception"
    assert "a local client" in caplog.records[0].getMessage()
