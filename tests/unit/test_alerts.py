"""keepalived's smtp_alert precedence, mail texts and notify FIFO lines (hacluster.alerts)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from hacluster.alerts import (
    GroupEvent,
    InstanceEvent,
    QuorumEvent,
    RealServerEvent,
    alert_enabled,
    fifo_line,
    mail_for,
    rs_trio,
    vs_trio,
)
from hacluster.config.loader import parse_config
from hacluster.config.model import Config

MAIL = {"notification_email": ["ops@example.net"], "smtp_server": "127.0.0.1"}


def config(g: dict[str, Any] | None = None, inst: dict[str, Any] | None = None,
           group: dict[str, Any] | None = None, vs: dict[str, Any] | None = None,
           rs: dict[str, Any] | None = None) -> Config:
    doc = {
        "global_defs": {"dataplane": "none", **(g or {})},
        "vrrp_instances": {"VI_1": {"interface": "eth0", "virtual_router_id": 1,
                                    "virtual_ipaddress": ["10.0.0.1"], **(inst or {})}},
        "vrrp_sync_groups": {"G1": {"group": ["VI_1"], **(group or {})}},
        "virtual_servers": [{"ip": "10.0.0.1", "port": 80, **(vs or {}),
                             "real_servers": [{"ip": "10.0.0.11", "port": 8080, **(rs or {})}]}],
    }
    return parse_config(yaml.safe_dump(doc), "t.yaml")


def events(c: Config) -> dict[str, Any]:
    vs = c.virtual_servers[0]
    return {
        "instance": InstanceEvent("VI_1", "MASTER", 100),
        "group": GroupEvent("G1", "MASTER"),
        "rs": RealServerEvent(vs, vs.real_servers[0], False, "TCP_CHECK"),
        "vs": QuorumEvent(vs, False, 0, 1),
    }


# (global_defs, own setting per object kind, expected for instance, group, rs, vs)
CASES = [
    ({}, None, {"instance": False, "group": False, "rs": True, "vs": False}),
    ({"smtp_alert": True}, None, {"instance": True, "group": True, "rs": True, "vs": True}),
    ({"smtp_alert": False}, None, {"instance": False, "group": False, "rs": False, "vs": False}),
    ({"smtp_alert": True, "smtp_alert_vrrp": False}, None,
     {"instance": False, "group": False, "rs": True, "vs": True}),
    ({"smtp_alert": False, "smtp_alert_checker": True}, None,
     {"instance": False, "group": False, "rs": True, "vs": True}),
    ({"smtp_alert_vrrp": False, "smtp_alert_checker": False}, True,
     {"instance": True, "group": True, "rs": True, "vs": True}),
    ({"smtp_alert": True}, False, {"instance": False, "group": False, "rs": False, "vs": False}),
]


@pytest.mark.parametrize(("g", "own", "expected"), CASES)
def test_smtp_alert_precedence(g: dict[str, Any], own: bool | None,
                               expected: dict[str, bool]) -> None:
    mine = {} if own is None else {"smtp_alert": own}
    c = config({**MAIL, **g}, inst=mine, group=mine, vs=mine, rs=mine)
    got = {name: alert_enabled(e, c) for name, e in events(c).items()}
    assert got == expected


def test_nothing_is_mailed_without_recipients_and_server() -> None:
    for g in ({"smtp_alert": True}, {"smtp_alert": True, "smtp_server": "10.0.0.9"},
              {"smtp_alert": True, "notification_email": ["a@b"]}):
        c = config(g)
        assert not any(alert_enabled(e, c) for e in events(c).values())


def test_no_email_faults() -> None:
    c = config({**MAIL, "smtp_alert": True, "no_email_faults": True})
    assert not alert_enabled(InstanceEvent("VI_1", "FAULT", 100), c)
    assert not alert_enabled(GroupEvent("G1", "FAULT"), c)
    assert alert_enabled(InstanceEvent("VI_1", "BACKUP", 100), c)


def test_mail_texts_are_keepalived_s() -> None:
    c = config(MAIL)
    e = events(c)
    m = mail_for(e["instance"], "lb1")
    assert m is not None
    assert (m.subject, m.body) == ("[lb1] VRRP Instance VI_1 - Entering MASTER state",
                                   "=> VRRP Instance is now owning VRRP VIPs <=")
    m = mail_for(InstanceEvent("VI_1", "STOP", 0), "lb1")
    assert m is not None and (m.subject, m.body) == (
        "[lb1] VRRP Instance VI_1 - Stopping", "=> VRRP Instance stopping <=")
    m = mail_for(GroupEvent("G1", "FAULT"), "lb1")
    assert m is not None and (m.subject, m.body) == (
        "[lb1] VRRP Group G1 - Entering FAULT state",
        "=> All VRRP group instances are now in FAULT state <=")
    m = mail_for(e["rs"], "lb1")
    assert m is not None and (m.subject, m.body) == (
        "[lb1] Realserver [10.0.0.11]:tcp:8080 of virtual server [10.0.0.1]:tcp:80 - DOWN",
        "=> TCP CHECK failed on service <=")
    vs, rs = c.virtual_servers[0], c.virtual_servers[0].real_servers[0]
    for kind, up, body in (
        ("HTTP_GET", False, "=> CHECK failed on service : HTTP/SSL request failed <="),
        ("HTTP_GET", True, "=> CHECK succeed on service <="),
        ("PING_CHECK", True, "=> ICMP CHECK succeed on service <="),
        ("UDP_CHECK", False, "=> UDP CHECK failed on service <="),
        ("DNS_CHECK", False, "=> DNS_CHECK: failed on service <="),
    ):
        m = mail_for(RealServerEvent(vs, rs, up, kind), "lb1")
        assert m is not None and m.body == body
    for reason, body in (("stopping", "=> Shutting down <="),
                         ("removed from the configuration", "=> Removing <=")):
        m = mail_for(RealServerEvent(vs, rs, False, None, reason), "lb1")
        assert m is not None and m.body == body and m.subject.endswith(" - DOWN")
    m = mail_for(e["vs"], "lb1")
    assert m is not None and (m.subject, m.body) == (
        "[lb1] Virtualserver [10.0.0.1]:tcp:80 - DOWN", "=> Lost quorum 1+0=1 <= 0 <=")
    m = mail_for(QuorumEvent(vs, True, 3, 1, init=True), "lb1")
    assert m is not None and m.body == "=> Starting with quorum up 1+0=1 <= 3 <="


def test_fifo_lines_are_keepalived_s() -> None:
    c = config(MAIL)
    e = events(c)
    assert fifo_line(e["instance"]) == ("vrrp", 'INSTANCE "VI_1" MASTER 100\n')
    assert fifo_line(e["group"]) == ("vrrp", 'GROUP "G1" MASTER 0\n')
    assert fifo_line(e["rs"]) == ("lvs", "RS [10.0.0.11]:tcp:8080 [10.0.0.1]:tcp:80 DOWN\n")
    assert fifo_line(e["vs"]) == ("lvs", "VS [10.0.0.1]:tcp:80 DOWN\n")


def test_names_of_fwmark_udp_and_ipv6_services() -> None:
    doc = {"global_defs": {"dataplane": "none"}, "virtual_servers": [
        {"fwmark": 7, "real_servers": [{"ip": "10.0.0.11", "port": 53}]},
        {"ip": "fd00::1", "port": 53, "protocol": "UDP", "real_servers": [{"ip": "fd00::11"}]},
    ]}
    c = parse_config(yaml.safe_dump(doc), "t.yaml")
    fw, v6 = c.virtual_servers
    assert vs_trio(fw) == "FWM 7"
    assert rs_trio(fw, fw.real_servers[0]) == "[10.0.0.11]:tcp:53"
    assert vs_trio(v6) == "[fd00::1]:udp:53"
    assert rs_trio(v6, v6.real_servers[0]) == "[fd00::11]:udp:53"


async def test_outputs_mail_a_state_once_and_mark_the_first_quorum_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hacluster.alert_outputs import AlertOutputs
    from hacluster.alerts import Mail

    c = config({**MAIL, "smtp_alert": True, "router_id": "lb1"})
    outputs = AlertOutputs(c)
    sent: list[Mail] = []
    monkeypatch.setattr(outputs.mailer, "submit", sent.append)
    for state in ("BACKUP", "MASTER", "MASTER", "BACKUP"):
        outputs.observe(InstanceEvent("VI_1", state, 100))
    assert [m.subject.rsplit(" - ", 1)[1] for m in sent] == [
        "Entering BACKUP state", "Entering MASTER state", "Entering BACKUP state"]
    sent.clear()
    vs = c.virtual_servers[0]
    outputs.observe(QuorumEvent(vs, True, 1, 1))
    outputs.observe(QuorumEvent(vs, False, 0, 1))
    assert [m.body for m in sent] == ["=> Starting with quorum up 1+0=1 <= 1 <=",
                                      "=> Lost quorum 1+0=1 <= 0 <="]
    await outputs.close(timeout=0)
