"""Field coverage of the lowering: every config field is consumed or reported unsupported.

For each field of each checker type and of a VRRP instance, a config that differs from a
base one in that field alone must lower to a different value, or the field must be named
by `unsupported()` / `unsupported_instance()` (or, for the instance keys taken in place,
change what tracking or notify are given). A new field with no alternative value below
fails the test until it is given one, so no setting can be accepted and silently dropped.
"""

from __future__ import annotations

import dataclasses
from ipaddress import ip_address, ip_interface
from pathlib import Path
from typing import Any

import pytest

from hacluster import accept_mode, vmac_plan
from hacluster.alerts import InstanceEvent, alert_enabled
from hacluster.config import ConfigError
from hacluster.config.loader import parse_config
from hacluster.config.lower import (
    INSTANCE_AT_LOAD,
    INSTANCE_ELSEWHERE,
    lower_instance,
    plan,
    unsupported,
    unsupported_instance,
)
from hacluster.config.model import (
    Authentication,
    Command,
    Config,
    DnsCheck,
    FileCheck,
    HttpGetCheck,
    MiscCheck,
    NotifyCommand,
    PingCheck,
    RealServer,
    Route,
    Rule,
    SmtpCheck,
    SslGetCheck,
    StatusCodeRange,
    TcpCheck,
    TrackFile,
    TrackInterface,
    TrackProcess,
    TrackScript,
    UdpCheck,
    UnicastPeer,
    UrlCheck,
    VirtualIpAddress,
    VirtualServer,
    VrrpTrackFile,
)
from hacluster.notify import notify_commands, priority_notified
from hacluster.tracking import plan_watches
from hacluster.vroutes import RouteFollower, kernel_route, kernel_rule

# A value different from the base's, for every checker field.
CHECK_ALTERNATIVES: dict[str, Any] = {
    "retry": 7,
    "delay_before_retry": 9.5,
    "delay_loop": 11.0,
    "warmup": 2.0,
    "alpha": True,
    "log_all_failures": True,
    "connect_ip": ip_address("10.0.9.9"),
    "connect_port": 8443,
    "bindto": ip_address("10.0.0.5"),
    "bind_port": 1234,
    "bind_if": "eth1",
    "fwmark": 3,
    "connect_timeout": 1.5,
    "url": (UrlCheck("/other", (StatusCodeRange(200, 200),)),),
    "http_protocol": "1.1",
    "virtualhost": "www.example",
    "fast_recovery": True,
    "enable_sni": True,
    "complete_handshake": True,
    "helo_name": "probe.example",
    "type": "A",
    "name": "example.org",
    "misc_path": Command(("/bin/false",), "/bin/false"),
    "misc_timeout": 4.0,
    "misc_dynamic": True,
    "user": "daemon",
    "group": "nogroup",
    "payload": "deadbeef",
    "require_reply": True,
    "min_reply_length": 4,
    "max_reply_length": 64,
    "track_file": "tf2",
    "reverse": True,
}
# Per checker type where one name means another thing (FILE_CHECK's weight).
TYPED_ALTERNATIVES: dict[tuple[str, str], Any] = {("FileCheck", "weight"): 7}

CHECKERS = [
    HttpGetCheck(url=(UrlCheck("/"),)),
    SslGetCheck(url=(UrlCheck("/"),)),
    TcpCheck(),
    SmtpCheck(),
    DnsCheck(),
    MiscCheck(misc_path=Command(("/bin/true",), "/bin/true"), user="nobody"),
    PingCheck(),
    UdpCheck(),
    FileCheck(track_file="tf", weight=3),
]
TRACK_FILES = {
    "tf": VrrpTrackFile(name="tf", file=Path("/run/tf")),
    "tf2": VrrpTrackFile(name="tf2", file=Path("/run/tf2")),
}

VS = VirtualServer(ip=ip_address("10.0.0.1"), port=80)
RS = RealServer(ip=ip_address("10.0.1.1"), port=80)


@pytest.mark.parametrize("base", CHECKERS, ids=lambda c: type(c).__name__)
def test_every_checker_field_is_consumed_or_reported(base: Any) -> None:
    lowered = plan(base, VS, RS, None, TRACK_FILES)
    assert unsupported(base) == []
    for f in dataclasses.fields(base):
        typed = (type(base).__name__, f.name)
        assert f.name in CHECK_ALTERNATIVES or typed in TYPED_ALTERNATIVES, (
            f"{f.name}: give it an alternative value here")
        alt = TYPED_ALTERNATIVES.get(typed, CHECK_ALTERNATIVES.get(f.name))
        assert getattr(base, f.name) != alt, f.name
        variant = dataclasses.replace(base, **{f.name: alt})
        reported = any(note.startswith(f.name) for note in unsupported(variant))
        assert reported or plan(variant, VS, RS, None, TRACK_FILES) != lowered, (
            f"{type(base).__name__}.{f.name} is neither carried into the checker's "
            f"parameters nor reported as unsupported"
        )


BASE_INSTANCE = """
global_defs:
  notification_email: [ops@example.org]
  smtp_server: 127.0.0.1
vrrp_scripts:
  chk: {script: /bin/true}
vrrp_track_processes:
  proc: {process: nginx}
vrrp_instances:
  VI_1:
    interface: eth0
    virtual_router_id: 51
    virtual_ipaddress: [10.0.0.100/24]
"""

INSTANCE_ALTERNATIVES: dict[str, Any] = {
    "interface": "eth1",
    "virtual_router_id": 52,
    "virtual_ipaddress": (VirtualIpAddress(ip_interface("10.0.0.101/24")),),
    "state": "MASTER",
    "priority": 150,
    "advert_int": 2.0,
    "version": 3,
    "nopreempt": True,
    "preempt_delay": 5.0,
    "unicast_src_ip": ip_address("10.0.0.2"),
    "unicast_peers": (UnicastPeer(ip_address("10.0.0.3")),),
    "unicast_ttl": 64,
    "mcast_src_ip": ip_address("10.0.0.2"),
    "mcast_dst_ip": ip_address("224.0.0.19"),
    "authentication": Authentication("PASS", "secret"),
    "virtual_ipaddress_excluded": (VirtualIpAddress(ip_interface("10.0.1.100/24")),),
    "track_interface": (TrackInterface("eth1"),),
    "track_script": (TrackScript("chk"),),
    "track_file": (TrackFile("tf"),),
    "dont_track_primary": True,
    "accept": False,
    "checksum_pseudo_header": False,
    "down_timer_adverts": 5,
    "garp_master_delay": 9,
    "garp_master_repeat": 2,
    "garp_master_refresh": 30,
    "garp_master_refresh_repeat": 3,
    "garp_lower_prio_delay": 1,
    "garp_lower_prio_repeat": 1,
    "lower_prio_no_advert": True,
    "higher_prio_send_advert": True,
    "notify_master": NotifyCommand(("/bin/true",), "/bin/true"),
    "notify_backup": NotifyCommand(("/bin/true",), "/bin/true"),
    "notify_fault": NotifyCommand(("/bin/true",), "/bin/true"),
    "notify_stop": NotifyCommand(("/bin/true",), "/bin/true"),
    "notify": NotifyCommand(("/bin/true",), "/bin/true"),
    "smtp_alert": True,
    "track_process": (TrackProcess("proc"),),
    "notify_priority_changes": True,
    "virtual_routes": (Route(ip_interface("10.9.0.0/16"), via=ip_address("10.0.0.254")),),
    "virtual_rules": (Rule(table=100, from_=ip_interface("10.0.0.0/24")),),
    "strict_mode": True,
    "skip_check_adv_addr": True,
    "check_unicast_src": True,
    "use_vmac": True,
    "vmac_interface": "vrrp.x",
    "vmac_xmit_base": True,
}
#: Settings that only act with another one set (in the base and in the variant alike).
INSTANCE_NEEDS: dict[str, dict[str, Any]] = {
    "vmac_interface": {"use_vmac": True},
    "vmac_xmit_base": {"use_vmac": True},
}


def _with(config: Config, **changes: Any) -> Config:
    inst = dataclasses.replace(config.vrrp_instances["VI_1"], **changes)
    return dataclasses.replace(config, vrrp_instances={"VI_1": inst})


def _elsewhere(config: Config) -> tuple[Any, ...]:
    """What tracking, notify, alert mail and routes are given from a configuration."""
    mail = alert_enabled(InstanceEvent("VI_1", "MASTER", 100), config)
    inst = config.vrrp_instances["VI_1"]
    routes = RouteFollower.wanted(config), [kernel_route(r) for r in inst.virtual_routes], [
        kernel_rule(r) for r in inst.virtual_rules]
    vmac = vmac_plan.lower(config, lambda _ifname, _family: ip_address("10.0.0.1"))
    return (plan_watches(config), tuple(notify_commands(config)), mail,
            priority_notified(inst), routes, vmac, accept_mode.elements(inst))


def test_every_instance_field_is_consumed_or_reported(tmp_path: Any) -> None:
    text = BASE_INSTANCE + f"vrrp_track_files:\n  tf: {{file: {tmp_path}/tf}}\n"
    base = parse_config(text, "t.yaml")
    inst = base.vrrp_instances["VI_1"]
    lowered = lower_instance(base, "VI_1")
    assert unsupported_instance(inst) == []
    for f in dataclasses.fields(inst):
        if f.name == "name":
            continue  # the key the instance is known by
        assert f.name in INSTANCE_ALTERNATIVES, f"{f.name}: give it an alternative value here"
        variant = _with(base, **{f.name: INSTANCE_ALTERNATIVES[f.name]})
        if f.name in INSTANCE_AT_LOAD:
            # strict mode's rules: a file it forbids (authentication) is refused
            text = BASE_INSTANCE.replace("    interface: eth0\n", "    interface: eth0\n"
                                         "    authentication: {auth_type: PASS, auth_pass: x}\n")
            parse_config(text, "t.yaml")
            with pytest.raises(ConfigError):
                parse_config(text.replace("    interface: eth0\n",
                                          "    interface: eth0\n    strict_mode: true\n"),
                             "t.yaml")
            continue
        if f.name in INSTANCE_ELSEWHERE:
            needs = INSTANCE_NEEDS.get(f.name, {})
            assert _elsewhere(_with(variant, **needs)) != _elsewhere(_with(base, **needs)), (
                f.name)
            assert lower_instance(variant, "VI_1") == lowered, f.name
            continue
        reported = any(note.startswith(f.name)
                       for note in unsupported_instance(variant.vrrp_instances["VI_1"]))
        assert reported or lower_instance(variant, "VI_1") != lowered, (
            f"vrrp_instances.*.{f.name} is neither lowered nor reported as unsupported"
        )


def test_a_vip_flag_not_carried_out_is_reported() -> None:
    base = parse_config(BASE_INSTANCE, "t.yaml")
    vip = VirtualIpAddress(ip_interface("10.0.0.100/24"), no_track=True)
    notes = unsupported_instance(_with(base, virtual_ipaddress=(vip,)).vrrp_instances["VI_1"])
    assert notes and notes[0].startswith("no_track")


def test_lowered_instance_carries_binding_vips_and_announcements() -> None:
    cfg = parse_config(BASE_INSTANCE, "t.yaml")
    p = lower_instance(_with(cfg, priority=150, garp_master_repeat=2,
                             virtual_ipaddress_excluded=INSTANCE_ALTERNATIVES[
                                 "virtual_ipaddress_excluded"]), "VI_1")
    assert (p.interface, p.binding.vrid, p.params.priority, p.announce.repeat) == (
        "eth0", 51, 150, 2)
    # Excluded VIPs are held but not carried in adverts.
    assert [label for label, _ in p.vips] == ["10.0.0.100/24", "10.0.1.100/24"]
    assert [str(a) for a in p.template.addresses] == ["10.0.0.100"]
    assert str(p.params.primary_ip) == "0.0.0.0"


#: A value other than the default for each global setting an instance is lowered with.
VRRP_GLOBAL_ALTERNATIVES: dict[str, Any] = {
    "vrrp_garp_interval": 0.5,
    "vrrp_gna_interval": 0.5,
    "vrrp_mcast_group4": ip_address("224.0.0.19"),
    "vrrp_mcast_group6": ip_address("ff02::13"),
}


def test_the_global_settings_of_instances_are_lowered_and_rebuild_them_on_reload() -> None:
    """Each global setting `lower_instance` reads changes the lowered instance of its
    family, and is one a reload rebuilds the instance for (`VRRP_GLOBAL_DEFS`); the
    reading of the source finds no other."""
    import ast
    import inspect

    from hacluster.config import lower_vrrp
    from hacluster.reload_in_place import VRRP_GLOBAL_DEFS

    tree = ast.parse(inspect.getsource(lower_vrrp))
    read = {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == "g"}
    assert "vrrp_garp_interval" in read  # (the reading works)
    assert read == set(VRRP_GLOBAL_DEFS) == set(VRRP_GLOBAL_ALTERNATIVES)
    six = BASE_INSTANCE.replace("10.0.0.100/24", "fd00::100/64")
    for field, value in VRRP_GLOBAL_ALTERNATIVES.items():
        base = parse_config(six if field.endswith(("6", "gna_interval")) else BASE_INSTANCE,
                            "t.yaml")
        variant = dataclasses.replace(
            base, global_defs=dataclasses.replace(base.global_defs, **{field: value}))
        assert lower_instance(variant, "VI_1") != lower_instance(base, "VI_1"), field


def test_a_global_multicast_group_is_where_adverts_go() -> None:
    base = parse_config(BASE_INSTANCE, "t.yaml")
    assert lower_instance(base, "VI_1").binding.multicast_group() == ip_address("224.0.0.18")
    moved = dataclasses.replace(base, global_defs=dataclasses.replace(
        base.global_defs, vrrp_mcast_group4=ip_address("224.0.0.19")))
    assert lower_instance(moved, "VI_1").binding.multicast_group() == ip_address("224.0.0.19")
    # The instance's own mcast_dst_ip comes first.
    own = _with(moved, mcast_dst_ip=ip_address("224.0.0.20"))
    assert lower_instance(own, "VI_1").binding.multicast_group() == ip_address("224.0.0.20")
