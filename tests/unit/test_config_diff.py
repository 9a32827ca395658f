"""Diff of two configurations: what a reload must add, remove, change, and leave alone."""

from __future__ import annotations

from pathlib import Path

from hacluster.config import model as m
from hacluster.config.diff import diff_configs
from hacluster.config.loader import load_config, parse_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BASE = (EXAMPLES / "director-a.yaml").read_text()


def edited(*replacements: tuple[str, str]) -> m.Config:
    text = BASE
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    return parse_config(text, "new.yaml")


def test_identical_configs_differ_in_nothing() -> None:
    old = load_config(EXAMPLES / "director-a.yaml")
    new = parse_config(BASE, "elsewhere.yaml")  # another path is not a change
    d = diff_configs(old, new)
    assert d.is_empty and d.summary() == []
    assert [i.name for i in d.vrrp_instances.unchanged] == ["VI_1"]
    assert len(d.virtual_servers.unchanged) == 1


def test_instance_priority_change_names_the_field() -> None:
    d = diff_configs(parse_config(BASE), edited(("priority: 150", "priority: 120")))
    (change,) = d.vrrp_instances.changed
    assert (change.old.priority, change.new.priority, change.fields) == (150, 120, ("priority",))
    assert d.virtual_servers.is_empty and not d.global_defs
    assert d.summary() == ["vrrp_instances: changed VI_1 (priority)"]


def test_instances_added_and_removed() -> None:
    d = diff_configs(parse_config(BASE), edited(("  VI_1:\n", "  VI_2:\n")))
    assert [i.name for i in d.vrrp_instances.added] == ["VI_2"]
    assert [i.name for i in d.vrrp_instances.removed] == ["VI_1"]
    assert not d.vrrp_instances.changed and not d.vrrp_instances.unchanged


def test_real_server_weight_change_keeps_its_checks() -> None:
    d = diff_configs(parse_config(BASE), edited(("weight: 3", "weight: 4")))
    (vs,) = d.virtual_servers.changed
    assert vs.fields == ()
    (rs,) = vs.real_servers.changed
    assert (str(rs.new), rs.fields) == ("10.99.1.11:80", ("weight",))
    assert rs.checks.is_empty and len(rs.checks.unchanged) == 1
    assert len(vs.real_servers.unchanged) == 2


def test_changed_check_is_one_removed_and_one_added() -> None:
    new = edited(("TCP_CHECK: {connect_timeout: 2}", "TCP_CHECK: {connect_timeout: 4}"))
    d = diff_configs(parse_config(BASE), new)
    (vs,) = d.virtual_servers.changed
    (rs,) = vs.real_servers.changed
    assert str(rs.new) == "10.99.1.13:80" and rs.fields == ()
    (removed,) = rs.checks.removed
    (added,) = rs.checks.added
    assert isinstance(removed, m.TcpCheck) and isinstance(added, m.TcpCheck)
    assert (removed.connect_timeout, added.connect_timeout) == (2.0, 4.0)
    assert d.summary() == ["virtual_servers: changed 10.99.0.100:80/TCP (rs 10.99.1.13:80 checks)"]


def test_virtual_server_delay_loop_change_reaches_every_check() -> None:
    d = diff_configs(parse_config(BASE), edited(("delay_loop: 2", "delay_loop: 5")))
    (vs,) = d.virtual_servers.changed
    assert vs.fields == ("delay_loop",)
    assert len(vs.real_servers.changed) == 3
    assert all(len(rs.checks.added) == 1 and rs.fields == () for rs in vs.real_servers.changed)


def test_real_servers_and_virtual_servers_added_and_removed() -> None:
    new = edited(
        ("      - ip: 10.99.1.13\n", "      - ip: 10.99.1.14\n"),
        ("virtual_servers:\n", "virtual_servers:\n  - {ip: 10.99.0.100, port: 443}\n"),
    )
    d = diff_configs(parse_config(BASE), new)
    assert [str(v) for v in d.virtual_servers.added] == ["10.99.0.100:443/TCP"]
    (vs,) = d.virtual_servers.changed
    assert [str(r) for r in vs.real_servers.added] == ["10.99.1.14:80"]
    assert [str(r) for r in vs.real_servers.removed] == ["10.99.1.13:80"]
    assert d.summary() == [
        "virtual_servers: added 10.99.0.100:443/TCP; "
        "changed 10.99.0.100:80/TCP (+rs 10.99.1.14:80, -rs 10.99.1.13:80)"
    ]


def test_scripts_groups_and_global_defs() -> None:
    new = edited(
        ("router_id: lvs-a", "router_id: lvs-z"),
        ("weight: -20", "weight: -30"),
        ("virtual_servers:", "vrrp_sync_groups:\n  G1: {group: [VI_1]}\nvirtual_servers:"),
    )
    d = diff_configs(parse_config(BASE), new)
    assert d.global_defs == ("router_id",)
    (script,) = d.vrrp_scripts.changed
    assert script.fields == ("weight",)
    assert [g.name for g in d.vrrp_sync_groups.added] == ["G1"]
    assert d.vrrp_instances.is_empty
    assert d.summary() == [
        "global_defs: changed router_id",
        "vrrp_scripts: changed chk_proxy (weight)",
        "vrrp_sync_groups: added G1",
    ]
