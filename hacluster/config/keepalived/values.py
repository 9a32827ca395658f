"""Parsers of keepalived's single values (numbers, timers, booleans, addresses, choices)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

# keepalived's check_true_false(): these six words, in lower case only
_BOOL_WORDS = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}


class _Bad(Exception):
    """A value that cannot be carried over; the message says why."""


def _int(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise _Bad(f"not a whole number: {text!r}") from None


def _timer(text: str) -> int | float:
    try:
        value = float(text)
    except ValueError:
        raise _Bad(f"not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise _Bad(f"not a finite number: {text!r}")
    return int(value) if value.is_integer() else value


def _bool(text: str) -> bool:
    try:
        return _BOOL_WORDS[text]
    except KeyError:
        raise _Bad(f"not a boolean (on|off|true|false|yes|no): {text!r}") from None


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise _Bad(f"not an IP address: {text!r}") from None


def _hostport(ip: str, port: str | None) -> str:
    address = ipaddress.ip_address(_ip(ip))
    if port is None:
        return str(address)
    number = _int(port)
    return f"[{address}]:{number}" if address.version == 6 else f"{address}:{number}"


def _text(text: str) -> str:
    return text


def _choice(*options: str, upper: bool = False, exact: bool = False) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text if exact else text.upper() if upper else text.lower()
        if value not in options:
            raise _Bad(f"{text!r} is not one of {' | '.join(options)}")
        return value

    return parse


_LB_KIND = _choice("NAT", "DR", "TUN", exact=True)  # keepalived: case-sensitive
_PROTOCOL = _choice("TCP", "UDP", "SCTP", upper=True)
_LB_ALGO = _choice(  # keepalived: case-sensitive
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos",
    exact=True,
)


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = _int(text)
        if not low <= value <= high:
            raise _Bad(f"{value} is not in {low}..{high}")
        return value

    return parse


def _multicast(text: str) -> str:
    if not ipaddress.ip_address(_ip(text)).is_multicast:
        raise _Bad(f"{text} is not a multicast address")
    return _ip(text)
