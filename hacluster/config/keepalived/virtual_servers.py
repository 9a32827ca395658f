"""Virtual servers, real servers and checkers: keyword handlers and tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hacluster.config.keepalived.global_defs import _checker_file
from hacluster.config.keepalived.handlers import Handler, _address, _cmd, _flag, _set, _user
from hacluster.config.keepalived.marks import _DROPPED
from hacluster.config.keepalived.statements import Statement
from hacluster.config.keepalived.values import (
    _LB_ALGO,
    _LB_KIND,
    _PROTOCOL,
    _Bad,
    _choice,
    _hostport,
    _int,
    _text,
    _timer,
)
from hacluster.config.keepalived.vrrp import _vrrp_script_weight

if TYPE_CHECKING:
    from hacluster.config.keepalived.recorder import _Recorder


_HTTP_PROTOCOL = _choice("1.0", "1.0C", "1.0K", "1.1", upper=True)


def _http_protocol(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    """HTTP_GET's `http_protocol`: 1.0, 1.0C, 1.1. keepalived 2.2.7's checker could build
    a 1.0K request (Connection: keep-alive) but its config parser turns the word down
    ("Invalid http_protocol version 1.0K") and keeps 1.0: so does the import (the YAML
    takes `http_protocol: 1.0K` for those who want it)."""
    value = c.value(stmt, kp, _HTTP_PROTOCOL)
    if value is _DROPPED:
        return
    if value == "1.0K":
        c.skip(stmt, kp, "keepalived rejects 1.0K (\"Invalid http_protocol version\") and "
               "sends 1.0 requests; so does the import (http_protocol: 1.0K in the YAML "
               "asks for keep-alive)", same=True)
        return
    c.put(target, "http_protocol", value, stmt, kp)


def _hex_words(key: str) -> Handler:
    """UDP_CHECK's `payload HEX...` (the words joined, as keepalived does)."""

    def handle(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        if not stmt.args:
            c.skip(stmt, kp, "needs a hex string; not carried over")
            return
        c.put(target, key, " ".join(stmt.args), stmt, kp)

    return handle


def _require_reply(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    """UDP_CHECK's `require_reply [HEX...]`."""
    c.put(target, "require_reply", " ".join(stmt.args) if stmt.args else True, stmt, kp)


def _persistence_timeout(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    if not stmt.args:  # keepalived: no value means 6 minutes
        c.put(target, "persistence_timeout", 360, stmt, kp)
        return
    if stmt.args[0] == "0":
        c.skip(stmt, kp, "keepalived refuses 0 (\"persistence_timeout invalid\", it takes "
               "1..2678400) and leaves persistence off; so does the import", same=True)
        return
    _set("persistence_timeout", _int)(c, stmt, target, kp)


def _lb_algo(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    word = stmt.args[0] if stmt.args else ""
    try:
        c.put(target, "lb_algo", _LB_ALGO(word), stmt, kp)
    except _Bad:
        c.skip(stmt, kp, f"keepalived ignores the unknown scheduler {word!r} (names are "
               "lower case) and uses wlc; so does the import", same=True)


def _lb_kind(key: str) -> Handler:
    def handle(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        if not stmt.args:
            c.skip(stmt, kp, "needs a value; not carried over")
            return
        try:
            kind = _LB_KIND(stmt.args[0])
        except _Bad:
            c.skip(stmt, kp, f"keepalived rejects {stmt.args[0]!r} (it knows NAT, DR and TUN, "
                   "in capitals) and keeps the method it had, NAT by default; so does the "
                   "import", same=True)
            return
        if len(stmt.args) > 1:
            c.skip(stmt, kp, f"tunnel options {' '.join(stmt.args[1:])!r} are not supported; "
                   "plain ipip is used")
        c.put(target, key, kind, stmt, kp)

    return handle


def _sorry_server(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    if not 1 <= len(stmt.args) <= 2:
        c.skip(stmt, kp, "needs IP [PORT]; not carried over")
        return
    try:
        ip = c.address(stmt, kp, stmt.args[0])
        value = _hostport(ip, stmt.args[1] if len(stmt.args) == 2 else None)
    except _Bad as exc:
        c.skip(stmt, kp, f"{exc}; not carried over")
        return
    c.put(target, "sorry_server", value, stmt, kp)


def _real_server(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    reals: list[Any] = target.setdefault("real_servers", [])
    c.mark(reals, stmt, kp)
    args = stmt.args
    if not 1 <= len(args) <= 2:
        c.skip(stmt, kp, "needs IP [PORT]; not carried over")
        return
    rs: dict[str, Any] = {}
    try:
        c.put(rs, "ip", c.address(stmt, kp, args[0]), stmt, kp)
        if len(args) == 2:
            c.put(rs, "port", _int(args[1]), stmt, kp)
    except _Bad as exc:
        c.skip(stmt, kp, f"{exc}; not carried over")
        return
    if stmt.block is not None:  # without one: weight 1 and no checks, as keepalived
        c.walk(stmt.block, _REAL_SERVER, rs, kp)
    c.mark(rs, stmt, kp)
    c.append(reals, rs, stmt, kp)


def _checker(kind: str, table: dict[str, Handler]) -> Handler:
    def handle(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        check: dict[str, Any] = {}
        hosts: list[tuple[Statement, dict[str, Any]]] = []
        for entry in c.block(stmt, kp):
            if kind == "SMTP_CHECK" and entry.keyword == "host":
                host: dict[str, Any] = {}
                c.walk(c.block(entry, f"{kp}.host"), _SMTP_HOST, host, f"{kp}.host")
                hosts.append((entry, host))
                continue
            c.walk((entry,), table, check, kp)
        # SMTP_CHECK's old `host` blocks: one check per host, all must pass (as keepalived)
        checks = [check] if not hosts else [{**check, **host} for _, host in hosts]
        for i, one in enumerate(checks):
            if hosts:
                for key in one:
                    origin = c.origins.get((id(hosts[i][1]), key)) or c.origins.get(
                        (id(check), key)
                    )
                    if origin is not None:
                        c.origins[(id(one), key)] = origin
            c.mark(one, stmt, kp)
            existing = target.get(kind)
            if existing is None:
                c.put(target, kind, one, stmt, kp)
            else:
                if isinstance(existing, dict):
                    existing = [existing]
                    c.origins[(id(existing), 0)] = c.origins[(id(target), kind)]
                    target[kind] = existing
                c.append(existing, one, stmt, kp)

    return handle


def _url(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    urls: list[Any] = target.setdefault("url", [])
    c.origin_once(target, "url", stmt, kp)
    url: dict[str, Any] = {}
    c.walk(c.block(stmt, kp), _URL, url, kp)
    if "path" not in url:
        c.skip(stmt, kp, "url without a path; not carried over")
    else:
        c.mark(url, stmt, kp)
        c.append(urls, url, stmt, kp)
    if not urls:
        del target["url"]


def _status_code(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
    if not stmt.args:
        c.skip(stmt, kp, "needs a value; not carried over")
        return
    text = " ".join(stmt.args)
    c.put(target, "status_code", int(text) if text.isdigit() else text, stmt, kp)


def _unsupported_checker(name: str) -> Handler:
    def handle(c: _Recorder, stmt: Statement, target: dict[str, Any], kp: str) -> None:
        c.skip(
            stmt, kp,
            f"{name} is not supported; the real server is imported without this check",
        )

    return handle


_CHECK_TIMING: dict[str, Handler] = {
    "retry": _set("retry", _int),
    "nb_get_retry": _set("retry", _int),  # old name
    "delay_before_retry": _set("delay_before_retry", _timer),
    "delay_loop": _set("delay_loop", _timer),
    "warmup": _set("warmup", _timer),
    "alpha": _flag("alpha"),
    "log_all_failures": _flag("log_all_failures"),
}

_NETWORK_CHECK: dict[str, Handler] = {
    **_CHECK_TIMING,
    "connect_ip": _address("connect_ip"),
    "connect_port": _set("connect_port", _int),
    "bindto": _address("bindto"),
    "bind_port": _set("bind_port", _int),
    "bind_if": _set("bind_if", _text),
    "fwmark": _set("fwmark", _int),
    "connect_timeout": _set("connect_timeout", _timer),
}

_SMTP_HOST: dict[str, Handler] = {
    k: _NETWORK_CHECK[k]
    for k in ("connect_ip", "connect_port", "bindto", "bind_port", "bind_if", "fwmark",
              "connect_timeout")
}

_URL: dict[str, Handler] = {
    "path": _set("path", _text),
    "digest": _set("digest", _text),
    "status_code": _status_code,
    "virtualhost": _set("virtualhost", _text),
    "regex": _set("regex", _text),
    "regex_no_match": _flag("regex_no_match", valued=False),
}

_HTTP_CHECK: dict[str, Handler] = {
    **_NETWORK_CHECK,
    "url": _url,
    "http_protocol": _http_protocol,
    "virtualhost": _set("virtualhost", _text),
    "fast_recovery": _flag("fast_recovery"),
}

_CHECKERS: dict[str, Handler] = {
    "HTTP_GET": _checker("HTTP_GET", _HTTP_CHECK),
    "SSL_GET": _checker("SSL_GET", {**_HTTP_CHECK, "enable_sni": _flag("enable_sni")}),
    "TCP_CHECK": _checker("TCP_CHECK", _NETWORK_CHECK),
    "SMTP_CHECK": _checker(
        "SMTP_CHECK", {**_NETWORK_CHECK, "helo_name": _set("helo_name", _text)}
    ),
    "DNS_CHECK": _checker(
        "DNS_CHECK",
        {
            **_NETWORK_CHECK,
            "type": _set("type", _choice("A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA",
                                         upper=True)),
            "name": _set("name", _text),
        },
    ),
    "MISC_CHECK": _checker(
        "MISC_CHECK",
        {
            **_CHECK_TIMING,
            "misc_path": _cmd("misc_path", user_words=False),
            "misc_timeout": _set("misc_timeout", _timer),
            "misc_dynamic": _flag("misc_dynamic", valued=False),
            "user": _user("user", "group"),
        },
    ),
    "BFD_CHECK": _unsupported_checker("BFD_CHECK"),
    "PING_CHECK": _checker("PING_CHECK", _NETWORK_CHECK),
    "ICMP_CHECK": _unsupported_checker("ICMP_CHECK"),
    "UDP_CHECK": _checker(
        "UDP_CHECK",
        {
            **_NETWORK_CHECK,
            "payload": _hex_words("payload"),
            "require_reply": _require_reply,
            "min_reply_length": _set("min_reply_length", _int),
            "max_reply_length": _set("max_reply_length", _int),
        },
    ),
    "FILE_CHECK": _checker(
        "FILE_CHECK", {"track_file": _checker_file, "weight": _vrrp_script_weight}
    ),
}

_SERVER_TIMING: dict[str, Handler] = {
    "connect_timeout": _set("connect_timeout", _timer),
    "retry": _set("retry", _int),
    "nb_get_retry": _set("retry", _int),  # old name
    "delay_before_retry": _set("delay_before_retry", _timer),
    "warmup": _set("warmup", _timer),
    "delay_loop": _set("delay_loop", _timer),
    "virtualhost": _set("virtualhost", _text),
    # a virtual server's flags ignore a value; a real server's read it (keepalived 2.2.7)
    "inhibit_on_failure": _flag("inhibit_on_failure", valued=False),
    "alpha": _flag("alpha", valued=False),
}

_REAL_SERVER: dict[str, Handler] = {
    **_SERVER_TIMING,
    **_CHECKERS,
    "inhibit_on_failure": _flag("inhibit_on_failure"),
    "alpha": _flag("alpha"),
    "weight": _set("weight", _int),
    "lvs_method": _lb_kind("lb_kind"),
    "lb_kind": _lb_kind("lb_kind"),  # old name
    "notify_up": _cmd("notify_up"),
    "notify_down": _cmd("notify_down"),
    "smtp_alert": _flag("smtp_alert"),
    "uthreshold": _set("uthreshold", _int),
    "lthreshold": _set("lthreshold", _int),
}

_VIRTUAL_SERVER: dict[str, Handler] = {
    **_SERVER_TIMING,
    "lvs_sched": _lb_algo,
    "lb_algo": _lb_algo,  # old name
    "lvs_method": _lb_kind("lb_kind"),
    "lb_kind": _lb_kind("lb_kind"),  # old name
    "protocol": _set("protocol", _PROTOCOL),
    "persistence_timeout": _persistence_timeout,
    "ops": _flag("ops", valued=False),
    "ha_suspend": _flag("ha_suspend", valued=False),
    "omega": _flag("omega", valued=False),
    "quorum": _set("quorum", _int),
    "hysteresis": _set("hysteresis", _int),
    "quorum_up": _cmd("quorum_up"),
    "quorum_down": _cmd("quorum_down"),
    "ip_family": _set("ip_family", _choice("inet", "inet6")),
    "sorry_server": _sorry_server,
    "smtp_alert": _flag("smtp_alert"),
    "sorry_server_inhibit": _flag("sorry_server_inhibit", valued=False),
    "sorry_server_lvs_method": _lb_kind("sorry_server_lb_kind"),
    "sorry_server_lb_kind": _lb_kind("sorry_server_lb_kind"),  # old name
    "real_server": _real_server,
}
