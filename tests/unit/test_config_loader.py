"""The YAML loader: every validation rule reports FILE:LINE: key.path: message, and all at once."""

from __future__ import annotations

import textwrap
from ipaddress import ip_address, ip_interface
from pathlib import Path

import pytest

from hacluster.config import model as m
from hacluster.config.errors import ConfigError, Problem
from hacluster.config.loader import load_config, parse_config

INSTANCE = """\
vrrp_instances:
  VI_1:
    interface: eth0
    virtual_router_id: 51
    virtual_ipaddress: [10.99.0.100/24]
"""


def load(text: str) -> m.Config:
    return parse_config(textwrap.dedent(text), "lb.yaml")


def problems(text: str) -> list[Problem]:
    with pytest.raises(ConfigError) as exc:
        load(text)
    assert exc.value.problems, "ConfigError without problems"
    return list(exc.value.problems)


def only_problem(text: str) -> Problem:
    found = problems(text)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def instance(extra: str, header: str = "") -> str:
    """INSTANCE with `extra` keys added to VI_1 (indented 4)."""
    return header + INSTANCE + textwrap.indent(textwrap.dedent(extra), "    ")


# --------------------------------------------------------------------------- the file


def test_problem_renders_as_file_line_path_message() -> None:
    text = instance("priority: 100\n").replace("virtual_router_id: 51", "virtual_router_id: 300")
    p = only_problem(text)
    assert str(p) == "lb.yaml:4: vrrp_instances.VI_1.virtual_router_id: must be 1..255, got 300"
    assert (p.file, p.line, p.key_path) == ("lb.yaml", 4, "vrrp_instances.VI_1.virtual_router_id")


def test_empty_file() -> None:
    for text in ("", "\n\n  \n", "# only a comment\n", "~\n"):
        p = only_problem(text)
        assert p.message == "file is empty"


def test_file_that_is_not_a_mapping() -> None:
    p = only_problem("- global_defs\n- vrrp_instances\n")
    assert p.line == 1
    assert "must be a mapping of sections" in p.message and "a list" in p.message


def test_yaml_syntax_error_has_its_line() -> None:
    p = only_problem("global_defs:\n  router_id: a\n  dataplane: [ipvs\nvrrp_instances: {}\n")
    assert p.message.startswith("YAML syntax error")
    assert p.line in (3, 4)  # the open bracket's line or where the parser gave up


def test_yaml_tab_indentation_is_a_syntax_error() -> None:
    p = only_problem("global_defs:\n\trouter_id: a\n")
    assert p.line == 2 and "YAML syntax error" in p.message


def test_duplicate_yaml_key_is_reported_with_the_first_line() -> None:
    p = only_problem("global_defs:\n  router_id: a\n  router_id: b\n")
    assert (p.line, p.key_path) == (3, "global_defs.router_id")
    assert "first given on line 2" in p.message


def test_unknown_section_suggests_the_close_one() -> None:
    p = only_problem("vrrp_instance: {}\n")
    assert p.key_path == "vrrp_instance"
    assert "unknown section" in p.message and "did you mean 'vrrp_instances'" in p.message


def test_unknown_key_with_suggestion() -> None:
    p = only_problem(instance("priorty: 10\n"))
    assert (p.line, p.key_path) == (6, "vrrp_instances.VI_1.priorty")
    assert p.message == "unknown key (did you mean 'priority'?)"


def test_unknown_key_without_close_match() -> None:
    p = only_problem(instance("frobnicate: 1\n"))
    assert p.message == "unknown key"


def test_unknown_checker_key_suggests_case() -> None:
    p = only_problem(
        """\
        virtual_servers:
          - ip: 10.0.0.1
            port: 80
            real_servers:
              - ip: 10.0.1.1
                port: 80
                http_get: {url: [{path: /}]}
        """
    )
    assert p.key_path == "virtual_servers[0].real_servers[0].http_get"
    assert "did you mean 'HTTP_GET'" in p.message


def test_missing_required_key() -> None:
    p = only_problem("vrrp_instances:\n  VI_1:\n    interface: eth0\n    priority: 5\n")
    assert (p.line, p.key_path) == (2, "vrrp_instances.VI_1.virtual_router_id")
    assert p.message == "required key is missing"


def test_all_problems_are_collected_not_just_the_first() -> None:
    found = problems(
        """\
        global_defs:
          dataplane: lvs
        vrrp_instances:
          VI_1:
            interface: eth0
            virtual_router_id: 0
            priority: 999
            virtual_ipaddress: [10.99.0.100/24]
          VI_2:
            interface: eth1
            virtual_router_id: 52
            virtual_ipaddress: [10.99.0.300/24]
        virtual_servers:
          - fwmark: 1
            lb_algo: fastest
        """
    )
    assert [(p.line, p.key_path) for p in found] == [
        (2, "global_defs.dataplane"),
        (6, "vrrp_instances.VI_1.virtual_router_id"),
        (7, "vrrp_instances.VI_1.priority"),
        (12, "vrrp_instances.VI_2.virtual_ipaddress[0]"),
        (15, "virtual_servers[0].lb_algo"),
    ]


def test_load_config_reads_a_file_and_keeps_its_path(tmp_path: Path) -> None:
    path = tmp_path / "lb.yaml"
    path.write_text(INSTANCE)
    config = load_config(path)
    assert config.source_path == path
    assert list(config.vrrp_instances) == ["VI_1"]


def test_load_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path / "nope.yaml")
    (p,) = exc.value.problems
    assert str(p) == f"{tmp_path / 'nope.yaml'}: no such file"


def test_load_config_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "lb.yaml"
    path.write_bytes(b"global_defs:\n  router_id: \xff\xfe\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert "not UTF-8" in exc.value.problems[0].message


def test_yaml_merge_keys_share_settings() -> None:
    config = load(
        """\
        virtual_servers:
          - ip: 10.0.0.1
            port: 80
            real_servers:
              - &rs {ip: 10.0.1.1, port: 80, weight: 5, TCP_CHECK: {connect_timeout: 2}}
              - <<: *rs
                ip: 10.0.1.2
        """
    )
    a, b = config.virtual_servers[0].real_servers
    assert (str(b.ip), b.weight, b.checks) == ("10.0.1.2", 5, a.checks)


# --------------------------------------------------------------------------- types


@pytest.mark.parametrize(
    ("extra", "path", "message"),
    [
        ("priority: high\n", "priority", "must be a whole number, got string 'high'"),
        ("priority: 1.5\n", "priority", "must be a whole number, got 1.5"),
        ("priority: true\n", "priority", "must be a whole number, got boolean 'true'"),
        ("nopreempt: maybe\n", "nopreempt", "must be true or false, got string 'maybe'"),
        ("track_interface: eth1\n", "track_interface", "must be a list, got string 'eth1'"),
        ("unicast_peers: {a: 1}\n", "unicast_peers", "must be a list, got a mapping"),
        ("interface: [eth0]\n", "interface", "must be a string, got a list"),
        ("state: master\n", "", ""),  # case-insensitive: accepted as MASTER
        ("state: PRIMARY\n", "state", "must be one of MASTER | BACKUP, got string 'PRIMARY'"),
        ("advert_int: .inf\n", "advert_int", "must be a finite number"),
    ],
)
def test_wrong_types(extra: str, path: str, message: str) -> None:
    text = instance(extra)
    if extra.startswith("interface:"):
        text = text.replace("    interface: eth0\n", "", 1)
    if not path:
        assert load(text).vrrp_instances["VI_1"].state == "MASTER"
        return
    p = only_problem(text)
    assert p.key_path == f"vrrp_instances.VI_1.{path}"
    assert message in p.message


def test_string_fields_accept_numbers_as_written() -> None:
    config = load(instance("authentication: {auth_type: PASS, auth_pass: 1234}\n"))
    auth = config.vrrp_instances["VI_1"].authentication
    assert auth == m.Authentication("PASS", "1234")


# --------------------------------------------------------------------------- VRRP instances


@pytest.mark.parametrize("vrid", [0, 256, -1])
def test_vrid_outside_1_255(vrid: int) -> None:
    p = only_problem(INSTANCE.replace("virtual_router_id: 51", f"virtual_router_id: {vrid}"))
    assert p.message == f"must be 1..255, got {vrid}"


@pytest.mark.parametrize("priority", [0, 256])
def test_priority_outside_1_255(priority: int) -> None:
    p = only_problem(instance(f"priority: {priority}\n"))
    assert (p.key_path, p.message) == (
        "vrrp_instances.VI_1.priority",
        f"must be 1..255, got {priority}",
    )


def test_priority_255_is_the_owner() -> None:
    inst = load(instance("priority: 255\n")).vrrp_instances["VI_1"]
    assert inst.is_owner


@pytest.mark.parametrize(
    ("header", "extra", "ok"),
    [
        ("", "advert_int: 1\n", True),
        ("", "advert_int: 255\n", True),
        ("", "advert_int: 2.0\n", True),
        ("", "advert_int: 0.5\n", False),
        ("", "advert_int: 256\n", False),
        ("", "version: 3\nadvert_int: 0.01\n", True),
        ("", "version: 3\nadvert_int: 40.95\n", True),
        ("", "version: 3\nadvert_int: 1.25\n", True),
        ("", "version: 3\nadvert_int: 0.015\n", False),
        ("", "version: 3\nadvert_int: 41\n", False),
        ("global_defs: {vrrp_version: 3}\n", "advert_int: 0.5\n", True),
    ],
)
def test_advert_int_allowed_per_version(header: str, extra: str, ok: bool) -> None:
    text = instance(extra, header)
    if ok:
        load(text)
    else:
        p = only_problem(text)
        assert p.key_path == "vrrp_instances.VI_1.advert_int"
        assert ("VRRPv2 allows whole seconds 1..255" in p.message) or (
            "VRRPv3 allows 0.01..40.95 in steps of 0.01" in p.message
        )


def test_version_defaults_to_global_then_2_and_ipv6_uses_3() -> None:
    assert load(INSTANCE).vrrp_instances["VI_1"].version == 2
    text = "global_defs: {vrrp_version: 3}\n" + INSTANCE
    assert load(text).vrrp_instances["VI_1"].version == 3
    v6 = INSTANCE.replace("10.99.0.100/24", "'2001:db8::100/64'")
    assert load(v6).vrrp_instances["VI_1"].version == 3


def test_version_2_with_ipv6_addresses() -> None:
    v6 = instance("version: 2\n").replace("10.99.0.100/24", "'2001:db8::100/64'")
    p = only_problem(v6)
    assert p.key_path == "vrrp_instances.VI_1.version" and "IPv4 only" in p.message


def test_pass_authentication_with_v3() -> None:
    p = only_problem(instance("version: 3\nauthentication: {auth_type: PASS, auth_pass: s3cret}\n"))
    assert (p.line, p.key_path) == (7, "vrrp_instances.VI_1.authentication")
    assert "v2 only" in p.message


def test_pass_authentication_with_v2_and_its_length() -> None:
    inst = load(instance("authentication: {auth_type: PASS, auth_pass: s3cret}\n"))
    assert inst.vrrp_instances["VI_1"].authentication == m.Authentication("PASS", "s3cret")
    p = only_problem(instance("authentication: {auth_type: PASS, auth_pass: 123456789}\n"))
    assert p.key_path.endswith("authentication.auth_pass") and "1..8 bytes" in p.message
    p = only_problem(instance("authentication: {auth_type: AH, auth_pass: x}\n"))
    assert p.key_path.endswith("authentication.auth_type") and "PASS" in p.message


def test_nopreempt_with_state_master() -> None:
    p = only_problem(instance("state: MASTER\nnopreempt: true\n"))
    assert (p.line, p.key_path) == (7, "vrrp_instances.VI_1.nopreempt")
    assert load(instance("state: BACKUP\nnopreempt: true\n")).vrrp_instances["VI_1"].nopreempt


def test_mixed_families_in_one_instance() -> None:
    text = INSTANCE.replace("[10.99.0.100/24]", "[10.99.0.100/24, '2001:db8::1/64']")
    p = only_problem(text)
    assert p.key_path == "vrrp_instances.VI_1.virtual_ipaddress[1]"
    assert "IPv6 but the instance's first address is IPv4" in p.message


def test_excluded_addresses_may_mix_families() -> None:
    inst = load(instance("virtual_ipaddress_excluded: ['2001:db8::1/64']\n")).vrrp_instances
    assert inst["VI_1"].virtual_ipaddress_excluded[0].family == 6


def test_vip_family_against_unicast_src_ip() -> None:
    p = only_problem(instance("unicast_src_ip: '2001:db8::1'\nunicast_peers: ['2001:db8::2']\n"))
    assert p.key_path == "vrrp_instances.VI_1.unicast_src_ip"
    assert "IPv6 but the virtual addresses are IPv4" in p.message


def test_unicast_peer_family_must_match_unicast_src_ip() -> None:
    p = only_problem(instance("unicast_src_ip: 10.0.0.1\nunicast_peers: [10.0.0.2, 'fe80::2']\n"))
    assert p.key_path == "vrrp_instances.VI_1.unicast_peers[1]"
    assert "fe80::2 is IPv6 but unicast_src_ip is IPv4" in p.message


def test_unicast_peers_without_src_ip_follow_the_vip_family() -> None:
    p = only_problem(instance("unicast_peers: ['2001:db8::2']\n"))
    assert p.key_path == "vrrp_instances.VI_1.unicast_peers[0]"
    assert p.message == "2001:db8::2 is IPv6 but the virtual addresses are IPv4"
    inst = load(instance("unicast_peers: [10.0.0.2]\n")).vrrp_instances["VI_1"]
    assert inst.is_unicast and inst.unicast_src_ip is None


def test_unicast_peer_forms_and_ttl_bounds() -> None:
    inst = load(
        instance(
            "unicast_src_ip: 10.0.0.1\n"
            "unicast_peers: [10.0.0.2, {ip: 10.0.0.3, min_ttl: 254, max_ttl: 255}]\n"
        )
    ).vrrp_instances["VI_1"]
    assert inst.unicast_peers == (
        m.UnicastPeer(ip_address("10.0.0.2")),
        m.UnicastPeer(ip_address("10.0.0.3"), 254, 255),
    )
    p = only_problem(instance("unicast_peers: [{ip: 10.0.0.3, min_ttl: 255, max_ttl: 1}]\n"))
    assert "min_ttl 255 is above max_ttl 1" in p.message
    p = only_problem(instance("unicast_src_ip: 10.0.0.1\nunicast_peers: [10.0.0.2, 10.0.0.2]\n"))
    assert p.key_path.endswith("unicast_peers[1]") and "listed twice" in p.message


@pytest.mark.parametrize(
    ("vip", "message"),
    [
        ("10.0.0.256/24", "not an address IP[/prefix]: '10.0.0.256/24'"),
        ("10.0.0.1/33", "not an address IP[/prefix]: '10.0.0.1/33'"),
        ("2001:db8::1/129", "not an address IP[/prefix]"),
        ("eth0", "not an address IP[/prefix]: 'eth0'"),
        ("10.0.0.1/24 dev", "'dev' needs a value"),
        ("10.0.0.1/24 device eth1", "unknown option 'device'"),
        ("10.0.0.1/24 scope galaxy", "scope must be one of"),
        ("224.0.0.18/32", "cannot be a virtual address"),
        ("10.0.0.1/24 label eth0:a-very-long", "label: 1 to 15 characters"),
    ],
)
def test_malformed_virtual_addresses(vip: str, message: str) -> None:
    p = only_problem(INSTANCE.replace("[10.99.0.100/24]", f"['{vip}']"))
    assert p.key_path == "vrrp_instances.VI_1.virtual_ipaddress[0]"
    assert message in p.message


def test_virtual_address_strings_and_mappings() -> None:
    text = INSTANCE.replace(
        "[10.99.0.100/24]",
        "[10.99.0.100/24, '10.99.0.101/24 dev eth1', '10.99.0.102 dev eth2 label eth2:1 "
        "scope link no_track', {address: 10.99.0.103/25, dev: eth3}]",
    )
    vips = load(text).vrrp_instances["VI_1"].virtual_ipaddress
    assert vips[0] == m.VirtualIpAddress(ip_interface("10.99.0.100/24"))
    assert vips[1] == m.VirtualIpAddress(ip_interface("10.99.0.101/24"), dev="eth1")
    assert vips[2] == m.VirtualIpAddress(
        ip_interface("10.99.0.102/32"), dev="eth2", scope="link", label="eth2:1", no_track=True
    )
    assert vips[3] == m.VirtualIpAddress(ip_interface("10.99.0.103/25"), dev="eth3")
    assert str(vips[2]) == "10.99.0.102/32 dev eth2 scope link label eth2:1 no_track"


def test_only_ipv4_virtual_addresses_carry_a_label() -> None:
    text = INSTANCE.replace(
        "[10.99.0.100/24]", "[10.99.0.100/24]\n    virtual_ipaddress_excluded: ['fd00::1 label x']"
    )
    p = only_problem(text)
    assert p.key_path == "vrrp_instances.VI_1.virtual_ipaddress_excluded[0]"
    assert p.message == "label: only IPv4 addresses carry a label"


def test_vrrpv2_ipv4_instance_may_have_no_virtual_ipaddress() -> None:
    # keepalived warns ("at least one is sensible") and runs it: cloud floating IPs
    # moved by notify scripts; the adverts carry no address
    for text in (INSTANCE.replace("[10.99.0.100/24]", "[]"),
                 INSTANCE.replace("    virtual_ipaddress: [10.99.0.100/24]\n",
                                  "    unicast_src_ip: 10.0.0.1\n    unicast_peers: [10.0.0.2]\n")):
        (inst,) = load(text).vrrp_instances.values()
        assert inst.virtual_ipaddress == ()
        assert (inst.family, inst.version) == (4, 2)


def test_no_virtual_ipaddress_under_vrrpv3_or_ipv6_is_refused() -> None:
    # keepalived: "No VIP specified; at least one is required", and it does not start
    ipv6_unicast = "    unicast_src_ip: fd00::1\n    unicast_peers: [fd00::2]\n"
    for extra in ("    version: 3\n", ipv6_unicast):
        text = INSTANCE.replace("    virtual_ipaddress: [10.99.0.100/24]\n", extra)
        p = only_problem(text)
        assert p.key_path == "vrrp_instances.VI_1.virtual_ipaddress"
        assert "at least one address under VRRPv3 or IPv6" in p.message


def test_same_vip_in_two_instances() -> None:
    text = INSTANCE + "  VI_2:\n    interface: eth1\n    virtual_router_id: 52\n"
    text += "    virtual_ipaddress: [10.99.0.100/24]\n"
    p = only_problem(text)
    assert p.key_path == "vrrp_instances.VI_2.virtual_ipaddress[0]"
    assert "already a virtual address of 'VI_1'" in p.message


def test_track_script_naming_an_undefined_script() -> None:
    header = "vrrp_scripts:\n  chk_proxy: {script: /bin/true}\n"
    text = instance("track_script: [chk_proxy, {name: chk_proxi, weight: -10}]\n", header)
    p = only_problem(text)
    assert (p.line, p.key_path) == (8, "vrrp_instances.VI_1.track_script[1]")
    assert p.message == "no vrrp_script named 'chk_proxi' (did you mean 'chk_proxy'?)"


def test_track_script_to_an_invalid_script_is_not_called_undefined() -> None:
    header = "vrrp_scripts:\n  chk: {script: /bin/true, interval: 0}\n"
    p = only_problem(instance("track_script: [chk]\n", header))
    assert p.key_path == "vrrp_scripts.chk.interval"


def test_tracking_entries() -> None:
    header = (
        "vrrp_scripts:\n  chk: {script: /bin/true, weight: -20, rise: 2, fall: 3}\n"
        "vrrp_track_files:\n  tf: {file: /run/prio}\n"
    )
    text = instance(
        "track_script: [chk, {name: chk, weight: 5, reverse: true}]\n"
        "track_interface: [eth1, {name: eth2, weight: -30}]\n"
        "track_file: [tf]\n",
        header,
    )
    config = load(text)
    inst = config.vrrp_instances["VI_1"]
    assert inst.track_script == (m.TrackScript("chk"), m.TrackScript("chk", 5, True))
    assert inst.track_interface == (m.TrackInterface("eth1"), m.TrackInterface("eth2", -30))
    assert inst.track_file == (m.TrackFile("tf"),)
    script = config.vrrp_scripts["chk"]
    assert (script.weight, script.rise, script.fall, script.effective_timeout) == (-20, 2, 3, 1.0)
    assert config.vrrp_track_files["tf"].file == Path("/run/prio")
    p = only_problem(instance("track_interface: [{name: eth1, weight: 254}]\n"))
    assert p.message == "must be -253..253, got 254"


def test_script_strings_are_split_like_a_shell() -> None:
    header = (
        "vrrp_scripts:\n"
        "  chk: {script: \"/usr/local/bin/check 'two words' --quiet\"}\n"
        "  listed: {script: [/bin/echo, 'a b']}\n"
    )
    config = load(instance("notify_master: /etc/hacluster/notify.sh master\n", header))
    chk = config.vrrp_scripts["chk"].script
    assert chk.argv == ("/usr/local/bin/check", "two words", "--quiet")
    assert chk.text == "/usr/local/bin/check 'two words' --quiet"
    assert config.vrrp_scripts["listed"].script.argv == ("/bin/echo", "a b")
    notify = config.vrrp_instances["VI_1"].notify_master
    assert notify is not None and notify.argv == ("/etc/hacluster/notify.sh", "master")
    assert notify.text == "/etc/hacluster/notify.sh master"


def test_script_strings_that_cannot_be_split() -> None:
    p = only_problem("vrrp_scripts:\n  chk: {script: \"/bin/check 'open\"}\n")
    assert p.key_path == "vrrp_scripts.chk.script" and "No closing quotation" in p.message
    p = only_problem("vrrp_scripts:\n  chk: {script: '  '}\n")
    assert p.message == "must name a program to run"


def test_names_with_spaces_are_refused() -> None:
    p = only_problem("vrrp_scripts:\n  'chk proxy': {script: /bin/true}\n")
    assert p.key_path == "vrrp_scripts.chk proxy" and "without spaces" in p.message


# --------------------------------------------------------------------------- run-as users


def test_notify_keys_take_a_command_line_a_list_or_a_mapping_with_user_and_group() -> None:
    text = instance(
        """\
        notify_master: /bin/n master
        notify_backup: [/bin/n, 'two words']
        notify_fault: {script: /bin/n fault, user: nobody}
        notify_stop: {script: [/bin/n, stop], user: nobody, group: nogroup}
        notify: {script: /bin/n any}
        """,
    ) + textwrap.dedent(
        """\
        vrrp_sync_groups:
          G1:
            group: [VI_1]
            notify: {script: /bin/g, user: daemon, group: daemon}
        """
    )
    config = load(text)
    inst = config.vrrp_instances["VI_1"]
    assert inst.notify_master == m.NotifyCommand(("/bin/n", "master"), "/bin/n master")
    assert inst.notify_backup == m.NotifyCommand(("/bin/n", "two words"), "/bin/n 'two words'")
    assert inst.notify_fault == m.NotifyCommand(
        ("/bin/n", "fault"), "/bin/n fault", "nobody", None
    )
    assert inst.notify_stop == m.NotifyCommand(
        ("/bin/n", "stop"), "/bin/n stop", "nobody", "nogroup"
    )
    assert inst.notify == m.NotifyCommand(("/bin/n", "any"), "/bin/n any")
    assert inst.notify_fault.run_as("root") == ("nobody", None)
    assert inst.notify_stop.run_as("root") == ("nobody", "nogroup")
    assert inst.notify.run_as("root") == ("root", None)  # global_defs.script_user
    group_notify = config.vrrp_sync_groups["G1"].notify
    assert group_notify is not None and (group_notify.user, group_notify.group) == (
        "daemon", "daemon",
    )


def test_real_server_and_quorum_notify_take_a_user_and_group() -> None:
    text = vs(
        "quorum_up: {script: /bin/q up, user: nobody, group: nogroup}\nquorum_down: /bin/q down\n",
        "notify_up: {script: /bin/rs up, user: nobody}\nnotify_down: [/bin/rs, down]\n",
    )
    server = load(text).virtual_servers[0]
    assert server.quorum_up == m.NotifyCommand(
        ("/bin/q", "up"), "/bin/q up", "nobody", "nogroup"
    )
    assert server.quorum_down == m.NotifyCommand(("/bin/q", "down"), "/bin/q down")
    rs = server.real_servers[0]
    assert rs.notify_up == m.NotifyCommand(("/bin/rs", "up"), "/bin/rs up", "nobody")
    assert rs.notify_down == m.NotifyCommand(("/bin/rs", "down"), "/bin/rs down")


def test_vrrp_scripts_and_misc_check_take_a_group_beside_the_user() -> None:
    header = (
        "vrrp_scripts:\n"
        "  chk: {script: /bin/true, user: nobody, group: nogroup}\n"
        "  own: {script: /bin/true, user: nobody}\n"
    )
    config = load(instance("track_script: [chk, own]\n", header) + vs(
        rs_extra="MISC_CHECK: {misc_path: /bin/true, user: nobody, group: nogroup}\n"
    ))
    assert (config.vrrp_scripts["chk"].user, config.vrrp_scripts["chk"].group) == (
        "nobody", "nogroup",
    )
    assert (config.vrrp_scripts["own"].user, config.vrrp_scripts["own"].group) == (
        "nobody", None,
    )
    misc = config.virtual_servers[0].real_servers[0].checks[0]
    assert isinstance(misc, m.MiscCheck) and (misc.user, misc.group) == ("nobody", "nogroup")


@pytest.mark.parametrize(
    ("extra", "path", "message"),
    [
        ("notify_master: {script: /bin/n, group: nogroup}\n",
         "vrrp_instances.VI_1.notify_master.group",
         "only with user: give the user the script runs as too"),
        ("notify_master: {user: nobody}\n", "vrrp_instances.VI_1.notify_master.script",
         "required key is missing (the command to run)"),
        ("notify_master: {script: /bin/n, usr: nobody}\n",
         "vrrp_instances.VI_1.notify_master.usr", "unknown key (did you mean 'user'?)"),
        ("notify_backup: {script: /bin/n, user: 'no body'}\n",
         "vrrp_instances.VI_1.notify_backup.user",
         "must be a user name (no spaces or ':'), got 'no body'"),
        ("notify_backup: {script: /bin/n, user: nobody, group: 'a:b'}\n",
         "vrrp_instances.VI_1.notify_backup.group",
         "must be a group name (no spaces or ':'), got 'a:b'"),
        ("notify_fault: {script: /bin/n, user: [nobody]}\n",
         "vrrp_instances.VI_1.notify_fault.user", "must be a user name, got a list"),
        ("notify_fault: {script: '', user: nobody}\n",
         "vrrp_instances.VI_1.notify_fault.script", "must name a program to run"),
        ("notify: {script: {script: /bin/n}}\n", "vrrp_instances.VI_1.notify.script",
         "must be a command line or a list, got a mapping"),
    ],
)
def test_bad_notify_mappings(extra: str, path: str, message: str) -> None:
    p = only_problem(instance(extra))
    assert (p.line, p.key_path) == (6, path)
    assert p.message.startswith(message), p.message


def test_user_and_group_are_refused_where_they_would_not_be_honoured() -> None:
    found = problems(
        "vrrp_scripts:\n"
        "  a: {script: {script: /bin/true, user: nobody}}\n"
        "  b: {script: /bin/true, group: nogroup}\n"
        "  c: {script: /bin/true, user: '', group: nogroup}\n"
        + vs(rs_extra=(
            "MISC_CHECK:\n"
            "  - {misc_path: {script: /bin/true, user: nobody}}\n"
            "  - {misc_path: /bin/true, group: nogroup}\n"
        ))
    )
    got = {(p.line, p.key_path): p.message for p in found}
    misc = "virtual_servers[0].real_servers[0].MISC_CHECK"
    assert set(got) == {
        (2, "vrrp_scripts.a.script"),
        (3, "vrrp_scripts.b.group"),
        (4, "vrrp_scripts.c.user"),
        (12, f"{misc}[0].misc_path"),
        (13, f"{misc}[1].group"),
    }
    assert got[(2, "vrrp_scripts.a.script")] == (
        "must be a command line or a list, got a mapping (the script/user/group form is for "
        "notify_* and quorum_* keys; here set vrrp_scripts.a.user and vrrp_scripts.a.group)"
    )
    assert got[(3, "vrrp_scripts.b.group")] == (
        "only with user: give the user the script runs as too"
    )
    assert got[(4, "vrrp_scripts.c.user")].startswith("must be a user name")
    assert f"here set {misc}[0].user" in got[(12, f"{misc}[0].misc_path")]
    assert got[(13, f"{misc}[1].group")].startswith("only with user")


# --------------------------------------------------------------------------- sync groups and VRIDs


def two_instances(second: str) -> str:
    return INSTANCE + "  VI_2:\n" + textwrap.indent(textwrap.dedent(second), "    ")


def test_sync_group_naming_an_unknown_instance() -> None:
    text = INSTANCE + "vrrp_sync_groups:\n  G1:\n    group: [VI_1, VI_3]\n"
    p = only_problem(text)
    assert (p.line, p.key_path) == (8, "vrrp_sync_groups.G1.group[1]")
    assert p.message.startswith("no vrrp_instance named 'VI_3'")


def test_instance_in_two_sync_groups() -> None:
    text = two_instances(
        "interface: eth1\nvirtual_router_id: 52\nvirtual_ipaddress: [10.99.1.1/24]\n"
    )
    text += "vrrp_sync_groups:\n  G1: {group: [VI_1, VI_2]}\n  G2: {group: [VI_2]}\n"
    p = only_problem(text)
    assert p.key_path == "vrrp_sync_groups.G2.group[0]"
    assert "'VI_2' is already in sync group 'G1'" in p.message
    config = load(text.replace("  G2: {group: [VI_2]}\n", ""))
    assert config.vrrp_sync_groups["G1"].group == ("VI_1", "VI_2")
    assert config.sync_group_of("VI_2") == config.vrrp_sync_groups["G1"]


def test_duplicate_vrid_on_the_same_interface_and_family() -> None:
    p = only_problem(
        two_instances("interface: eth0\nvirtual_router_id: 51\nvirtual_ipaddress: [10.99.1.1/24]\n")
    )
    assert p.key_path == "vrrp_instances.VI_2.virtual_router_id"
    assert "51 is already used by 'VI_1' on eth0 (IPv4)" in p.message


@pytest.mark.parametrize(
    "second",
    [
        "interface: eth1\nvirtual_router_id: 51\nvirtual_ipaddress: [10.99.1.1/24]\n",
        "interface: eth0\nvirtual_router_id: 51\nvirtual_ipaddress: ['2001:db8::1/64']\n",
        "interface: eth0\nvirtual_router_id: 52\nvirtual_ipaddress: [10.99.1.1/24]\n",
        "interface: eth0\nvirtual_router_id: 51\nvirtual_ipaddress: [10.99.1.1/24]\n"
        "mcast_dst_ip: 224.0.0.19\n",
    ],
)
def test_same_vrid_where_it_does_not_clash(second: str) -> None:
    assert len(load(two_instances(second)).vrrp_instances) == 2


def test_mcast_dst_ip_must_be_multicast_of_the_family() -> None:
    p = only_problem(instance("mcast_dst_ip: 10.0.0.1\n"))
    assert "must be an IPv4 multicast address" in p.message


# --------------------------------------------------------------------------- virtual servers


VS = """\
virtual_servers:
  - ip: 10.99.0.100
    port: 80
    real_servers:
      - ip: 10.99.1.11
        port: 80
"""


def vs(extra: str = "", rs_extra: str = "") -> str:
    text = VS
    if extra:
        keys = textwrap.indent(textwrap.dedent(extra), "    ")
        text = text.replace("    real_servers:\n", keys + "    real_servers:\n")
    if rs_extra:
        text += textwrap.indent(textwrap.dedent(rs_extra), "        ")
    return text


def test_virtual_server_defaults() -> None:
    server = load(VS).virtual_servers[0]
    assert (server.protocol, server.lb_algo, server.lb_kind) == ("TCP", "wlc", "NAT")
    assert (server.delay_loop, server.quorum, server.hysteresis) == (60.0, 1, 0)
    assert server.persistence_timeout == 0 and not server.alpha and not server.omega
    assert str(server) == "10.99.0.100:80/TCP"
    rs = server.real_servers[0]
    assert (rs.weight, rs.checks, server.forwarding(rs)) == (1, (), "NAT")
    assert not server.inhibits(rs)


def test_virtual_server_needs_ip_and_port_or_fwmark() -> None:
    p = only_problem("virtual_servers:\n  - protocol: TCP\n")
    assert (p.line, p.key_path) == (2, "virtual_servers[0]")
    assert p.message == "needs ip and port, or fwmark"
    p = only_problem("virtual_servers:\n  - ip: 10.0.0.1\n")
    assert p.key_path == "virtual_servers[0].port" and "required with ip" in p.message
    p = only_problem("virtual_servers:\n  - {ip: 10.0.0.1, port: 80, fwmark: 3}\n")
    assert "either ip (with port) or fwmark" in p.message
    p = only_problem("virtual_servers:\n  - {fwmark: 3, port: 80}\n")
    assert p.key_path == "virtual_servers[0].port" and "fwmark service has no port" in p.message
    fw = load("virtual_servers:\n  - {fwmark: 3, real_servers: [{ip: 10.0.1.1}]}\n")
    assert str(fw.virtual_servers[0]) == "FWM 3/TCP"
    assert fw.virtual_servers[0].real_servers[0].port == 0
    persistent = load("virtual_servers:\n  - {ip: 10.0.0.1, persistence_timeout: 300}\n")
    assert persistent.virtual_servers[0].port is None


@pytest.mark.parametrize("algo", m.LB_ALGOS)
def test_every_ipvs_scheduler_is_accepted(algo: str) -> None:
    assert load(vs(f"lb_algo: {algo}\n")).virtual_servers[0].lb_algo == algo


def test_unknown_scheduler_kind_and_protocol() -> None:
    found = problems(vs("lb_algo: fastest\nlb_kind: NAT64\nprotocol: ICMP\n"))
    assert [(p.key_path, p.message.split(",")[0]) for p in found] == [
        ("virtual_servers[0].lb_algo", "must be one of " + " | ".join(m.LB_ALGOS)),
        ("virtual_servers[0].lb_kind", "must be one of NAT | DR | TUN"),
        ("virtual_servers[0].protocol", "must be one of TCP | UDP | SCTP"),
    ]


@pytest.mark.parametrize(("kind", "proto"), [("DR", "UDP"), ("TUN", "SCTP"), ("NAT", "TCP")])
def test_lb_kind_and_protocol(kind: str, proto: str) -> None:
    server = load(vs(f"lb_kind: {kind}\nprotocol: {proto}\n")).virtual_servers[0]
    assert (server.lb_kind, server.protocol) == (kind, proto)


def test_dr_cannot_map_ports() -> None:
    p = only_problem(vs("lb_kind: DR\n").replace("        port: 80\n", "        port: 8080\n"))
    assert p.key_path == "virtual_servers[0].real_servers[0].port"
    assert "DR cannot change the port" in p.message


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("200", ((200, 200),)),
        ("[200, 301]", ((200, 200), (301, 301))),
        ("'200-299'", ((200, 299),)),
        ("'200-299 400-404 503'", ((200, 299), (400, 404), (503, 503))),
        ("[200-204, 302]", ((200, 204), (302, 302))),
    ],
)
def test_status_code_forms(written: str, expected: tuple[tuple[int, int], ...]) -> None:
    config = load(vs(rs_extra=f"HTTP_GET:\n  url: [{{path: /, status_code: {written}}}]\n"))
    check = config.virtual_servers[0].real_servers[0].checks[0]
    assert isinstance(check, m.HttpGetCheck)
    assert tuple((r.first, r.last) for r in check.url[0].status_code) == expected


def test_status_code_default_is_2xx() -> None:
    config = load(vs(rs_extra="HTTP_GET: {url: [{path: /health}]}\n"))
    url = config.virtual_servers[0].real_servers[0].checks[0].url[0]  # type: ignore[union-attr]
    assert url.accepts(200) and url.accepts(299) and not url.accepts(301)


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("600", "status codes are 100..599, got 600"),
        ("'299-200'", "range 299-200 runs backwards"),
        ("'2xx'", "not a status code or range: '2xx'"),
        ("[]", "must list at least one status code"),
    ],
)
def test_bad_status_codes(written: str, message: str) -> None:
    p = only_problem(vs(rs_extra=f"HTTP_GET:\n  url: [{{path: /, status_code: {written}}}]\n"))
    assert p.key_path == "virtual_servers[0].real_servers[0].HTTP_GET.url[0].status_code"
    assert p.message == message


def test_md5_digest() -> None:
    good = "9B3A0C85A887A256D6939DA88AABD8CD"
    config = load(vs(rs_extra=f"HTTP_GET: {{url: [{{path: /, digest: {good}}}]}}\n"))
    check = config.virtual_servers[0].real_servers[0].checks[0]
    assert isinstance(check, m.HttpGetCheck) and check.url[0].digest == good.lower()
    p = only_problem(vs(rs_extra="HTTP_GET: {url: [{path: /, digest: 9b3a0c85a887a256}]}\n"))
    assert p.key_path.endswith("url[0].digest") and "32 hex digits" in p.message


def test_http_get_needs_a_url() -> None:
    p = only_problem(vs(rs_extra="HTTP_GET: {connect_timeout: 3}\n"))
    assert p.key_path.endswith("HTTP_GET.url") and p.message == "required key is missing"


@pytest.mark.parametrize(
    ("written", "host", "port"),
    [
        ("10.99.0.50:80", "10.99.0.50", 80),
        ("10.99.0.50", "10.99.0.50", 80),  # the virtual port
        ("'[2001:db8::50]:8080'", "2001:db8::50", 8080),
    ],
)
def test_sorry_server_forms(written: str, host: str, port: int) -> None:
    text = vs(f"sorry_server: {written}\nlb_kind: TUN\n")
    server = load(text).virtual_servers[0]
    assert server.sorry_server == m.HostPort(ip_address(host), port)


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("10.99.0.50:http", "must be IP:PORT or [IPv6]:PORT"),
        ("'[10.99.0.50]:80'", "brackets are for IPv6 addresses"),
        ("'[2001:db8::50]:80'", "is IPv6 but the service is IPv4"),
        ("10.99.0.50:70000", "port must be 1..65535"),
    ],
)
def test_bad_sorry_server(written: str, message: str) -> None:
    p = only_problem(vs(f"sorry_server: {written}\n"))
    assert p.key_path == "virtual_servers[0].sorry_server" and message in p.message


def test_duplicate_real_servers() -> None:
    text = VS + "      - {ip: 10.99.1.12, port: 80}\n"
    text += "      - {ip: 10.99.1.11, port: 80, weight: 2}\n"
    p = only_problem(text)
    assert (p.line, p.key_path) == (8, "virtual_servers[0].real_servers[2]")
    assert p.message == "10.99.1.11:80 is already real_servers[0]"


def test_duplicate_virtual_servers() -> None:
    text = VS + "  - {ip: 10.99.0.100, port: 80, protocol: UDP}\n  - {ip: 10.99.0.100, port: 80}\n"
    p = only_problem(text)
    assert p.key_path == "virtual_servers[2]" and "is already virtual_servers[0]" in p.message


def test_real_server_family_must_match_unless_tun() -> None:
    text = VS.replace("ip: 10.99.1.11", "ip: '2001:db8::11'")
    p = only_problem(text)
    assert "is IPv6 but the service is IPv4" in p.message
    assert load(vs("lb_kind: TUN\n").replace("ip: 10.99.1.11", "ip: '2001:db8::11'"))


def test_checker_as_a_mapping_or_a_list() -> None:
    config = load(
        vs(
            rs_extra=(
                "TCP_CHECK: {connect_port: 81}\n"
                "HTTP_GET:\n"
                "  - url: [{path: /a}]\n"
                "  - url: [{path: /b}]\n"
                "    connect_port: 8080\n"
                "MISC_CHECK: {misc_path: '/usr/bin/probe 10.99.1.11', misc_dynamic: true}\n"
            )
        )
    )
    checks = config.virtual_servers[0].real_servers[0].checks
    assert [type(c).KIND for c in checks] == ["HTTP_GET", "HTTP_GET", "TCP_CHECK", "MISC_CHECK"]
    http_b = checks[1]
    assert isinstance(http_b, m.HttpGetCheck) and http_b.connect_port == 8080
    misc = checks[3]
    assert isinstance(misc, m.MiscCheck) and misc.misc_path.argv == ("/usr/bin/probe", "10.99.1.11")
    p = only_problem(vs(rs_extra="TCP_CHECK: yes\n"))
    assert p.message == "must be a mapping or a list of mappings, got boolean 'yes'"
    p = only_problem(vs(rs_extra="TCP_CHECK: [{connect_timeout: 1}, 5]\n"))
    assert p.key_path.endswith("TCP_CHECK[1]") and "must be a mapping" in p.message


def test_every_checker_kind_with_keepalived_defaults() -> None:
    config = load(
        vs(
            rs_extra=(
                "HTTP_GET: {url: [{path: /}]}\n"
                "SSL_GET: {url: [{path: /}], enable_sni: true}\n"
                "TCP_CHECK: {}\n"
                "SMTP_CHECK: {helo_name: lb.example}\n"
                "DNS_CHECK: {type: A, name: example.org}\n"
                "MISC_CHECK: {misc_path: /bin/true}\n"
            )
        )
    )
    by_kind = {type(c).KIND: c for c in config.virtual_servers[0].real_servers[0].checks}
    http, ssl = by_kind["HTTP_GET"], by_kind["SSL_GET"]
    assert isinstance(http, m.HttpGetCheck) and isinstance(ssl, m.SslGetCheck)
    assert (http.connect_timeout, http.retry, http.delay_before_retry) == (5.0, 1, 3.0)
    assert (http.delay_loop, http.effective_warmup, http.http_protocol) == (60.0, 60.0, "1.0")
    assert ssl.enable_sni and not isinstance(ssl, m.HttpGetCheck)
    tcp = by_kind["TCP_CHECK"]
    assert isinstance(tcp, m.TcpCheck)
    assert (tcp.retry, tcp.delay_before_retry, tcp.connect_port) == (1, 1.0, None)
    dns = by_kind["DNS_CHECK"]
    assert isinstance(dns, m.DnsCheck)
    assert (dns.type, dns.name, dns.retry, dns.delay_before_retry) == ("A", "example.org", 3, 60.0)
    misc = by_kind["MISC_CHECK"]
    assert isinstance(misc, m.MiscCheck) and (misc.retry, misc.effective_timeout) == (0, 60.0)
    smtp = by_kind["SMTP_CHECK"]
    assert isinstance(smtp, m.SmtpCheck) and smtp.helo_name == "lb.example"
    p = only_problem(vs(rs_extra="MISC_CHECK: {misc_path: /bin/true, connect_port: 80}\n"))
    assert p.message.startswith("unknown key")


def test_checker_settings_inherit_from_real_and_virtual_server() -> None:
    config = load(
        vs(
            "delay_loop: 2\nconnect_timeout: 4\nretry: 2\nalpha: true\n",
            "connect_timeout: 3\ndelay_before_retry: 0.5\n"
            "TCP_CHECK: [{}, {connect_timeout: 1, retry: 7, alpha: false}]\n",
        )
    )
    inherited, own = config.virtual_servers[0].real_servers[0].checks
    assert isinstance(inherited, m.TcpCheck) and isinstance(own, m.TcpCheck)
    assert (inherited.connect_timeout, inherited.retry) == (3.0, 2)
    assert inherited.delay_before_retry == 0.5
    assert (inherited.delay_loop, inherited.alpha) == (2.0, True)
    assert (own.connect_timeout, own.retry, own.alpha, own.delay_loop) == (1.0, 7, False, 2.0)


def test_checker_needs_a_port_when_the_real_server_has_none() -> None:
    text = "virtual_servers:\n  - fwmark: 7\n    real_servers:\n      - ip: 10.0.1.1\n"
    text += "        TCP_CHECK: {}\n"
    p = only_problem(text)
    assert p.key_path == "virtual_servers[0].real_servers[0].TCP_CHECK.connect_port"
    ok = text.replace("TCP_CHECK: {}", "TCP_CHECK: {connect_port: 80}")
    check = load(ok).virtual_servers[0].real_servers[0].checks[0]
    assert isinstance(check, m.TcpCheck) and check.connect_port == 80


def test_real_server_settings() -> None:
    server = load(
        vs(
            "inhibit_on_failure: true\nlb_kind: DR\n",
            "weight: 0\nlb_kind: TUN\nnotify_up: /bin/rs.sh up\ninhibit_on_failure: false\n",
        )
    ).virtual_servers[0]
    rs = server.real_servers[0]
    assert rs.weight == 0 and server.forwarding(rs) == "TUN" and not server.inhibits(rs)
    assert rs.notify_up is not None and rs.notify_up.argv == ("/bin/rs.sh", "up")
    p = only_problem(vs(rs_extra="weight: 70000\n"))
    assert p.message == "must be 0..65535, got 70000"


# --------------------------------------------------------------------------- global_defs


def test_global_defs_values() -> None:
    config = load(
        textwrap.dedent(
            """\
        global_defs:
          router_id: lvs-a
          dataplane: nftables
          control_socket: /tmp/hac.sock
          metrics_listen: 127.0.0.1:9650
          api_listen: '[::1]:9651'
          api_token: s3cret
          vrrp_garp_master_delay: 10
          vrrp_garp_master_repeat: 3
        """
        )
        + INSTANCE
    )
    g = config.global_defs
    assert (g.router_id, g.dataplane) == ("lvs-a", "nftables")
    assert g.control_socket == Path("/tmp/hac.sock")
    assert str(g.metrics_listen) == "127.0.0.1:9650" and str(g.api_listen) == "[::1]:9651"
    inst = config.vrrp_instances["VI_1"]
    # instance garp settings default to the global ones, the lower-priority ones to those
    assert (inst.garp_master_delay, inst.garp_master_repeat) == (10, 3)
    assert (inst.garp_lower_prio_delay, inst.garp_lower_prio_repeat) == (10, 3)


def test_global_defs_problems() -> None:
    found = problems(
        "global_defs:\n  metrics_listen: 127.0.0.1\n  api_token: x\n  dataplane: lvs\n"
    )
    assert [(p.line, p.key_path) for p in found] == [
        (2, "global_defs.metrics_listen"),
        (3, "global_defs.api_token"),
        (4, "global_defs.dataplane"),
    ]
    assert "needs a port" in found[0].message


def test_lvs_sync_daemon_follows_a_defined_instance() -> None:
    header = "global_defs:\n  lvs_sync_daemon: {interface: eth1, instance: VI_1, syncid: 7}\n"
    sync = load(header + INSTANCE).global_defs.lvs_sync_daemon
    assert sync == m.LvsSyncDaemon(interface="eth1", instance="VI_1", syncid=7)
    assert (sync.port, sync.ttl, sync.group) == (8848, 1, None)
    p = only_problem(header.replace("VI_1", "VI_9") + INSTANCE)
    assert p.key_path == "global_defs.lvs_sync_daemon.instance"
    assert p.message == "no vrrp_instance named 'VI_9' (did you mean 'VI_1'?)"


def test_lower_priority_keys_follow_keepalived_defaults_and_overrides() -> None:
    # keepalived: instance garp_lower_prio_* <- global vrrp_garp_lower_prio_* <- global
    # vrrp_garp_master_* (an instance's own garp_master_* does not carry over).
    config = load(
        textwrap.dedent(
            """\
        global_defs:
          vrrp_garp_master_repeat: 3
          vrrp_lower_prio_no_advert: true
        vrrp_instances:
          VI_1:
            interface: eth0
            virtual_router_id: 51
            virtual_ipaddress: [10.0.0.9/24]
            garp_master_delay: 1
            higher_prio_send_advert: true
          VI_2:
            interface: eth0
            virtual_router_id: 52
            virtual_ipaddress: [10.0.0.10/24]
            garp_lower_prio_delay: 0
            garp_lower_prio_repeat: 0
            lower_prio_no_advert: false
        """
        )
    )
    vi1, vi2 = config.vrrp_instances["VI_1"], config.vrrp_instances["VI_2"]
    assert (vi1.garp_lower_prio_delay, vi1.garp_lower_prio_repeat) == (5, 3)
    assert (vi1.lower_prio_no_advert, vi1.higher_prio_send_advert) == (True, True)
    assert (vi2.garp_lower_prio_delay, vi2.garp_lower_prio_repeat) == (0, 0)
    assert (vi2.lower_prio_no_advert, vi2.higher_prio_send_advert) == (False, False)
