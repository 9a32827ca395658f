"""hacluster.config.lower: configured checkers become healthchecks parameters and timing."""

from __future__ import annotations

from ipaddress import ip_address
from typing import Any

import pytest
import yaml

from hacluster.config.loader import parse_config
from hacluster.config.lower import CheckConfigError, CheckPlan, plan, plans, unsupported
from hacluster.config.model import Config, RealServer, TcpCheck, VirtualServer
from hacluster.loadbalancer import LoadBalancerError, prepare
from healthchecks.params import (
    DnsCheckParams,
    HttpGetParams,
    MiscCheckParams,
    SmtpCheckParams,
    TcpCheckParams,
    Timing,
    UrlSpec,
)


def config(rs: dict[str, Any], vs: dict[str, Any] | None = None,
           global_defs: dict[str, Any] | None = None) -> Config:
    doc = {
        "global_defs": {"dataplane": "none", **(global_defs or {})},
        "virtual_servers": [{"ip": "10.0.0.1", "port": 80, "real_servers": [rs], **(vs or {})}],
    }
    return parse_config(yaml.safe_dump(doc), "t.yaml")


def only(cfg: Config) -> tuple[VirtualServer, RealServer]:
    vs = cfg.virtual_servers[0]
    return vs, vs.real_servers[0]


def the_plan(rs: dict[str, Any], **kw: Any) -> CheckPlan:
    cfg = config(rs, **kw)
    vs, real = only(cfg)
    (result,) = plans(vs, real, cfg.global_defs)
    return result


def test_http_get_with_urls_status_codes_and_inherited_settings() -> None:
    p = the_plan(
        {"ip": "10.0.1.1", "port": 8080, "connect_timeout": 2, "virtualhost": "www.example",
         "HTTP_GET": {"url": [
             {"path": "/health", "status_code": [200, "300-302"],
              "digest": "9b3a0c85a887a256d6939da88aabd8cd"},
             {"path": "/ready", "regex": "^ok", "regex_no_match": True},
         ], "retry": 2, "delay_before_retry": 0.5}},
        vs={"delay_loop": 3},
    )
    assert p.kind == "HTTP_GET"
    assert p.params == HttpGetParams(
        connect_ip="10.0.1.1",
        connect_port=8080,
        urls=(
            UrlSpec("/health", ((200, 200), (300, 302)), "9b3a0c85a887a256d6939da88aabd8cd"),
            UrlSpec("/ready", ((200, 299),), regex="^ok", regex_no_match=True),
        ),
        virtualhost="www.example",
        connect_timeout=2,
    )
    assert p.timing == Timing(delay_loop=3, retry=2, delay_before_retry=0.5, warmup=None)


def test_ssl_get_is_http_with_tls_and_sni() -> None:
    p = the_plan({"ip": "10.0.1.1", "port": 443, "SSL_GET": {
        "url": [{"path": "/"}], "enable_sni": True, "connect_ip": "10.0.2.2",
        "connect_port": 8443, "bindto": "10.0.0.9"}})
    assert isinstance(p.params, HttpGetParams)
    assert p.kind == "SSL_GET" and p.params.tls and p.params.enable_sni
    assert (p.params.connect_ip, p.params.connect_port, p.params.bindto) == (
        "10.0.2.2", 8443, "10.0.0.9")


@pytest.mark.parametrize(
    ("checker", "expected"),
    [
        ({"TCP_CHECK": {}}, TcpCheckParams("10.0.1.1", 80)),
        ({"TCP_CHECK": {"connect_port": 81, "connect_timeout": 1.5}},
         TcpCheckParams("10.0.1.1", 81, connect_timeout=1.5)),
        ({"DNS_CHECK": {"type": "A", "name": "example.org", "connect_port": 53}},
         DnsCheckParams("10.0.1.1", 53, type="A", name="example.org")),
        ({"SMTP_CHECK": {"helo_name": "lb.example", "connect_port": 25}},
         SmtpCheckParams("10.0.1.1", 25, helo_name="lb.example")),
    ],
)
def test_network_checks_default_to_the_real_server(
    checker: dict[str, Any], expected: object
) -> None:
    assert the_plan({"ip": "10.0.1.1", **checker}).params == expected


def test_misc_check_gets_script_user_and_its_timeout() -> None:
    p = the_plan(
        {"ip": "10.0.1.1", "MISC_CHECK": {"misc_path": "/bin/true 'a b'", "misc_dynamic": True,
                                          "delay_loop": 7}},
        global_defs={"script_user": "nobody"},
    )
    assert p.params == MiscCheckParams("/bin/true 'a b'", misc_timeout=7, misc_dynamic=True,
                                       script_user="nobody")
    assert isinstance(p.params, MiscCheckParams)
    assert p.params.argv == ("/bin/true", "a b")


@pytest.mark.parametrize(
    ("vs_alpha", "rs_alpha", "check_alpha", "expected"),
    [(False, None, False, False), (True, None, False, True), (True, False, False, False),
     (False, True, False, True), (False, False, True, True)],
)
def test_alpha_is_inherited(
    vs_alpha: bool, rs_alpha: bool | None, check_alpha: bool, expected: bool
) -> None:
    rs: dict[str, Any] = {"ip": "10.0.1.1", "TCP_CHECK": {"alpha": check_alpha}}
    if rs_alpha is not None:
        rs["alpha"] = rs_alpha
    assert the_plan(rs, vs={"alpha": vs_alpha}).timing.alpha is expected


def test_equal_settings_give_equal_plans() -> None:
    a = the_plan({"ip": "10.0.1.1", "TCP_CHECK": {"connect_timeout": 2}})
    b = the_plan({"ip": "10.0.1.1", "TCP_CHECK": {"connect_timeout": 2}})
    c = the_plan({"ip": "10.0.1.1", "TCP_CHECK": {"connect_timeout": 3}})
    assert a == b and hash(a) == hash(b)
    assert a != c


def test_source_settings_and_http_protocol_reach_the_checker() -> None:
    source = {"bindto": "10.0.0.9", "bind_port": 1234, "bind_if": "eth1", "fwmark": 3}
    cfg = config({"ip": "10.0.1.1", "TCP_CHECK": source})
    assert unsupported(only(cfg)[1].checks[0]) == []
    p = the_plan({"ip": "10.0.1.1", "TCP_CHECK": source})
    assert p.params == TcpCheckParams("10.0.1.1", 80, **source)  # type: ignore[arg-type]
    p = the_plan({"ip": "10.0.1.1", "SSL_GET": {
        "url": [{"path": "/"}], "http_protocol": "1.0C", **source}})
    assert isinstance(p.params, HttpGetParams)
    assert p.params.http_protocol == "1.0C"
    assert (p.params.bindto, p.params.bind_port, p.params.bind_if, p.params.fwmark) == (
        "10.0.0.9", 1234, "eth1", 3,
    )
    for kind in ("DNS_CHECK", "SMTP_CHECK"):
        p = the_plan({"ip": "10.0.1.1", kind: source})
        assert (p.params.bindto, p.params.bind_port, p.params.bind_if,  # type: ignore[union-attr]
                p.params.fwmark) == ("10.0.0.9", 1234, "eth1", 3)  # type: ignore[union-attr]


def test_fast_recovery_is_named_as_unsupported() -> None:
    cfg = config({"ip": "10.0.1.1", "HTTP_GET": {"url": [{"path": "/"}], "fast_recovery": True}})
    assert unsupported(only(cfg)[1].checks[0]) == [
        "fast_recovery is not supported and is ignored",
    ]


def test_unsupported_keywords_are_named() -> None:
    cfg = config({"ip": "10.0.1.1", "HTTP_GET": {"fast_recovery": True, "url": [{"path": "/"}],
                                                 "log_all_failures": True}})
    notes = unsupported(only(cfg)[1].checks[0])
    assert [n.split()[0] for n in notes] == ["fast_recovery", "log_all_failures"]


def test_a_check_without_a_port_is_a_clear_error() -> None:
    vs = VirtualServer(fwmark=1)
    rs = RealServer(ip=ip_address("10.0.1.1"), port=0,
                    checks=(TcpCheck(),))
    with pytest.raises(CheckConfigError, match=r"FWM 1/TCP 10.0.1.1:0 TCP_CHECK: no port"):
        plan(rs.checks[0], vs, rs)


def test_prepare_refuses_every_bad_script_at_once(tmp_path: Any) -> None:
    unsafe = tmp_path / "probe"
    unsafe.write_text("#!/bin/sh\nexit 0\n")
    unsafe.chmod(0o777)  # anyone may rewrite it
    cfg = parse_config(yaml.safe_dump({
        "global_defs": {"dataplane": "none", "enable_script_security": True},
        "virtual_servers": [{"ip": "10.0.0.1", "port": 80, "real_servers": [
            {"ip": "10.0.1.1", "MISC_CHECK": {"misc_path": str(unsafe)}},
            {"ip": "10.0.1.2", "MISC_CHECK": {"misc_path": "/nonexistent/x"}},
            {"ip": "10.0.1.3", "MISC_CHECK": {"misc_path": "true"}},
        ]}],
    }), "t.yaml")
    with pytest.raises(LoadBalancerError) as info:
        prepare(cfg)
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert "10.0.1.1:80 MISC_CHECK" in lines[0] and "refusing" in lines[0]
    assert "10.0.1.2:80 MISC_CHECK" in lines[1]


def test_prepare_resolves_a_bare_program_name() -> None:
    cfg = config({"ip": "10.0.1.1", "MISC_CHECK": {"misc_path": "true --x"}})
    ((_, want),) = prepare(cfg).items()
    (p,) = want.plans
    assert isinstance(p.params, MiscCheckParams)
    assert p.params.argv[0].startswith("/") and p.params.argv[0].endswith("/true")
    assert p.params.argv[1:] == ("--x",)
