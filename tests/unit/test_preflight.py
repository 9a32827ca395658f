"""One preflight for check-config, run and reload: every problem as FILE:LINE: key: message."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hacluster.config.loader import load_config_located, parse_config
from hacluster.config.model import HostPort, RealServer, TcpCheck, VirtualServer
from hacluster.ipvs import nftables
from hacluster.ipvs.dataplane import config_problems
from hacluster.notify import notify_commands
from hacluster.preflight import (
    NFT_MAX_WEIGHT,
    NFT_SCHEDULERS,
    _has_commands,
    may_refuse,
    preflight,
)

HACLUSTER = str(Path(sys.executable).with_name("hacluster"))
T = TypeVar("T")

CONFIG = """\
global_defs:
  dataplane: nftables
vrrp_scripts:
  chk: {script: /bin/true, user: no-such-user-x}
vrrp_instances:
  VI_1:
    interface: nosuch0
    virtual_router_id: 1
    priority: 100
    virtual_ipaddress: [10.0.0.1/24]
    notify_master: /no/such/notify.sh master
    track_script: [chk]
virtual_servers:
  - ip: 10.99.0.100
    port: 80
    lb_algo: wlc
    lb_kind: DR
    real_servers:
      - ip: 10.0.0.5
        port: 80
        MISC_CHECK: {misc_path: /no/such/probe}
"""


def _write(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "h.yaml"
    path.write_text(text)
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HACLUSTER, *args], capture_output=True, text=True, timeout=60)


def test_check_config_reports_what_run_would_refuse(tmp_path: Path) -> None:
    path = _write(tmp_path)
    res = _cli("check-config", "-f", str(path))
    print(res.stderr)
    assert res.returncode == 1
    assert res.stderr.splitlines() == [
        f"{path}:4: vrrp_scripts.chk.user: [this machine] no such user 'no-such-user-x'",
        f"{path}:7: vrrp_instances.VI_1.interface: [this machine] no interface 'nosuch0'",
        f"{path}:11: vrrp_instances.VI_1.notify_master: [this machine] /no/such/notify.sh: "
        "No such file or directory",
        f"{path}:16: virtual_servers[0].lb_algo: TCP 10.99.0.100:80: scheduler 'wlc' is not "
        "available with dataplane nftables (only rr, wrr, sh); use dataplane: ipvs for it",
        f"{path}:17: virtual_servers[0].lb_kind: TCP 10.99.0.100:80: real server 10.0.0.5:80 "
        "uses lb_kind DR; dataplane nftables does NAT only",
        f"{path}:21: virtual_servers[0].real_servers[0].MISC_CHECK: [this machine] "
        "/no/such/probe: No such file or directory",
        f"{path}: 6 problems",
    ]


def test_offline_leaves_out_what_depends_on_this_machine(tmp_path: Path) -> None:
    path = _write(tmp_path)
    res = _cli("check-config", "--offline", "-f", str(path))
    print(res.stderr)
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert len(lines) == 3 and "[this machine]" not in res.stderr
    fixed = _write(tmp_path, CONFIG.replace("wlc", "wrr").replace("DR", "NAT"))
    res = _cli("check-config", "--offline", "-q", "-f", str(fixed))
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    res = _cli("check-config", "-q", "-f", str(fixed))
    assert res.returncode == 1 and res.stderr.count("[this machine]") == 4


def test_run_refuses_with_the_same_lines_before_touching_anything(tmp_path: Path) -> None:
    path = _write(tmp_path)
    sock = tmp_path / "s.sock"
    res = _cli("run", "-f", str(path), "--control-socket", str(sock))
    check = _cli("check-config", "-f", str(path))
    assert res.returncode == 1
    assert res.stderr.splitlines()[:-1] == check.stderr.splitlines()[:-1]
    assert res.stderr.splitlines()[-1] == f"{path}: refused, 6 problem(s)"
    assert not sock.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="script security guards scripts run as root")
def test_script_security_is_part_of_the_preflight(tmp_path: Path) -> None:
    script = tmp_path / "notify.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o777)  # writable by everyone: refused when run as root
    text = (f"global_defs: {{enable_script_security: true}}\n"
            f"vrrp_instances:\n  VI_1:\n    interface: lo\n    virtual_router_id: 1\n"
            f"    priority: 100\n    virtual_ipaddress: [10.0.0.1/24]\n"
            f"    notify: {script}\n")
    config, lines = load_config_located(_write(tmp_path, text))
    (finding,) = preflight(config, lines)
    assert finding.machine
    assert finding.problem.line == 8
    assert finding.problem.key_path == "vrrp_instances.VI_1.notify"
    assert "refusing to run" in finding.problem.message
    assert preflight(config, lines, offline=True) == []


ROUTES = """\
vrrp_instances:
  VI_1:
    interface: lo
    virtual_router_id: 1
    virtual_ipaddress: [10.0.0.1/24]
    virtual_routes:
      - 10.203.0.0/24 nexthop via 10.77.0.2 dev nosuch3 nexthop via 10.77.0.3 dev lo
      - to: 10.204.0.0/24
        nexthops:
          - {via: 10.77.0.2, dev: lo}
          - {via: 10.77.0.3, dev: nosuch4}
      - 10.205.0.0/24 dev nosuch5
      - 10.205.1.0/24 via 10.77.0.9 dev lo
    virtual_rules:
      - from 10.0.0.0/8 iif nosuch6 table 100
static_routes:
  - 10.206.0.0/24 via 10.77.0.2 dev nosuch7
static_rules:
  - {from: 10.1.0.0/16, oif: nosuch8, table: 100}
  - {from: 10.2.0.0/16, oif: lo, table: 100}
static_ipaddress:
  - 10.9.9.9/32 dev nosuch9
"""


def test_routes_nexthops_and_rules_name_interfaces_that_exist(tmp_path: Path) -> None:
    """keepalived refuses a file whose route, nexthop or rule names an interface that is
    not there ("interface X for VROUTE nexthop doesn't exist", then "Non-existent
    interface specified in configuration"; `keepalived -t` exits 5, and a start stops
    with a CONFIG error): each is a finding of this machine, at its line and key."""
    config, lines = load_config_located(_write(tmp_path, ROUTES))
    found = preflight(config, lines)
    assert all(f.machine for f in found)
    assert [(f.problem.line, f.problem.key_path, f.problem.message) for f in found] == [
        (7, "vrrp_instances.VI_1.virtual_routes[0].nexthops[0].dev",
         "[this machine] no interface 'nosuch3' for route 10.203.0.0/24 "
         "(nexthop via 10.77.0.2 dev nosuch3)"),
        (11, "vrrp_instances.VI_1.virtual_routes[1].nexthops[1].dev",
         "[this machine] no interface 'nosuch4' for route 10.204.0.0/24 "
         "(nexthop via 10.77.0.3 dev nosuch4)"),
        (12, "vrrp_instances.VI_1.virtual_routes[2].dev",
         "[this machine] no interface 'nosuch5' for route 10.205.0.0/24"),
        (15, "vrrp_instances.VI_1.virtual_rules[0].iif",
         "[this machine] no interface 'nosuch6' for the rule's iif"),
        (17, "static_routes[0].dev", "[this machine] no interface 'nosuch7' for route "
         "10.206.0.0/24"),
        (19, "static_rules[0].oif", "[this machine] no interface 'nosuch8' for the rule's oif"),
        (22, "static_ipaddress[0]", "[this machine] no interface 'nosuch9'"),
    ]
    assert preflight(config, lines, offline=True) == []
    # Every interface there: nothing to say.
    fixed = ROUTES
    for n in range(3, 10):
        fixed = fixed.replace(f"nosuch{n}", "lo")
    config, lines = load_config_located(_write(tmp_path, fixed))
    assert preflight(config, lines) == []


def test_check_config_names_the_nexthop_s_missing_interface(tmp_path: Path) -> None:
    path = _write(tmp_path, ROUTES)
    res = _cli("check-config", "-f", str(path))
    assert res.returncode == 1
    assert (f"{path}:7: vrrp_instances.VI_1.virtual_routes[0].nexthops[0].dev: [this machine] "
            "no interface 'nosuch3' for route 10.203.0.0/24 (nexthop via 10.77.0.2 dev "
            "nosuch3)") in res.stderr.splitlines()
    assert res.stderr.splitlines()[-1] == f"{path}: 7 problems"
    assert _cli("check-config", "--offline", "-q", "-f", str(path)).returncode == 0


# --------------------------------------------------------------------------- fast paths
# `hacluster run` preflights before its VRRP role may start: with thousands of real
# servers the file is checked against the dataplane without building its table, and no
# script module is imported for a file without scripts. These hold the shortcuts to the
# full checks they stand in for.

# Mostly what nftables carries out, each setting sometimes not: so that virtual servers
# with a single reason to be refused come up often.
def _mostly(usual: T, *others: T) -> st.SearchStrategy[T]:
    return st.sampled_from([usual] * 6 + list(others))


_real_servers = st.lists(
    st.builds(
        RealServer,
        ip=_mostly("10.0.0.1", "10.0.0.2", "10.0.0.3", "2001:db8::1").map(ipaddress.ip_address),
        port=_mostly(80, 0, 81),
        weight=_mostly(1, 0, 3, 65535),
        lb_kind=_mostly(None, "NAT", "DR", "TUN"),
        inhibit_on_failure=_mostly(None, True, False),
        uthreshold=_mostly(0, 10),
        lthreshold=_mostly(0, 5),
        alpha=_mostly(None, True),
    ),
    max_size=4,
    unique_by=lambda rs: (rs.ip, rs.port),  # the loader refuses a real server given twice
)


@st.composite
def _virtual_servers(draw: st.DrawFn) -> VirtualServer:
    fwmark = draw(_mostly(None, 1))
    ip = None if fwmark else ipaddress.ip_address(draw(_mostly("10.9.0.1", "::9")))
    sorry = draw(_mostly(None, "10.0.0.7", "2001:db8::7"))
    return VirtualServer(
        ip=ip,
        port=None if fwmark else draw(_mostly(80, None, 0)),
        fwmark=fwmark,
        protocol=draw(_mostly("TCP", "UDP")),
        ip_family=draw(_mostly(None, "inet", "inet6")) if fwmark else None,
        lb_algo=draw(_mostly("rr", "wrr", "sh", "wlc", "mh")),
        lb_kind=draw(_mostly("NAT", "DR", "TUN")),
        persistence_timeout=draw(_mostly(0, 300)),
        ops=draw(_mostly(False, True)),
        sorry_server=None if sorry is None else HostPort(
            ipaddress.ip_address(sorry), draw(_mostly(0, 8080))),
        sorry_server_lb_kind=draw(_mostly(None, "NAT", "DR")),
        sorry_server_inhibit=draw(st.booleans()),
        alpha=draw(_mostly(False, True)),
        inhibit_on_failure=draw(st.booleans()),
        quorum=draw(st.sampled_from([0, 1, 5])),
        real_servers=tuple(draw(_real_servers)),
    )


@settings(max_examples=600, deadline=None)
@given(_virtual_servers(), st.sampled_from(["ipvs", "nftables", "none"]))
def test_a_virtual_server_passed_over_has_no_dataplane_problem(
    vs: VirtualServer, dataplane: str
) -> None:
    if not may_refuse(dataplane, vs):
        assert config_problems(dataplane, [vs]) == []


_V4, _V6 = ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("2001:db8::1")
_SORRY = ipaddress.ip_address("10.0.0.7")
_CHECKED = RealServer(_V4, 80, checks=(TcpCheck(),))  # may be down: the sorry server used
_PLAIN: dict[str, Any] = {"ip": ipaddress.ip_address("10.9.0.1"), "port": 80, "lb_algo": "rr",
                          "real_servers": (_CHECKED,)}


@pytest.mark.parametrize("change", [
    {"lb_algo": "wlc"}, {"persistence_timeout": 60}, {"ops": True}, {"lb_kind": "DR"},
    {"real_servers": (RealServer(_V4, 80, lb_kind="TUN"),)},
    {"real_servers": (RealServer(_V4, 80, uthreshold=9),)},
    {"real_servers": (RealServer(_V4, 80, lthreshold=9),)},
    {"real_servers": (RealServer(_V6, 80),)},
    {"real_servers": (RealServer(_V4, 80), RealServer(_V4, 0))},
    {"sorry_server": HostPort(_SORRY, 80), "sorry_server_lb_kind": "DR"},
    {"sorry_server": HostPort(_V6, 80)},
    {"sorry_server": HostPort(_SORRY, 0), "port": 0, "persistence_timeout": 0,
     "real_servers": (RealServer(_V4, 80, checks=(TcpCheck(),)),)},
    {"ip": None, "port": None, "fwmark": 3, "real_servers": (RealServer(_V4, 80),)},
    {"ip": None, "port": None, "fwmark": 3, "real_servers": (RealServer(_V4, 0, checks=(
        TcpCheck(connect_port=80),)),), "sorry_server": HostPort(_SORRY, 80)},
    {"real_servers": tuple(RealServer(ipaddress.ip_address(0x0A000000 + i), 80, weight=65535)
                           for i in range(1, 65540))},
], ids=lambda change: ",".join(change))
def test_each_nftables_limit_is_not_passed_over(change: dict[str, Any]) -> None:
    vs = VirtualServer(**{**_PLAIN, **change})
    assert config_problems("nftables", [vs]), change  # the case is one nftables refuses
    assert may_refuse("nftables", vs)
    assert not may_refuse("nftables", VirtualServer(**_PLAIN))


def test_the_dataplane_limits_read_off_the_config_are_nftables_own() -> None:
    assert NFT_SCHEDULERS == nftables.SCHEDULERS
    assert NFT_MAX_WEIGHT == nftables._MAX_SLOTS


def test_a_plain_file_is_passed_over_and_a_refused_one_is_not(tmp_path: Path) -> None:
    reals = "".join(f"      - {{ip: 10.0.1.{i}, port: 80, TCP_CHECK: {{}}}}\n"
                    for i in range(1, 200))
    text = ("global_defs: {dataplane: nftables}\nvirtual_servers:\n"
            "  - {ip: 10.9.0.1, port: 80, lb_algo: rr, real_servers: [\n" + reals.replace(
                "      - ", "      ").replace("}}\n", "}},\n") + "    ]}\n")
    config = parse_config(text)
    (vs,) = config.virtual_servers
    assert not may_refuse("nftables", vs) and not may_refuse("ipvs", vs)
    config, lines = load_config_located(_write(tmp_path, text.replace("lb_algo: rr",
                                                                      "lb_algo: lc")))
    (finding,) = preflight(config, lines, offline=True)
    assert finding.problem.key_path == "virtual_servers[0].lb_algo"


_HOOKS = [
    ("vrrp_instances.VI_1.notify_master", "    notify_master: /bin/true\n", ""),
    ("vrrp_instances.VI_1.notify", "    notify: /bin/true\n", ""),
    ("vrrp_sync_groups.G.notify_fault", "", "    notify_fault: /bin/true\n"),
    ("virtual_servers[0].quorum_up", "", "", "quorum_up: /bin/true, "),
    ("virtual_servers[0].real_servers[0].notify_down", "", "", "", "notify_down: /bin/true, "),
]


@pytest.mark.parametrize("hook", [*_HOOKS, ("none", "", "")], ids=lambda h: h[0])
def test_a_file_has_commands_exactly_when_notify_finds_some(hook: tuple[str, ...]) -> None:
    where, inst, group, vs, rs = (*hook, "", "")[:5]
    config = parse_config(
        "vrrp_instances:\n  VI_1:\n    interface: lo\n    virtual_router_id: 1\n"
        f"    virtual_ipaddress: [10.0.0.1/24]\n{inst}"
        f"vrrp_sync_groups:\n  G:\n    group: [VI_1]\n{group}"
        f"virtual_servers:\n  - {{ip: 10.9.0.1, port: 80, {vs}real_servers: [\n"
        f"      {{ip: 10.0.1.1, port: 80, {rs}TCP_CHECK: {{}}}}]}}\n"
    )
    found = [w for w, _ in notify_commands(config)]
    assert found == ([] if where == "none" else [where])
    assert _has_commands(config) == bool(found)
