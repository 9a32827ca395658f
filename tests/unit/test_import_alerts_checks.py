"""keepalived.conf import of mail alerts, notify FIFOs, lvs_timeouts, lvs_sync_daemon forms and
the PING_CHECK / UDP_CHECK / FILE_CHECK checkers; each file is also checked by keepalived -t."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from pathlib import Path

import pytest

from hacluster.config import model as m
from hacluster.config.keepalived_import import import_keepalived
from hacluster.config.loader import parse_config

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


def convert(tmp_path: Path, text: str) -> tuple[m.Config, list[str]]:
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    result = import_keepalived(path)
    return parse_config(result.yaml_text, "imported.yaml"), [str(s) for s in result.skipped]


def keepalived_says(tmp_path: Path, text: str) -> str:
    """What keepalived -t reports on the same input ("" where it is not installed)."""
    if shutil.which("keepalived") is None:
        pytest.fail("keepalived is not installed (deploy/install-deps.sh installs it)")
    path = tmp_path / "ka.conf"
    path.write_text(text)
    res = subprocess.run(["keepalived", "-t", "-f", str(path)], capture_output=True, text=True,
                         timeout=30)
    return res.stdout + res.stderr


def test_mail_settings(tmp_path: Path) -> None:
    text = """
global_defs {
    notification_email {
        ops@example.net noc@example.net
        "Night Shift <night@example.net>"
    }
    notification_email_from lb-a@example.net
    smtp_server mail.example.net 2525
    smtp_helo_name lb-a.example.net
    smtp_connect_timeout 0
    smtp_alert
    smtp_alert_vrrp off
    smtp_alert_checker on
    no_email_faults
}
vrrp_sync_group G1 {
    group {
        VI_1
    }
    smtp_alert
}
""" + INSTANCE % "smtp_alert yes" + """
virtual_server 10.9.0.1 80 {
    protocol TCP
    smtp_alert false
    real_server 10.9.1.1 80 {
        smtp_alert
    }
}
"""
    config, notes = convert(tmp_path, text)
    g = config.global_defs
    assert g.notification_email == (
        "ops@example.net", "noc@example.net", "Night Shift <night@example.net>")
    assert g.notification_email_from == "lb-a@example.net"
    assert g.smtp_server == m.SmtpServer("mail.example.net", 2525)
    assert g.smtp_helo_name == "lb-a.example.net"
    assert g.smtp_connect_timeout == 1.0  # keepalived: 0 is taken as 1
    assert (g.smtp_alert, g.smtp_alert_vrrp, g.smtp_alert_checker) == (True, False, True)
    assert g.no_email_faults is True
    assert config.vrrp_instances["VI_1"].smtp_alert is True
    assert config.vrrp_sync_groups["G1"].smtp_alert is True
    vs = config.virtual_servers[0]
    assert (vs.smtp_alert, vs.real_servers[0].smtp_alert) == (False, True)
    assert [n.split(": ", 1)[1] for n in notes] == [
        "global_defs.smtp_connect_timeout: 0 is taken as 1 (as keepalived does)"]
    assert "setting to 1" in keepalived_says(tmp_path, text)


def test_smtp_server_ipv6_with_port(tmp_path: Path) -> None:
    config, _ = convert(tmp_path, "global_defs {\n smtp_server fd00::25 587\n}\n")
    assert config.global_defs.smtp_server == m.SmtpServer("fd00::25", 587)


def test_notify_fifos(tmp_path: Path) -> None:
    config, notes = convert(tmp_path, """
global_defs {
    notify_fifo /run/ka.fifo
    notify_fifo_script "/usr/local/bin/reader --all" nobody
    vrrp_notify_fifo /run/vrrp.fifo
    lvs_notify_fifo /run/lvs.fifo root root
    lvs_notify_fifo_script /usr/local/bin/lvs-reader
}
""")
    g = config.global_defs
    assert g.notify_fifo == Path("/run/ka.fifo")
    assert g.notify_fifo_script is not None
    assert (g.notify_fifo_script.argv, g.notify_fifo_script.user) == (
        ("/usr/local/bin/reader", "--all"), "nobody")
    assert g.vrrp_notify_fifo == Path("/run/vrrp.fifo") and g.vrrp_notify_fifo_script is None
    assert g.lvs_notify_fifo == Path("/run/lvs.fifo")
    assert (g.lvs_notify_fifo_user, g.lvs_notify_fifo_group) == ("root", "root")
    assert g.notify_fifo_user is None and g.vrrp_notify_fifo_user is None
    assert notes == []


def test_lvs_timeouts(tmp_path: Path) -> None:
    text = """
global_defs {
    lvs_timeouts tcp 7200 udp 50 tcpfin 2678401 bogus 3
}
"""
    config, notes = convert(tmp_path, text)
    said = keepalived_says(tmp_path, text)
    for words in ("Invalid lvs_timeout tcpfin", "Unknown option bogus", "Unknown option 3"):
        assert words in said, said
    assert config.global_defs.lvs_timeouts == m.LvsTimeouts(tcp=7200, udp=50)
    # as keepalived: the bad value is skipped, and after an unknown word each word is one
    assert [n.split(": ", 2)[2] for n in notes] == [
        "tcpfin: 2678401 is not in 0..2678400; ignored", "unknown option 'bogus' ignored",
        "unknown option '3' ignored"]


# (keepalived words, what is imported, our note, what keepalived -t says)
@pytest.mark.parametrize(("words", "expected", "noted", "ka"), [
    ("eth1 inst VI_1 id 7 maxlen 1400 port 8849 ttl 2 group 224.0.0.82",
     m.LvsSyncDaemon("eth1", "VI_1", 7, 1400, 8849, 2, ipaddress.ip_address("224.0.0.82")),
     "", ""),
    ("eth1 VI_1", m.LvsSyncDaemon("eth1", "VI_1"), "", ""),
    ("eth1 VI_1 9", m.LvsSyncDaemon("eth1", "VI_1", 9), "write the syncid as 'id N'",
     'Please use keyword "id"'),
    ("eth1 id 3", m.LvsSyncDaemon("eth1", None, 3), "", ""),
    ("eth1 inst VI_1 group 10.0.0.1", m.LvsSyncDaemon("eth1", "VI_1"), "not a multicast",
     "is not multicast"),
    ("eth1 inst VI_1 maxlen 65508", m.LvsSyncDaemon("eth1", "VI_1"), "not in 1..65507",
     "Invalid lvs_sync_daemon maxlen"),
])
def test_lvs_sync_daemon_forms(tmp_path: Path, words: str, expected: m.LvsSyncDaemon,
                               noted: str, ka: str) -> None:
    text = f"global_defs {{\n    lvs_sync_daemon {words}\n}}\n" + INSTANCE % ""
    config, notes = convert(tmp_path, text)
    assert config.global_defs.lvs_sync_daemon == expected
    said = keepalived_says(tmp_path, text)
    if noted:
        assert len(notes) == 1 and noted in notes[0], notes
        assert ka in said, said
    else:
        assert notes == []
        assert "lvs_sync_daemon" not in said and "syncid" not in said, said


def test_ping_udp_file_checks(tmp_path: Path) -> None:
    text = """
track_file maint {
    file /run/maint
    weight -5
}
virtual_server 10.9.0.1 53 {
    protocol UDP
    delay_loop 3
    real_server 10.9.1.1 53 {
        PING_CHECK {
            connect_timeout 2
            retry 2
        }
        UDP_CHECK {
            payload 01 02 0a
            require_reply 01 0x
            min_reply_length 2
            max_reply_length 300
        }
        FILE_CHECK {
            track_file maint
            weight 0 reverse
        }
    }
    real_server 10.9.1.2 53 {
        PING_CHECK {
        }
        UDP_CHECK {
            require_reply
        }
        FILE_CHECK {
            track_file maint
        }
    }
}
"""
    config, notes = convert(tmp_path, text)
    assert notes == []
    rs1, rs2 = config.virtual_servers[0].real_servers
    ping, udp, file = rs1.checks
    assert isinstance(ping, m.PingCheck) and (ping.connect_timeout, ping.retry) == (2.0, 2)
    assert isinstance(udp, m.UdpCheck)
    assert (udp.payload, udp.require_reply, udp.min_reply_length, udp.max_reply_length) == (
        "01 02 0a", "01 0x", 2, 300)
    assert isinstance(file, m.FileCheck) and (file.weight, file.reverse) == (0, True)
    assert [type(c) for c in rs2.checks] == [m.PingCheck, m.UdpCheck, m.FileCheck]
    assert rs2.checks[1].require_reply is True  # type: ignore[union-attr]
    assert rs2.checks[2].weight is None  # type: ignore[union-attr]  # the file's own
    said = keepalived_says(tmp_path, text)
    assert "Unknown keyword" not in said, said
