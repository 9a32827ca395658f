"""The configuration model: frozen values with keepalived's defaults and small helpers."""

from __future__ import annotations

import dataclasses
from ipaddress import ip_address, ip_interface

import pytest

from hacluster.config import model as m
from hacluster.config.errors import ConfigError, Problem
from hacluster.config.loader import parse_config


def test_values_are_frozen() -> None:
    vip = m.VirtualIpAddress(ip_interface("10.0.0.1/24"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        vip.dev = "eth1"  # type: ignore[misc]
    config = parse_config("vrrp_scripts:\n  chk: {script: /bin/true}\n")
    with pytest.raises(TypeError):
        config.vrrp_scripts["other"] = config.vrrp_scripts["chk"]  # type: ignore[index]


def test_keepalived_defaults_of_an_instance() -> None:
    inst = parse_config(
        "vrrp_instances:\n  VI_1:\n    interface: eth0\n    virtual_router_id: 9\n"
        "    virtual_ipaddress: [192.0.2.1]\n"
    ).vrrp_instances["VI_1"]
    assert (inst.state, inst.priority, inst.advert_int, inst.version) == ("BACKUP", 100, 1.0, 2)
    assert (inst.nopreempt, inst.preempt_delay, inst.accept) == (False, 0.0, True)
    assert (inst.garp_master_delay, inst.garp_master_repeat, inst.garp_master_refresh) == (5, 5, 0)
    assert (inst.down_timer_adverts, inst.checksum_pseudo_header) == (3, True)
    assert inst.virtual_ipaddress[0].address == ip_interface("192.0.2.1/32")
    assert inst.family == 4 and not inst.is_unicast and not inst.is_owner


def test_configs_compare_by_value() -> None:
    text = "vrrp_scripts:\n  chk: {script: /bin/true, weight: 2}\n"
    assert parse_config(text) == parse_config(text)
    assert parse_config(text) != parse_config(text.replace("weight: 2", "weight: 3"))


def test_status_code_range_and_hostport_rendering() -> None:
    assert 204 in m.StatusCodeRange(200, 299) and 300 not in m.StatusCodeRange(200, 299)
    assert str(m.StatusCodeRange(200, 200)) == "200"
    assert str(m.StatusCodeRange(200, 299)) == "200-299"
    assert str(m.HostPort(ip_address("2001:db8::1"), 80)) == "[2001:db8::1]:80"


def test_problem_without_line_or_key() -> None:
    assert str(Problem("a.yaml", 0, "", "no such file")) == "a.yaml: no such file"
    assert str(Problem("a.yaml", 3, "", "file is empty")) == "a.yaml:3: file is empty"
    err = ConfigError([Problem("a.yaml", 9, "b", "z"), Problem("a.yaml", 2, "a", "y")])
    assert [p.line for p in err.problems] == [2, 9]
    assert str(err) == "a.yaml:2: a: y\na.yaml:9: b: z"


def test_checker_defaults_differ_per_kind_as_in_keepalived() -> None:
    misc = m.MiscCheck(misc_path=m.Command(("/bin/true",), "/bin/true"))
    assert (m.TcpCheck().retry, m.DnsCheck().retry, misc.retry) == (1, 3, 0)
    assert (m.HttpGetCheck().delay_before_retry, m.TcpCheck().delay_before_retry) == (3.0, 1.0)
    assert m.TcpCheck().connect_timeout == 5.0 and m.TcpCheck().delay_loop == 60.0
