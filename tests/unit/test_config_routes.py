"""virtual_routes / virtual_rules / static_*: the text and mapping forms, errors with
file:line, the lowering to kernel values, and the import."""

from __future__ import annotations

import ipaddress

import pytest

from hacluster.config.errors import ConfigError
from hacluster.config.keepalived_import import import_keepalived_text
from hacluster.config.loader import parse_config
from hacluster.config.model import Config
from hacluster.vroutes import kernel_route, kernel_rule


def load(body: str, statics: str = "") -> Config:
    return parse_config(
        statics + "vrrp_instances:\n  V:\n    interface: eth0\n    virtual_router_id: 1\n"
        "    virtual_ipaddress: [10.0.0.1/24]\n" + body, "r.yaml")


def test_text_and_mapping_forms_read_alike() -> None:
    cfg = load("    virtual_routes:\n"
               "      - 192.0.2.0/24 gw 10.0.0.254 dev eth0 table 100 metric 5 proto static\n"
               "      - {to: 192.0.2.0/24, via: 10.0.0.254, dev: eth0, table: 100, metric: 5,"
               " protocol: 4}\n"
               "      - blackhole default\n"
               "      - default via fe80::1 dev eth0\n"
               "    virtual_rules:\n"
               "      - from all fwmark 3 lookup 7\n"
               "      - {from: 10.0.0.0/8, table: 7, priority: 50}\n")
    r1, r2, hole, six = cfg.vrrp_instances["V"].virtual_routes
    assert r1 == r2
    assert (hole.type, str(hole.to)) == ("blackhole", "0.0.0.0/0")
    assert (str(six.to), six.family) == ("::/0", 6)
    mark, src = cfg.vrrp_instances["V"].virtual_rules
    assert (mark.from_, mark.fwmark, mark.table, mark.priority) == (None, 3, 7, 16384)
    k = kernel_rule(src)
    assert (k.family, k.src, k.priority) == (4, ipaddress.ip_network("10.0.0.0/8"), 50)
    kr = kernel_route(r1)
    assert (kr.gateway, kr.dev, kr.table, kr.metric, kr.protocol) == (
        "10.0.0.254", "eth0", 100, 5, 4)


@pytest.mark.parametrize(("entry", "message"), [
    ("192.0.2.0/24 vai 10.0.0.254", "unknown or incomplete word 'vai'"),
    ("192.0.2.0/24 via", "unknown or incomplete word 'via'"),
    ("192.0.2.0/24 via fe80::1", "mixes IPv4 and IPv6 addresses"),
    ("192.0.2.0/24 table 0", "table: must be 1..4294967295"),
])
def test_bad_routes_name_file_line_and_key(entry: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(f"    virtual_routes:\n      - {entry}\n")
    assert "r.yaml:7: vrrp_instances.V.virtual_routes[0]" in str(err.value)
    assert message in str(err.value)


def test_static_addresses_need_a_device() -> None:
    with pytest.raises(ConfigError) as err:
        load("", 'static_ipaddress: ["192.0.2.9/24"]\n')
    assert "static_ipaddress[0]: needs 'dev IFACE'" in str(err.value)


def test_import_carries_routes_rules_and_statics_with_keepalived_preferences() -> None:
    result = import_keepalived_text(
        "static_ipaddress {\n  192.0.2.250/24 dev eth2 scope link\n}\n"
        "static_routes {\n  198.51.100.0/24 via 192.0.2.254 dev eth0\n}\n"
        "static_rules {\n  from 192.0.2.0/24 table 5\n}\n"
        "vrrp_instance V {\n  interface eth0\n  virtual_router_id 9\n"
        "  virtual_ipaddress {\n    192.0.2.9/24\n  }\n"
        "  virtual_routes {\n    src 192.0.2.9 to 203.0.113.0/24 via 192.0.2.254\n"
        "    10.1.0.0/16 via 192.0.2.1 or 192.0.2.2\n  }\n"
        "  virtual_rules {\n    to 203.0.113.0/24 table 6\n  }\n}\n", "k.conf")
    notes = {(n.line, n.keyword, n.changes_behaviour) for n in result.skipped}
    assert notes == {
        (8, "static_rules", False),  # keepalived's 16384
        (18, "vrrp_instance.virtual_routes", False),  # "or": keepalived's deprecation
        (21, "vrrp_instance.virtual_rules", False),  # then 16383
    }
    cfg = parse_config(result.yaml_text)
    assert [r.priority for r in cfg.static_rules] == [16384]
    assert [r.priority for r in cfg.vrrp_instances["V"].virtual_rules] == [16383]
    (route, multipath) = cfg.vrrp_instances["V"].virtual_routes
    assert (str(route.src), str(route.to)) == ("192.0.2.9", "203.0.113.0/24")
    assert [str(h.via) for h in multipath.nexthops] == ["192.0.2.1", "192.0.2.2"]
    assert [str(a.address) for a in cfg.static_ipaddress] == ["192.0.2.250/24"]
    assert len(cfg.static_routes) == 1
