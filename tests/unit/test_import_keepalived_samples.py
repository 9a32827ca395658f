"""Import every keepalived.conf sample shipped with the Debian keepalived package.

Each sample must convert (exit 0), load with hacluster's real loader, and list on stderr
every keyword it did not carry over, at the right file and line.
"""

from __future__ import annotations

import gzip
import ipaddress
import re
from pathlib import Path

import pytest

from hacluster.cli import main
from hacluster.config import model as m
from hacluster.config.loader import parse_config

SAMPLES_DIR = Path("/usr/share/doc/keepalived/samples")
SAMPLES = sorted(p for p in SAMPLES_DIR.glob("keepalived.conf.*") if p.is_file())
NOTE_RE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<keyword>\S+): (?P<message>.+)$")
CONVERTED_SECTIONS = {
    "global_defs", "vrrp_script", "vrrp_instance", "vrrp_sync_group", "virtual_server",
    "virtual_server_group", "track_file", "vrrp_track_file", "vrrp_track_process",
    "static_ipaddress", "static_routes", "static_rules",
}

# What each sample holds that hacluster does not do: (line, keepalived keyword path).
# Read off the samples by hand. (Mail settings, PING_CHECK and UDP_CHECK are carried.)
EXPECTED_NOTES: dict[str, set[tuple[int, str]]] = {
    "keepalived.conf.IPv6": {(7, "virtual_server_group")},  # defined, used by nothing
    "keepalived.conf.SSL_GET": {(20, "vrrp_instance.authentication.auth_type")},  # AH
    "keepalived.conf.conditional_conf": {
        (3, "@high"), (4, "@low"), (7, "@high"), (8, "@low"), (19, "@high"), (20, "@low"),
        (6, "vrrp_script"),  # its script lines are all conditional
        (25, "vrrp_instance.track_script"),  # refers to that script
    },
    "keepalived.conf.fwmark": {(12, "virtual_server.protocol")},  # ignored with a fwmark
    "keepalived.conf.virtual_server_group": {(22, "virtual_server.group")},  # expanded
    "keepalived.conf.vrrp": {
        (32, "vrrp_instance.virtual_ipaddress"),  # 192.168.200.18 a second time
    },
    "keepalived.conf.vrrp.localcheck": {  # "</dev/tcp/..." needs a shell
        (25, "vrrp_script.script"), (31, "vrrp_script.script"), (37, "vrrp_script.script"),
    },
    "keepalived.conf.vrrp.lvs_syncd": {  # members outside a group { } block
        (3, "vrrp_sync_group"), (4, "vrrp_sync_group.VI_2"), (5, "vrrp_sync_group.VI_3"),
    },
    # a multipath route (`via A or B`): carried as two nexthops, keepalived's deprecation
    "keepalived.conf.vrrp.routes": {(30, "vrrp_instance.virtual_routes")},
    # rules without a preference get keepalived's countdown from 16384; "192.168.x./24"
    # is refused by keepalived too
    "keepalived.conf.vrrp.rules": {
        (10, "static_rules"), (11, "static_rules"),
        (25, "vrrp_instance.virtual_rules"), (26, "vrrp_instance.virtual_rules"),
    },
}


def sample_name(path: Path) -> str:
    return path.name.removesuffix(".gz")


def sample_text(path: Path) -> str:
    raw = path.read_bytes()
    return (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode()


def run_import(
    path: Path, capsys: pytest.CaptureFixture[str], config_id: str = "lb"
) -> tuple[m.Config, list[re.Match[str]]]:
    assert main(["import-keepalived", "--config-id", config_id, str(path)]) == 0
    out, err = capsys.readouterr()
    config = parse_config(out, f"{path.name}.yaml")  # raises if the loader refuses it
    notes = []
    for line in err.splitlines():
        match = NOTE_RE.match(line)
        assert match is not None, f"not a FILE:LINE: keyword: message line: {line!r}"
        notes.append(match)
    return config, notes


def test_samples_are_installed() -> None:
    # CI installs the keepalived package (deploy/install-deps.sh); without the samples
    # the import would go untested on real-world files, so this fails rather than skips.
    assert len(SAMPLES) >= 20, f"keepalived samples missing under {SAMPLES_DIR}"


@pytest.mark.parametrize("path", SAMPLES, ids=sample_name)
def test_sample_imports_and_lists_what_it_leaves_out(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, notes = run_import(path, capsys)
    assert all(n["file"] == str(path) for n in notes)
    got = {(int(n["line"]), n["keyword"]) for n in notes}

    expected = set(EXPECTED_NOTES.get(sample_name(path), set()))
    lines = sample_text(path).splitlines()
    for number, line in enumerate(lines, start=1):
        words = re.sub(r"[#!].*", "", line).split()
        # every top-level block the importer does not convert must be listed
        if line[:1].isalpha() and words and words[0] not in CONVERTED_SECTIONS:
            assert (number, words[0]) in got, f"line {number} ({words[0]}) not listed"
    assert got == expected

    # and what the sample does hold arrives: every vrrp_instance / virtual_server it
    # declares (outside conditional lines) is in the loaded configuration
    declared = [
        line.split()[1] for line in lines
        if line.startswith("vrrp_instance ") and "{" in line
    ]
    assert sorted(config.vrrp_instances) == sorted(declared)
    servers = sum(1 for line in lines if re.match(r"^virtual_server (?!group)\S+", line))
    groups = sum(1 for line in lines if line.startswith("virtual_server group"))
    assert len(config.virtual_servers) >= servers + groups
    if not groups:
        assert len(config.virtual_servers) == servers


def sample(name: str) -> Path:
    for path in SAMPLES:
        if sample_name(path) == name:
            return path
    pytest.fail(f"sample {name} is not installed")


def test_http_and_ssl_checks_with_digests(capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = run_import(sample("keepalived.conf.SSL_GET"), capsys)
    ssl_vs, http_vs = config.virtual_servers
    (ssl,) = ssl_vs.real_servers[0].checks
    (http,) = http_vs.real_servers[0].checks
    assert isinstance(ssl, m.SslGetCheck) and isinstance(http, m.HttpGetCheck)
    for check in (ssl, http):
        assert [(u.path, u.digest) for u in check.url] == [
            ("/", "ff20ad2481f97b1754ef3e12ecd3a9cc"),
            ("/mrtg/", "9b3a0c85a887a256d6939da88aabd8cd"),
        ]
        assert (check.connect_timeout, check.retry, check.delay_before_retry) == (3.0, 3, 3.0)
        assert check.delay_loop == 6.0  # from the virtual server
    vi1 = config.vrrp_instances["VI_1"]
    assert vi1.authentication is None  # AH is not carried
    assert [str(v.ip) for v in vi1.virtual_ipaddress] == [
        "192.168.200.16", "192.168.200.17", "192.168.200.18",
    ]


def test_mail_settings_and_smtp_alert(capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = run_import(sample("keepalived.conf.vrrp"), capsys)
    g = config.global_defs
    assert g.notification_email == ("acassen",)
    assert g.notification_email_from == "Alexandre.Cassen@firewall.loc"
    assert g.smtp_server == m.SmtpServer("192.168.200.1")
    assert g.smtp_connect_timeout == 30.0
    assert all(inst.smtp_alert is True for inst in config.vrrp_instances.values())


def test_ping_and_udp_checks(capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = run_import(sample("keepalived.conf.PING_CHECK"), capsys)
    checks = [c for vs in config.virtual_servers for rs in vs.real_servers for c in rs.checks]
    assert checks and all(isinstance(c, m.PingCheck) for c in checks)
    config, _ = run_import(sample("keepalived.conf.UDP_CHECK"), capsys)
    checks = [c for vs in config.virtual_servers for rs in vs.real_servers for c in rs.checks]
    assert checks and all(isinstance(c, m.UdpCheck) for c in checks)


def test_status_code_ranges(capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = run_import(sample("keepalived.conf.status_code"), capsys)
    (check,) = config.virtual_servers[0].real_servers[0].checks
    assert isinstance(check, m.SslGetCheck)
    first, second = check.url
    assert [str(r) for r in first.status_code] == ["200-299", "400-499", "503", "505"]
    assert second.accepts(200) and not second.accepts(201)
    assert second.digest == "9b3a0c85a887a256d6939da88aabd8cd"


def test_quorum_alpha_omega(capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = run_import(sample("keepalived.conf.quorum"), capsys)
    (vs,) = config.virtual_servers
    assert (vs.quorum, vs.hysteresis, vs.alpha, vs.omega, vs.lb_algo) == (7, 2, True, True, "wrr")
    assert vs.quorum_up is not None and vs.quorum_up.argv == ("/usr/local/sbin/quorum-up.sh",)
    assert [str(rs) for rs in vs.real_servers] == [f"10.0.0.{i}:8080" for i in range(1, 11)]
    assert all(c.connect_port == 80 for rs in vs.real_servers for c in rs.checks)  # type: ignore[union-attr]


def test_fwmark_and_sorry_server(capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = run_import(sample("keepalived.conf.fwmark"), capsys)
    (vs,) = config.virtual_servers
    assert (vs.fwmark, vs.persistence_timeout, str(vs)) == (1, 900, "FWM 1/TCP")
    assert [rs.port for rs in vs.real_servers] == [0, 0]
    config, _ = run_import(sample("keepalived.conf.sample"), capsys)
    (vs,) = config.virtual_servers
    assert str(vs.sorry_server) == "192.168.200.200:1358"
    assert config.vrrp_instances["VI_1"].nopreempt is True


def test_misc_check_and_inhibit(capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = run_import(sample("keepalived.conf.misc_check_arg"), capsys)
    (check,) = config.virtual_servers[0].real_servers[0].checks
    assert isinstance(check, m.MiscCheck)
    assert check.misc_path.argv == ("/usr/local/bin/script.sh", "arg1", "arg2")
    assert check.misc_dynamic is False
    config, _ = run_import(sample("keepalived.conf.inhibit"), capsys)
    assert config.virtual_servers[0].real_servers[0].inhibit_on_failure is True


def test_smtp_host_blocks_become_checks(capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = run_import(sample("keepalived.conf.SMTP_CHECK"), capsys)
    single, three, extended = config.virtual_servers[0].real_servers
    assert len(single.checks) == 1
    assert [str(c.connect_ip) for c in three.checks] == [  # type: ignore[union-attr]
        "172.16.1.11", "192.168.155.10", "64.233.167.99",
    ]
    assert [(c.connect_port, c.bindto) for c in extended.checks] == [  # type: ignore[union-attr]
        (25, ipaddress.ip_address("172.16.1.2")),
        (25, ipaddress.ip_address("192.168.155.2")),
        (587, None),
    ]
    assert all(c.helo_name == "foo.bar.com" for c in extended.checks)  # type: ignore[union-attr]


def test_ipv6_service(capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = run_import(sample("keepalived.conf.IPv6"), capsys)
    (vs,) = config.virtual_servers
    assert str(vs) == "[ae00::1]:80/TCP"
    assert str(vs.real_servers[0]) == "[ae00::10]:25"


def test_tracking_sample(capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = run_import(sample("keepalived.conf.vrrp.localcheck"), capsys)
    assert config.vrrp_scripts["chk_sshd"].script.argv == ("killall", "-0", "sshd")
    assert (config.vrrp_scripts["chk_sshd"].weight, config.vrrp_scripts["chk_sshd"].fall) == (-4, 2)
    vi1 = config.vrrp_instances["VI_1"]
    assert vi1.track_interface == (
        m.TrackInterface("eth1", 2), m.TrackInterface("eth2", -2), m.TrackInterface("eth3"),
    )
    assert vi1.track_script[:2] == (m.TrackScript("chk_sshd"), m.TrackScript("chk_haproxy", 2))
    assert len(config.vrrp_instances) == 9
    config, _ = run_import(sample("keepalived.conf.track_interface"), capsys)
    vi1 = config.vrrp_instances["VI_1"]
    assert vi1.interface == "eth0.1"
    assert [v.dev for v in vi1.virtual_ipaddress] == [None, "eth1", "eth2"]


def test_sync_groups_and_lvs_sync_daemon(capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = run_import(sample("keepalived.conf.vrrp.sync"), capsys)
    assert config.vrrp_sync_groups["G1"].group == (
        "VI_1", "VI_2", "VI_5", "VI_6", "VI_7", "VI_8", "VI_9",
    )
    assert config.vrrp_sync_groups["G2"].group == ("VI_3", "VI_4")
    notify = config.vrrp_sync_groups["G1"].notify_master
    assert notify is not None and notify.argv == ("/usr/local/bin/vrrp.mast", "arg1", "arg2")
    config, _ = run_import(sample("keepalived.conf.vrrp.lvs_syncd"), capsys)
    assert config.global_defs.lvs_sync_daemon == m.LvsSyncDaemon("eth1", "VI_1")
    assert config.vrrp_sync_groups == {}  # keepalived itself ignores its members (no group { })


def test_virtual_server_group_sample(capsys: pytest.CaptureFixture[str]) -> None:
    config, _ = run_import(sample("keepalived.conf.virtual_server_group"), capsys)
    names = [str(vs) for vs in config.virtual_servers]
    assert names == [
        "10.0.0.1:8080/TCP", "10.0.0.2:80/TCP", "192.168.200.1:1358/TCP",
        *(f"192.168.200.{i}:80/TCP" for i in range(3, 11)),
        "FWM 1/TCP", "FWM 2/TCP",
    ]
    assert all(len(vs.real_servers) == 2 for vs in config.virtual_servers)


def test_conditional_sample_with_its_config_ids(capsys: pytest.CaptureFixture[str]) -> None:
    path = sample("keepalived.conf.conditional_conf")
    for config_id, priority in (("high", 170), ("low", 85)):
        config, notes = run_import(path, capsys, config_id)
        script = config.vrrp_scripts["check_VI_0"]
        assert script.script.argv == (f"/etc/keepalived/scripts/check_{config_id}_VI_0.sh",)
        inst = config.vrrp_instances["VI_0"]
        assert (inst.priority, inst.version, inst.advert_int) == (priority, 3, 12.0)
        assert inst.track_script == (m.TrackScript("check_VI_0"),)
        assert inst.track_interface == (m.TrackInterface("eth3"), m.TrackInterface("eth2", 20))
        keywords = {n["keyword"] for n in notes}
        assert "net_namespace" in keywords  # the line for this id applies, and is not done
        assert "vrrp_instance.use_vmac" not in keywords and inst.use_vmac
