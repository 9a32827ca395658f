"""Parsers and builders of the model's value types (addresses, commands, VIPs, routes, URLs)."""

from __future__ import annotations

import ipaddress
import re
import shlex
import socket
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from hacluster.config import model as m
from hacluster.config.compose import _NULL_TAG
from hacluster.config.loader_nodes import (
    _INVALID,
    _describe,
    _hints,
    _is_null,
    _join,
    _line,
    _strip_none,
    _suggest,
)

if TYPE_CHECKING:
    from hacluster.config.loader_walk import _Walker


_DIGEST_RE = re.compile(r"^[0-9a-fA-F]{32}$")
_HOSTPORT_RE = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+))(?::(?P<port>\d+))?$")


def _text(ctx: _Walker, node: Node, path: str, what: str) -> Any:
    if not isinstance(node, ScalarNode) or _is_null(node):
        return ctx.error(node, path, f"must be {what}, got {_describe(node)}")
    return str(node.value).strip()


def _convert(ctx: _Walker, node: Node, path: str, what: str, convert: Callable[[str], Any]) -> Any:
    """The scalar's text through `convert`; a ValueError from it says the text is not `what`."""
    text = _text(ctx, node, path, what)
    if text is _INVALID:
        return text
    try:
        return convert(text)
    except ValueError:
        return ctx.error(node, path, f"not {what}: {text!r}")


def ip_address(text: str) -> m.IPAddress:
    """`ipaddress.ip_address(text)`, with dotted-quad IPv4 read by the C library.

    Reading thousands of real servers' addresses was a tenth of loading them; glibc's
    inet_pton takes exactly the IPv4 text ipaddress takes (four decimal octets up to
    255, no leading zeros) at a fifth of the cost. Anything else (IPv6, a mistake)
    goes to ipaddress, whose ValueError names the problem. A test compares both.
    """
    try:
        return ipaddress.IPv4Address(socket.inet_pton(socket.AF_INET, text))
    except (OSError, ValueError):
        return ipaddress.ip_address(text)


def _parse_ip(ctx: _Walker, node: Node, path: str) -> Any:
    # `_convert(ctx, node, path, "an IP address", ip_address)`, in one call: every real
    # server has an address.
    if type(node) is ScalarNode and node.tag != _NULL_TAG:
        text = node.value.strip()
        try:
            return ip_address(text)
        except ValueError:
            return ctx.error(node, path, f"not an IP address: {text!r}")
    return _convert(ctx, node, path, "an IP address", ip_address)


def _parse_interface(ctx: _Walker, node: Node, path: str) -> Any:
    return _convert(ctx, node, path, "an address IP[/prefix]", ipaddress.ip_interface)


def _parse_hostport(ctx: _Walker, node: Node, path: str) -> Any:
    text = _text(ctx, node, path, "IP:PORT or [IPv6]:PORT")
    if text is _INVALID:
        return text
    match = _HOSTPORT_RE.match(text)
    host = None
    if match is not None:
        try:
            host = ipaddress.ip_address(match["v6"] or match["host"])
        except ValueError:
            host = None
    if match is None or host is None or (match["host"] and host.version == 6):
        # a bare IPv6 address without brackets and port is still unambiguous
        try:
            bare = ipaddress.ip_address(text)
        except ValueError:
            return ctx.error(node, path, f"must be IP:PORT or [IPv6]:PORT, got {text!r}")
        return m.HostPort(bare, 0)
    port = int(match["port"]) if match["port"] else 0
    if match["v6"] and host.version != 6:
        return ctx.error(node, path, f"brackets are for IPv6 addresses, got {text!r}")
    if not 0 <= port <= 65535:
        return ctx.error(node, path, f"port must be 1..65535, got {port}")
    return m.HostPort(host, port)


def _parse_listen(ctx: _Walker, node: Node, path: str) -> Any:
    value = _parse_hostport(ctx, node, path)
    if value is not _INVALID and value.port == 0:
        return ctx.error(node, path, f"needs a port: IP:PORT or [IPv6]:PORT, got {node.value!r}")
    return value


_SMTP_SERVER_RE = re.compile(
    r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^\s:\[\]]+))(?:(?::|\s+)(?P<port>\d+))?$"
)
_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?"
                          r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$")


def _parse_smtp_server(ctx: _Walker, node: Node, path: str) -> Any:
    """`HOST`, `HOST:PORT`, `[IPv6]:PORT`, keepalived's `HOST PORT`, or {host, port}."""
    if isinstance(node, MappingNode):
        read = ctx.read(m.SmtpServer, node, path)
        if read is None or not read[2]:
            return _INVALID
        host = read[0]["host"]
        if not _is_host(host):
            return ctx.error(node, path, f"host: not an IP address or host name: {host!r}")
        return m.SmtpServer(**read[0])
    text = _text(ctx, node, path, "HOST[:PORT] (an IP address or host name)")
    if text is _INVALID:
        return text
    match = _SMTP_SERVER_RE.match(text)
    host = None
    port = 25
    if match is not None:
        host = match["v6"] or match["host"]
        port = int(match["port"]) if match["port"] else 25
    else:
        with_colons = text.rsplit(None, 1)
        try:  # a bare IPv6 address, perhaps followed by a port
            host = str(ipaddress.ip_address(with_colons[0]))
            port = int(with_colons[1]) if len(with_colons) == 2 else 25
        except ValueError:
            host = None
    bracketed_v4 = match is not None and match["v6"] and ":" not in (host or "")
    if host is None or not _is_host(host) or bracketed_v4:
        return ctx.error(node, path, f"must be HOST[:PORT] or [IPv6]:PORT, got {text!r}")
    if not 1 <= port <= 65535:
        return ctx.error(node, path, f"port must be 1..65535, got {port}")
    return m.SmtpServer(host, port)


def _is_host(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return bool(_HOSTNAME_RE.match(text))
    return True


def _parse_reply_pattern(ctx: _Walker, node: Node, path: str) -> Any:
    """UDP_CHECK's require_reply: true/false, or a hex pattern (x: any nibble)."""
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:bool":
        return ctx.scalar(node, path)
    text = _text(ctx, node, path, "true, false or a hex pattern")
    if text is _INVALID:
        return text
    from healthchecks.params import parse_hex

    try:
        parse_hex(text, wildcards=True)
    except ValueError as exc:
        return ctx.error(node, path, str(exc))
    return text


def _parse_command(ctx: _Walker, node: Node, path: str) -> Any:
    if isinstance(node, MappingNode):
        # The {script, user, group} form is for notify commands; elsewhere the user and
        # group are keys next to the command, so a mapping here would not be honoured.
        parent = path.rsplit(".", 1)[0] if "." in path else path
        return ctx.error(
            node, path,
            "must be a command line or a list, got a mapping (the script/user/group form "
            f"is for notify_* and quorum_* keys; here set {parent}.user and "
            f"{parent}.group)",
        )
    if isinstance(node, SequenceNode):
        argv: list[str] = []
        for i, item in enumerate(node.value):
            arg = _text(ctx, item, f"{path}[{i}]", "a string")
            if arg is _INVALID:
                return arg
            argv.append(str(item.value))
        if not argv or not argv[0]:
            return ctx.error(node, path, "must name a program to run")
        return m.Command(tuple(argv), shlex.join(argv))
    text = _text(ctx, node, path, "a command line")
    if text is _INVALID:
        return text
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        return ctx.error(node, path, f"cannot split into arguments: {exc}")
    if not argv:
        return ctx.error(node, path, "must name a program to run")
    return m.Command(tuple(argv), text)


_NOTIFY_KEYS = ("script", "user", "group")


def _parse_notify_command(ctx: _Walker, node: Node, path: str) -> Any:
    """A notify command: a command line, a list, or {script, user, group}."""
    if not isinstance(node, MappingNode):
        cmd = _parse_command(ctx, node, path)
        if cmd is _INVALID:
            return cmd
        return m.NotifyCommand(cmd.argv, cmd.text)
    pairs = ctx.mapping(node, path)
    if pairs is None:
        return _INVALID
    given: dict[str, Node] = {}
    ok = True
    for key, value in pairs:
        kpath = _join(path, key)
        if key not in _NOTIFY_KEYS:
            ctx.error(ctx.lines[kpath], kpath, f"unknown key{_suggest(key, _NOTIFY_KEYS)}")
            ok = False
            continue
        given[key] = value
    if "script" not in given:
        ctx.error(ctx.lines.get(path, _line(node)), _join(path, "script"),
                  "required key is missing (the command to run)")
        return _INVALID
    cmd = _parse_command(ctx, given["script"], _join(path, "script"))
    names: dict[str, str | None] = {"user": None, "group": None}
    for key in ("user", "group"):
        value_node = given.get(key)
        if value_node is None or _is_null(value_node):
            continue
        name = _parse_run_as_name(ctx, value_node, _join(path, key))
        if name is _INVALID:
            ok = False
        else:
            names[key] = name
    if names["group"] is not None and names["user"] is None:
        ctx.at(_join(path, "group"), _GROUP_NEEDS_USER)
        ok = False
    if cmd is _INVALID or not ok:
        return _INVALID
    return m.NotifyCommand(cmd.argv, cmd.text, names["user"], names["group"])


_GROUP_NEEDS_USER = "only with user: give the user the script runs as too"
_RUN_AS_NAME_RE = re.compile(r"^[^\s:]+$")


def _parse_run_as_name(ctx: _Walker, node: Node, path: str) -> Any:
    """A user or group name to run a script as (looked up when scripts are prepared)."""
    what = "a group name" if path.endswith("group") else "a user name"
    text = _text(ctx, node, path, what)
    if text is _INVALID:
        return text
    if not _RUN_AS_NAME_RE.match(text):
        return ctx.error(node, path, f"must be {what} (no spaces or ':'), got {text!r}")
    return text


_VIP_OPTIONS = ("dev", "scope", "label")
_VIP_FLAGS = ("no_track",)


def _parse_vip(ctx: _Walker, node: Node, path: str) -> Any:
    if isinstance(node, MappingNode):
        read = ctx.read(m.VirtualIpAddress, node, path)
        if read is None or not read[2]:
            return _INVALID
        return _finish_vip(ctx, node, path, m.VirtualIpAddress(**read[0]))
    text = _text(ctx, node, path, "'IP[/prefix] [dev IFACE]' or a mapping")
    if text is _INVALID:
        return text
    words = text.split()
    if not words:
        return ctx.error(node, path, "empty address")
    try:
        address = ipaddress.ip_interface(words[0])
    except ValueError:
        return ctx.error(node, path, f"not an address IP[/prefix]: {words[0]!r}")
    options: dict[str, Any] = {}
    rest = words[1:]
    while rest:
        word = rest.pop(0)
        if word in _VIP_FLAGS:
            options[word] = True
        elif word in _VIP_OPTIONS:
            if not rest:
                return ctx.error(node, path, f"'{word}' needs a value")
            options[word] = rest.pop(0)
        else:
            known = (*_VIP_OPTIONS, *_VIP_FLAGS)
            return ctx.error(
                node, path,
                f"unknown option '{word}' (known: {', '.join(known)}){_suggest(word, known)}",
            )
    scope = options.get("scope")
    allowed_scopes = typing.get_args(_strip_none(_hints(m.VirtualIpAddress)["scope"])[0])
    if scope is not None and scope not in allowed_scopes:
        return ctx.error(
            node, path, f"scope must be one of {' | '.join(allowed_scopes)}, got {scope!r}"
        )
    return _finish_vip(ctx, node, path, m.VirtualIpAddress(address, **options))


_ROUTE_TYPES = ("blackhole", "unreachable", "prohibit", "throw")
_ROUTE_WORDS = {"via": "via", "gw": "via", "dev": "dev", "src": "src", "scope": "scope",
                "table": "table", "metric": "metric", "preference": "metric",
                "protocol": "protocol", "proto": "protocol", "to": "to"}
_RULE_WORDS = {"from": "from", "to": "to", "fwmark": "fwmark", "iif": "iif", "oif": "oif",
               "table": "table", "lookup": "table", "priority": "priority",
               "preference": "priority", "pref": "priority", "prio": "priority"}
# /etc/iproute2/rt_protos
_RT_PROTOS = {"redirect": 1, "kernel": 2, "boot": 3, "static": 4, "ra": 9, "dhcp": 16,
              "bird": 12, "zebra": 11, "keepalived": 18}


def _route_or_rule(cls: type[Any]) -> Callable[[_Walker, Node, str], Any]:
    """Text in `ip route` / `ip rule` words (keepalived's virtual_routes / virtual_rules),
    or a mapping: read as the same mapping, errors on the text's line."""
    words_of = _ROUTE_WORDS if cls is m.Route else _RULE_WORDS

    def parse(ctx: _Walker, node: Node, path: str) -> Any:
        if isinstance(node, ScalarNode) and not _is_null(node):
            words = str(node.value).split()
            given: dict[str, Any] = {}
            while words:
                word = words.pop(0)
                if cls is m.Route and word in ("or", "nexthop"):
                    hops = _nexthop_words(word, words, given)
                    if isinstance(hops, str):
                        return ctx.error(node, path, hops)
                    given["nexthops"] = hops
                    continue
                if word == "no_track":
                    given["no_track"] = "true"
                elif cls is m.Route and word in _ROUTE_TYPES and "type" not in given:
                    given["type"] = word
                elif word in words_of and words:
                    value = words.pop(0)
                    if words_of[word] == "protocol" and value in _RT_PROTOS:
                        value = str(_RT_PROTOS[value])
                    if cls is m.Rule and value == "all" and word in ("from", "to"):
                        continue
                    given[words_of[word]] = value
                elif cls is m.Route and "to" not in given and word not in words_of:
                    given["to"] = word
                else:
                    known = sorted(words_of)
                    return ctx.error(node, path, f"unknown or incomplete word '{word}' "
                                     f"(known: {', '.join(known)}){_suggest(word, known)}")
            if given.get("to") == "default":
                hops = given.get("nexthops") or [{}]
                six = ":" in given.get("via", hops[0].get("via", ""))
                given["to"] = "::/0" if six else "0.0.0.0/0"
            node = _synthetic_mapping(node, given)
        if not isinstance(node, MappingNode):
            return ctx.error(node, path, f"must be text or a mapping, got {_describe(node)}")
        read = ctx.read(cls, node, path)
        if read is None or not read[2]:
            return _INVALID
        value = cls(**read[0])
        families = {a.version for a in _addresses_of(value)}
        if len(families) > 1:
            return ctx.error(node, path, "mixes IPv4 and IPv6 addresses")
        if isinstance(value, m.Route) and value.nexthops:
            if value.via is not None:
                return ctx.error(node, path, "give via or nexthops, not both")
            if value.type != "unicast":
                return ctx.error(node, path, f"a {value.type} route has no nexthops")
            if any(hop.via is None and hop.dev is None and value.dev is None
                   for hop in value.nexthops):
                return ctx.error(node, path, "each nexthop needs via or dev")
        return value

    return parse


_NEXTHOP_WORDS = {"via": "via", "gw": "via", "dev": "dev", "weight": "weight"}


def _nexthop_words(
    word: str, words: list[str], given: dict[str, Any]
) -> list[dict[str, str]] | str:
    """A multipath route's text, as keepalived reads it: `via A or B` (two nexthops, A
    and B), or `nexthop via A [dev X] [weight N] [onlink] nexthop ...` to the end of the
    line. The words are taken from `words`; a problem is returned as text."""
    if "nexthops" in given:
        return f"'{word}' after the route's nexthops (keepalived: \"trailing nonsense\")"
    if word == "or":
        if "via" not in given or not words:
            return "'or GATEWAY' needs 'via GATEWAY' before it"
        first = given.pop("via")
        return [{"via": first}, {"via": words.pop(0)}]
    hops: list[dict[str, str]] = []
    while True:
        hop: dict[str, str] = {}
        while words and words[0] != "nexthop":
            key = words.pop(0)
            if key == "onlink":
                hop["onlink"] = "true"
            elif key in _NEXTHOP_WORDS and words:
                hop[_NEXTHOP_WORDS[key]] = words.pop(0)
            else:
                return (f"unknown or incomplete word '{key}' in a nexthop (known: dev, "
                        "onlink, via, weight; nothing may follow the nexthops)")
        if not hop:
            return "an empty 'nexthop'"
        hops.append(hop)
        if not words:
            return hops
        words.pop(0)  # the next "nexthop"


def _addresses_of(value: Any) -> list[Any]:
    keys = ("to", "via", "src") if isinstance(value, m.Route) else ("from_", "to")
    found = [a for a in (getattr(value, k) for k in keys) if a is not None]
    if isinstance(value, m.Route):
        found += [hop.via for hop in value.nexthops if hop.via is not None]
    return found


def _synthetic_mapping(node: Node, given: Mapping[str, Any]) -> MappingNode:
    """A mapping node of plain scalars (or lists of such mappings), marked at `node` (so
    errors name its line)."""
    def scalar(text: str) -> ScalarNode:
        tag: str = yaml.resolver.Resolver().resolve(  # type: ignore[no-untyped-call]
            ScalarNode, text, (True, False))
        return ScalarNode(tag, text, node.start_mark, node.end_mark)

    def value(v: Any) -> Node:
        if isinstance(v, list):
            return SequenceNode("tag:yaml.org,2002:seq",
                                [_synthetic_mapping(node, item) for item in v],
                                node.start_mark, node.end_mark)
        return scalar(v)

    pairs: list[tuple[Node, Node]] = [(scalar(k), value(v)) for k, v in given.items()]
    return MappingNode("tag:yaml.org,2002:map", pairs, node.start_mark, node.end_mark)


def _finish_vip(ctx: _Walker, node: Node, path: str, vip: m.VirtualIpAddress) -> Any:
    ip = vip.ip
    if ip.is_multicast or ip.is_unspecified or ip.is_loopback:
        return ctx.error(node, path, f"{ip} cannot be a virtual address")
    if vip.label is not None:
        if vip.family != 4:
            return ctx.error(node, path, "label: only IPv4 addresses carry a label")
        if not 0 < len(vip.label) < _IFNAMSIZ:
            return ctx.error(
                node, path, f"label: 1 to {_IFNAMSIZ - 1} characters, got {vip.label!r}"
            )
    return vip


_IFNAMSIZ = 16  # linux/if.h: a label is an interface name, NUL included


def _named_or_mapping(cls: type[Any], key: str) -> Callable[[_Walker, Node, str], Any]:
    def parse(ctx: _Walker, node: Node, path: str) -> Any:
        if isinstance(node, MappingNode):
            return ctx.build(cls, node, path)
        if key == "ip":
            value = _parse_ip(ctx, node, path)
        else:
            value = _text(ctx, node, path, f"a name or a mapping with '{key}'")
        if value is _INVALID:
            return value
        return cls(**{key: value})

    return parse


def _build_track(cls: type[Any]) -> Callable[[_Walker, Node, str], Any]:
    def build(ctx: _Walker, node: Node, path: str) -> Any:
        read = ctx.read(cls, node, path)
        if read is None or not read[2]:
            return _INVALID
        return cls(**read[0])

    return build


def _parse_status_codes(ctx: _Walker, node: Node, path: str) -> Any:
    """200, "200-299", [200, 301], or keepalived's "200-299 400-499 503"."""
    items: list[tuple[Node, str]] = []
    if isinstance(node, SequenceNode):
        if not node.value:
            return ctx.error(node, path, "must list at least one status code")
        for i, item in enumerate(node.value):
            text = _text(ctx, item, f"{path}[{i}]", "a status code or range")
            if text is _INVALID:
                return text
            items.extend((item, word) for word in text.split())
    else:
        text = _text(ctx, node, path, "a status code, a range like 200-299, or a list")
        if text is _INVALID:
            return text
        items.extend((node, word) for word in text.split())
    if not items:
        return ctx.error(node, path, "must list at least one status code")
    ranges: list[m.StatusCodeRange] = []
    for item, word in items:
        first, sep, last = word.partition("-")
        if not first.isdigit() or (sep and not last.isdigit()):
            return ctx.error(item, path, f"not a status code or range: {word!r}")
        lo, hi = int(first), int(last) if sep else int(first)
        if not (100 <= lo <= 599 and 100 <= hi <= 599):
            return ctx.error(item, path, f"status codes are 100..599, got {word}")
        if lo > hi:
            return ctx.error(item, path, f"range {word} runs backwards")
        ranges.append(m.StatusCodeRange(lo, hi))
    return tuple(ranges)


def _build_url(ctx: _Walker, node: Node, path: str) -> Any:
    read = ctx.read(m.UrlCheck, node, path)
    if read is None:
        return _INVALID
    values, _given, ok = read
    digest = values.get("digest")
    if digest is not None:
        if not _DIGEST_RE.match(digest):
            ctx.at(_join(path, "digest"), f"must be an MD5 digest (32 hex digits), got {digest!r}")
            ok = False
        else:
            values["digest"] = digest.lower()
    if "path" in values and not values["path"].startswith("/"):
        got = f", got {values['path']!r}" if values["path"] else ""
        ctx.at(_join(path, "path"), f"must start with '/'{got}")
        ok = False
    regex = values.get("regex")
    if regex is not None:
        try:
            # The checker matches the body's bytes: the pattern is compiled as bytes.
            re.compile(regex.encode())
        except re.error as exc:
            ctx.at(_join(path, "regex"), f"not a valid regular expression: {exc}")
            ok = False
    elif values.get("regex_no_match"):
        ctx.at(_join(path, "regex_no_match"), "only used with regex")
        ok = False
    if not ok:
        return _INVALID
    return m.UrlCheck(**values)


def _build_auth(ctx: _Walker, node: Node, path: str) -> Any:
    read = ctx.read(m.Authentication, node, path)
    if read is None:
        return _INVALID
    values, _given, ok = read
    password = values.get("auth_pass")
    if password is not None and not 1 <= len(password.encode()) <= 8:
        ctx.at(
            _join(path, "auth_pass"),
            f"must be 1..8 bytes (VRRPv2 carries 8), got {len(password.encode())}",
        )
        ok = False
    if not ok:
        return _INVALID
    return m.Authentication(**values)


_FIFO_KEYS = ("notify_fifo", "vrrp_notify_fifo", "lvs_notify_fifo")


def _build_global(ctx: _Walker, node: Node, path: str) -> Any:
    read = ctx.read(m.GlobalDefs, node, path)
    if read is None:
        return _INVALID
    values, _given, ok = read
    if values.get("api_token") is not None and values.get("api_listen") is None:
        ctx.at(_join(path, "api_token"), "only used with api_listen")
        ok = False
    fifos: dict[Path, str] = {}
    for key in _FIFO_KEYS:
        fifo = values.get(key)
        if values.get(f"{key}_script") is not None and fifo is None:
            ctx.at(_join(path, f"{key}_script"), f"only used with {key}")
            ok = False
        for word in ("user", "group"):
            if values.get(f"{key}_{word}") is not None and fifo is None:
                ctx.at(_join(path, f"{key}_{word}"), f"only used with {key}")
                ok = False
            name = values.get(f"{key}_{word}")
            if name is not None and not _RUN_AS_NAME_RE.match(name):
                ctx.at(_join(path, f"{key}_{word}"), f"must be a {word} name (no spaces or "
                       f"':'), got {name!r}")
                ok = False
        if values.get(f"{key}_group") is not None and values.get(f"{key}_user") is None:
            ctx.at(_join(path, f"{key}_group"), f"only with {key}_user")
            ok = False
        if fifo is None:
            continue
        if fifo in fifos:  # keepalived refuses one FIFO under two names too
            ctx.at(_join(path, key), f"{fifo} is already {fifos[fifo]}")
            ok = False
        fifos[fifo] = key
    table = values.get("nftables")
    if table is not None and not _NFT_TABLE_RE.match(table):
        ctx.at(_join(path, "nftables"), f"must be an nftables table name (a letter, then "
               f"letters, digits or _, at most 64), got {table!r}")
        ok = False
    elif table == "hacluster":
        ctx.at(_join(path, "nftables"), "'hacluster' is the nftables dataplane's table")
        ok = False
    if not ok:
        return _INVALID
    return m.GlobalDefs(**values)


_NFT_TABLE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


_PARSERS: dict[Any, Callable[[_Walker, Node, str], Any]] = {
    m.IPAddress: _parse_ip,
    m.IPInterface: _parse_interface,
    m.HostPort: _parse_listen,
    m.Command: _parse_command,
    m.NotifyCommand: _parse_notify_command,
    m.VirtualIpAddress: _parse_vip,
    m.Route: _route_or_rule(m.Route),
    m.Rule: _route_or_rule(m.Rule),
    m.SmtpServer: _parse_smtp_server,
    bool | str: _parse_reply_pattern,
    m.TrackInterface: _named_or_mapping(m.TrackInterface, "name"),
    m.TrackScript: _named_or_mapping(m.TrackScript, "name"),
    m.TrackFile: _named_or_mapping(m.TrackFile, "name"),
    m.TrackProcess: _named_or_mapping(m.TrackProcess, "name"),
    m.UnicastPeer: _named_or_mapping(m.UnicastPeer, "ip"),
    tuple[m.StatusCodeRange, ...]: _parse_status_codes,
}

_BUILDERS: dict[type, Callable[[_Walker, Node, str], Any]] = {
    m.TrackInterface: _build_track(m.TrackInterface),
    m.TrackScript: _build_track(m.TrackScript),
    m.TrackFile: _build_track(m.TrackFile),
    m.TrackProcess: _build_track(m.TrackProcess),
    m.UnicastPeer: _build_track(m.UnicastPeer),
    m.UrlCheck: _build_url,
    m.Authentication: _build_auth,
    m.GlobalDefs: _build_global,
}
