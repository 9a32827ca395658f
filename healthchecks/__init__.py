"""Asynchronous health checkers with keepalived's semantics, usable on their own.

Build parameters (``TcpCheckParams``, ``HttpGetParams``, ...), turn them into checkers
with ``make_checker``, and hand ``CheckSpec``s to a ``Runner``, which emits
``HealthChanged`` events. ``Tracker`` is the pure rise/fall/retry core.
"""

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
