"""A sync group's notify_priority_changes: the default of its members that set none, as
keepalived 2.2.7 does (checked with its config dump: a member without its own setting
reports the group's, a member's own wins, an instance outside the group the global)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hacluster.config.keepalived_import import import_keepalived_text
from hacluster.config.loader import load_config, parse_config
from hacluster.notify import priority_notified

CONFIG = """
global_defs: {vrrp_notify_priority_changes: GLOBAL}
vrrp_instances:
  VI_1: {interface: eth0, virtual_router_id: 1, virtual_ipaddress: [10.0.0.1/24]}
  VI_2: {interface: eth0, virtual_router_id: 2, virtual_ipaddress: [10.0.0.2/24],
         notify_priority_changes: false}
  VI_3: {interface: eth0, virtual_router_id: 3, virtual_ipaddress: [10.0.0.3/24]}
vrrp_sync_groups:
  G1: {group: [VI_1, VI_2], notify_priority_changes: true}
"""


def notified(text: str) -> dict[str, bool]:
    config = parse_config(text, "t.yaml")
    return {name: priority_notified(inst) for name, inst in config.vrrp_instances.items()}


def test_members_take_the_group_s_unless_they_say_otherwise() -> None:
    assert notified(CONFIG.replace("GLOBAL", "false")) == {
        "VI_1": True, "VI_2": False, "VI_3": False}
    assert notified(CONFIG.replace("GLOBAL", "true")) == {
        "VI_1": True, "VI_2": False, "VI_3": True}
    off = CONFIG.replace("GLOBAL", "true").replace("VI_2], notify_priority_changes: true}",
                                                   "VI_2], notify_priority_changes: false}")
    assert notified(off) == {"VI_1": False, "VI_2": False, "VI_3": True}
    unset = CONFIG.replace("GLOBAL", "true").replace(", notify_priority_changes: true}", "}")
    assert notified(unset) == {"VI_1": True, "VI_2": False, "VI_3": True}


def test_import_carries_the_group_keyword() -> None:
    text = ("vrrp_sync_group G1 {\n group {\n  VI_1\n }\n notify_priority_changes\n}\n"
            "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n"
            " virtual_ipaddress {\n  10.0.0.5\n }\n}\n")
    result = import_keepalived_text(text, "k.conf")
    assert result.skipped == ()
    config = parse_config(result.yaml_text, "k.yaml")
    assert config.vrrp_sync_groups["G1"].notify_priority_changes is True
    assert priority_notified(config.vrrp_instances["VI_1"])


def test_a_one_member_group_loads_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("vrrp_instances:\n  VI_1: {interface: eth0, virtual_router_id: 1, "
                    "virtual_ipaddress: [10.0.0.1/24]}\nvrrp_sync_groups:\n"
                    "  G1:\n    group: [VI_1]\n")
    with caplog.at_level(logging.WARNING, logger="hacluster.config"):
        config = load_config(path)
    assert config.vrrp_sync_groups["G1"].group == ("VI_1",)
    assert caplog.messages == [
        f"{path}:5: vrrp_sync_groups.G1.group: only one instance (VI_1): it moves alone, "
        "as keepalived runs it (\"this probably isn't what you want\")"]
