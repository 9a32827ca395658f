"""The YAML contract for mail alerts, notify FIFOs, lvs_timeouts, lvs_sync_daemon and the
PING_CHECK / UDP_CHECK / FILE_CHECK checkers: values read, problems at FILE:LINE."""

from __future__ import annotations

import textwrap
from ipaddress import ip_address
from pathlib import Path

import pytest

from hacluster.config import model as m
from hacluster.config.errors import ConfigError
from hacluster.config.loader import parse_config


def load(text: str) -> m.Config:
    return parse_config(textwrap.dedent(text), "lb.yaml")


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load(text)
    return [str(p) for p in exc.value.problems]


def test_mail_keys() -> None:
    c = load("""
        global_defs:
          notification_email: [ops@example.net, "NOC <noc@example.net>"]
          notification_email_from: lb@example.net
          smtp_server: mail.example.net:2525
          smtp_helo_name: lb-a.example.net
          smtp_connect_timeout: 10
          smtp_alert: true
          smtp_alert_vrrp: false
          no_email_faults: true
    """)
    g = c.global_defs
    assert g.notification_email == ("ops@example.net", "NOC <noc@example.net>")
    assert g.smtp_server == m.SmtpServer("mail.example.net", 2525)
    assert (g.smtp_helo_name, g.smtp_connect_timeout) == ("lb-a.example.net", 10.0)
    assert (g.smtp_alert, g.smtp_alert_vrrp, g.smtp_alert_checker) == (True, False, None)
    assert g.no_email_faults is True


@pytest.mark.parametrize(("text", "host", "port"), [
    ("10.0.0.1", "10.0.0.1", 25), ("10.0.0.1:587", "10.0.0.1", 587),
    ("10.0.0.1 587", "10.0.0.1", 587), ("'[fd00::1]:2525'", "fd00::1", 2525),
    ("fd00::1", "fd00::1", 25), ("mail", "mail", 25),
    ("{host: mail.lan, port: 26}", "mail.lan", 26),
])
def test_smtp_server_forms(text: str, host: str, port: int) -> None:
    c = load(f"global_defs:\n  smtp_server: {text}\n")
    assert c.global_defs.smtp_server == m.SmtpServer(host, port)


def test_bad_mail_values_name_file_line_key() -> None:
    found = problems("""
        global_defs:
          smtp_server: "bad host!:25"
          smtp_connect_timeout: 0
          smtp_alert: maybe
        vrrp_instances:
          VI_1:
            interface: eth0
            virtual_router_id: 1
            virtual_ipaddress: [10.0.0.1]
            smtp_alert: 3
    """)
    assert found[0].startswith("lb.yaml:3: global_defs.smtp_server: must be HOST[:PORT]")
    assert found[1] == "lb.yaml:4: global_defs.smtp_connect_timeout: must be 1..3600, got 0"
    assert found[2].startswith("lb.yaml:5: global_defs.smtp_alert: must be true or false")
    assert found[3].startswith("lb.yaml:11: vrrp_instances.VI_1.smtp_alert: must be true or")


def test_smtp_alert_at_every_level() -> None:
    c = load("""
        global_defs: {smtp_alert_checker: false}
        vrrp_instances:
          VI_1: {interface: eth0, virtual_router_id: 1, virtual_ipaddress: [10.0.0.1],
                 smtp_alert: true}
        vrrp_sync_groups:
          G1: {group: [VI_1], smtp_alert: false}
        virtual_servers:
          - ip: 10.0.0.1
            port: 80
            smtp_alert: true
            real_servers: [{ip: 10.0.0.11, smtp_alert: false}]
    """)
    assert c.vrrp_instances["VI_1"].smtp_alert is True
    assert c.vrrp_sync_groups["G1"].smtp_alert is False
    assert c.virtual_servers[0].smtp_alert is True
    assert c.virtual_servers[0].real_servers[0].smtp_alert is False


def test_notify_fifos() -> None:
    c = load("""
        global_defs:
          notify_fifo: /run/hacluster/all.fifo
          notify_fifo_script: {script: /usr/local/bin/reader --all, user: nobody}
          vrrp_notify_fifo: /run/hacluster/vrrp.fifo
          lvs_notify_fifo: /run/hacluster/lvs.fifo
          lvs_notify_fifo_script: /usr/local/bin/reader
    """)
    g = c.global_defs
    assert g.notify_fifo == Path("/run/hacluster/all.fifo")
    assert g.notify_fifo_script is not None and g.notify_fifo_script.user == "nobody"
    assert g.vrrp_notify_fifo_script is None
    assert g.lvs_notify_fifo_script is not None
    assert g.lvs_notify_fifo_script.argv == ("/usr/local/bin/reader",)


def test_fifo_problems() -> None:
    found = problems("""
        global_defs:
          notify_fifo: /run/a.fifo
          vrrp_notify_fifo: /run/a.fifo
          lvs_notify_fifo_script: /bin/reader
    """)
    assert found == [
        "lb.yaml:4: global_defs.vrrp_notify_fifo: /run/a.fifo is already notify_fifo",
        "lb.yaml:5: global_defs.lvs_notify_fifo_script: only used with lvs_notify_fifo",
    ]


def test_fifo_owner_keys() -> None:
    g = load("""
        global_defs:
          notify_fifo: /run/a.fifo
          notify_fifo_user: nobody
          notify_fifo_group: adm
    """).global_defs
    assert (g.notify_fifo_user, g.notify_fifo_group) == ("nobody", "adm")
    found = problems("""
        global_defs:
          vrrp_notify_fifo: /run/v.fifo
          vrrp_notify_fifo_group: adm
          lvs_notify_fifo_user: "a b"
    """)
    assert found == [
        "lb.yaml:4: global_defs.vrrp_notify_fifo_group: only with vrrp_notify_fifo_user",
        "lb.yaml:5: global_defs.lvs_notify_fifo_user: must be a user name (no spaces or ':'), "
        "got 'a b'",
        "lb.yaml:5: global_defs.lvs_notify_fifo_user: only used with lvs_notify_fifo",
    ]


def test_lvs_timeouts_and_sync_daemon_forms() -> None:
    c = load("""
        global_defs:
          lvs_timeouts: {tcp: 900, tcpfin: 30, udp: 60}
          lvs_sync_daemon: {interface: eth1, syncid: 5, maxlen: 1400, port: 8849, ttl: 2,
                            group: 224.0.0.82}
    """)
    g = c.global_defs
    assert g.lvs_timeouts == m.LvsTimeouts(900, 30, 60)
    assert g.lvs_sync_daemon == m.LvsSyncDaemon(
        "eth1", None, 5, 1400, 8849, 2, ip_address("224.0.0.82"))
    found = problems("""
        global_defs:
          lvs_timeouts: {tcp: 2678401}
          lvs_sync_daemon: {interface: eth1, group: 10.0.0.1, maxlen: 70000}
    """)
    assert found == [
        "lb.yaml:3: global_defs.lvs_timeouts.tcp: must be 0..2678400, got 2678401",
        "lb.yaml:4: global_defs.lvs_sync_daemon.maxlen: must be 1..65507, got 70000",
    ]


RS = """
        vrrp_track_files:
          maint: {file: /run/maint, weight: -5}
        virtual_servers:
          - ip: 10.0.0.1
            port: 53
            protocol: UDP
            delay_loop: 3
            connect_timeout: 2
            real_servers:
              - ip: 10.0.0.11
"""


def test_ping_udp_file_checks() -> None:
    c = load(RS + """
                PING_CHECK: {retry: 2}
                UDP_CHECK: {payload: "01 02 0a", require_reply: "01 0x", min_reply_length: 2}
                FILE_CHECK: {track_file: maint}
              - ip: 10.0.0.12
                port: 0
                PING_CHECK:
                UDP_CHECK: {connect_port: 5353, require_reply: true}
                FILE_CHECK: {track_file: maint, weight: 0, reverse: true, delay_loop: 0.5}
    """)
    rs1, rs2 = c.virtual_servers[0].real_servers
    ping, udp, file = rs1.checks
    assert isinstance(ping, m.PingCheck) and (ping.retry, ping.delay_loop) == (2, 3.0)
    assert ping.connect_timeout == 2.0  # inherited
    assert isinstance(udp, m.UdpCheck)
    assert (udp.payload, udp.require_reply, udp.min_reply_length, udp.max_reply_length) == (
        "01 02 0a", "01 0x", 2, 255)
    assert isinstance(file, m.FileCheck)
    # FILE_CHECK does not take the servers' timing: it reads its file every second
    assert (file.track_file, file.weight, file.delay_loop, file.retry) == ("maint", None, 1.0, 0)
    ping2, udp2, file2 = rs2.checks
    assert isinstance(ping2, m.PingCheck)  # PING_CHECK needs no port
    assert isinstance(udp2, m.UdpCheck) and udp2.require_reply is True
    assert isinstance(file2, m.FileCheck) and (file2.weight, file2.reverse) == (0, True)


def test_checker_problems() -> None:
    found = problems(RS + """
                UDP_CHECK: {payload: "zz"}
                FILE_CHECK: {track_file: maitn}
              - ip: 10.0.0.12
                port: 0
                UDP_CHECK: {require_reply: "01 q"}
    """)
    assert found == [
        "lb.yaml:13: virtual_servers[0].real_servers[0].UDP_CHECK.payload: "
        "'zz' is not a hex string (at 'z')",
        "lb.yaml:14: virtual_servers[0].real_servers[0].FILE_CHECK.track_file: "
        "no vrrp_track_file named 'maitn' (did you mean 'maint'?)",
        "lb.yaml:17: virtual_servers[0].real_servers[1].UDP_CHECK.connect_port: "
        "required: the real server has no port to check",
        "lb.yaml:17: virtual_servers[0].real_servers[1].UDP_CHECK.require_reply: "
        "'01 q' is not a hex string (at 'q')",
    ]


@pytest.mark.parametrize("dataplane", ["nftables", "none"])
def test_check_config_says_lvs_timeouts_do_not_apply_without_ipvs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dataplane: str
) -> None:
    from hacluster.cli import main

    path = tmp_path / "lb.yaml"
    path.write_text(f"global_defs:\n  dataplane: {dataplane}\n  lvs_timeouts: {{tcp: 900}}\n")
    assert main(["check-config", "-f", str(path)]) == 0
    out = capsys.readouterr().out
    assert (f"note: lvs_timeouts (tcp 900 tcpfin 0 udp 0) does not apply with dataplane "
            f"{dataplane}") in out
    path.write_text("global_defs:\n  lvs_timeouts: {tcp: 900}\n")
    assert main(["check-config", "-f", str(path)]) == 0
    out = capsys.readouterr().out
    assert "lvs_timeouts tcp 900 tcpfin 0 udp 0 (0: the kernel's value is kept)" in out
    assert "note:" not in out


def test_check_config_summarises_mail_and_fifos(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hacluster.cli import main

    path = tmp_path / "lb.yaml"
    path.write_text("global_defs:\n  smtp_server: 10.0.0.9\n  notification_email: [a@b, c@d]\n"
                    "  lvs_notify_fifo: /run/lvs.fifo\n")
    assert main(["check-config", "-f", str(path)]) == 0
    out = capsys.readouterr().out
    assert "email alerts to 2 address(es) via 10.0.0.9:25" in out
    assert "lvs_notify_fifo /run/lvs.fifo" in out
    path.write_text("global_defs:\n  notification_email: [a@b]\n")
    assert main(["check-config", "-f", str(path)]) == 0
    assert "email alerts need both smtp_server and notification_email" in capsys.readouterr().out


def test_check_config_on_lvs_sync_daemon(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    from hacluster.cli import main

    path = tmp_path / "lb.yaml"
    path.write_text("global_defs:\n  dataplane: nftables\n  lvs_sync_daemon: {interface: eth1}\n")
    assert main(["check-config", "-f", str(path)]) == 0
    assert "note: lvs_sync_daemon does not apply with dataplane nftables" in (
        capsys.readouterr().out)
    path.write_text("global_defs:\n  lvs_sync_daemon: {interface: eth1}\n")
    assert main(["check-config", "-f", str(path)]) == 0
    assert "lvs_sync_daemon on eth1: master and backup" in capsys.readouterr().out
