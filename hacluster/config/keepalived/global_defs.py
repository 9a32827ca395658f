"""global_defs: its keyword handlers and its keyword table."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hacluster.config.keepalived.handlers import (
    Handler,
    _address,
    _cmd,
    _fifo,
    _flag,
    _positive_timer,
    _set,
    _user,
)
from hacluster.config.keepalived.marks import _DROPPED
from hacluster.config.keepalived.statements import Statement
from hacluster.config.keepalived.values import _Bad, _bounded, _int, _multicast, _text

if TYPE_CHECKING:
    from hacluster.config.keepalived.recorder import _Recorder


def _lvs_sync_daemon_interface(
    c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str
) -> None:
    if not stmt.args:
        c.skip(stmt, kp, "needs an interface; not carried over")
        return
    # carried to global_defs.lvs_sync_daemon once the instance's name is known
    target["_lvs_sync_daemon_interface"] = (stmt.args[0], stmt)


def _lvs_sync_daemon(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    """`lvs_sync_daemon IFACE [inst NAME] [id N] [maxlen N] [port N] [ttl N] [group IP]`,
    and the old `lvs_sync_daemon IFACE INSTANCE [SYNCID]` (keepalived's lvs_syncd_handler:
    a bad value is noted and that option left out, the rest kept)."""
    words = list(stmt.args)
    if not words:
        c.skip(stmt, kp, "needs an interface; not carried over")
        return
    if "lvs_sync_daemon" in target:
        c.skip(stmt, kp, "lvs_sync_daemon is already given; not carried over")
        return
    sync: dict[str, Any] = {"interface": words[0]}
    options: dict[str, tuple[str, Callable[[str], Any]]] = {
        "id": ("syncid", _bounded(0, 255)),
        "maxlen": ("maxlen", _bounded(1, 65535 - 20 - 8)),
        "port": ("port", _bounded(1, 65535)),
        "ttl": ("ttl", _bounded(1, 255)),
        "group": ("group", _multicast),
    }
    i = 1
    while i < len(words):
        word = words[i]
        if word == "inst" or word in options:
            if i + 1 >= len(words):
                c.skip(stmt, kp, f"{word} needs a value; ignored")
                i += 1
                continue
            value = words[i + 1]
            if word == "inst":
                sync.setdefault("instance", value)
            else:
                key, parse = options[word]
                try:
                    sync[key] = parse(value)
                except _Bad as exc:
                    c.skip(stmt, kp, f"{word}: {exc}; ignored")
            i += 2
            continue
        if i == 1:  # the old positional form: IFACE INSTANCE [SYNCID]
            sync["instance"] = word
        elif i == 2 and "syncid" not in sync:
            try:
                sync["syncid"] = _bounded(0, 255)(word)
                c.skip(stmt, kp, "write the syncid as 'id N' (keepalived warns too); carried over")
            except _Bad as exc:
                c.skip(stmt, kp, f"syncid: {exc}; ignored")
        else:
            c.skip(stmt, kp, f"unknown option {word!r} ignored")
        i += 1
    c.put(target, "lvs_sync_daemon", sync, stmt, kp)


def _lvs_timeouts(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    """`lvs_timeouts [tcp N] [tcpfin N] [udp N]` (seconds, 0..31 days)."""
    words = list(stmt.args)
    timeouts: dict[str, int] = dict(target.get("lvs_timeouts", {}))
    if len(words) < 2:
        c.skip(stmt, kp, "needs at least one option (tcp, tcpfin or udp) and its value")
        return
    parse = _bounded(0, 86400 * 31)
    i = 0
    while i < len(words):
        word = words[i]
        if word not in ("tcp", "tcpfin", "udp"):
            c.skip(stmt, kp, f"unknown option {word!r} ignored")
            i += 1
            continue
        if i + 1 >= len(words):
            c.skip(stmt, kp, f"{word} needs a value; ignored")
            break
        try:
            timeouts[word] = parse(words[i + 1])
        except _Bad as exc:
            c.skip(stmt, kp, f"{word}: {exc}; ignored")
        i += 2
    if timeouts:
        c.put(target, "lvs_timeouts", timeouts, stmt, kp)


def _smtp_server(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    """`smtp_server IP|NAME [PORT]`."""
    if not 1 <= len(stmt.args) <= 2:
        c.skip(stmt, kp, "needs a server and optionally a port; not carried over")
        return
    host, port = stmt.args[0], (stmt.args[1] if len(stmt.args) == 2 else None)
    try:
        number = _bounded(1, 65535)(port) if port is not None else None
        try:
            address = ipaddress.ip_address(host)
            text = f"[{address}]" if address.version == 6 and number else str(address)
        except ValueError:
            text = host  # a host name, as keepalived resolves it
    except _Bad as exc:
        c.skip(stmt, kp, f"{exc}; not carried over")
        return
    c.put(target, "smtp_server", f"{text}:{number}" if number else text, stmt, kp)


def _smtp_connect_timeout(
    c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str
) -> None:
    value = c.value(stmt, kp, _int)
    if value is _DROPPED:
        return
    if value == 0:  # keepalived: "must be greater than 0, setting to 1"
        c.skip(stmt, kp, "0 is taken as 1 (as keepalived does)")
        value = 1
    c.put(target, "smtp_connect_timeout", value, stmt, kp)


def _email_list(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    """`notification_email { ADDRESS ... }`: one or more addresses per line."""
    items: list[Any] = target.setdefault("notification_email", [])
    c.origin_once(target, "notification_email", stmt, kp)
    for entry in c.block(stmt, kp):
        for address in (entry.keyword, *entry.args):
            c.append(items, address, entry, kp)
    if not items:
        c.skip(stmt, kp, "empty notification_email block (keepalived warns too)")
        del target["notification_email"]


def _checker_file(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    """FILE_CHECK's `track_file NAME`."""
    value = c.value(stmt, kp, _text)
    if value is not _DROPPED:
        c.put(target, "track_file", value, stmt, kp)


def _script_user(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    _user("script_user", None)(c, stmt, target, kp)


def _min_garp(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    if c.flag(stmt, kp, valued=True):
        c.min_garp = stmt


def _lvs_flush_on_stop(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    if stmt.args and stmt.args[0] != "VS":
        c.skip(stmt, kp, f"unknown word {stmt.args[0]!r} ignored")
    c.put(target, "lvs_flush_on_stop", True, stmt, kp)


def _nftables(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    """`nftables [TABLENAME]`: the no_accept table (without a name, hacluster's own)."""
    if stmt.args:
        if re.match(r"^[A-Za-z][A-Za-z0-9_]{0,63}$", stmt.args[0]) and stmt.args[0] != "hacluster":
            c.put(target, "nftables", stmt.args[0], stmt, kp)
        else:
            c.skip(stmt, kp, f"table name {stmt.args[0]!r} not carried over (letters, digits "
                   "and _ only, not 'hacluster'): hacluster_vrrp is used", same=True)
    if len(stmt.args) > 1:
        c.skip(stmt, kp, f"extra words ignored: {' '.join(stmt.args[1:])!r}", same=True)


def _vrrp_iptables(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    # keepalived 2.2.7 as Debian builds it: "iptables not supported, using nftables instead"
    c.skip(stmt, kp, "no_accept is carried out with an nftables table "
           "(global_defs.nftables), as keepalived does without iptables", same=True)


_GLOBAL: dict[str, Handler] = {
    "router_id": _set("router_id", _text),
    "lvs_id": _set("router_id", _text),  # old name
    "vrrp_version": _set("vrrp_version", _int),
    "vrrp_mcast_group4": _address("vrrp_mcast_group4"),
    "vrrp_mcast_group6": _address("vrrp_mcast_group6"),
    "vrrp_garp_master_delay": _set("vrrp_garp_master_delay", _int),
    "vrrp_garp_master_repeat": _set("vrrp_garp_master_repeat", _int),
    "vrrp_garp_master_refresh": _set("vrrp_garp_master_refresh", _int),
    "vrrp_garp_master_refresh_repeat": _set("vrrp_garp_master_refresh_repeat", _int),
    "vrrp_garp_lower_prio_delay": _set("vrrp_garp_lower_prio_delay", _int),
    "vrrp_garp_lower_prio_repeat": _set("vrrp_garp_lower_prio_repeat", _int),
    "vrrp_lower_prio_no_advert": _flag("vrrp_lower_prio_no_advert"),
    "vrrp_strict": _flag("vrrp_strict", valued=False),
    "vrrp_notify_priority_changes": _flag("vrrp_notify_priority_changes"),
    "vrrp_skip_check_adv_addr": _flag("vrrp_skip_check_adv_addr", valued=False),
    "vrrp_check_unicast_src": _flag("vrrp_check_unicast_src", valued=False),
    "vrrp_higher_prio_send_advert": _flag("vrrp_higher_prio_send_advert"),
    "vrrp_garp_interval": _positive_timer("vrrp_garp_interval"),
    "vrrp_gna_interval": _positive_timer("vrrp_gna_interval"),
    "vrrp_down_timer_adverts": _set("vrrp_down_timer_adverts", _int),
    "vrrp_min_garp": _min_garp,
    "enable_script_security": _flag("enable_script_security", valued=False),
    "script_user": _script_user,
    "lvs_sync_daemon": _lvs_sync_daemon,
    "lvs_timeouts": _lvs_timeouts,
    "lvs_flush": _flag("lvs_flush", valued=False),
    "notification_email": _email_list,
    "notification_email_from": _set("notification_email_from", _text),
    "smtp_server": _smtp_server,
    "smtp_helo_name": _set("smtp_helo_name", _text),
    "smtp_connect_timeout": _smtp_connect_timeout,
    "smtp_alert": _flag("smtp_alert"),
    "smtp_alert_vrrp": _flag("smtp_alert_vrrp"),
    "smtp_alert_checker": _flag("smtp_alert_checker"),
    "no_email_faults": _flag("no_email_faults", valued=False),
    "notify_fifo": _fifo("notify_fifo"),
    "notify_fifo_script": _cmd("notify_fifo_script"),
    "vrrp_notify_fifo": _fifo("vrrp_notify_fifo"),
    "vrrp_notify_fifo_script": _cmd("vrrp_notify_fifo_script"),
    "lvs_notify_fifo": _fifo("lvs_notify_fifo"),
    "lvs_notify_fifo_script": _cmd("lvs_notify_fifo_script"),
    "lvs_flush_on_stop": _lvs_flush_on_stop,
    "nftables": _nftables,
    "nftables_priority": _set("nftables_priority", _int),
    "nftables_counters": _flag("nftables_counters", valued=False),
    "nftables_ifindex": _flag("nftables_ifindex", valued=False),
    "vrrp_iptables": _vrrp_iptables,
    "vrrp_ipsets": _vrrp_iptables,  # iptables' sets for the same drop rules
    "fifo_write_vrrp_states_on_reload": _flag("fifo_write_vrrp_states_on_reload",
                                              valued=False),
}
