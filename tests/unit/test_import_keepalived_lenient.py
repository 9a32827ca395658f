"""import-keepalived reads a file as keepalived 2.2.7 does, down to what it forgives.

Each case was run through `keepalived -t -f` (and, where -t says nothing, a dumped
configuration) on the same input. Where keepalived warns and goes on, the import does
the same and notes it at FILE:LINE; notes say whether the result behaves differently
from keepalived (`changes_behaviour`).
"""

from __future__ import annotations

import pytest

from hacluster.config import model as m
from hacluster.config.keepalived_import import ImportResult, Skipped, import_keepalived_text
from hacluster.config.loader import parse_config


def imported(text: str) -> tuple[m.Config, list[Skipped]]:
    result: ImportResult = import_keepalived_text(text, "k.conf")
    return parse_config(result.yaml_text, "k.yaml"), list(result.skipped)


def instance(body: str, vips: str = "virtual_ipaddress {\n 10.9.0.1\n }") -> str:
    return (f"vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 51\n {vips}\n"
            f" {body}\n}}\n")


def service(vs_body: str, rs_body: str = "", rs: str = "10.9.1.10 80") -> str:
    return (f"virtual_server 10.9.0.1 80 {{\n protocol TCP\n {vs_body}\n"
            f" real_server {rs} {{\n {rs_body}\n }}\n}}\n")


def only(notes: list[Skipped]) -> Skipped:
    assert len(notes) == 1, notes
    return notes[0]


# --------------------------------------------------------------------------- flags


@pytest.mark.parametrize("value", ["", "1", "yes", "0", "off", "false", "whatever"])
def test_instance_and_service_flags_ignore_their_value(value: str) -> None:
    # keepalived's nopreempt, omega, alpha and inhibit_on_failure of a virtual server
    # set the flag whatever follows them: "nopreempt off" disables preemption
    config, notes = imported(instance(f"nopreempt {value}")
                             + service(f"omega {value}\n alpha {value}\n"
                                       f" inhibit_on_failure {value}"))
    assert config.vrrp_instances["VI_1"].nopreempt is True
    (vs,) = config.virtual_servers
    assert (vs.omega, vs.alpha, vs.inhibit_on_failure) == (True, True, True)
    assert not any(n.changes_behaviour for n in notes)
    noted = {n.keyword for n in notes}
    if value in ("", "1", "yes"):
        assert noted == set()
    else:  # a value that reads as "false" or nothing: said, since keepalived sets it anyway
        assert noted == {"vrrp_instance.nopreempt", "virtual_server.omega",
                         "virtual_server.alpha", "virtual_server.inhibit_on_failure"}
        assert all(f"ignores the value {value!r}" in n.message for n in notes)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", True), ("yes", True), ("on", True), ("off", False), ("no", False),
     ("1", None), ("True", None), ("ON", None)],
)
def test_real_server_and_checker_flags_read_a_lower_case_boolean(
    value: str, expected: bool | None
) -> None:
    # a real server's alpha / inhibit_on_failure and a checker's alpha go through
    # check_true_false(): six lower-case words; anything else leaves the flag unset
    config, notes = imported(service(
        "", f"alpha {value}\n inhibit_on_failure {value}\n TCP_CHECK {{\n alpha {value}\n }}"))
    rs = config.virtual_servers[0].real_servers[0]
    (check,) = rs.checks
    unset = (m.RealServer.__dataclass_fields__["alpha"].default,
             type(check).__dataclass_fields__["alpha"].default)
    assert (rs.alpha, check.alpha) == (unset if expected is None else (expected, expected))
    assert rs.inhibit_on_failure == expected  # None: the virtual server's setting
    assert not any(n.changes_behaviour for n in notes)
    assert len(notes) == (3 if expected is None else 0)


# --------------------------------------------------------------------------- addresses


def test_addresses_lose_a_mask_or_range_as_keepalived_reads_them() -> None:
    config, notes = imported(
        instance("unicast_src_ip 10.9.0.2/24\n unicast_peer {\n 10.9.0.3/24\n 10.9.0.4-9\n }")
        + "virtual_server 10.9.0.1/32 80 {\n protocol TCP\n"
        " real_server 10.9.1.10/24 80 {\n TCP_CHECK {\n connect_ip 10.9.1.11/24\n }\n }\n}\n"
    )
    inst = config.vrrp_instances["VI_1"]
    assert str(inst.unicast_src_ip) == "10.9.0.2"
    assert [str(p.ip) for p in inst.unicast_peers] == ["10.9.0.3", "10.9.0.4"]
    rs = config.virtual_servers[0].real_servers[0]
    assert (str(config.virtual_servers[0].ip), str(rs.ip)) == ("10.9.0.1", "10.9.1.10")
    assert str(rs.checks[0].connect_ip) == "10.9.1.11"
    assert len(notes) == 6 and not any(n.changes_behaviour for n in notes)
    assert "keepalived ignores '/24' after the address; imported as 10.9.0.2" in notes[0].message


# --------------------------------------------------------------------------- instances


def test_vrrpv2_instance_without_vips_is_kept_with_a_warning() -> None:
    config, notes = imported(instance("notify_master /bin/true", vips=""))
    assert config.vrrp_instances["VI_1"].virtual_ipaddress == ()
    note = only(notes)
    assert (note.file, note.line, note.keyword) == ("k.conf", 1, "vrrp_instance")
    assert "at least one is sensible" in note.message and not note.changes_behaviour


@pytest.mark.parametrize(
    "extra", ["version 3", "unicast_src_ip fd00::1\n unicast_peer {\n fd00::2\n }"]
)
def test_vipless_instance_keepalived_refuses_is_left_out(extra: str) -> None:
    # VRRPv3 or IPv6 without VIPs: "at least one is required", and keepalived stops
    config, notes = imported(instance(extra, vips="virtual_ipaddress {\n }"))
    assert config.vrrp_instances == {}
    note = only(notes)
    assert "at least one is required" in note.message and note.changes_behaviour


def test_what_keepalived_corrects_in_an_instance() -> None:
    config, notes = imported(
        instance("state master\n nopreempt\n preempt_delay 10")
        .replace("VI_1", "VI_A")
        + instance("state MASTER\n nopreempt").replace("VI_1", "VI_B").replace(" 51", " 52")
        .replace("10.9.0.1", "10.9.0.2")
        + instance("version 3\n authentication {\n auth_type PASS\n auth_pass x\n }")
        .replace("VI_1", "VI_C").replace(" 51", " 53").replace("10.9.0.1", "10.9.0.3")
    )
    a, b, c = (config.vrrp_instances[n] for n in ("VI_A", "VI_B", "VI_C"))
    assert (a.state, a.nopreempt, a.preempt_delay) == ("BACKUP", True, 0)  # "master": BACKUP
    assert (b.state, b.nopreempt) == ("MASTER", False)
    assert (c.version, c.authentication) == (3, None)
    assert [n.keyword for n in notes] == [
        "vrrp_instance.state", "vrrp_instance.preempt_delay", "vrrp_instance.nopreempt",
        "vrrp_instance.authentication",
    ]
    assert not any(n.changes_behaviour for n in notes)


def test_authentication_needs_auth_type_in_capitals() -> None:
    config, notes = imported(
        instance("authentication {\n auth_pass secret\n }")
        + instance("authentication {\n auth_type pass\n auth_pass secret\n }")
        .replace("VI_1", "VI_2").replace(" 51", " 52").replace("10.9.0.1", "10.9.0.2")
    )
    assert [i.authentication for i in config.vrrp_instances.values()] == [None, None]
    assert [n.keyword for n in notes] == ["vrrp_instance.authentication",
                                          "vrrp_instance.authentication.auth_type"]
    assert not any(n.changes_behaviour for n in notes)


def test_one_line_track_interface_is_carried_but_said_to_differ() -> None:
    # keepalived 2.2.7: "Block track_interface has extra parameters eth1 ...", then it
    # reads the lines up to the next '}' as interfaces (and usually stops on one that
    # does not exist); the import takes the line as meant and says it differs
    config, notes = imported(instance("track_interface eth1"))
    assert [t.name for t in config.vrrp_instances["VI_1"].track_interface] == ["eth1"]
    note = only(notes)
    assert "has extra parameters" in note.message and note.changes_behaviour


def test_one_line_block_braces_are_fine() -> None:
    config, notes = imported(instance("track_interface { eth1 weight -5 }",
                                      vips="virtual_ipaddress { 10.9.0.1/24 }"))
    inst = config.vrrp_instances["VI_1"]
    assert [(t.name, t.weight) for t in inst.track_interface] == [("eth1", -5)]
    assert [str(v.address) for v in inst.virtual_ipaddress] == ["10.9.0.1/24"]
    assert notes == []


# --------------------------------------------------------------------------- structure


def test_missing_closing_braces_are_closed_at_the_end() -> None:
    text = instance("track_interface {\n eth1\n").removesuffix("}\n")
    config, notes = imported(text)
    assert [t.name for t in config.vrrp_instances["VI_1"].track_interface] == ["eth1"]
    assert [(n.line, n.keyword) for n in notes] == [(1, "vrrp_instance"),
                                                    (7, "track_interface")]
    assert all("never closed" in n.message and not n.changes_behaviour for n in notes)


def test_an_extra_closing_brace_is_ignored() -> None:
    config, notes = imported("global_defs {\n router_id a\n}\n}\n" + instance(""))
    assert config.global_defs.router_id == "a" and "VI_1" in config.vrrp_instances
    note = only(notes)
    assert (note.line, note.keyword, note.changes_behaviour) == (4, "}", False)


# --------------------------------------------------------------------------- services


def test_lowercase_method_is_rejected_and_nat_kept() -> None:
    config, notes = imported(service("lb_kind dr\n lb_algo RR", rs="10.9.1.10 8080"))
    (vs,) = config.virtual_servers
    assert (vs.lb_kind, vs.lb_algo, vs.real_servers[0].port) == ("NAT", "wlc", 8080)
    assert [n.keyword for n in notes] == ["virtual_server.lb_kind", "virtual_server.lb_algo"]
    assert not any(n.changes_behaviour for n in notes)


def test_dr_real_server_port_is_reset_and_its_check_keeps_it() -> None:
    config, notes = imported(service("lb_kind DR", "TCP_CHECK {\n connect_timeout 2\n }",
                                     rs="10.9.1.10 8080"))
    rs = config.virtual_servers[0].real_servers[0]
    assert (rs.port, rs.checks[0].connect_port) == (80, 8080)
    note = only(notes)
    assert "ports don't match - resetting" in note.message and not note.changes_behaviour


def test_shell_syntax_is_noted_unless_a_shell_runs_it() -> None:
    _, notes = imported(instance('notify_master "/bin/bash -c \'echo 1 > /tmp/m\'"\n'
                                 ' notify_backup "echo 0 > /tmp/m"'))
    note = only(notes)
    assert note.keyword == "vrrp_instance.notify_backup"
    assert "in keepalived as here" in note.message and not note.changes_behaviour


def test_unknown_and_process_tuning_keywords_change_nothing() -> None:
    _, notes = imported("global_defs {\n frobnicate 1\n vrrp_priority -20\n"
                        " vrrp_iptables\n}\n" + instance(""))
    assert [(n.keyword, n.changes_behaviour) for n in notes] == [
        ("global_defs.frobnicate", False),
        ("global_defs.vrrp_priority", False),
        ("global_defs.vrrp_iptables", False),  # no_accept by nftables, as keepalived
    ]


def test_values_keepalived_corrects_or_ignores() -> None:
    # advert_int 2.5 under VRRPv2 is rounded to 3; garp_master_repeat 0 becomes 1; a
    # missing track_script, an out-of-range script weight or real server weight, and a
    # VIP of the other family are ignored, by keepalived with an error, here with a note
    config, notes = imported(
        'vrrp_script s {\n script "/bin/true"\n weight 300\n}\n'
        + instance("advert_int 2.5\n garp_master_repeat 0\n track_script {\n s\n ghost\n }",
                   vips="virtual_ipaddress {\n 10.9.0.1\n 2001:db8::1\n }")
        + service("", "weight 70000")
    )
    inst = config.vrrp_instances["VI_1"]
    assert (inst.advert_int, inst.garp_master_repeat) == (3, 1)
    assert [t.name for t in inst.track_script] == ["s"]
    assert [str(v.address.ip) for v in inst.virtual_ipaddress] == ["10.9.0.1"]
    assert config.vrrp_scripts["s"].weight == 0
    assert config.virtual_servers[0].real_servers[0].weight == 1
    assert sorted(n.keyword for n in notes) == [
        "virtual_server.real_server.weight", "vrrp_instance.advert_int",
        "vrrp_instance.garp_master_repeat", "vrrp_instance.track_script",
        "vrrp_instance.virtual_ipaddress", "vrrp_script.weight",
    ]
    assert not any(n.changes_behaviour for n in notes)


def test_a_parameter_glued_to_a_mask_is_not_substituted_as_in_keepalived() -> None:
    # keepalived substitutes $NAME only before a blank or the end ("${NAME}" anywhere):
    # "$VIP/24" stays as written, is not an address, and the instance has no VIP left
    config, notes = imported("$VIP=10.9.0.7\n"
                             + instance("", vips="virtual_ipaddress {\n $VIP/24\n }"))
    assert config.vrrp_instances["VI_1"].virtual_ipaddress == ()
    assert [(n.keyword, n.changes_behaviour) for n in notes] == [
        ("vrrp_instance", False), ("vrrp_instance.virtual_ipaddress", False)]
    config, notes = imported("$VIP=10.9.0.7\n"
                             + instance("", vips="virtual_ipaddress {\n ${VIP}/24\n }"))
    assert [str(v.address) for v in config.vrrp_instances["VI_1"].virtual_ipaddress] == [
        "10.9.0.7/24"]
    assert notes == []


def test_more_of_what_keepalived_warns_about_and_ignores() -> None:
    # persistence_timeout 0 and vrrp_garp_interval 0 are refused (defaults kept); a
    # fwmark service's protocol is ignored; tracking the instance's own interface is
    # ignored; weights of a sync group member's tracking are ignored
    config, notes = imported(
        "global_defs {\n vrrp_garp_interval 0\n}\n"
        'vrrp_script s {\n script "/bin/true"\n weight -5\n}\n'
        "vrrp_sync_group G {\n group {\n VI_1\n }\n}\n"
        + instance("track_interface {\n eth0\n eth1 weight -20\n }\n track_script {\n s\n }")
        + "virtual_server fwmark 3 {\n protocol TCP\n persistence_timeout 0\n"
        " real_server 10.9.1.10 80 {\n }\n}\n"
    )
    assert config.global_defs.vrrp_garp_interval == 0
    inst = config.vrrp_instances["VI_1"]
    assert [(t.name, t.weight) for t in inst.track_interface] == [("eth1", -20)]
    (vs,) = config.virtual_servers
    assert vs.persistence_timeout == 0
    assert [(n.line, n.keyword) for n in notes] == [
        (2, "global_defs.vrrp_garp_interval"),
        (20, "vrrp_instance.track_interface"),  # eth0: its own interface
        (21, "vrrp_instance.track_interface"),  # eth1 weight -20 in a sync group
        (24, "vrrp_instance.track_script"),  # s and its weight -5 in a sync group
        (28, "virtual_server.protocol"),
        (29, "virtual_server.persistence_timeout"),
    ]
    assert not any(n.changes_behaviour for n in notes)
