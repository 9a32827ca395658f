"""A check the loader accepts can be planned: what the checkers' parameters refuse, the loader does.

The checks are planned (lowered for the check workers) only after the VRRP role runs,
so nothing before that may rely on planning to find a mistake: the loader names it,
with its file, line and key.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hacluster.config.errors import ConfigError
from hacluster.config.loader import parse_config
from hacluster.config.lower import plans_of


def _file(check_kind: str, check: dict[str, Any], rs_ip: str = "10.0.0.2") -> str:
    rs = {"ip": rs_ip, "port": 80, check_kind: check}
    return (
        "vrrp_track_files:\n  tf: {file: /run/tf}\n"
        "virtual_servers:\n"
        "  - ip: 10.0.0.1\n"
        "    port: 80\n"
        "    real_servers:\n"
        f"      - {json.dumps(rs, ensure_ascii=False)}\n"
    )


def _problems(text: str) -> list[str]:
    try:
        parse_config(text, "f.yaml")
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    return []


KEY = "f.yaml:7: virtual_servers[0].real_servers[0]"


@pytest.mark.parametrize(("kind", "check", "problem"), [
    ("HTTP_GET", {"url": [{"path": "health"}]},
     f"{KEY}.HTTP_GET.url[0].path: must start with '/', got 'health'"),
    ("HTTP_GET", {"url": [{"path": "/", "regex": "(?u)ok"}]},
     f"{KEY}.HTTP_GET.url[0].regex: not a valid regular expression: bad inline flags: "
     "cannot use 'u' flag with a bytes pattern at position 3"),
    ("SSL_GET", {"url": [{"path": "/", "regex_no_match": True}]},
     f"{KEY}.SSL_GET.url[0].regex_no_match: only used with regex"),
    ("TCP_CHECK", {"bindto": "::1"},
     f"{KEY}.TCP_CHECK.bindto: ::1 is IPv6 but the check connects to 10.0.0.2 (IPv4)"),
    ("PING_CHECK", {"connect_ip": "fe80::1", "bindto": "10.0.0.9"},
     f"{KEY}.PING_CHECK.bindto: 10.0.0.9 is IPv4 but the check connects to fe80::1 (IPv6)"),
    ("TCP_CHECK", {"bind_if": "eth0/1"}, f"{KEY}.TCP_CHECK.bind_if: not an interface name: "
     "'eth0/1'"),
    ("TCP_CHECK", {"bind_if": "a-very-long-interface"},
     f"{KEY}.TCP_CHECK.bind_if: not an interface name: 'a-very-long-interface'"),
    ("SMTP_CHECK", {"helo_name": "lb one"},
     f"{KEY}.SMTP_CHECK.helo_name: must be printable ASCII without spaces, got 'lb one'"),
    ("DNS_CHECK", {"name": "a..example"},
     f"{KEY}.DNS_CHECK.name: 'a..example' has an empty or over-long label"),
    ("DNS_CHECK", {"name": "x" * 64 + ".example"},
     f"{KEY}.DNS_CHECK.name: '{'x' * 64}.example' has an empty or over-long label"),
    ("UDP_CHECK", {"payload": "ab" * 65508},
     f"{KEY}.UDP_CHECK.payload: 65508 bytes: at most 65507 fit a datagram"),
])
def test_the_loader_refuses_what_the_checker_would(
    kind: str, check: dict[str, Any], problem: str
) -> None:
    assert _problems(_file(kind, check)) == [problem]


def test_what_the_checkers_take_loads_and_plans() -> None:
    config = parse_config(_file("HTTP_GET", {
        "url": [{"path": "/h", "regex": r"\d+ ok", "regex_no_match": True}],
        "bindto": "10.0.0.9", "bind_if": "eth0.100",
    }))
    assert len(plans_of(config, config.virtual_servers[0],
                        config.virtual_servers[0].real_servers[0])) == 1


addresses = st.sampled_from(["10.0.0.3", "::1", "fe80::2", "192.0.2.1", None])
texts = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["/", "/ok", "ok", "", "eth0", "a/b", "x" * 16, "lb.example", ".",
                     "a..b", "(?u)x", r"\N{DIGIT ONE}", "[", r"\d", "é", "xn--", "-" * 70]),
)
hexes = st.one_of(st.text(alphabet="0123456789abcdefxX \t", max_size=12),
                  st.integers(1, 70000).map(lambda n: "00" * n))


def _maybe(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


checks = st.one_of(
    st.builds(lambda p, r, n, v, b, i: ("HTTP_GET", _maybe(
        url=[_maybe(path=p, regex=r, regex_no_match=n, virtualhost=v)], bindto=b, bind_if=i)),
        texts, st.none() | texts, st.none() | st.booleans(), st.none() | texts, addresses,
        st.none() | texts),
    st.builds(lambda c, b, i: ("TCP_CHECK", _maybe(connect_ip=c, bindto=b, bind_if=i)),
              addresses, addresses, st.none() | texts),
    st.builds(lambda c, b: ("PING_CHECK", _maybe(connect_ip=c, bindto=b)), addresses, addresses),
    st.builds(lambda h, b: ("SMTP_CHECK", _maybe(helo_name=h, bindto=b)),
              st.none() | texts, addresses),
    st.builds(lambda n, t: ("DNS_CHECK", _maybe(name=n, type=t)),
              st.none() | texts, st.sampled_from(["A", "aaaa", "SOA", "MX"])),
    st.builds(lambda p, r: ("UDP_CHECK", _maybe(payload=p, require_reply=r)),
              st.none() | hexes, st.none() | st.booleans() | hexes),
    st.builds(lambda m: ("MISC_CHECK", {"misc_path": m}), texts),
    st.builds(lambda w: ("FILE_CHECK", _maybe(track_file="tf", weight=w)),
              st.none() | st.integers(-(2**31), 2**31)),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(checks, st.sampled_from(["10.0.0.2", "2001:db8::2"]))
def test_every_check_the_loader_accepts_plans(check: tuple[str, dict[str, Any]],
                                              rs_ip: str) -> None:
    kind, settings_ = check
    try:
        config = parse_config(_file(kind, settings_, rs_ip))
    except ConfigError as exc:
        assert all(p.line > 0 for p in exc.problems)
        return
    vs = config.virtual_servers[0]
    plans_of(config, vs, vs.real_servers[0])  # raises CheckConfigError if not
