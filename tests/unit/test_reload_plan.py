"""plan_vrrp_reload as timelines: configurations one after another, the running states
between them, and what each reload keeps, reconfigures, rebuilds, stops and adds (no root)."""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from hacluster.config.loader import parse_config
from hacluster.config.model import Config
from hacluster.reload_plan import plan_vrrp_reload
from vrrp.machine import State

M, B = State.MASTER, State.BACKUP


def inst(vrid: int, vips: list[str], **extra: Any) -> dict[str, Any]:
    return {"interface": "eth0", "virtual_router_id": vrid, "virtual_ipaddress": vips, **extra}


def conf(instances: dict[str, Any], groups: dict[str, Any] | None = None) -> Config:
    doc: dict[str, Any] = {"vrrp_instances": instances}
    if groups:
        doc["vrrp_sync_groups"] = groups
    return parse_config(yaml.safe_dump(doc), "t.yaml")


BASE = {"VI_1": inst(51, ["10.0.0.1/24"]), "VI_2": inst(52, ["10.0.0.2/24"])}


def test_the_same_file_keeps_everything() -> None:
    plan = plan_vrrp_reload(conf(BASE), conf(BASE), {"VI_1": M, "VI_2": B})
    assert sorted(plan.kept) == ["instance VI_1", "instance VI_2"]
    assert (plan.changed, plan.added, plan.removed, plan.stop, plan.detach) == (
        [], [], [], [], {})
    assert not plan.carry and not plan.in_place and not plan.forget


def test_a_timeline_of_reloads() -> None:
    running = {"VI_1": M, "VI_2": B}
    steps: list[tuple[str, Config, dict[str, Any]]] = [
        # 1. priority of the master: taken in place, nothing rebuilt
        ("priority", conf({**BASE, "VI_1": inst(51, ["10.0.0.1/24"], priority=150)}),
         {"kept": ["instance VI_1", "instance VI_2"], "in_place": ["VI_1"]}),
        # 2. a VIP added to the master: rebuilt, mastership and VIPs kept
        ("vip", conf({**BASE, "VI_1": inst(51, ["10.0.0.1/24", "10.0.0.9/24"],
                                          priority=150)}),
         {"changed": ["instance VI_1"], "detach": {"instance VI_1": ()}, "carry": {"VI_1"}}),
        # 3. a VIP changed on the backup: rebuilt, nothing to carry
        ("backup vip", conf({"VI_1": inst(51, ["10.0.0.1/24", "10.0.0.9/24"], priority=150),
                             "VI_2": inst(52, ["10.0.0.3/24"])}),
         {"changed": ["instance VI_2"], "detach": {"instance VI_2": ("VI_2",)}}),
        # 4. the master moves to another VRID: a new router, so it resigns
        ("vrid", conf({"VI_1": inst(61, ["10.0.0.1/24", "10.0.0.9/24"], priority=150),
                       "VI_2": inst(52, ["10.0.0.3/24"])}),
         {"changed": ["instance VI_1"], "detach": {"instance VI_1": ("VI_1",)}}),
        # 5. VI_2 removed, VI_3 added
        ("remove", conf({"VI_1": inst(61, ["10.0.0.1/24", "10.0.0.9/24"], priority=150),
                         "VI_3": inst(53, ["10.0.0.4/24"])}),
         {"removed": ["instance VI_2"], "stop": ["instance VI_2"],
          "added": ["instance VI_3"], "forget": ["VI_2"]}),
    ]
    old = conf(BASE)
    for what, new, expected in steps:
        plan = plan_vrrp_reload(old, new, running)
        got = {
            "kept": sorted(plan.kept), "changed": plan.changed, "added": plan.added,
            "removed": plan.removed, "stop": plan.stop, "detach": plan.detach,
            "carry": plan.carry, "in_place": [c.instance for c in plan.in_place],
            "forget": plan.forget,
        }
        for key, value in got.items():
            if key == "kept":
                continue
            want = expected.get(key, set() if key == "carry" else {} if key == "detach" else [])
            assert value == want, (what, key, value)
        if "kept" in expected:
            assert got["kept"] == expected["kept"], what
        # Between reloads: new instances run as BACKUP, resigned ones start again as BACKUP.
        for name in new.vrrp_instances:
            running.setdefault(name, B)
        for resign in plan.detach.values():
            for name in resign:
                running[name] = B
        for name in plan.forget:
            running.pop(name)
        old = new
    assert running == {"VI_1": B, "VI_3": B}


def test_a_master_moving_into_a_sync_group_keeps_its_mastership() -> None:
    old = conf(BASE)
    new = conf(BASE, {"G1": {"group": ["VI_1", "VI_2"]}})
    plan = plan_vrrp_reload(old, new, {"VI_1": M, "VI_2": B})
    assert plan.added == ["group G1"]
    assert sorted(plan.removed) == ["instance VI_1", "instance VI_2"]
    assert plan.stop == []  # their instances live on in the group: detached, not stopped
    assert plan.detach == {"instance VI_1": (), "instance VI_2": ("VI_2",)}
    assert plan.carry == {"VI_1"}


def test_a_renamed_master_keeps_its_mastership_and_vips() -> None:
    """The same virtual router under another name (keepalived finds an instance by its
    router): detached, not stopped; the new name carries the mastership."""
    new = conf({"VI_1": inst(51, ["10.0.0.1/24"]), "WEB": inst(52, ["10.0.0.2/24"])})
    plan = plan_vrrp_reload(conf(BASE), new, {"VI_1": B, "VI_2": M})
    assert plan.renamed == {"VI_2": "WEB"} and plan.successor("VI_2") == "WEB"
    assert (plan.kept, plan.removed, plan.added) == (
        ["instance VI_1"], ["instance VI_2"], ["instance WEB"])
    assert plan.stop == [] and plan.detach == {"instance VI_2": ()}
    assert plan.carry == {"WEB"} and plan.forget == ["VI_2"]
    # A backup renamed has nothing to carry: it detaches as it resigns (it holds no VIPs).
    plan = plan_vrrp_reload(conf(BASE), new, {"VI_1": M, "VI_2": B})
    assert plan.detach == {"instance VI_2": ("VI_2",)} and not plan.carry


def test_a_rename_to_another_router_is_a_removal_and_an_addition() -> None:
    new = conf({"VI_1": inst(51, ["10.0.0.1/24"]), "WEB": inst(53, ["10.0.0.2/24"])})
    plan = plan_vrrp_reload(conf(BASE), new, {"VI_1": B, "VI_2": M})
    assert plan.renamed == {} and plan.stop == ["instance VI_2"] and not plan.carry


def test_a_priority_change_is_taken_in_place_by_a_sync_group_member() -> None:
    groups = {"G1": {"group": ["VI_1", "VI_2"]}}
    old = conf(BASE, groups)
    new = conf({**BASE, "VI_2": inst(52, ["10.0.0.2/24"], priority=200, nopreempt=True)},
               groups)
    plan = plan_vrrp_reload(old, new, {"VI_1": M, "VI_2": M})
    assert plan.kept == ["group G1"] and not plan.changed and not plan.detach
    (change,) = plan.in_place
    assert (change.instance, change.priority, change.nopreempt, change.old_priority) == (
        "VI_2", 200, True, 100)
    # ...but not a change of a global setting the units are built from
    garp = dataclasses.replace(old, global_defs=dataclasses.replace(
        old.global_defs, vrrp_garp_interval=0.5))
    plan = plan_vrrp_reload(old, garp, {"VI_1": M, "VI_2": M})
    assert plan.changed == ["group G1"] and plan.carry == {"VI_1", "VI_2"}
