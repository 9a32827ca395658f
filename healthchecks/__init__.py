"""Asynchronous health checkers with keepalived's semantics, usable on their own.

Build parameters (``TcpCheckParams``, ``HttpGetParams``, ...), turn them into checkers
with ``make_checker``, and hand ``CheckSpec``s to a ``Runner``, which emits
``HealthChanged`` events. ``Tracker`` is the pure rise/fall/retry core.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from healthchecks.base import Checker, Source
    from healthchecks.factory import make_checker
    from healthchecks.http import HttpSessions
    from healthchecks.params import (
        CheckParams,
        DnsCheckParams,
        FileCheckParams,
        HttpGetParams,
        MiscCheckParams,
        PingCheckParams,
        SmtpCheckParams,
        TcpCheckParams,
        Timing,
        UdpCheckParams,
        UrlSpec,
        parse_hex,
        parse_status_codes,
    )
    from healthchecks.result import CheckResult
    from healthchecks.runner import CheckSpec, CheckStatus, HealthChanged, Runner
    from healthchecks.sharded import ShardedRunner
    from healthchecks.tracker import Tracker, Transition

# Names are imported when first used: a process that needs one module of the package
# (the plain-data codec, the parent-death helper) does not pay for aiohttp and the rest.
_WHERE = {
    "Checker": "base", "Source": "base", "make_checker": "factory", "HttpSessions": "http",
    "CheckParams": "params", "DnsCheckParams": "params", "HttpGetParams": "params",
    "MiscCheckParams": "params", "SmtpCheckParams": "params", "TcpCheckParams": "params",
    "Timing": "params", "UrlSpec": "params", "parse_status_codes": "params",
    "FileCheckParams": "params", "PingCheckParams": "params", "UdpCheckParams": "params",
    "parse_hex": "params",
    "CheckResult": "result", "CheckSpec": "runner", "CheckStatus": "runner",
    "HealthChanged": "runner", "Runner": "runner", "ShardedRunner": "sharded",
    "Tracker": "tracker", "Transition": "tracker",
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'healthchecks' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"healthchecks.{where}"), name)
    globals()[name] = value
    return value


__all__ = [
    "CheckParams",
    "CheckResult",
    "CheckSpec",
    "CheckStatus",
    "Checker",
    "DnsCheckParams",
    "FileCheckParams",
    "HealthChanged",
    "HttpGetParams",
    "HttpSessions",
    "MiscCheckParams",
    "PingCheckParams",
    "Runner",
    "ShardedRunner",
    "SmtpCheckParams",
    "Source",
    "TcpCheckParams",
    "Timing",
    "Tracker",
    "Transition",
    "UdpCheckParams",
    "UrlSpec",
    "make_checker",
    "parse_hex",
    "parse_status_codes",
]
