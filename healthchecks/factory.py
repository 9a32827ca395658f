"""Builds the checker for a parameter set."""

from __future__ import annotations

from healthchecks.base import Checker
from healthchecks.dns import DnsCheck
from healthchecks.file import FileCheck
from healthchecks.http import HttpCheck, HttpSessions
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
)
from healthchecks.ping import PingCheck
from healthchecks.script import MiscCheck
from healthchecks.smtp import SmtpCheck
from healthchecks.tcp import TcpCheck
from healthchecks.udp import UdpCheck


def make_checker(
    params: CheckParams, timing: Timing | None = None, *, http: HttpSessions | None = None
) -> Checker:
    """The checker for ``params``; ``http`` shares TLS contexts between HTTP checks.

    ``timing`` only supplies MISC_CHECK's default misc_timeout (delay_loop).
    """
    match params:
        case HttpGetParams():
            return HttpCheck(params, http)
        case TcpCheckParams():
            return TcpCheck(params)
        case MiscCheckParams():
            return MiscCheck(params, (timing or Timing()).delay_loop)
        case DnsCheckParams():
            return DnsCheck(params)
        case SmtpCheckParams():
            return SmtpCheck(params)
        case PingCheckParams():
            return PingCheck(params)
        case UdpCheckParams():
            return UdpCheck(params)
        case FileCheckParams():
            return FileCheck(params)
    raise TypeError(f"not checker parameters: {params!r}")
