"""vrrp_strict / strict_mode, vrrp_skip_check_adv_addr, vrrp_check_unicast_src: what the
loader refuses and sets, and what the import carries over (keepalived 2.2.7's rules)."""

from __future__ import annotations

import pytest

from hacluster.config.errors import ConfigError
from hacluster.config.keepalived_import import import_keepalived_text
from hacluster.config.loader import parse_config
from hacluster.config.model import Config


def load(instance: str, global_defs: str = "vrrp_strict: true") -> Config:
    return parse_config(
        f"global_defs: {{{global_defs}}}\n"
        "vrrp_instances:\n  V:\n    interface: eth0\n    virtual_router_id: 1\n"
        + "".join(f"    {line}\n" for line in instance.strip().splitlines()), "s.yaml")


def test_strict_sets_what_keepalived_enforces() -> None:
    inst = load("virtual_ipaddress: [10.0.0.1/24]").vrrp_instances["V"]
    assert inst.strict_mode
    assert inst.lower_prio_no_advert  # no advert answers a lower-priority master
    assert (inst.garp_lower_prio_repeat, inst.garp_lower_prio_delay) == (0, 0)
    assert inst.accept is False  # accept only for the address owner
    owner = load("virtual_ipaddress: [10.0.0.1/24]\npriority: 255").vrrp_instances["V"]
    assert owner.accept is True
    loose = load("virtual_ipaddress: [10.0.0.1/24]\nstrict_mode: false").vrrp_instances["V"]
    assert (loose.lower_prio_no_advert, loose.accept) == (False, True)


@pytest.mark.parametrize(("extra", "key"), [
    ("unicast_src_ip: 10.0.0.2\nunicast_peers: [10.0.0.3]", "unicast_peers"),
    ("authentication: {auth_type: PASS, auth_pass: x}", "authentication"),
    ("preempt_delay: 5", "preempt_delay"),
    ("higher_prio_send_advert: true", "higher_prio_send_advert"),
    ("lower_prio_no_advert: false", "lower_prio_no_advert"),
    ("accept: true", "accept"),
    ("garp_lower_prio_repeat: 3", "garp_lower_prio_repeat"),
    ("state: MASTER", "state"),
])
def test_strict_refuses_what_keepalived_refuses_or_resets(extra: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load("virtual_ipaddress: [10.0.0.1/24]\n" + extra)
    assert f": vrrp_instances.V.{key}: " in str(err.value)
    assert "strict mode" in str(err.value)


def test_strict_needs_a_vip() -> None:
    with pytest.raises(ConfigError) as err:
        load("priority: 100")
    assert "s.yaml:3: vrrp_instances.V.virtual_ipaddress: strict mode needs at least one VIP" \
        in str(err.value)


def test_check_unicast_src_defaults_and_ttl_turns_it_on() -> None:
    uni = "virtual_ipaddress: [10.0.0.1/24]\nunicast_src_ip: 10.0.0.2\n"
    assert not load(uni + "unicast_peers: [10.0.0.3]", "").vrrp_instances["V"].check_unicast_src
    assert load(uni + "unicast_peers: [{ip: 10.0.0.3, min_ttl: 250}]",
                "").vrrp_instances["V"].check_unicast_src
    assert load(uni + "unicast_peers: [10.0.0.3]",
                "vrrp_check_unicast_src: true").vrrp_instances["V"].check_unicast_src
    skip = load("virtual_ipaddress: [10.0.0.1/24]", "vrrp_skip_check_adv_addr: true")
    assert skip.vrrp_instances["V"].skip_check_adv_addr


def test_import_resets_as_keepalived_and_drops_strict_unicast() -> None:
    result = import_keepalived_text(
        "global_defs {\n  vrrp_strict\n  vrrp_skip_check_adv_addr\n  vrrp_check_unicast_src\n}\n"
        "vrrp_instance A {\n  state MASTER\n  interface eth0\n  virtual_router_id 1\n"
        "  priority 100\n  preempt_delay 5\n  accept\n  higher_prio_send_advert\n"
        "  authentication {\n    auth_type PASS\n    auth_pass x\n  }\n"
        "  virtual_ipaddress {\n    10.0.0.1/24\n  }\n}\n"
        "vrrp_instance U {\n  interface eth0\n  virtual_router_id 2\n"
        "  unicast_peer {\n    10.0.0.9\n  }\n  virtual_ipaddress {\n    10.0.0.2/24\n  }\n}\n",
        "k.conf")
    notes = {(n.line, n.keyword, n.changes_behaviour) for n in result.skipped}
    assert notes == {
        (7, "vrrp_instance.state", False), (11, "vrrp_instance.preempt_delay", False),
        (12, "vrrp_instance.accept", False), (13, "vrrp_instance.higher_prio_send_advert", False),
        (14, "vrrp_instance.authentication", False), (22, "vrrp_instance", False),
    }
    cfg = parse_config(result.yaml_text)
    g = cfg.global_defs
    assert (g.vrrp_strict, g.vrrp_skip_check_adv_addr, g.vrrp_check_unicast_src) == (
        True, True, True)
    assert list(cfg.vrrp_instances) == ["A"]
    assert cfg.vrrp_instances["A"].state == "BACKUP"


def test_priority_events_are_fifo_lines_and_never_mail() -> None:
    from hacluster.alerts import InstanceEvent, alert_enabled, fifo_line

    cfg = parse_config(
        "global_defs: {notification_email: [a@b.c], smtp_server: 127.0.0.1, smtp_alert: true,"
        " vrrp_notify_priority_changes: true}\n"
        "vrrp_instances:\n  V:\n    interface: eth0\n    virtual_router_id: 1\n"
        "    virtual_ipaddress: [10.0.0.1/24]\n")
    assert cfg.vrrp_instances["V"].notify_priority_changes
    event = InstanceEvent("V", "BACKUP_PRIORITY", 90)
    assert fifo_line(event) == ("vrrp", 'INSTANCE "V" BACKUP_PRIORITY 90\n')
    assert not alert_enabled(event, cfg)
    assert alert_enabled(InstanceEvent("V", "MASTER", 100), cfg)
    imported = import_keepalived_text(
        "global_defs {\n  vrrp_notify_priority_changes true\n}\n"
        "vrrp_instance V {\n  interface eth0\n  virtual_router_id 1\n"
        "  notify_priority_changes off\n"
        "  virtual_ipaddress {\n    10.0.0.1/24\n  }\n}\n", "k.conf")
    assert imported.skipped == ()
    icfg = parse_config(imported.yaml_text)
    assert icfg.global_defs.vrrp_notify_priority_changes
    assert not icfg.vrrp_instances["V"].notify_priority_changes
