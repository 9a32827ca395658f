"""What keepalived's email alerts and notify FIFOs say about an event, and to whom. Does no I/O.

The events are the notifier's (a VRRP instance or sync group changing state, a real
server going up or down, a virtual server gaining or losing quorum). From them come:

- the notify FIFO line, in keepalived's format: ``INSTANCE "VI_1" MASTER 100``,
  ``GROUP "G1" BACKUP 0``, ``VS [10.0.0.1]:tcp:80 UP``,
  ``RS [10.0.0.11]:tcp:80 [10.0.0.1]:tcp:80 DOWN`` (vrrp_notify.c, ipwrapper.c);
- whether a mail goes out (keepalived's precedence: the object's own ``smtp_alert``,
  else ``smtp_alert_vrrp`` / ``smtp_alert_checker``, else ``smtp_alert``, else off —
  except a real server, which defaults to on; nothing is sent without both
  ``notification_email`` and ``smtp_server``);
- the mail's subject and body, as keepalived's smtp.c writes them
  (``[ROUTER_ID] VRRP Instance VI_1 - Entering MASTER state`` /
  ``=> VRRP Instance is now owning VRRP VIPs <=``).
"""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass
from typing import Literal, TypeAlias

from hacluster import vrrp_extras
from hacluster.config.model import Config, GlobalDefs, RealServer, VirtualServer

Channel: TypeAlias = Literal["vrrp", "lvs"]


@dataclass(frozen=True, slots=True)
class InstanceEvent:
    """A VRRP instance entered MASTER, BACKUP, FAULT or STOP."""

    instance: str
    state: str
    priority: int


@dataclass(frozen=True, slots=True)
class GroupEvent:
    """A sync group as a whole entered MASTER, BACKUP, FAULT or STOP."""

    group: str
    state: str


@dataclass(frozen=True, slots=True)
class RealServerEvent:
    """A real server went up or down; `check` is the checker kind that decided, if any."""

    vs: VirtualServer
    rs: RealServer
    up: bool
    check: str | None = None
    reason: str = ""  # "stopping" / "removed...": taken out, not failed (omega)


@dataclass(frozen=True, slots=True)
class QuorumEvent:
    """A virtual server gained or lost quorum: the live weight against the threshold."""

    vs: VirtualServer
    up: bool
    weight_sum: int
    threshold: int
    init: bool = False  # the service's first quorum state since start


AlertEvent: TypeAlias = InstanceEvent | GroupEvent | RealServerEvent | QuorumEvent


@dataclass(frozen=True, slots=True)
class Mail:
    """One alert mail: subject and body (headers and envelope come from global_defs)."""

    subject: str
    body: str


# --------------------------------------------------------------------------- names


def _trio(ip: object, protocol: str, port: int) -> str:
    return f"[{ip}]:{protocol.lower()}:{port}"


def vs_trio(vs: VirtualServer) -> str:
    """keepalived's FMT_VS: ``[10.0.0.1]:tcp:80`` or ``FWM 1``."""
    if vs.fwmark is not None:
        return f"FWM {vs.fwmark}"
    return _trio(vs.ip, vs.protocol, vs.port or 0)


def rs_trio(vs: VirtualServer, rs: RealServer) -> str:
    """keepalived's FMT_RS: the real server with the service's protocol."""
    port = rs.port if rs.port or vs.fwmark is not None else (vs.port or 0)
    return _trio(rs.ip, vs.protocol, port)


# --------------------------------------------------------------------------- FIFO


def fifo_line(event: AlertEvent) -> tuple[Channel, str]:
    """The FIFO line for `event` (newline included) and which FIFO besides notify_fifo."""
    match event:
        case InstanceEvent():
            return "vrrp", f'INSTANCE "{event.instance}" {event.state} {event.priority}\n'
        case GroupEvent():
            return "vrrp", f'GROUP "{event.group}" {event.state} 0\n'
        case RealServerEvent():
            state = "UP" if event.up else "DOWN"
            return "lvs", f"RS {rs_trio(event.vs, event.rs)} {vs_trio(event.vs)} {state}\n"
        case QuorumEvent():
            return "lvs", f"VS {vs_trio(event.vs)} {'UP' if event.up else 'DOWN'}\n"


# --------------------------------------------------------------------------- mail


def mail_configured(g: GlobalDefs) -> bool:
    """keepalived sends nothing without recipients and a server."""
    return vrrp_extras.mail(g)


def _level(own: bool | None, specific: bool | None, general: bool | None, default: bool) -> bool:
    for value in (own, specific, general):
        if value is not None:
            return value
    return default


def alert_enabled(event: AlertEvent, config: Config) -> bool:
    """Whether `event` gets a mail (keepalived's smtp_alert precedence)."""
    g = config.global_defs
    if not mail_configured(g):
        return False
    match event:
        case InstanceEvent() if event.state.endswith("_PRIORITY"):
            return False  # notify_priority_changes: FIFO lines only, as keepalived
        case InstanceEvent():
            inst = config.vrrp_instances.get(event.instance)
            own = inst.smtp_alert if inst is not None else None
            on = _level(own, g.smtp_alert_vrrp, g.smtp_alert, False)
            return on and not (g.no_email_faults and event.state == "FAULT")
        case GroupEvent():
            group = config.vrrp_sync_groups.get(event.group)
            own = group.smtp_alert if group is not None else None
            on = _level(own, g.smtp_alert_vrrp, g.smtp_alert, False)
            return on and not (g.no_email_faults and event.state == "FAULT")
        case RealServerEvent():
            # keepalived: "inconsistent with the defaults for other smtp_alerts in
            # order to maintain backwards compatibility" - on unless switched off.
            return _level(event.rs.smtp_alert, g.smtp_alert_checker, g.smtp_alert, True)
        case QuorumEvent():
            return _level(event.vs.smtp_alert, g.smtp_alert_checker, g.smtp_alert, False)


_INSTANCE_TEXT = {
    "MASTER": ("Entering MASTER state", "=> VRRP Instance is now owning VRRP VIPs <="),
    "BACKUP": ("Entering BACKUP state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
    "FAULT": ("Entering FAULT state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
    "STOP": ("Stopping", "=> VRRP Instance stopping <="),
}
_GROUP_TEXT = {
    "MASTER": ("Entering MASTER state", "=> All VRRP group instances are now in MASTER state <="),
    "BACKUP": ("Entering BACKUP state", "=> All VRRP group instances are now in BACKUP state <="),
    "FAULT": ("Entering FAULT state", "=> All VRRP group instances are now in FAULT state <="),
    "STOP": ("Stopping", "=> All VRRP group instances are now stopping <="),
}
# The body each keepalived checker writes (check_*.c); HTTP's failure names the request.
_CHECK_NAME = {
    "TCP_CHECK": "TCP CHECK", "UDP_CHECK": "UDP CHECK", "PING_CHECK": "ICMP CHECK",
    "MISC_CHECK": "MISC CHECK", "SMTP_CHECK": "SMTP CHECK", "DNS_CHECK": "DNS_CHECK:",
    "FILE_CHECK": "FILE CHECK",
}


def _check_body(kind: str | None, up: bool) -> str:
    outcome = "succeed" if up else "failed"
    if kind in ("HTTP_GET", "SSL_GET"):
        tail = "" if up else " : HTTP/SSL request failed"
        return f"=> CHECK {outcome} on service{tail} <="
    name = _CHECK_NAME.get(kind or "", "CHECK")
    return f"=> {name} {outcome} on service <="


def mail_for(event: AlertEvent, router_id: str) -> Mail | None:
    """Subject and body as keepalived writes them (None for a state it does not mail)."""
    match event:
        case InstanceEvent():
            text = _INSTANCE_TEXT.get(event.state)
            if text is None:
                return None
            return Mail(f"[{router_id}] VRRP Instance {event.instance} - {text[0]}", text[1])
        case GroupEvent():
            text = _GROUP_TEXT.get(event.state)
            if text is None:
                return None
            return Mail(f"[{router_id}] VRRP Group {event.group} - {text[0]}", text[1])
        case RealServerEvent():
            state = "UP" if event.up else "DOWN"
            subject = (
                f"[{router_id}] Realserver {rs_trio(event.vs, event.rs)} of virtual server "
                f"{vs_trio(event.vs)} - {state}"
            )
            if not event.up and event.reason == "stopping":  # ipwrapper.c clear_service_rs
                return Mail(subject, "=> Shutting down <=")
            if not event.up and event.reason.startswith("removed"):
                return Mail(subject, "=> Removing <=")
            return Mail(subject, _check_body(event.check, event.up))
        case QuorumEvent():
            vs = event.vs
            if event.init:
                what = "Starting with quorum " + ("up" if event.up else "down")
            else:
                what = "Gained quorum" if event.up else "Lost quorum"
            body = (
                f"=> {what} {vs.quorum}+{vs.hysteresis}={event.threshold} <= "
                f"{event.weight_sum} <="
            )
            state = "UP" if event.up else "DOWN"
            return Mail(f"[{router_id}] Virtualserver {vs_trio(vs)} - {state}", body)


def local_name() -> str:
    """This host's name, as keepalived's default router_id, HELO name and sender use."""
    return socket.gethostname() or "localhost"


def sender(g: GlobalDefs) -> str:
    """notification_email_from, else USER@HOST as keepalived makes it."""
    if g.notification_email_from:
        return g.notification_email_from
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "root"
    return f"{user}@{local_name()}"
