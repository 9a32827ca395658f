"""keepalived.conf import: each construct converted, what is left out listed, output loads."""

from __future__ import annotations

import gzip
import ipaddress
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hacluster.cli import main
from hacluster.config import model as m
from hacluster.config.keepalived_import import (
    ImportResult,
    KeepalivedSyntaxError,
    import_keepalived,
    read_keepalived,
)
from hacluster.config.loader import parse_config

DATA = Path(__file__).resolve().parents[1] / "data" / "keepalived"
NOTE_RE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<keyword>\S+): (?P<message>.+)$")


def load(result: ImportResult) -> m.Config:
    """The converted YAML through the real loader (raises ConfigError if it is refused)."""
    return parse_config(result.yaml_text, "imported.yaml")


def convert(
    tmp_path: Path, text: str, config_id: str | None = None
) -> tuple[m.Config, list[str]]:
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    result = import_keepalived(path, config_id)
    return load(result), [str(s) for s in result.skipped]


def notes_about(notes: list[str], keyword: str) -> list[str]:
    return [n for n in notes if f": {keyword}: " in n]


INSTANCE = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        10.9.0.1/24
    }
    %s
}
"""


# --------------------------------------------------------------------------- the full sample


def test_full_sample_with_includes_converts_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")  # includes are relative to the including file, not the cwd
    result = import_keepalived(DATA / "full.conf")
    config = load(result)
    g = config.global_defs
    assert g.router_id == "lvs-a"
    assert g.enable_script_security is True
    assert g.script_user == "root"
    assert (g.vrrp_garp_master_delay, g.vrrp_garp_master_repeat) == (3, 2)
    assert g.lvs_sync_daemon == m.LvsSyncDaemon(interface="eth1", instance="VI_1", syncid=7)

    script = config.vrrp_scripts["chk_proxy"]
    assert script.script.argv == ("/usr/local/bin/check-proxy", "--quiet")
    assert (script.interval, script.timeout, script.weight, script.rise, script.fall) == (
        2.0, 3.0, -20, 2, 3,
    )
    track_file = config.vrrp_track_files["tf_maint"]
    assert (track_file.file, track_file.weight, track_file.init_file) == (Path("/run/maint"), 5, 0)

    vi1 = config.vrrp_instances["VI_1"]
    assert (vi1.state, vi1.interface, vi1.virtual_router_id, vi1.priority) == (
        "MASTER", "eth0", 51, 150,
    )
    assert vi1.authentication == m.Authentication("PASS", "s3cret")
    assert vi1.unicast_src_ip == ipaddress.ip_address("10.0.0.1")
    assert vi1.unicast_peers == (
        m.UnicastPeer(ipaddress.ip_address("10.0.0.2")),
        m.UnicastPeer(ipaddress.ip_address("10.0.0.3"), min_ttl=250, max_ttl=255),
    )
    assert [str(v) for v in vi1.virtual_ipaddress] == [
        "10.99.0.100/24 dev eth0 label eth0:1",
        "10.99.0.101/24 dev eth1 scope global",
        "10.99.0.102/32",
    ]
    assert vi1.track_interface == (m.TrackInterface("eth1", -30), m.TrackInterface("eth2"))
    assert vi1.track_script == (m.TrackScript("chk_proxy", -25),)
    assert vi1.track_file == (m.TrackFile("tf_maint"),)
    assert vi1.notify_master is not None
    assert vi1.notify_master.argv == ("/etc/hacluster/notify.sh", "master")
    assert vi1.notify is not None and vi1.notify.argv == ("/etc/hacluster/notify-any.sh",)
    assert vi1.garp_master_delay == 5

    vi2 = config.vrrp_instances["VI_2"]  # its '{' opens on the next line
    assert vi2.nopreempt is True
    assert [str(v.address) for v in vi2.virtual_ipaddress] == ["10.98.0.100/24"]
    group = config.vrrp_sync_groups["G1"]
    assert group.group == ("VI_1", "VI_2")
    assert group.notify_fault is not None
    assert group.notify_fault.argv == ("/etc/hacluster/group.sh", "fault")

    web, mark, dns, smtp = config.virtual_servers
    assert (str(web), web.lb_algo, web.lb_kind, web.persistence_timeout) == (
        "10.99.0.100:80/TCP", "wrr", "NAT", 300,
    )
    assert (web.delay_loop, web.quorum, web.hysteresis, web.inhibit_on_failure) == (2.0, 2, 1, True)
    assert str(web.sorry_server) == "10.99.0.50:8080"
    assert web.quorum_up is not None and web.quorum_up.argv[-1] == "up"
    # the real servers come from ../servers/web-*.conf, included inside the block
    rs1, rs2 = web.real_servers
    assert (str(rs1), rs1.weight) == ("10.99.0.11:80", 3)
    (http,) = rs1.checks
    assert isinstance(http, m.HttpGetCheck)
    assert [u.path for u in http.url] == ["/health", "/ready"]
    assert http.url[0].digest == "9b3a0c85a887a256d6939da88aabd8cd"
    assert http.url[0].status_code == (m.StatusCodeRange(200, 200),)
    assert http.url[1].status_code == (m.StatusCodeRange(200, 299),)
    assert (http.retry, http.connect_timeout, http.delay_loop) == (4, 3.0, 2.0)  # nb_get_retry
    assert isinstance(rs2.checks[0], m.TcpCheck)

    assert (mark.fwmark, mark.lb_algo, mark.lb_kind, mark.persistence_timeout) == (
        7, "sh", "DR", 360,
    )
    (ssl,) = mark.real_servers[0].checks
    assert isinstance(ssl, m.SslGetCheck)
    assert (ssl.enable_sni, ssl.http_protocol, ssl.connect_port) == (True, "1.1", 443)
    assert ssl.url[0].status_code == (m.StatusCodeRange(200, 299), m.StatusCodeRange(301, 301))

    assert (str(dns), dns.lb_algo) == ("10.99.0.100:53/UDP", "rr")
    dns_check, misc = (rs.checks[0] for rs in dns.real_servers)
    assert isinstance(dns_check, m.DnsCheck)
    assert (dns_check.type, dns_check.name, dns_check.retry) == ("A", "www.example.net", 2)
    assert isinstance(misc, m.MiscCheck)
    assert misc.misc_path.argv == ("/usr/local/bin/probe", "10.99.0.32")
    assert (misc.misc_timeout, misc.misc_dynamic) == (5.0, True)

    kinds = sorted(type(c).__name__ for c in smtp.real_servers[0].checks)
    assert kinds == ["SmtpCheck", "TcpCheck"]
    smtp_check = next(c for c in smtp.real_servers[0].checks if isinstance(c, m.SmtpCheck))
    assert smtp_check.helo_name == "lb.example.net"

    notes = [str(s) for s in result.skipped]
    main_file, web_file = str(DATA / "full.conf"), str(DATA / "conf.d" / "10-web.conf")
    in_group = "VI_1 is in a sync group: keepalived ignores the weight"
    assert notes == [
        f"{main_file}:53: vrrp_instance.track_interface: {in_group} -30 (it only faults "
        "the instance), and so does hacluster",
        f"{main_file}:57: vrrp_instance.track_script: {in_group} -25 (it only faults "
        "the instance), and so does hacluster",
        f"{main_file}:60: vrrp_instance.track_file: {in_group} 5 (it only faults "
        "the instance), and so does hacluster",
        f"{web_file}:8: virtual_server.persistence_granularity: not supported",
    ]
    assert config.global_defs.notification_email == ("ops@example.net",)


@pytest.mark.keepalived
@pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived is not installed")
def test_full_sample_is_accepted_by_keepalived_itself() -> None:
    # The sample is real keepalived syntax, not a dialect only this importer reads.
    proc = subprocess.run(
        ["keepalived", "-t", "-n", "-l", "-D", "-f", str(DATA / "full.conf")],
        capture_output=True, text=True, timeout=30, cwd=DATA, check=False,
        start_new_session=True,
    )
    output = proc.stdout + proc.stderr
    # 5: keepalived's "configuration has warnings"; here only interfaces missing on this
    # machine, defaults it fills in, and the deprecated nb_get_retry this sample uses on purpose
    assert proc.returncode in (0, 5), output
    allowed = ("doesn't exist", "Non-existent interface", "nb_get_retry is deprecated",
               "setting default")
    unexpected = [line for line in output.splitlines()
                  if line.strip() and not any(a in line for a in allowed)]
    assert unexpected == []


# --------------------------------------------------------------------------- lexing


def test_comments_and_quoted_strings(tmp_path: Path) -> None:
    config, notes = convert(
        tmp_path,
        """
        # a comment line
        ! another one
        vrrp_script chk { # trailing comment
            script "/bin/check --tag 'a b' #not-a-comment !bang"   ! comment after the quotes
            interval 2 # comment
        }
        vrrp_instance VI_1 {
            interface eth0 ! comment
            virtual_router_id 51
            virtual_ipaddress {
                10.9.0.1/24 # the VIP
            }
            notify_master '/bin/notify "quoted" master'
            notify_backup /bin/notify" backup"
        }
        """,
    )
    assert notes == []
    script = config.vrrp_scripts["chk"]
    assert script.script.argv == ("/bin/check", "--tag", "a b", "#not-a-comment", "!bang")
    assert script.interval == 2.0
    inst = config.vrrp_instances["VI_1"]
    assert inst.interface == "eth0"
    assert inst.notify_master is not None
    assert inst.notify_master.argv == ("/bin/notify", "quoted", "master")
    assert inst.notify_backup is not None  # adjacent quoted text joins the word
    assert inst.notify_backup.argv == ("/bin/notify", "backup")


def test_escapes_as_keepalived_reads_them(tmp_path: Path) -> None:
    config, notes = convert(
        tmp_path,
        r"""
        virtual_server 10.9.0.1 80 {
            protocol TCP
            real_server 10.9.0.10 80 {
                HTTP_GET {
                    url {
                        path /a\d"b\x41\101"c
                        virtualhost "{braces} stay"
                        regex "\\d+\t"
                    }
                }
            }
        }
        """,
    )
    assert notes == []
    (check,) = config.virtual_servers[0].real_servers[0].checks
    assert isinstance(check, m.HttpGetCheck)
    url = check.url[0]
    # \d is just d (as in keepalived), \x41 and \101 are A, \\ is one backslash
    assert (url.path, url.virtualhost, url.regex) == ("/adbAAc", "{braces} stay", "\\d+\t")


def test_blocks_on_one_line_and_braces_on_the_next(tmp_path: Path) -> None:
    config, notes = convert(
        tmp_path,
        """
        vrrp_script chk { script /bin/true }
        vrrp_instance VI_1
        {
            interface eth0
            virtual_router_id 51
            virtual_ipaddress { 10.9.0.1/24 }
            track_script { chk }
        }
        """,
    )
    assert notes == []
    assert config.vrrp_scripts["chk"].script.argv == ("/bin/true",)
    inst = config.vrrp_instances["VI_1"]
    assert inst.track_script == (m.TrackScript("chk"),)
    assert str(inst.virtual_ipaddress[0].address) == "10.9.0.1/24"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("\n\n{\n}\n", 3, "without a keyword"),
        ('vrrp_script x {\n  script "/bin/true\n}\n', 2, "unterminated"),
    ],
)
def test_broken_structure_is_an_error_with_its_line(
    tmp_path: Path, text: str, line: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    with pytest.raises(KeepalivedSyntaxError) as info:
        read_keepalived(path)
    assert (info.value.file, info.value.line) == (str(path), line)
    assert message in info.value.message
    assert main(["import-keepalived", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"{path}:{line}: ")


def test_unreadable_inputs_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.conf"
    assert main(["import-keepalived", str(missing)]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["import-keepalived", str(tmp_path)]) == 1
    assert "is a directory" in capsys.readouterr().err
    binary = tmp_path / "binary.conf"
    binary.write_bytes(b"\x7fELF\x00\x01\x02")
    assert main(["import-keepalived", str(binary)]) == 1
    assert "not a text file" in capsys.readouterr().err


def test_gzipped_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "keepalived.conf.gz"
    path.write_bytes(gzip.compress(b"global_defs {\n    router_id gz\n}\n"))
    config = load(import_keepalived(path))
    assert config.global_defs.router_id == "gz"


# --------------------------------------------------------------------------- include


def test_include_glob_is_relative_to_the_including_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etc" / "conf.d" / "more").mkdir(parents=True)
    (tmp_path / "etc" / "keepalived.conf").write_text(
        "include conf.d/*.conf\nglobal_defs {\n    include conf.d/more/router\n}\n"
    )
    (tmp_path / "etc" / "conf.d" / "b.conf").write_text(INSTANCE % "priority 120")
    (tmp_path / "etc" / "conf.d" / "a.conf").write_text(
        "vrrp_script chk {\n    script /bin/true\n}\n"
    )
    (tmp_path / "etc" / "conf.d" / "more" / "router").write_text("router_id inc\nbogus_kw 1\n")
    monkeypatch.chdir(tmp_path)
    result = import_keepalived("etc/keepalived.conf")
    config = load(result)
    assert config.global_defs.router_id == "inc"
    assert list(config.vrrp_scripts) == ["chk"]  # a.conf before b.conf: globs are sorted
    assert config.vrrp_instances["VI_1"].priority == 120
    # notes name included files as seen from where the main file was named
    assert [str(s) for s in result.skipped] == [
        "etc/conf.d/more/router:2: global_defs.bogus_kw: unknown keyword; ignored, as "
        "keepalived does"
    ]


def test_include_with_no_match_is_noted(tmp_path: Path) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text("include /nonexistent-dir-for-test/*.conf\n" + INSTANCE % "")
    result = import_keepalived(path)
    assert "VI_1" in load(result).vrrp_instances
    assert [str(s) for s in result.skipped] == [
        f"{path}:1: include: no file matches '/nonexistent-dir-for-test/*.conf'; nothing included"
    ]


def test_included_files_keepalived_would_skip_are_noted(tmp_path: Path) -> None:
    (tmp_path / "inc").mkdir()
    script = tmp_path / "inc" / "a-script.conf"
    script.write_text("global_defs { router_id from-script }\n")
    script.chmod(0o755)
    (tmp_path / "inc" / "b-binary.conf").write_bytes(b"\x00\x01garbage")
    (tmp_path / "inc" / "c-good.conf").write_text("global_defs { router_id good }\n")
    path = tmp_path / "keepalived.conf"
    path.write_text("include inc/*\n")
    result = import_keepalived(path)
    assert load(result).global_defs.router_id == "good"
    assert [str(s) for s in result.skipped] == [
        f"{path}:1: include: {tmp_path}/inc/a-script.conf is not a regular non-executable "
        "file; skipped, as keepalived",
        f"{path}:1: include: {tmp_path}/inc/b-binary.conf: not a text file "
        "(it contains NUL bytes); skipped",
    ]


def test_include_loop_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.conf").write_text("include b.conf\n")
    (tmp_path / "b.conf").write_text("\ninclude a.conf\n")
    with pytest.raises(KeepalivedSyntaxError) as info:
        read_keepalived(tmp_path / "a.conf")
    assert info.value.line == 2
    assert "includes itself" in info.value.message


# --------------------------------------------------------------------------- conditionals


CONDITIONAL = """
$PRIO=100
@main $PRIO=200
$NET=10.9.0
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority $PRIO
    virtual_ipaddress {
        ${NET}.1/24
    }
    @main unicast_src_ip ${NET}.2
    @^main unicast_src_ip ${NET}.3
}
"""


@pytest.mark.parametrize(
    ("config_id", "priority", "src", "skipped_lines"),
    [("main", 200, "10.9.0.2", [13]), ("backup", 100, "10.9.0.3", [3, 12])],
)
def test_conditional_lines_and_parameters(
    tmp_path: Path, config_id: str, priority: int, src: str, skipped_lines: list[int]
) -> None:
    config, notes = convert(tmp_path, CONDITIONAL, config_id=config_id)
    inst = config.vrrp_instances["VI_1"]
    assert inst.priority == priority
    assert str(inst.unicast_src_ip) == src
    assert str(inst.virtual_ipaddress[0].address) == "10.9.0.1/24"
    assert [int(NOTE_RE.match(n)["line"]) for n in notes] == skipped_lines  # type: ignore[index]
    assert all(f"not for config id '{config_id}'" in n for n in notes)


def test_without_a_config_id_conditional_lines_are_left_out(tmp_path: Path) -> None:
    config, notes = convert(tmp_path, CONDITIONAL, config_id=None)
    assert config.vrrp_instances["VI_1"].priority == 100
    assert config.vrrp_instances["VI_1"].unicast_src_ip is None
    assert len(notes) == 3
    assert all("needs a config id" in n for n in notes)


# --------------------------------------------------------------------------- VRRP


def test_virtual_ipaddress_options(tmp_path: Path) -> None:
    config, notes = convert(
        tmp_path,
        INSTANCE % """
        virtual_ipaddress_excluded {
            fd00::1/64 dev eth1 no_track
            10.9.1.1/24 brd 10.9.1.255 dev eth1 label eth1:vip
            10.9.1.2 scope universe
            10.9.1.3 preferred_lft forever home
            10.9.1.4/24 wibble
            not-an-address
        }
        """,
    )
    excluded = [str(v) for v in config.vrrp_instances["VI_1"].virtual_ipaddress_excluded]
    assert excluded == [
        "fd00::1/64 dev eth1 no_track",
        "10.9.1.1/24 dev eth1 label eth1:vip",
        "10.9.1.2/32",
        "10.9.1.3/32",
        "10.9.1.4/24",
    ]
    kinds = [NOTE_RE.match(n)["keyword"] for n in notes]  # type: ignore[index]
    assert kinds == [
        "vrrp_instance.virtual_ipaddress_excluded.brd",
        "vrrp_instance.virtual_ipaddress_excluded.scope",
        "vrrp_instance.virtual_ipaddress_excluded.preferred_lft",
        "vrrp_instance.virtual_ipaddress_excluded.home",
        "vrrp_instance.virtual_ipaddress_excluded",
        "vrrp_instance.virtual_ipaddress_excluded",
    ]
    assert "'wibble'" in notes[4] and "'not-an-address'" in notes[5]


def test_track_blocks_with_weights(tmp_path: Path) -> None:
    config, notes = convert(
        tmp_path,
        """
        vrrp_script a { script /bin/true
            weight 10 reverse }
        vrrp_script b { script /bin/true }
        vrrp_sync_group G { group { VI_1 }
            track_script { b weight 5 }
            track_interface { eth9 weight -4 reverse }
        }
        """
        + INSTANCE % """
        track_script {
            a
            b weight -10 noreverse
            ghost
        }
        track_interface {
            eth1
            eth2 weight 20
            eth3 weight -20 reverse
        }
        """,
    )
    a = config.vrrp_scripts["a"]
    assert (a.weight, a.reverse) == (10, True)
    inst = config.vrrp_instances["VI_1"]
    assert inst.track_script == (m.TrackScript("a"), m.TrackScript("b", -10, reverse=False))
    assert inst.track_interface == (
        m.TrackInterface("eth1"),
        m.TrackInterface("eth2", 20),
        m.TrackInterface("eth3", -20, reverse=True),
    )
    group = config.vrrp_sync_groups["G"]
    assert group.track_script == (m.TrackScript("b", 5),)
    assert group.track_interface == (m.TrackInterface("eth9", -4, reverse=True),)
    # in a sync group, keepalived (and hacluster) ignore the members' weights: noted
    weighted = [n for n in notes if "is in a sync group: keepalived ignores the weight" in n]
    lines = [NOTE_RE.match(n)["line"] for n in weighted]  # type: ignore[index]
    assert lines == ["18", "19", "24", "25"]
    # the reference to an undefined script is refused by the loader and listed
    (note,) = (n for n in notes if n not in weighted)
    assert NOTE_RE.match(note)["line"] == "20"  # type: ignore[index]
    assert "track_script: no vrrp_script named 'ghost'" in note


def test_authentication(tmp_path: Path) -> None:
    text = """
    vrrp_instance VI_%d {
        interface eth0
        virtual_router_id %d
        virtual_ipaddress { 10.9.0.%d }
        %s
        authentication {
            auth_type %s
            auth_pass %s
        }
    }
    """
    config, notes = convert(
        tmp_path,
        text % (1, 1, 1, "", "PASS", "short")
        + text % (2, 2, 2, "", "PASS", "longer-than-8")
        + text % (3, 3, 3, "", "AH", "secret")
        + text % (4, 4, 4, "version 3", "PASS", "secret")
        + text % (5, 5, 5, "", "pass", "secret"),
    )
    instances = config.vrrp_instances
    assert instances["VI_1"].authentication == m.Authentication("PASS", "short")
    assert instances["VI_2"].authentication == m.Authentication("PASS", "longer-t")
    assert instances["VI_3"].authentication is None
    assert instances["VI_4"].authentication is None  # keepalived ignores it under VRRPv3
    assert instances["VI_5"].authentication is None  # "pass": keepalived knows only PASS
    assert [NOTE_RE.match(n)["keyword"] for n in notes] == [  # type: ignore[index]
        "vrrp_instance.authentication.auth_pass",
        "vrrp_instance.authentication.auth_type",
        "vrrp_instance.authentication",
        "vrrp_instance.authentication.auth_type",
    ]
    assert "first 8" in notes[0] and "AH" in notes[1] and "VRRPv3" in notes[2]
    assert "only PASS and AH (in capitals)" in notes[3]


def test_unicast_peers_and_old_names(tmp_path: Path) -> None:
    config, notes = convert(
        tmp_path,
        """
        global_defs { lvs_id old-router }
        vrrp_instance VI_1 {
            interface eth0
            virtual_router_id 51
            virtual_ipaddress { 10.9.0.1 }
            vrrp_unicast_bind 10.9.0.2
            vrrp_unicast_peer 10.9.0.3
            lvs_sync_daemon_interface eth1
        }
        vrrp_instance VI_2 {
            interface eth0
            virtual_router_id 52
            virtual_ipaddress { 10.9.0.5 }
            unicast_src_ip 10.9.0.2
            unicast_peer {
                10.9.0.6 max_ttl 254
                10.9.0.7
                nonsense
            }
        }
        """,
    )
    assert config.global_defs.router_id == "old-router"
    assert config.global_defs.lvs_sync_daemon == m.LvsSyncDaemon("eth1", "VI_1")
    vi1, vi2 = config.vrrp_instances.values()
    assert str(vi1.unicast_src_ip) == "10.9.0.2"
    assert [str(p.ip) for p in vi1.unicast_peers] == ["10.9.0.3"]
    assert [(str(p.ip), p.max_ttl) for p in vi2.unicast_peers] == [
        ("10.9.0.6", 254), ("10.9.0.7", None),
    ]
    (note,) = notes
    assert "vrrp_instance.unicast_peer: not an IP address: 'nonsense'" in note


def test_incomplete_instance_is_dropped_and_its_group_member_with_it(tmp_path: Path) -> None:
    config, notes = convert(
        tmp_path,
        """
        vrrp_instance VI_1 {
            virtual_router_id 51
            virtual_ipaddress { 10.9.0.1 }
        }
        vrrp_instance VI_2 {
            interface eth0
            virtual_router_id 52
            priority high
            virtual_ipaddress { 10.9.0.2 }
        }
        vrrp_sync_group G {
            group {
                VI_1
                VI_2
            }
        }
        vrrp_sync_group EMPTY {
            group {
                VI_3
            }
        }
        """,
    )
    assert list(config.vrrp_instances) == ["VI_2"]
    assert config.vrrp_instances["VI_2"].priority == 100  # the bad value is left out
    assert config.vrrp_sync_groups["G"].group == ("VI_2",)
    assert "EMPTY" not in config.vrrp_sync_groups
    text = "\n".join(notes)
    assert ":2: vrrp_instance: VI_1 lacks interface" in text
    assert ":9: vrrp_instance.priority: not a whole number: 'high'" in text
    assert ":14: vrrp_sync_group.group: no vrrp_instance named 'VI_1'" in text
    assert ":20: vrrp_sync_group.group: no vrrp_instance named 'VI_3'" in text


def test_what_the_loader_refuses_is_dropped_and_listed(tmp_path: Path) -> None:
    config, notes = convert(
        tmp_path,
        """
        vrrp_instance VI_1 {
            state MASTER
            nopreempt
            interface eth0
            virtual_router_id 51
            virtual_ipaddress {
                10.9.0.1
                10.9.0.1 label eth0:1
            }
        }
        vrrp_instance VI_1 {
            interface eth1
            virtual_router_id 60
            virtual_ipaddress { 10.9.0.9 }
        }
        vrrp_instance VI_2 {
            interface eth0
            virtual_router_id 52
            virtual_ipaddress { 10.9.0.1 }
            advert_int 0.5
        }
        """,
    )
    vi1 = config.vrrp_instances["VI_1"]
    assert (vi1.interface, vi1.nopreempt, len(vi1.virtual_ipaddress)) == ("eth0", False, 1)
    # its only address was refused: left without VIPs, as keepalived would run it
    assert config.vrrp_instances["VI_2"].virtual_ipaddress == ()
    text = "\n".join(notes)
    assert ":4: vrrp_instance.nopreempt: keepalived clears nopreempt with state MASTER" in text
    assert ":9: vrrp_instance.virtual_ipaddress: 10.9.0.1 is already a virtual address" in text
    assert ":12: vrrp_instance: VI_1 is already defined on line 2" in text
    assert ":21: vrrp_instance.advert_int: VRRPv2 takes whole seconds (up to 255): " \
           "keepalived makes 0.5 1" in text


def test_scripts_with_shell_syntax_and_a_global_script_group_are_noted(tmp_path: Path) -> None:
    config, notes = convert(
        tmp_path,
        """
        global_defs { script_user keepalived_script scriptgroup }
        vrrp_script port { script "</dev/tcp/127.0.0.1/80" }
        vrrp_script plain {
            script /usr/bin/pgrep haproxy
            user nobody nogroup
        }
        vrrp_script nothing { interval 2 }
        """
        + INSTANCE % 'notify_master "/bin/notify master" root wheel',
    )
    assert config.global_defs.script_user == "keepalived_script"
    assert config.vrrp_scripts["plain"].script.argv == ("/usr/bin/pgrep", "haproxy")
    assert (config.vrrp_scripts["plain"].user, config.vrrp_scripts["plain"].group) == (
        "nobody", "nogroup",
    )
    assert "nothing" not in config.vrrp_scripts
    inst = config.vrrp_instances["VI_1"]
    assert inst.notify_master == m.NotifyCommand(
        ("/bin/notify", "master"), "/bin/notify master", "root", "wheel"
    )
    # The user and group words are carried over now; only global script_user's group
    # (no counterpart) and what needs a shell are listed.
    assert [NOTE_RE.match(n)["keyword"] for n in notes] == [  # type: ignore[index]
        "global_defs.script_user",
        "vrrp_script.script",
        "vrrp_script",
    ]
    assert "'scriptgroup' is not supported" in notes[0]
    assert "without a shell" in notes[1]


def test_notify_scripts_carry_their_user_and_group(tmp_path: Path) -> None:
    result_config, notes = convert(
        tmp_path,
        """
        vrrp_sync_group G1 {
            group { VI_1 }
            notify_master "/bin/g master" nobody
            notify "/bin/g any" nobody nogroup extra words
        }
        virtual_server 10.9.0.100 80 {
            protocol TCP
            quorum_up "/bin/q up" nobody nogroup
            quorum_down /bin/q
            real_server 10.9.0.11 80 {
                notify_up "/bin/rs up" daemon
                notify_down "/bin/rs down" daemon daemon
                MISC_CHECK {
                    misc_path "/bin/probe 10.9.0.11"
                    user nobody nogroup
                }
            }
        }
        """
        + INSTANCE % """notify_backup "/bin/n backup" nobody
    notify_fault "/bin/n fault" nobody nogroup
    notify_stop /bin/n
    notify "/bin/n any"
""",
    )
    inst = result_config.vrrp_instances["VI_1"]
    assert inst.notify_backup == m.NotifyCommand(
        ("/bin/n", "backup"), "/bin/n backup", "nobody", None
    )
    assert inst.notify_fault == m.NotifyCommand(
        ("/bin/n", "fault"), "/bin/n fault", "nobody", "nogroup"
    )
    assert inst.notify_stop == m.NotifyCommand(("/bin/n",), "/bin/n")
    assert inst.notify == m.NotifyCommand(("/bin/n", "any"), "/bin/n any")
    group = result_config.vrrp_sync_groups["G1"]
    assert group.notify_master is not None and group.notify_master.user == "nobody"
    assert group.notify is not None
    assert (group.notify.argv, group.notify.user, group.notify.group) == (
        ("/bin/g", "any"), "nobody", "nogroup",
    )
    vs = result_config.virtual_servers[0]
    assert vs.quorum_up is not None and (vs.quorum_up.user, vs.quorum_up.group) == (
        "nobody", "nogroup",
    )
    assert vs.quorum_down is not None and vs.quorum_down.user is None
    rs = vs.real_servers[0]
    assert rs.notify_up is not None and (rs.notify_up.user, rs.notify_up.group) == (
        "daemon", None,
    )
    assert rs.notify_down is not None and (rs.notify_down.user, rs.notify_down.group) == (
        "daemon", "daemon",
    )
    misc = rs.checks[0]
    assert isinstance(misc, m.MiscCheck) and (misc.user, misc.group) == ("nobody", "nogroup")
    # Only the words past user and group are left out.
    assert len(notes) == 1 and notes_about(notes, "vrrp_sync_group.notify"), notes
    assert "extra words ignored: 'extra words'" in notes[0]


def test_imported_notify_user_form_is_the_yaml_mapping(tmp_path: Path) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text(INSTANCE % 'notify_master "/bin/n master" nobody nogroup')
    result = import_keepalived(path)
    assert result.data["vrrp_instances"]["VI_1"]["notify_master"] == {
        "script": "/bin/n master", "user": "nobody", "group": "nogroup",
    }
    assert result.skipped == ()


def test_an_unusable_imported_group_name_is_dropped_and_noted(tmp_path: Path) -> None:
    config, notes = convert(
        tmp_path,
        'vrrp_script chk {\n  script /bin/true\n  user nobody no:group\n}\n'
        + INSTANCE % 'notify_master "/bin/n master" nobody bad:group',
    )
    assert config.vrrp_scripts["chk"].user == "nobody"
    assert config.vrrp_scripts["chk"].group is None
    notify = config.vrrp_instances["VI_1"].notify_master
    assert notify is not None and (notify.user, notify.group) == ("nobody", None)
    assert len(notes) == 2
    assert all("must be a group name" in n and "not carried over" in n for n in notes)


def test_global_defs(tmp_path: Path) -> None:
    config, notes = convert(
        tmp_path,
        """
        global_defs {
            router_id r1
            vrrp_version 3
            vrrp_mcast_group4 224.0.0.19
            vrrp_garp_interval 0.001
            vrrp_min_garp
            vrrp_down_timer_adverts 4
            lvs_flush
            lvs_flush_on_stop VS
            lvs_sync_daemon eth2 inst VI_1 maxlen 1400 port 8849 ttl 2 group 224.0.0.82
            vrrp_strict
            smtp_alert
            frobnicate on
        }
        """
        + INSTANCE % "",
    )
    g = config.global_defs
    assert (g.router_id, g.vrrp_version, str(g.vrrp_mcast_group4)) == ("r1", 3, "224.0.0.19")
    assert g.vrrp_garp_interval == 0.001
    assert (g.vrrp_garp_master_repeat, g.vrrp_garp_master_delay) == (1, 0)  # vrrp_min_garp
    assert (g.vrrp_down_timer_adverts, g.lvs_flush, g.lvs_flush_on_stop) == (4, True, True)
    assert g.lvs_sync_daemon == m.LvsSyncDaemon(
        "eth2", "VI_1", maxlen=1400, port=8849, ttl=2, group=ipaddress.ip_address("224.0.0.82")
    )
    assert config.vrrp_instances["VI_1"].version == 3
    assert g.smtp_alert is True
    assert g.vrrp_strict is True
    assert config.vrrp_instances["VI_1"].strict_mode is True
    assert notes[0].endswith(":14: global_defs.frobnicate: unknown keyword; ignored, as "
                             "keepalived does")
    assert len(notes) == 1


# --------------------------------------------------------------------------- virtual servers


def test_virtual_server_group_is_expanded(tmp_path: Path) -> None:
    config, notes = convert(
        tmp_path,
        """
        virtual_server_group WEB {
            10.9.0.1 80
            10.9.0.10-12 80
            10.9.1.0/31 8080
            fwmark 9
            10.9.0.300 80
        }
        virtual_server_group WEB6 {
            fd00::a-c 80
            ::ffff:0:1-2 80
        }
        virtual_server group WEB {
            protocol TCP
            lb_algo rr
            lb_kind NAT
            persistence_timeout 60
            real_server 10.9.2.1 80 {
                weight 2
                TCP_CHECK { connect_timeout 2 }
            }
        }
        virtual_server group NOPE {
            real_server 10.9.2.1 80
        }
        virtual_server group WEB6 {
            protocol TCP
            real_server fd00::1 80
        }
        """,
    )
    services = [str(vs) for vs in config.virtual_servers]
    assert services == [
        "10.9.0.1:80/TCP",
        "10.9.0.10:80/TCP", "10.9.0.11:80/TCP", "10.9.0.12:80/TCP",
        "10.9.1.0:8080/TCP", "10.9.1.1:8080/TCP",
        "FWM 9/TCP",
        "[fd00::a]:80/TCP", "[fd00::b]:80/TCP", "[fd00::c]:80/TCP",
        "[::ffff:0:1]:80/TCP", "[::ffff:0:2]:80/TCP",
    ]
    for vs in config.virtual_servers[:7]:
        assert (vs.lb_algo, vs.lb_kind, vs.persistence_timeout) == ("rr", "NAT", 60)
        (rs,) = vs.real_servers
        assert (str(rs.ip), rs.weight, len(rs.checks)) == ("10.9.2.1", 2, 1)
    text = "\n".join(notes)
    assert ":7: virtual_server_group: not an IP address: '10.9.0.300'" in text
    assert ":13: virtual_server.group: group WEB is expanded into 7 virtual_servers" in text
    assert ":23: virtual_server.group: no virtual_server_group named 'NOPE'" in text
    assert ":26: virtual_server.group: group WEB6 is expanded into 5 virtual_servers" in text
    assert len(notes) == 4  # the group's other copies are converted without repeating notes


def test_virtual_server_settings_and_old_names(tmp_path: Path) -> None:
    config, notes = convert(
        tmp_path,
        """
        virtual_server 10.9.0.1 443 {
            lb_algo lc
            lb_kind DR
            protocol sctp
            ops
            ha_suspend
            alpha
            omega
            quorum_down "/bin/quorum down"
            sorry_server 10.9.0.99 443
            sorry_server_inhibit
            sorry_server_lb_kind TUN
            virtualhost www.example.net
            connect_timeout 4
            nb_get_retry 2
            delay_before_retry 0.5
            warmup 1
            persistence_engine sip
            flag-1
            real_server 10.9.0.10 443 {
                lb_kind TUN type gue port 6080
                inhibit_on_failure off
                uthreshold 100
                lthreshold 10
                notify_down "/bin/rs down"
                alpha no
                SSL_GET { url { path / } }
            }
        }
        virtual_server fd00::1 80 {
            protocol TCP
            sorry_server fd00::99 8080
            real_server fd00::10 80
        }
        virtual_server 10.9.0.2 80 {
            real_server 10.9.0.20 80 { }
        }
        """,
    )
    vs, v6, udp = config.virtual_servers
    assert (vs.lb_algo, vs.lb_kind, vs.protocol, vs.ops, vs.ha_suspend) == (
        "lc", "DR", "SCTP", True, True,
    )
    assert (vs.alpha, vs.omega, vs.sorry_server_inhibit, vs.sorry_server_lb_kind) == (
        True, True, True, "TUN",
    )
    assert vs.quorum_down is not None and vs.quorum_down.argv == ("/bin/quorum", "down")
    assert str(vs.sorry_server) == "10.9.0.99:443"
    (rs,) = vs.real_servers
    assert (rs.lb_kind, rs.inhibit_on_failure, rs.uthreshold, rs.lthreshold, rs.alpha) == (
        "TUN", False, 100, 10, False,
    )
    (check,) = rs.checks
    assert isinstance(check, m.SslGetCheck)
    # settings of the virtual server are inherited by its checks
    assert (check.connect_timeout, check.retry, check.delay_before_retry, check.warmup) == (
        4.0, 2, 0.5, 1.0,
    )
    assert check.virtualhost == "www.example.net"
    assert str(v6.sorry_server) == "[fd00::99]:8080"
    assert str(v6.real_servers[0]) == "[fd00::10]:80"
    assert udp.protocol == "UDP"  # keepalived's (the kernel's) default, said explicitly
    kinds = [NOTE_RE.match(n)["keyword"] for n in notes]  # type: ignore[index]
    assert kinds == [
        "virtual_server.persistence_engine",
        "virtual_server.flag-1",
        "virtual_server.real_server.lb_kind",
        "virtual_server.protocol",
    ]
    assert "gue" in notes[2]
    assert "keepalived uses UDP" in notes[3]


def test_checkers(tmp_path: Path) -> None:
    config, notes = convert(
        tmp_path,
        """
        virtual_server 10.9.0.1 80 {
            protocol TCP
            delay_loop 3
            real_server 10.9.0.10 80 {
                HTTP_GET {
                    url {
                        path /a
                        digest 9B3A0C85A887A256D6939DA88AABD8CD
                        status_code 200-299 503
                        virtualhost a.example.net
                        regex "^OK"
                        regex_no_match
                        regex_options caseless
                    }
                    url {
                        path /b
                        status_code 204
                    }
                    url { digest 00000000000000000000000000000000 }
                    http_protocol 1.0C
                    fast_recovery
                    bindto 10.9.0.2
                    bind_port 40000
                    connect_ip 10.9.0.11
                    fwmark 3
                    log_all_failures
                }
                HTTP_GET { url { path /second } }
                DNS_CHECK {
                    type aaaa
                    name example.net
                    connect_port 53
                }
                SMTP_CHECK {
                    helo_name mx.example.net
                    host {
                        connect_ip 10.9.0.12
                        connect_port 25
                    }
                    host {
                        connect_ip 10.9.0.13
                        connect_port 587
                        bindto 10.9.0.2
                    }
                }
                MISC_CHECK {
                    misc_path /usr/local/bin/probe --host 10.9.0.10
                    misc_timeout 3
                    misc_dynamic off
                    user nobody
                    retry 1
                }
                PING_CHECK { retry 3 }
                BFD_CHECK { name b1 }
            }
        }
        """,
    )
    checks = config.virtual_servers[0].real_servers[0].checks
    http1, http2 = (c for c in checks if isinstance(c, m.HttpGetCheck))
    assert [u.path for u in http1.url] == ["/a", "/b"]
    a, b = http1.url
    assert (a.digest, a.virtualhost, a.regex, a.regex_no_match) == (
        "9b3a0c85a887a256d6939da88aabd8cd", "a.example.net", "^OK", True,
    )
    assert a.accepts(503) and a.accepts(250) and not a.accepts(404)
    assert b.status_code == (m.StatusCodeRange(204, 204),)
    assert (http1.http_protocol, http1.fast_recovery, http1.log_all_failures) == (
        "1.0C", True, True,
    )
    assert (str(http1.bindto), http1.bind_port, str(http1.connect_ip), http1.fwmark) == (
        "10.9.0.2", 40000, "10.9.0.11", 3,
    )
    assert http1.delay_loop == 3.0
    assert [u.path for u in http2.url] == ["/second"]
    (dns,) = (c for c in checks if isinstance(c, m.DnsCheck))
    assert (dns.type, dns.name, dns.connect_port) == ("AAAA", "example.net", 53)
    smtp = [c for c in checks if isinstance(c, m.SmtpCheck)]
    assert [(str(c.connect_ip), c.connect_port, c.bindto) for c in smtp] == [
        ("10.9.0.12", 25, None),
        ("10.9.0.13", 587, ipaddress.ip_address("10.9.0.2")),
    ]
    assert all(c.helo_name == "mx.example.net" for c in smtp)
    (misc,) = (c for c in checks if isinstance(c, m.MiscCheck))
    assert misc.misc_path.argv == ("/usr/local/bin/probe", "--host", "10.9.0.10")
    # keepalived 2.2.7's misc_dynamic ignores its value: "off" sets it too
    assert (misc.misc_timeout, misc.misc_dynamic, misc.user, misc.retry) == (
        3.0, True, "nobody", 1,
    )
    (ping,) = (c for c in checks if isinstance(c, m.PingCheck))
    assert ping.retry == 3
    assert len(checks) == 7
    (dynamic,) = (n for n in notes if "MISC_CHECK.misc_dynamic" in n)
    assert "keepalived ignores the value 'off'" in dynamic
    notes.remove(dynamic)
    kinds = [NOTE_RE.match(n)["keyword"] for n in notes]  # type: ignore[index]
    assert kinds == [
        "virtual_server.real_server.HTTP_GET.url.regex_options",
        "virtual_server.real_server.HTTP_GET.url",
        "virtual_server.real_server.BFD_CHECK",
    ]
    assert "without a path" in notes[1]
    assert "imported without this check" in notes[2]


def test_bad_checker_values_are_dropped_not_fatal(tmp_path: Path) -> None:
    config, notes = convert(
        tmp_path,
        """
        virtual_server 10.9.0.1 80 {
            protocol TCP
            real_server 10.9.0.10 80 {
                weight -3
                HTTP_GET {
                    url {
                        path /x
                        digest not-a-digest
                    }
                    connect_timeout soon
                }
                TCP_CHECK { connect_port 70000 }
            }
            real_server 10.9.0.10 80 { }
        }
        """,
    )
    (vs,) = config.virtual_servers
    assert [str(rs) for rs in vs.real_servers] == ["10.9.0.10:80"]
    rs = vs.real_servers[0]
    assert rs.weight == 1
    assert [type(c).__name__ for c in rs.checks] == ["HttpGetCheck", "TcpCheck"]
    text = "\n".join(notes)
    assert ":5: virtual_server.real_server.weight: must be 0..65535, got -3" in text
    assert "digest: must be an MD5 digest" in text
    assert "connect_timeout: not a number: 'soon'" in text
    assert "connect_port: must be 1..65535, got 70000" in text
    assert ":15: virtual_server.real_server: 10.9.0.10:80 is already real_servers[0]" in text


# --------------------------------------------------------------------------- the command


def test_command_writes_yaml_that_check_config_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import-keepalived", str(DATA / "full.conf")]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"# hacluster configuration imported from {DATA / 'full.conf'}\n")
    assert len(err.splitlines()) == 4
    for line in err.splitlines():
        assert NOTE_RE.match(line), line
    target = tmp_path / "hacluster.yaml"
    assert main(["import-keepalived", "-o", str(target), str(DATA / "full.conf")]) == 0
    assert capsys.readouterr().out == ""
    assert target.read_text() == out
    assert main(["check-config", "--offline", "-f", str(target)]) == 0
    assert "virtual_server FWM 7/TCP: sh DR" in capsys.readouterr().out


def test_command_config_id_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text(CONDITIONAL)
    assert main(["import-keepalived", "--config-id", "main", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "priority: 200" in out
    assert err == f"{path}:13: @^main: not for config id 'main'; left out\n"


def test_empty_file_gives_an_empty_valid_config(tmp_path: Path) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text("! nothing here\n")
    result = import_keepalived(path)
    assert load(result) == m.Config()
    assert result.skipped == ()


def test_an_entry_missing_what_it_needs_goes_whole_with_one_note(tmp_path: Path) -> None:
    config, notes = convert(
        tmp_path,
        """
        vrrp_instance VI_0 {
            interface eth0
            virtual_router_id 51
            virtual_ipaddress { 10.9.0.1 }
        }
        vrrp_instance VI_1 {
            interface eth0
            virtual_router_id 51
            virtual_ipaddress { 10.9.0.2 }
        }
        virtual_server 10.9.0.1 {
            protocol TCP
            real_server 10.9.0.5 80
        }
        """,
    )
    assert list(config.vrrp_instances) == ["VI_0"]
    assert config.virtual_servers == ()
    assert len(notes) == 2
    assert notes[0].endswith(
        ":7: vrrp_instance: virtual_router_id: 51 is already used by 'VI_0' on eth0 (IPv4); "
        "not carried over"
    )
    assert ":12: virtual_server: port: required with ip" in notes[1]


def test_parameter_definition_loops_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text("$A=${A}${A}\nglobal_defs {\n    router_id ${A}\n}\n")
    with pytest.raises(KeepalivedSyntaxError) as info:
        read_keepalived(path)
    assert (info.value.line, info.value.message) == (3, "parameter substitution does not end")


def test_multi_line_parameter_expands_to_blocks(tmp_path: Path) -> None:
    config, notes = convert(
        tmp_path,
        "$VI= \\\n"
        "vrrp_instance VI_${N} { \\\n"
        "    interface eth0 \\\n"
        "    virtual_router_id ${N} \\\n"
        "    virtual_ipaddress { 10.9.0.${N} } \\\n"
        "}\n"
        "$N=1\n$VI\n$N=2\n$VI\n",
    )
    assert notes == []
    assert [(i.name, i.virtual_router_id, str(i.virtual_ipaddress[0].ip))
            for i in config.vrrp_instances.values()] == [
        ("VI_1", 1, "10.9.0.1"), ("VI_2", 2, "10.9.0.2"),
    ]


def test_lower_and_higher_priority_advert_options_carry_over(tmp_path: Path) -> None:
    config, notes = convert(
        tmp_path,
        "global_defs {\n    vrrp_lower_prio_no_advert\n    vrrp_garp_lower_prio_repeat 2\n}\n"
        + INSTANCE % "higher_prio_send_advert\n    lower_prio_no_advert false\n"
        "    garp_lower_prio_delay 7",
    )
    assert config.global_defs.vrrp_lower_prio_no_advert is True
    vi = config.vrrp_instances["VI_1"]
    assert (vi.lower_prio_no_advert, vi.higher_prio_send_advert) == (False, True)
    assert (vi.garp_lower_prio_repeat, vi.garp_lower_prio_delay) == (2, 7)
    assert not notes_about(notes, "lower_prio_no_advert")
