"""Tracker core: rise/fall, keepalived's weights, sync groups and reload, on a stepped clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from hacluster.config.loader import parse_config
from hacluster.config.model import Config
from hacluster.tracking import (
    RiseFall,
    TrackChange,
    TrackingCore,
    deliver,
    file_contribution,
    read_track_file,
    state_contribution,
)
from vrrp.machine import FaultCleared, FaultRaised, PriorityChanged

INSTANCE = """
  {name}:
    interface: eth0
    virtual_router_id: {vrid}
    priority: 100
    virtual_ipaddress: [10.0.0.{vrid}/24]
"""


def config(scripts: str = "", instances: str = "", extra: str = "") -> Config:
    text = ""
    if scripts:
        text += "vrrp_scripts:\n" + scripts
    text += "vrrp_instances:\n" + instances + extra
    return parse_config(text)


def instance(name: str, vrid: int, tracks: str = "") -> str:
    return INSTANCE.format(name=name, vrid=vrid) + "".join(
        f"    {line}\n" for line in tracks.strip().splitlines() if line.strip()
    )


def ch(instance: str, event: PriorityChanged | FaultRaised | FaultCleared) -> TrackChange:
    return TrackChange(instance, event)


# --------------------------------------------------------------------------- rise / fall


def test_first_result_decides_at_once() -> None:
    rf = RiseFall(rise=3, fall=3)
    assert rf.up and not rf.decided
    assert rf.observe(False, 1.0) is False
    assert not rf.up and rf.changed_at == 1.0


def test_fall_needs_consecutive_failures_and_a_success_resets_the_count() -> None:
    rf = RiseFall(rise=2, fall=3)
    assert rf.observe(True, 0.0) is None  # decided, still up
    assert rf.observe(False, 1.0) is None
    assert rf.observe(False, 2.0) is None
    assert rf.observe(True, 3.0) is None  # streak broken
    assert rf.observe(False, 4.0) is None
    assert rf.observe(False, 5.0) is None
    assert rf.observe(False, 6.0) is False
    assert rf.observe(True, 7.0) is None
    assert rf.observe(True, 8.0) is True
    assert rf.changed_at == 8.0


def test_init_fail_starts_down_and_first_success_brings_it_up() -> None:
    rf = RiseFall(rise=5, fall=5, up=False)
    assert rf.observe(True, 0.5) is True


def test_retune_keeps_state_and_restarts_partial_count() -> None:
    rf = RiseFall(rise=1, fall=3)
    rf.observe(True, 0.0)
    rf.observe(False, 1.0)
    rf.observe(False, 2.0)
    rf.retune(1, 2)
    assert rf.observe(False, 3.0) is None  # count restarted at the new fall
    assert rf.observe(False, 4.0) is False


def test_rise_and_fall_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RiseFall(rise=0, fall=1)


# --------------------------------------------------------------------------- weights


@pytest.mark.parametrize(
    ("weight", "reverse", "up", "expected"),
    [
        (0, False, True, (0, False)),
        (0, False, False, (0, True)),
        (0, True, True, (0, True)),
        (0, True, False, (0, False)),
        (10, False, True, (10, False)),
        (10, False, False, (0, False)),
        (10, True, True, (-10, False)),
        (10, True, False, (0, False)),
        (-20, False, True, (0, False)),
        (-20, False, False, (-20, False)),
        (-20, True, True, (0, False)),
        (-20, True, False, (20, False)),
    ],
)
def test_state_contribution_follows_keepalived(
    weight: int, reverse: bool, up: bool, expected: tuple[int, bool]
) -> None:
    assert state_contribution(weight, reverse, up) == expected


@pytest.mark.parametrize(
    ("weight", "reverse", "value", "expected"),
    [
        (1, False, 0, (0, False)),
        (5, False, 3, (15, False)),
        (5, False, -3, (-15, False)),
        (-2, False, 4, (-8, False)),
        (5, True, 3, (-15, False)),
        (1, False, -253, (-253, False)),
        (1, False, -254, (0, True)),
        (10, False, -60, (0, True)),
        (0, False, 0, (0, False)),
        (0, False, 7, (0, True)),
        (0, True, 0, (0, True)),
        (0, True, 7, (0, False)),
    ],
)
def test_file_contribution_follows_keepalived(
    weight: int, reverse: bool, value: int, expected: tuple[int, bool]
) -> None:
    assert file_contribution(weight, reverse, value) == expected


# --------------------------------------------------------------------------- scripts


def test_negative_weight_script_lowers_priority_after_fall_failures() -> None:
    cfg = config(
        "  chk: {script: /bin/true, interval: 2, weight: -20, rise: 2, fall: 2}\n",
        instance("VI_1", 1, "track_script: [chk]"),
    )
    core = TrackingCore(cfg)
    assert core.pending() == []  # starts up: nothing to tell a fresh machine
    assert core.script_result("chk", True, 0.0) == []
    assert core.script_result("chk", False, 2.0) == []
    assert core.script_result("chk", False, 4.0) == [ch("VI_1", PriorityChanged(-20))]
    assert core.script_result("chk", False, 6.0) == []
    assert core.script_result("chk", True, 8.0) == []
    assert core.script_result("chk", True, 10.0) == [ch("VI_1", PriorityChanged(0))]


def test_positive_weight_script_raises_priority_while_it_succeeds() -> None:
    cfg = config(
        "  chk: {script: /bin/true, weight: 15}\n", instance("VI_1", 1, "track_script: [chk]")
    )
    core = TrackingCore(cfg)
    assert core.pending() == [ch("VI_1", PriorityChanged(15))]  # assumed up until told
    assert core.script_result("chk", False, 1.0) == [ch("VI_1", PriorityChanged(0))]


def test_weight_zero_script_faults_the_instance() -> None:
    cfg = config(
        "  chk: {script: /bin/true, rise: 2, fall: 1}\n",
        instance("VI_1", 1, "track_script: [chk]"),
    )
    core = TrackingCore(cfg)
    core.script_result("chk", True, 0.0)
    cause = "track_script chk failed"
    assert core.script_result("chk", False, 1.0) == [ch("VI_1", FaultRaised(cause))]
    assert core.script_result("chk", True, 2.0) == []
    assert core.script_result("chk", True, 3.0) == [ch("VI_1", FaultCleared(cause))]


def test_init_fail_script_reports_the_fault_from_the_start() -> None:
    cfg = config(
        "  chk: {script: /bin/true, init_fail: true}\n",
        instance("VI_1", 1, "track_script: [chk]"),
    )
    core = TrackingCore(cfg)
    assert core.pending() == [ch("VI_1", FaultRaised("track_script chk failed"))]


def test_track_script_entry_weight_overrides_the_scripts_own() -> None:
    cfg = config(
        "  chk: {script: /bin/true, weight: -20}\n",
        instance("VI_1", 1, "track_script: [{name: chk, weight: 7}]")
        + instance("VI_2", 2, "track_script: [chk]"),
    )
    core = TrackingCore(cfg)
    assert core.pending() == [ch("VI_1", PriorityChanged(7))]
    assert core.script_result("chk", False, 1.0) == [
        ch("VI_1", PriorityChanged(0)),
        ch("VI_2", PriorityChanged(-20)),
    ]


def test_reverse_script_faults_while_it_succeeds() -> None:
    cfg = config(
        "  chk: {script: /bin/true}\n",
        instance("VI_1", 1, "track_script: [{name: chk, reverse: true}]"),
    )
    core = TrackingCore(cfg)
    cause = "track_script chk succeeded (reverse)"
    assert core.pending() == [ch("VI_1", FaultRaised(cause))]
    assert core.script_result("chk", False, 1.0) == [ch("VI_1", FaultCleared(cause))]


def test_unknown_script_result_is_ignored() -> None:
    core = TrackingCore(config(instances=instance("VI_1", 1)))
    assert core.script_result("nope", False, 1.0) == []


# --------------------------------------------------------------------------- interfaces


def test_interface_is_down_until_reported_and_faults_without_weight() -> None:
    cfg = config(instances=instance("VI_1", 1, "track_interface: [eth1]"))
    core = TrackingCore(cfg)
    cause = "track_interface eth1 down"
    assert core.pending() == [ch("VI_1", FaultRaised(cause))]
    assert core.link_state("eth1", True, 1.0) == [ch("VI_1", FaultCleared(cause))]
    assert core.link_state("eth1", True, 2.0) == []
    assert core.link_state("eth1", False, 3.0) == [ch("VI_1", FaultRaised(cause))]
    assert core.link_state("eth9", False, 4.0) == []  # not tracked


def test_weighted_interface_adjusts_priority_instead_of_faulting() -> None:
    cfg = config(
        instances=instance("VI_1", 1, "track_interface: [{name: eth1, weight: -30}, eth2]")
    )
    core = TrackingCore(cfg)
    assert core.pending() == [
        ch("VI_1", FaultRaised("track_interface eth2 down")),
        ch("VI_1", PriorityChanged(-30)),
    ]
    assert core.link_state("eth2", True, 0.0) == [
        ch("VI_1", FaultCleared("track_interface eth2 down"))
    ]
    assert core.link_state("eth1", True, 1.0) == [ch("VI_1", PriorityChanged(0))]
    assert core.link_state("eth1", False, 2.0) == [ch("VI_1", PriorityChanged(-30))]


def test_changes_order_faults_raised_then_delta_then_faults_cleared() -> None:
    cfg = config(
        "  chk: {script: /bin/true, weight: -10}\n  chk0: {script: /bin/true}\n",
        instance("VI_1", 1, "track_script: [chk, chk0]\ntrack_interface: [eth1]"),
    )
    core = TrackingCore(cfg)
    assert core.pending() == [ch("VI_1", FaultRaised("track_interface eth1 down"))]
    assert core.script_result("chk", False, 1.0) == [ch("VI_1", PriorityChanged(-10))]
    assert core.script_result("chk0", False, 1.0) == [
        ch("VI_1", FaultRaised("track_script chk0 failed"))
    ]
    assert core.link_state("eth1", True, 2.0) == [
        ch("VI_1", FaultCleared("track_interface eth1 down"))
    ]
    # A reload that adds a fault, changes the weight and drops a fault at once: the
    # new fault comes first, then the delta, then the cleared fault, so the machine
    # never leaves FAULT in between nor with a stale priority.
    changes = core.reconfigure(
        config(
            "  chk: {script: /bin/true, weight: -15}\n",
            instance("VI_1", 1, "track_script: [chk]\ntrack_interface: [eth2]"),
        )
    )
    assert changes == [
        ch("VI_1", FaultRaised("track_interface eth2 down")),
        ch("VI_1", PriorityChanged(-15)),
        ch("VI_1", FaultCleared("track_script chk0 failed")),
    ]


def test_contributions_add_up() -> None:
    cfg = config(
        "  a: {script: /bin/true, weight: 10}\n  b: {script: /bin/true, weight: -25}\n",
        instance("VI_1", 1, "track_script: [a, b]\ntrack_interface: [{name: eth1, weight: 5}]"),
    )
    core = TrackingCore(cfg)
    core.link_state("eth1", True, 0.0)
    assert core.verdict("VI_1").delta == 15
    core.script_result("b", False, 1.0)
    assert core.verdict("VI_1").delta == -10
    core.script_result("a", False, 2.0)
    assert core.verdict("VI_1").delta == -20
    assert core.reported("VI_1").delta == -20  # type: ignore[union-attr]


# --------------------------------------------------------------------------- files


def test_track_file_value_times_weight_and_fault_below_minus_253() -> None:
    cfg = config(
        instances=instance("VI_1", 1, "track_file: [tf]\n")
        + instance("VI_2", 2, "track_file: [{name: tf, weight: 0}]"),
        extra="vrrp_track_files:\n  tf: {file: /run/hct-none, weight: 5}\n",
    )
    core = TrackingCore(cfg)
    assert core.pending() == []  # value 0 until read
    assert core.file_value("tf", 3, 1.0) == [
        ch("VI_1", PriorityChanged(15)),
        ch("VI_2", FaultRaised("track_file tf non-zero")),
    ]
    assert core.file_value("tf", -60, 2.0) == [
        ch("VI_1", FaultRaised("track_file tf below -253")),
        ch("VI_1", PriorityChanged(0)),
    ]
    assert core.file_value("tf", 0, 3.0) == [
        ch("VI_1", FaultCleared("track_file tf below -253")),
        ch("VI_2", FaultCleared("track_file tf non-zero")),
    ]


def test_read_track_file(tmp_path: Path) -> None:
    f = tmp_path / "value"
    assert read_track_file(f) == 0  # missing
    for text, value in [("12\n", 12), ("  -7 \n", -7), ("+3", 3), ("5 junk", 5), ("abc", 0),
                        ("", 0)]:
        f.write_text(text)
        assert read_track_file(f) == value, text
    assert read_track_file(tmp_path) == 0  # a directory: unreadable


# --------------------------------------------------------------------------- sync groups


SYNC = """vrrp_sync_groups:
  G1:
    group: [VI_1, VI_2]
    track_script: [{name: grp, weight: -40}]
"""


def test_sync_group_tracking_applies_to_every_member_and_member_weights_become_faults() -> None:
    cfg = config(
        "  grp: {script: /bin/true}\n  own: {script: /bin/true, weight: -5}\n",
        instance("VI_1", 1, "track_script: [own]") + instance("VI_2", 2),
        extra=SYNC,
    )
    core = TrackingCore(cfg)
    assert core.script_result("grp", False, 1.0) == [
        ch("VI_1", PriorityChanged(-40)),
        ch("VI_2", PriorityChanged(-40)),
    ]
    # The member's own weighted script is fault-only inside a sync group (keepalived).
    assert core.script_result("own", False, 2.0) == [
        ch("VI_1", FaultRaised("track_script own failed"))
    ]


# --------------------------------------------------------------------------- reload


def test_reconfigure_keeps_state_of_unchanged_objects_and_drops_removed_ones() -> None:
    scripts = "  a: {script: /bin/true, weight: -10, fall: 1}\n  b: {script: /bin/true}\n"
    cfg = config(scripts, instance("VI_1", 1, "track_script: [a, b]"))
    core = TrackingCore(cfg)
    core.script_result("a", False, 1.0)
    core.script_result("b", False, 1.0)
    assert core.reported("VI_1") is not None
    # Reload: same a, b no longer tracked, a new instance tracking a.
    cfg2 = config(scripts, instance("VI_1", 1, "track_script: [a]")
                  + instance("VI_3", 3, "track_script: [a]"))
    assert core.reconfigure(cfg2) == [
        ch("VI_1", FaultCleared("track_script b failed")),
        ch("VI_3", PriorityChanged(-10)),
    ]
    assert core.names("script") == frozenset({"a"})
    # A removed instance is forgotten.
    assert core.reconfigure(config(scripts, instance("VI_3", 3, "track_script: [a]"))) == []
    assert core.reported("VI_1") is None


def test_replay_brings_a_fresh_machine_up_to_date() -> None:
    cfg = config(
        "  a: {script: /bin/true, weight: -10}\n",
        instance("VI_1", 1, "track_script: [a]\ntrack_interface: [eth1]"),
    )
    core = TrackingCore(cfg)
    core.script_result("a", False, 1.0)
    core.pending()
    assert core.replay("VI_1") == [
        ch("VI_1", FaultRaised("track_interface eth1 down")),
        ch("VI_1", PriorityChanged(-10)),
    ]
    assert core.replay("nope") == []


def test_objects_report_state_and_since() -> None:
    cfg = config(
        "  a: {script: /bin/true}\n",
        instance("VI_1", 1, "track_script: [a]\ntrack_interface: [eth1]\ntrack_file: [tf]"),
        extra="vrrp_track_files:\n  tf: {file: /run/hct-none}\n",
    )
    core = TrackingCore(cfg)
    core.script_result("a", False, 4.0)
    core.file_value("tf", 9, 5.0)
    by_kind = {o.kind: o for o in core.objects()}
    assert by_kind["script"].up is False and by_kind["script"].since == 4.0
    assert by_kind["interface"].up is None
    assert by_kind["file"].value == 9 and by_kind["file"].since == 5.0


# --------------------------------------------------------------------------- delivery


class RecordingDriver:
    """Records what `deliver` hands to a driver-shaped sink."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, object]] = []

    def set_priority_delta(self, member: str, delta: int) -> None:
        self.calls.append(("delta", member, delta))

    def raise_fault(self, member: str, cause: str) -> None:
        self.calls.append(("raise", member, cause))

    def clear_fault(self, member: str, cause: str) -> None:
        self.calls.append(("clear", member, cause))


def test_deliver_maps_changes_onto_the_driver_calls() -> None:
    cfg = config(
        "  a: {script: /bin/true, weight: -10}\n",
        instance("VI_1", 1, "track_script: [a]\ntrack_interface: [eth1]"),
    )
    core = TrackingCore(cfg)
    sink = RecordingDriver()
    for change in core.pending() + core.script_result("a", False, 1.0) + core.link_state(
        "eth1", True, 2.0
    ):
        deliver(change, sink)
    assert sink.calls == [
        ("raise", "VI_1", "track_interface eth1 down"),
        ("delta", "VI_1", -10),
        ("clear", "VI_1", "track_interface eth1 down"),
    ]


def test_hold_gathers_inputs_and_reports_them_once() -> None:
    cfg = config(
        "  a: {script: /bin/true, weight: -10}\n",
        instance("VI_1", 1, "track_script: [a]\ntrack_interface: [eth1, eth2]"),
    )
    core = TrackingCore(cfg)
    core.hold = True
    assert core.link_states({"eth1": True, "eth2": True, "lo": True}, 0.0) == []
    assert core.script_result("a", False, 0.1) == []
    core.hold = False
    assert core.pending() == [ch("VI_1", PriorityChanged(-10))]  # no transient faults
    assert core.link_states({"eth1": True}, 1.0) == [
        ch("VI_1", FaultRaised("track_interface eth2 down"))
    ]
