"""Multipath routes in virtual_routes / static_routes: keepalived's `via A or B` and
`nexthop via A dev X weight N [onlink] ...` forms, the mapping form, what is refused,
and the rtnetlink arguments (RTA_MULTIPATH). The kernel side: tests/integration/
test_vrrp_routes.py (namespaces, read back with `ip route`)."""

from __future__ import annotations

from ipaddress import ip_address
from typing import Any

import pytest

from hacluster.config import ConfigError
from hacluster.config.keepalived_import import import_keepalived_text
from hacluster.config.loader import parse_config
from hacluster.config.model import Nexthop, Route
from hacluster.vroutes import kernel_route
from vrrp.routes import RTNH_F_ONLINK, Routing


def route(text: str) -> Route:
    body = text if text.startswith("{") else f'"{text}"'
    return parse_config(f"static_routes: [{body}]", "t.yaml").static_routes[0]


def test_or_is_two_nexthops_on_the_route_s_dev() -> None:
    r = route("192.0.2.0/24 via 10.0.0.1 or 10.0.0.2 dev lo")
    assert r.via is None and r.dev == "lo"
    assert r.nexthops == (Nexthop(ip_address("10.0.0.1")), Nexthop(ip_address("10.0.0.2")))
    assert str(r) == "192.0.2.0/24 dev lo nexthop via 10.0.0.1 nexthop via 10.0.0.2"


def test_nexthop_words_and_the_mapping_form_are_the_same_route() -> None:
    words = route("192.0.2.0/24 table 100 nexthop via 10.0.0.1 dev lo onlink weight 1 "
                  "nexthop via 10.0.0.2 weight 2")
    mapping = route("{to: 192.0.2.0/24, table: 100, nexthops: [{via: 10.0.0.1, dev: lo, "
                    "onlink: true}, {via: 10.0.0.2, weight: 2}]}")
    assert words == mapping
    assert words.nexthops[0] == Nexthop(ip_address("10.0.0.1"), "lo", 1, True)
    assert route("default nexthop via fd00::1 dev lo nexthop via fd00::2 dev lo").to.version == 6


@pytest.mark.parametrize(("text", "problem"), [
    ("192.0.2.0/24 via 10.0.0.1 nexthop via 10.0.0.2", "give via or nexthops, not both"),
    ("192.0.2.0/24 or 10.0.0.2", "'or GATEWAY' needs 'via GATEWAY' before it"),
    ("192.0.2.0/24 nexthop via 10.0.0.1 weight 0", "nexthops[0].weight: must be 1..256"),
    ("192.0.2.0/24 nexthop via 10.0.0.1 weight 257", "nexthops[0].weight: must be 1..256"),
    ("192.0.2.0/24 nexthop via 10.0.0.1 metric 5", "unknown or incomplete word 'metric'"),
    ("blackhole 192.0.2.0/24 nexthop dev lo", "a blackhole route has no nexthops"),
    ("192.0.2.0/24 nexthop via fd00::1", "mixes IPv4 and IPv6 addresses"),
    ("192.0.2.0/24 nexthop weight 2", "each nexthop needs via or dev"),
])
def test_what_is_refused(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as exc:
        route(text)
    assert problem in str(exc.value)


def test_rtnetlink_arguments() -> None:
    r = kernel_route(route("192.0.2.0/24 dev lo nexthop via 10.0.0.1 weight 3 onlink "
                           "nexthop via 10.0.0.2"))
    routing = Routing.__new__(Routing)  # the arguments only: no socket
    args: dict[str, Any] = routing._route_args(r)
    lo = routing._index("lo")
    assert "gateway" not in args and "scope" not in args  # a gateway route: universe
    assert args["multipath"] == [
        {"hops": 2, "gateway": "10.0.0.1", "oif": lo, "flags": RTNH_F_ONLINK},
        {"hops": 0, "gateway": "10.0.0.2", "oif": lo},
    ]


def test_import_carries_both_forms() -> None:
    text = ("static_routes {\n 192.168.100.0/24 table 6909 nexthop via 10.9.0.253 dev eth0 "
            "onlink weight 1 nexthop via 10.9.0.254 dev eth0 onlink weight 2\n}\n"
            "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n"
            " virtual_ipaddress {\n  10.9.0.100/24\n }\n virtual_routes {\n"
            "  192.168.113.0/24 via 10.9.0.253 or 10.9.0.254 dev eth0\n }\n}\n")
    result = import_keepalived_text(text, "k.conf")
    config = parse_config(result.yaml_text, "k.yaml")
    [static] = config.static_routes
    assert [(str(h.via), h.weight, h.onlink) for h in static.nexthops] == [
        ("10.9.0.253", 1, True), ("10.9.0.254", 2, True)]
    [virtual] = config.vrrp_instances["VI_1"].virtual_routes
    assert [str(h.via) for h in virtual.nexthops] == ["10.9.0.253", "10.9.0.254"]
    assert [(n.line, n.changes_behaviour) for n in result.skipped] == [(11, False)]
