"""Import every keepalived.conf of the corpus (tests/data/keepalived/corpus).

The corpus holds realistic configurations of many shapes (VRRP pairs, LVS-NAT/DR/TUN
directors, IPv6, unicast, sync groups, scripts, includes, SMTP alerts, ...), each
checked with `keepalived -t` (see tests/integration/test_import_corpus_keepalived.py).
Each must import, give YAML that check-config accepts, and list exactly the notes
below: (line, keepalived keyword path, whether the note changes behaviour). CHANGES
marks what the import drops or reads differently from keepalived 2.2.7; SAME marks
what keepalived itself ignores, rewrites or warns about, so the result behaves alike.
bench/import_corpus.py prints the count of files carried over.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hacluster.cli import main
from hacluster.config import model as m
from hacluster.config.keepalived_import import import_keepalived
from hacluster.config.loader import parse_config

CORPUS_DIR = Path(__file__).resolve().parents[1] / "data/keepalived/corpus"
CORPUS = sorted(CORPUS_DIR.glob("*.conf"))
CONFIG_ID = "lb"  # the conditional lines of 32-conditional-config.conf are for "lb"
CHANGES, SAME = True, False
NOTE_RE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<keyword>\S+): (?P<message>.+)$")

# Read off the files by hand, each checked against keepalived 2.2.7's handling.
EXPECTED_NOTES: dict[str, set[tuple[int, str, bool]]] = {
    "01-haproxy-pair-unicast.conf": set(),
    "02-k8s-apiserver-vip.conf": set(),
    "03-lvs-nat-sync-group.conf": set(),
    "04-lvs-dr-apiserver-ssl.conf": {
        (29, "virtual_server.net_mask", SAME),
        (30, "virtual_server.persistence_timeout", SAME),
    },
    "05-cloud-floating-ip-no-vip.conf": {
        (19, "vrrp_instance", SAME),
    },
    "06-aws-eip-unicast-prefix.conf": {
        (8, "global_defs.vrrp_priority", SAME),
        (9, "global_defs.checker_priority", SAME),
        (10, "global_defs.vrrp_no_swap", SAME),
        (11, "global_defs.checker_no_swap", SAME),
        (24, "vrrp_instance.unicast_src_ip", SAME),
        (26, "vrrp_instance.unicast_peer", SAME),
    },
    "07-neutron-l3-ha.conf": {
        (19, "vrrp_instance.track_interface", SAME),
        (27, "vrrp_instance.virtual_ipaddress_excluded.scope", SAME),
        (28, "vrrp_instance.virtual_ipaddress_excluded.scope", SAME),
    },
    "08-octavia-amphora.conf": {
        (25, "vrrp_instance.nopreempt", SAME),
    },
    "09-debian-sample-smtp.conf": {
        (19, "global_defs.vrrp_garp_interval", SAME),
        (20, "global_defs.vrrp_gna_interval", SAME),
    },
    "10-dualstack-sync-group.conf": {
        (41, "vrrp_instance.track_script", SAME),
        (50, "vrrp_instance.native_ipv6", SAME),
        (63, "vrrp_instance.track_script", SAME),
    },
    "11-nvkeep-init-fail.conf": set(),
    "12-pihole-track-process.conf": {
        (8, "global_defs.max_auto_priority", SAME),
    },
    "13-iscsi-vmac.conf": set(),
    "14-lvs-dr-fwmark-persistence.conf": {
        (31, "virtual_server.sorry_server", SAME),
        (33, "virtual_server.real_server", SAME),
        (45, "virtual_server.real_server", SAME),
    },
    "15-lvs-nat-misc-check.conf": set(),
    "16-dns-udp-director.conf": set(),
    "17-mail-relay-smtp-check.conf": set(),
    "18-vsg-range.conf": {
        (25, "virtual_server.group", CHANGES),
    },
    "19-lvs-sync-daemon.conf": set(),
    "20-includes.conf": set(),
    "21-alpha-omega-flags.conf": set(),
    "22-lowercase-dr.conf": {
        (27, "virtual_server.lb_kind", SAME),
    },
    "23-missing-final-brace.conf": {
        (8, "vrrp_instance", SAME),
    },
    "24-ipv6-only-v3.conf": set(),
    "25-ipv6-lvs.conf": set(),
    "26-nginx-notify-states.conf": {
        (26, "vrrp_instance.preempt_delay", SAME),
    },
    "27-router-track-interfaces.conf": {
        (27, "vrrp_instance.track_interface", SAME),
        (42, "vrrp_instance.track_interface", SAME),
    },
    "28-strict-multicast-group.conf": set(),
    "29-track-file.conf": {
        (11, "vrrp_track_file.init_file", CHANGES),
    },
    "30-gateway-virtual-routes.conf": {
        (25, "vrrp_instance.virtual_rules", SAME),
    },
    "31-lvs-tun-virtualhost.conf": set(),
    "32-conditional-config.conf": {
        (8, "@backup", SAME),
        (14, "@backup", SAME),
        (17, "@backup", SAME),
        (19, "vrrp_instance.nopreempt", SAME),
    },
    "33-slave-state-long-pass.conf": {
        (13, "vrrp_instance.state", SAME),
        (21, "vrrp_instance.authentication.auth_pass", SAME),
    },
    "34-compact-braces.conf": set(),
    "35-master-nopreempt.conf": {
        (9, "vrrp_instance.nopreempt", SAME),
    },
    "36-pgsql-http-check-api.conf": set(),
    "37-fleet-template-params.conf": set(),
    "38-nat-portless-real-servers.conf": set(),
    "39-https-virtualhost-http11.conf": set(),
    "40-strict-no-accept-fifo-owner.conf": set(),
    "41-multipath-upstreams.conf": {
        (30, "vrrp_instance.virtual_routes", SAME),  # "or": keepalived's deprecation
    },
}


def test_the_corpus_is_big_enough_and_every_file_is_listed() -> None:
    assert len(CORPUS) >= 30
    assert sorted(EXPECTED_NOTES) == [p.name for p in CORPUS]


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_each_file_says_its_shape_and_what_keepalived_makes_of_it(path: Path) -> None:
    head = path.read_text().splitlines()[:12]
    assert any(re.match(r"^[#!] Shape: \S", line) for line in head)
    verdicts = [line for line in head if re.match(r"^[#!] keepalived -t: (clean|warns: .+)$", line)]
    assert verdicts, "no '# keepalived -t: clean' or '# keepalived -t: warns: ...' line"


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_corpus_file_imports_with_exactly_its_notes(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = import_keepalived(path, CONFIG_ID)
    got = {(n.line, n.keyword, n.changes_behaviour) for n in result.skipped}
    assert got == EXPECTED_NOTES[path.name]
    # the command prints the same notes as FILE:LINE: keyword: message, and YAML that
    # check-config's loader accepts
    assert main(["import-keepalived", "--config-id", CONFIG_ID, str(path)]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == [str(n) for n in result.skipped]
    for line in err.splitlines():
        match = NOTE_RE.match(line)
        assert match is not None and match["file"].startswith(str(CORPUS_DIR))
    parse_config(out, f"{path.name}.yaml")


def corpus(name: str) -> m.Config:
    return parse_config(import_keepalived(CORPUS_DIR / name, CONFIG_ID).yaml_text, name)


def test_flags_written_with_a_value_are_set_as_keepalived_sets_them() -> None:
    config = corpus("21-alpha-omega-flags.conf")
    assert config.vrrp_instances["VI_GEN"].nopreempt
    (vs,) = config.virtual_servers
    assert (vs.alpha, vs.omega, vs.inhibit_on_failure) == (True, True, True)


def test_unicast_addresses_lose_their_prefix() -> None:
    inst = corpus("06-aws-eip-unicast-prefix.conf").vrrp_instances["I1"]
    assert str(inst.unicast_src_ip) == "192.0.2.15"
    assert [str(p.ip) for p in inst.unicast_peers] == ["192.0.2.16"]


def test_an_instance_without_virtual_ipaddress_is_kept() -> None:
    inst = corpus("05-cloud-floating-ip-no-vip.conf").vrrp_instances["LB_VIP"]
    assert inst.virtual_ipaddress == ()
    assert (inst.family, inst.version, inst.is_unicast) == (4, 2, True)
    assert inst.notify_master is not None


def test_a_missing_final_brace_is_closed_at_the_end() -> None:
    inst = corpus("23-missing-final-brace.conf").vrrp_instances["GW"]
    assert [str(v.address) for v in inst.virtual_ipaddress] == ["198.51.100.1/24"]
    assert inst.authentication == m.Authentication("PASS", "gwpass")


def test_lowercase_dr_stays_nat_and_keeps_its_real_server() -> None:
    (vs,) = corpus("22-lowercase-dr.conf").virtual_servers
    assert vs.lb_kind == "NAT"
    assert [(str(rs.ip), rs.port) for rs in vs.real_servers] == [("198.51.100.20", 2222)]


def test_fwmark_dr_servers_lose_their_port_but_checks_keep_probing_it() -> None:
    (vs,) = corpus("14-lvs-dr-fwmark-persistence.conf").virtual_servers
    assert [rs.port for rs in vs.real_servers] == [0, 0]  # 0: the packet keeps its port
    assert [c.connect_port for rs in vs.real_servers for c in rs.checks] == [80, 80]


def test_compact_one_line_blocks() -> None:
    inst = corpus("34-compact-braces.conf").vrrp_instances["VI_C"]
    assert [t.name for t in inst.track_interface] == ["eth1"]
    assert [(t.name, t.weight) for t in inst.track_script] == [("chk", -10)]
    assert [str(v.address) for v in inst.virtual_ipaddress] == ["192.0.2.34/24"]


def test_keepalived_corrections_are_applied() -> None:
    # state SLAVE → BACKUP; nopreempt cleared with state MASTER; preempt_delay reset by
    # nopreempt; a scope on IPv6 addresses ignored
    assert corpus("33-slave-state-long-pass.conf").vrrp_instances["VI_1"].state == "BACKUP"
    master = corpus("35-master-nopreempt.conf").vrrp_instances["VI_1"]
    assert (master.state, master.nopreempt) == ("MASTER", False)
    nginx = corpus("26-nginx-notify-states.conf").vrrp_instances["VI_NGINX"]
    assert (nginx.nopreempt, nginx.preempt_delay) == (True, 0)
    neutron = corpus("07-neutron-l3-ha.conf").vrrp_instances["VR_100"]
    assert [v.scope for v in neutron.virtual_ipaddress_excluded if v.family == 6] == [None, None]
