"""VRRP instances, sync groups, scripts and tracking: keyword handlers and tables."""

from __future__ import annotations

import ipaddress
import itertools
from typing import TYPE_CHECKING, Any

from hacluster.config.keepalived.global_defs import _lvs_sync_daemon_interface
from hacluster.config.keepalived.handlers import (
    Handler,
    _address,
    _cmd,
    _flag,
    _ignore_with,
    _set,
    _track_list,
    _user,
    _weight_and_reverse,
)
from hacluster.config.keepalived.statements import Statement
from hacluster.config.keepalived.values import _Bad, _int, _text, _timer

if TYPE_CHECKING:
    from hacluster.config.keepalived.recorder import _Recorder


def _use_vmac(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    """`use_vmac [NAME]`."""
    c.put(target, "use_vmac", True, stmt, kp)
    if stmt.args:
        c.put(target, "vmac_interface", stmt.args[0], stmt, kp)
    if len(stmt.args) > 1:
        c.skip(stmt, kp, f"extra words ignored: {' '.join(stmt.args[1:])!r}", same=True)


def _rule_addresses_valid(words: tuple[str, ...]) -> bool:
    """Whether a rule's from/to addresses parse (keepalived gives a preference only then)."""
    for keyword, value in itertools.pairwise(words):
        if keyword in ("from", "to") and value != "all":
            try:
                ipaddress.ip_interface(value)
            except ValueError:
                return False
    return True


def _route_list(key: str) -> Handler:
    """virtual_routes / virtual_rules / static_*: each line's words, as `ip route` / `ip rule`
    read them; what the loader cannot take is dropped (noted) by the validation."""

    def handle(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        items: list[Any] = target.setdefault(key, [])
        c.origin_once(target, key, stmt, kp)
        entries = c.one_line_block(stmt, kp) if stmt.args else c.block(stmt, kp)
        for entry in entries:
            if entry.block is not None:
                c.skip(entry, kp, "unexpected { } block; not carried over")
                continue
            text = " ".join(entry.words)
            if key.endswith("routes") and "or" in entry.words:
                c.skip(entry, kp, "keepalived: \"or\" for routes is deprecated; carried as "
                       "two nexthops (a multipath route), as keepalived does", same=True)
            if key.endswith("rules") and _rule_addresses_valid(entry.words) and not {
                    "priority", "preference", "pref", "prio"} & set(entry.words):
                # keepalived counts down from 16384 for each rule without one
                c.skip(entry, kp, f"no priority: keepalived sets {c.rule_pref} (\"Rule has "
                       "no preference specified\"), and so does the import", same=True)
                text += f" priority {c.rule_pref}"
                c.rule_pref -= 1
            c.append(items, text, entry, kp)
        if not items:
            del target[key]

    return handle


def _vip_list(key: str) -> Handler:
    def handle(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        items: list[Any] = target.setdefault(key, [])
        c.origin_once(target, key, stmt, kp)
        # `virtual_ipaddress ADDR` on one line: keepalived misreads it, see one_line_block
        entries = c.one_line_block(stmt, kp) if stmt.args else c.block(stmt, kp)
        for entry in entries:
            vip = _vip(c, entry, kp)
            if vip is not None:
                c.append(items, vip, entry, kp)
        if not items:
            del target[key]

    return handle


_VIP_VALUE_OPTIONS = {"dev", "scope", "label"}
_VIP_UNSUPPORTED_VALUE = {"brd", "broadcast", "peer", "preferred_lft", "track_group"}
_VIP_UNSUPPORTED_FLAG = {"home", "-nodad", "nodad", "mngtmpaddr", "noprefixroute", "autojoin",
                         "use_vmac"}
_SCOPES = {"global", "site", "link", "host", "nowhere"}


def _vip(c: _Recorder, entry: Statement, kp: str) -> str | None:
    words = list(entry.words)
    if entry.block is not None:
        c.skip(entry, kp, "unexpected { } block; not carried over")
        return None
    try:
        address = ipaddress.ip_interface(words[0])
    except ValueError:
        # keepalived: "VRRP parsed invalid IP X. skipping IP..."
        c.skip(entry, kp, f"not an address IP[/prefix]: {words[0]!r}; not carried over, as "
               "keepalived skips it", same=True)
        return None
    parts = [str(address) if "/" in words[0] else str(address.ip)]
    rest = words[1:]
    while rest:
        word = rest.pop(0)
        if word in _VIP_VALUE_OPTIONS and rest:
            value = rest.pop(0)
            if word == "scope" and value not in _SCOPES:
                c.skip(entry, f"{kp}.scope", f"scope {value!r} is not supported; left out")
                continue
            if word == "scope" and address.version == 6:
                c.skip(entry, f"{kp}.scope", "keepalived ignores a scope on IPv6 addresses "
                       "(\"Cannot specify scope for IPv6 addresses\"); so does the import",
                       same=True)
                continue
            parts += [word, value]
        elif word == "no_track":
            parts.append(word)
        elif word in _VIP_UNSUPPORTED_VALUE and rest:
            c.skip(entry, f"{kp}.{word}", f"'{word} {rest.pop(0)}' is not supported; left out")
        elif word in _VIP_UNSUPPORTED_FLAG:
            c.skip(entry, f"{kp}.{word}", "not supported; left out")
        else:
            c.skip(entry, kp, f"unknown word {word!r} in {' '.join(words)!r}; left out")
    return " ".join(parts)


def _unicast_peers(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    items: list[Any] = target.setdefault("unicast_peers", [])
    c.origin_once(target, "unicast_peers", stmt, kp)
    if stmt.args and stmt.block is None:  # old `vrrp_unicast_peer IP`
        entries: tuple[Statement, ...] = (Statement(stmt.args, stmt.file, stmt.line),)
    else:
        entries = c.block(stmt, kp)
    for entry in entries:
        try:
            ip = c.address(entry, kp, entry.keyword)
        except _Bad as exc:
            c.skip(entry, kp, f"{exc}; not carried over")
            continue
        peer: dict[str, Any] = {"ip": ip}
        rest = list(entry.args)
        while rest:
            word = rest.pop(0)
            if word in ("min_ttl", "max_ttl") and rest:
                try:
                    peer[word] = _int(rest.pop(0))
                except _Bad as exc:
                    c.skip(entry, f"{kp}.{word}", f"{exc}; left out")
            else:
                c.skip(entry, kp, f"unknown word {word!r} ignored")
        c.append(items, peer if len(peer) > 1 else ip, entry, kp)
    if not items:
        del target["unicast_peers"]


def _authentication(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    auth: dict[str, Any] = {}
    for entry in c.block(stmt, kp):
        ekp = f"{kp}.{entry.keyword}"
        if entry.keyword == "auth_type":
            value = entry.args[0] if entry.args else ""
            if value not in ("PASS", "AH"):
                c.skip(entry, ekp, "keepalived knows only PASS and AH (in capitals) and sends "
                       "no authentication then; so does the import", same=True)
                return
            if value == "AH":
                c.skip(entry, ekp, "AH (IPsec) authentication is not supported; "
                       "the instance is imported without authentication")
                return
            auth["auth_type"] = value
        elif entry.keyword == "auth_pass":
            if not entry.args:
                c.skip(entry, ekp, "needs a password; not carried over")
                continue
            password = entry.args[0]
            if len(password.encode()) > 8:  # keepalived uses the first eight characters
                c.skip(entry, ekp, "longer than 8 bytes: only the first 8 are used, as keepalived",
                       same=True)
                password = password.encode()[:8].decode("utf-8", "ignore")
            auth["auth_pass"] = password
        else:
            c.skip(entry, ekp, "unknown keyword; ignored, as keepalived does", same=True)
    if "auth_pass" not in auth:
        c.skip(stmt, kp, "no auth_pass: keepalived ignores the authentication then, and so "
               "does the import", same=True)
        return
    if "auth_type" not in auth:
        c.skip(stmt, kp, "no auth_type: keepalived sends no authentication then, and "
               "neither does the import", same=True)
        return
    c.put(target, "authentication", auth, stmt, kp)


def _vrrp_script_weight(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    if not stmt.args:
        c.skip(stmt, kp, "needs a value; not carried over")
        return
    out: dict[str, Any] = {}
    _weight_and_reverse(c, stmt, ("weight", *stmt.args), kp, out)
    for key, value in out.items():
        c.put(target, key, value, stmt, kp)


def _process(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    """`process NAME [PARAM...]`: one word as text, several (or one with a space) as a list."""
    if not stmt.args:
        c.skip(stmt, kp, "needs a process name; not carried over")
        return
    if "process" in target:  # keepalived: "Process already set ... - ignoring"
        c.skip(stmt, kp, "process already set; ignored, as keepalived does", same=True)
        return
    words = list(stmt.args)
    simple = len(words) == 1 and not any(ch.isspace() or ch in "'\"\\" for ch in words[0])
    c.put(target, "process", words[0] if simple else words, stmt, kp)


def _param_match(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    word = stmt.args[0] if stmt.args else "exact"
    if word not in ("exact", "initial", "partial") or (word == "exact" and stmt.args):
        c.skip(stmt, kp, f"{word!r} is not initial|partial: keepalived ignores it, and so "
               "does the import", same=True)
        return
    c.put(target, "param_match", word, stmt, kp)


def _init_file(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    words = list(stmt.args)
    value = 0
    if words and words[0] != "overwrite":
        try:
            value = _int(words.pop(0))
        except _Bad as exc:
            c.skip(stmt, kp, f"{exc}; not carried over")
            return
    if "overwrite" in words:
        c.skip(stmt, kp, "overwrite is not supported (an existing file is kept)")
    c.put(target, "init_file", value, stmt, kp)


def _sync_group_members(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    members: list[Any] = target.setdefault("group", [])
    c.origin_once(target, "group", stmt, kp)
    for entry in c.block(stmt, kp):
        c.append(members, entry.keyword, entry, kp)
        if entry.args or entry.block is not None:
            c.skip(entry, kp, "one instance name per line; the rest is ignored")


def _state(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    word = stmt.args[0] if stmt.args else ""
    if word in ("MASTER", "BACKUP"):  # case-sensitive, as keepalived
        c.put(target, "state", word, stmt, kp)
        return
    c.skip(stmt, kp, f"keepalived knows no state {word!r} (only MASTER and BACKUP, in "
           "capitals) and starts as BACKUP; so does the import", same=True)
    c.put(target, "state", "BACKUP", stmt, kp)


_SCRIPT: dict[str, Handler] = {
    "script": _cmd("script", user_words=False),
    "interval": _set("interval", _timer),
    "timeout": _set("timeout", _timer),
    "weight": _vrrp_script_weight,
    "rise": _set("rise", _int),
    "fall": _set("fall", _int),
    "user": _user("user", "group"),
    "init_fail": _flag("init_fail", valued=False),
}

_TRACK_FILE: dict[str, Handler] = {
    "file": _set("file", _text),
    "weight": _vrrp_script_weight,
    "init_file": _init_file,
}

_TRACK_PROCESS: dict[str, Handler] = {
    "process": _process,
    "param_match": _param_match,
    "weight": _vrrp_script_weight,
    "quorum": _set("quorum", _int),
    "quorum_max": _set("quorum_max", _int),
    "delay": _set("delay", _timer),
    "terminate_delay": _set("terminate_delay", _timer),
    "fork_delay": _set("fork_delay", _timer),
    "full_command": _flag("full_command", valued=False),
}

_TRACKING: dict[str, Handler] = {
    "track_interface": _track_list("track_interface"),
    "track_script": _track_list("track_script"),
    "track_file": _track_list("track_file"),
    "track_process": _track_list("track_process"),
    "notify_master": _cmd("notify_master"),
    "notify_backup": _cmd("notify_backup"),
    "notify_fault": _cmd("notify_fault"),
    "notify_stop": _cmd("notify_stop"),
    "notify": _cmd("notify"),
    "smtp_alert": _flag("smtp_alert"),
}

_INSTANCE: dict[str, Handler] = {
    **_TRACKING,
    "state": _state,
    "interface": _set("interface", _text),
    "virtual_router_id": _set("virtual_router_id", _int),
    "priority": _set("priority", _int),
    "advert_int": _set("advert_int", _timer),
    "version": _set("version", _int),
    "nopreempt": _flag("nopreempt", valued=False),
    "no_preempt": _flag("nopreempt", valued=False),
    # `preempt`: keepalived keeps it for old files
    "preempt": _flag("nopreempt", invert=True, valued=False),
    "preempt_delay": _set("preempt_delay", _timer),
    "unicast_src_ip": _address("unicast_src_ip"),
    "vrrp_unicast_bind": _address("unicast_src_ip"),  # old name
    "unicast_peer": _unicast_peers,
    "vrrp_unicast_peer": _unicast_peers,  # old name
    "unicast_ttl": _set("unicast_ttl", _int),
    "mcast_src_ip": _address("mcast_src_ip"),
    "mcast_dst_ip": _address("mcast_dst_ip"),
    "authentication": _authentication,
    "virtual_ipaddress": _vip_list("virtual_ipaddress"),
    "virtual_ipaddress_excluded": _vip_list("virtual_ipaddress_excluded"),
    "virtual_routes": _route_list("virtual_routes"),
    "virtual_rules": _route_list("virtual_rules"),
    "dont_track_primary": _flag("dont_track_primary", valued=False),
    "accept": _flag("accept", valued=False),
    "no_accept": _flag("accept", invert=True, valued=False),
    "garp_master_delay": _set("garp_master_delay", _int),
    "garp_master_repeat": _set("garp_master_repeat", _int),
    "garp_master_refresh": _set("garp_master_refresh", _int),
    "garp_master_refresh_repeat": _set("garp_master_refresh_repeat", _int),
    "garp_lower_prio_delay": _set("garp_lower_prio_delay", _int),
    "garp_lower_prio_repeat": _set("garp_lower_prio_repeat", _int),
    "lower_prio_no_advert": _flag("lower_prio_no_advert"),
    "higher_prio_send_advert": _flag("higher_prio_send_advert"),
    "strict_mode": _flag("strict_mode"),
    "use_vmac": _use_vmac,
    "vmac_xmit_base": _flag("vmac_xmit_base", valued=False),
    "notify_priority_changes": _flag("notify_priority_changes"),
    "skip_check_adv_addr": _flag("skip_check_adv_addr"),
    "check_unicast_src": _flag("check_unicast_src", valued=False),
    "down_timer_adverts": _set("down_timer_adverts", _int),
    "lvs_sync_daemon_interface": _lvs_sync_daemon_interface,  # old form
    "native_ipv6": _ignore_with("not needed: the addresses give the family; left out",
                                same=True),
    "debug": _ignore_with("keepalived's debug level for the instance; left out", same=True),
}

_SYNC_GROUP: dict[str, Handler] = {
    **_TRACKING,
    "group": _sync_group_members,
    "notify_priority_changes": _flag("notify_priority_changes"),
}
