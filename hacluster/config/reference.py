"""The configuration key reference, built from the model and the loader (docs/configuration.md).

Each section of the file is a `Container`: a model class and where its mappings sit in a
file. The keys of a container are the ones the loader reads (`loader.yaml_fields`), their
type, bounds and default come from the model, and their meaning, keepalived keyword and
example from `keydocs`. `python -m hacluster.config.reference` writes the Markdown;
`--check` exits 1 when the committed file differs from what would be written.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from hacluster.config import keydocs
from hacluster.config import loader as ld
from hacluster.config import model as m

DEFAULT_OUTPUT = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"

Entry = dict[str, Any]

# The smallest valid settings of the things a container's entry refers to.
_INSTANCE: Entry = {
    "interface": "eth0",
    "virtual_router_id": 51,
    "virtual_ipaddress": ["10.99.0.100/24"],
}
_NAMED: Entry = {
    "vrrp_scripts": {"chk": {"script": "/bin/true"}},
    "vrrp_track_files": {"tf": {"file": "/run/hacluster/tf"}},
    "vrrp_track_processes": {"tp": {"process": "haproxy"}},
}


def _with_instance(**instance: Any) -> Entry:
    return {**_NAMED, "vrrp_instances": {"VI_1": {**_INSTANCE, **instance}}}


def _with_real_server(**rs: Any) -> Entry:
    return {"vrrp_track_files": _NAMED["vrrp_track_files"],  # for FILE_CHECK
            "virtual_servers": [{"ip": "10.99.0.100", "port": 80,
                                 "real_servers": [{"ip": "10.99.1.11", **rs}]}]}


def _instance(c: m.Config) -> m.VrrpInstance:
    return c.vrrp_instances["VI_1"]


def _real_server(c: m.Config) -> m.RealServer:
    return c.virtual_servers[0].real_servers[0]


@dataclass(frozen=True, slots=True)
class Container:
    """A place in the file where mappings of one model class are written."""

    path: str  # as problems name it, with NAME / [] for the variable parts
    cls: type[Any] | None  # None: the keys are `keys` (the notify mapping form)
    keepalived: str
    intro: str
    base: Entry  # the required keys of one entry
    place: Callable[[Entry], Entry]  # one entry → a whole file holding it
    pick: Callable[[m.Config], Any]  # the loaded file → the entry's object
    extra_keys: tuple[str, ...] = ()  # keys read beside the fields (the checker keys)
    keys: Mapping[str, keydocs.KeyDoc] = field(default_factory=dict)

    @property
    def anchor(self) -> str:
        return "".join(c for c in self.path.lower() if c.isalnum() or c in "_-")


def _checker(kind: str, base: Entry, intro: str) -> Container:
    return Container(
        f"virtual_servers[].real_servers[].{kind}", ld.CHECKER_KEYS[kind], f"{kind} {{ }}",
        intro, base, lambda e: _with_real_server(**{kind: e}),
        lambda c: _real_server(c).checks[0],
    )


CONTAINERS: tuple[Container, ...] = (
    Container(
        "global_defs", m.GlobalDefs, "global_defs { }",
        "Daemon-wide settings and the defaults of VRRP instances.",
        {}, lambda e: {**_with_instance(), "global_defs": e}, lambda c: c.global_defs,
    ),
    Container(
        "global_defs.lvs_sync_daemon", m.LvsSyncDaemon,
        "lvs_sync_daemon INTERFACE INSTANCE [id N] [maxlen N] [port N] [ttl N] [group IP]",
        "IPVS connection synchronisation between directors.",
        {"interface": "eth1", "instance": "VI_1"},
        lambda e: {**_with_instance(), "global_defs": {"lvs_sync_daemon": e}},
        lambda c: c.global_defs.lvs_sync_daemon,
    ),
    Container(
        "global_defs.lvs_timeouts", m.LvsTimeouts, "lvs_timeouts [tcp N] [tcpfin N] [udp N]",
        "IPVS connection timeouts in seconds, set with IPVS_CMD_SET_CONFIG as `ipvsadm --set` "
        "does; 0 leaves the kernel's value. IPVS only: `check-config` says so with another "
        "dataplane.",
        {}, lambda e: {"global_defs": {"lvs_timeouts": e}},
        lambda c: c.global_defs.lvs_timeouts,
    ),
    Container(
        "global_defs.smtp_server", m.SmtpServer, "smtp_server HOST [PORT]",
        "Where alert mail goes: written as `HOST[:PORT]` (`[IPv6]:PORT`) or as a mapping "
        "of these keys.",
        {"host": "mail.example.com"}, lambda e: {"global_defs": {"smtp_server": e}},
        lambda c: c.global_defs.smtp_server,
    ),
    Container(
        "vrrp_scripts.NAME", m.VrrpScript, "vrrp_script NAME { }",
        "Commands run periodically; instances and sync groups follow them with "
        "`track_script`.",
        {"script": "/bin/true"}, lambda e: {"vrrp_scripts": {"chk": e}},
        lambda c: c.vrrp_scripts["chk"],
    ),
    Container(
        "vrrp_track_files.NAME", m.VrrpTrackFile, "track_file NAME { } (old: vrrp_track_file)",
        "Files holding a number that moves the priority of the instances that follow them "
        "with `track_file`.",
        {"file": "/run/hacluster/tf"}, lambda e: {"vrrp_track_files": {"tf": e}},
        lambda c: c.vrrp_track_files["tf"],
    ),
    Container(
        "vrrp_track_processes.NAME", m.VrrpTrackProcess,
        "vrrp_track_process NAME { }",
        "Processes counted through the kernel's process events; instances and sync groups "
        "follow them with `track_process`. Up while `quorum` to `quorum_max` match.",
        {"process": "haproxy"}, lambda e: {"vrrp_track_processes": {"tp": e}},
        lambda c: c.vrrp_track_processes["tp"],
    ),
    Container(
        "vrrp_instances.NAME", m.VrrpInstance, "vrrp_instance NAME { }",
        "One virtual router on one interface and address family.",
        _INSTANCE, lambda e: {**_NAMED, "vrrp_instances": {"VI_1": e}}, _instance,
    ),
    Container(
        "vrrp_instances.NAME.virtual_ipaddress[]", m.VirtualIpAddress,
        "virtual_ipaddress { IP/PREFIX [dev IFACE] [scope SCOPE] [label LABEL] [no_track] }",
        "A virtual address, written as the text `IP[/prefix] [dev IFACE] [scope SCOPE] "
        "[label LABEL] [no_track]` or as a mapping of these keys (also in "
        "`virtual_ipaddress_excluded`).",
        {"address": "10.99.0.100/24"},
        lambda e: _with_instance(virtual_ipaddress=[e]),
        lambda c: _instance(c).virtual_ipaddress[0],
    ),
    Container(
        "vrrp_instances.NAME.authentication", m.Authentication, "authentication { }",
        "VRRPv2 simple-text authentication.",
        {"auth_type": "PASS", "auth_pass": "s3cret"},
        lambda e: _with_instance(authentication=e), lambda c: _instance(c).authentication,
    ),
    Container(
        "vrrp_instances.NAME.unicast_peers[]", m.UnicastPeer, "unicast_peer { IP [min_ttl N] "
        "[max_ttl N] }",
        "A unicast peer, written as its address or as a mapping of these keys.",
        {"ip": "10.0.0.2"}, lambda e: _with_instance(unicast_peers=[e]),
        lambda c: _instance(c).unicast_peers[0],
    ),
    Container(
        "vrrp_instances.NAME.track_interface[]", m.TrackInterface,
        "track_interface { IFACE [weight N [reverse]] }",
        "An interface followed, written as its name or as a mapping of these keys (also in "
        "sync groups).",
        {"name": "eth1"}, lambda e: _with_instance(track_interface=[e]),
        lambda c: _instance(c).track_interface[0],
    ),
    Container(
        "vrrp_instances.NAME.track_script[]", m.TrackScript,
        "track_script { NAME [weight N [reverse]] }",
        "A vrrp_script followed, written as its name or as a mapping of these keys (also in "
        "sync groups).",
        {"name": "chk"}, lambda e: _with_instance(track_script=[e]),
        lambda c: _instance(c).track_script[0],
    ),
    Container(
        "vrrp_instances.NAME.track_file[]", m.TrackFile,
        "track_file { NAME [weight N [reverse]] }",
        "A track file followed, written as its name or as a mapping of these keys (also in "
        "sync groups).",
        {"name": "tf"}, lambda e: _with_instance(track_file=[e]),
        lambda c: _instance(c).track_file[0],
    ),
    Container(
        "vrrp_instances.NAME.virtual_routes[]", m.Route,
        "virtual_routes { [TYPE] DEST [via GW] [dev IFACE] [src IP] [scope S] [table N] "
        "[metric N] [protocol P] }",
        "A route, written as `ip route` words (keepalived's) or as a mapping of these keys; "
        "added after the VIPs on becoming MASTER, removed on leaving it.",
        {"to": "192.0.2.0/24", "dev": "eth0"}, lambda e: _with_instance(virtual_routes=[e]),
        lambda c: _instance(c).virtual_routes[0],
    ),
    Container(
        "vrrp_instances.NAME.virtual_routes[].nexthops[]", m.Nexthop,
        "DEST nexthop via GW [dev IFACE] [weight N] [onlink] nexthop ...",
        "One path of a multipath route (also in `static_routes[]`), written as `nexthop` "
        "words after the route's own (nothing may follow them) or as a mapping of these "
        "keys; keepalived's older `DEST via A or B` is the two paths via A and via B.",
        {"dev": "eth1"},
        lambda e: _with_instance(virtual_routes=[{"to": "192.0.2.0/24", "dev": "eth0",
                                                  "nexthops": [e]}]),
        lambda c: _instance(c).virtual_routes[0].nexthops[0],
    ),
    Container(
        "vrrp_instances.NAME.virtual_rules[]", m.Rule,
        "virtual_rules { [from P] [to P] [fwmark N] [iif I] [oif O] table N [priority N] }",
        "A policy-routing rule, written as `ip rule` words or as a mapping of these keys; "
        "added after the routes on becoming MASTER, removed first on leaving it.",
        {"table": 100}, lambda e: _with_instance(virtual_rules=[e]),
        lambda c: _instance(c).virtual_rules[0],
    ),
    Container(
        "static_ipaddress[]", m.VirtualIpAddress,
        "static_ipaddress { IP/PREFIX dev IFACE [scope SCOPE] [label LABEL] }",
        "Addresses set when the daemon starts, whatever the VRRP states, and removed when "
        "it stops; each needs `dev`.",
        {"address": "192.0.2.250/24", "dev": "eth2"}, lambda e: {"static_ipaddress": [e]},
        lambda c: c.static_ipaddress[0],
    ),
    Container(
        "static_routes[]", m.Route, "static_routes { ... }",
        "Routes set at start whatever the VRRP states (as `virtual_routes[]`).",
        {"to": "198.51.100.0/24", "dev": "eth0"}, lambda e: {"static_routes": [e]},
        lambda c: c.static_routes[0],
    ),
    Container(
        "static_rules[]", m.Rule, "static_rules { ... }",
        "Rules set at start whatever the VRRP states (as `virtual_rules[]`).",
        {"table": 100}, lambda e: {"static_rules": [e]}, lambda c: c.static_rules[0],
    ),
    Container(
        "vrrp_instances.NAME.track_process[]", m.TrackProcess,
        "track_process { NAME [weight N [reverse]] }",
        "A tracked process followed, written as its name or as a mapping of these keys "
        "(also in sync groups).",
        {"name": "tp"}, lambda e: _with_instance(track_process=[e]),
        lambda c: _instance(c).track_process[0],
    ),
    Container(
        "vrrp_instances.NAME.notify_master", None, "notify_master SCRIPT [USER [GROUP]]",
        "Every notify command (`notify*` of instances and sync groups, `notify_up`/"
        "`notify_down` of real servers, `quorum_up`/`quorum_down` of virtual servers) is "
        "a command line, a list of arguments, or a mapping of these keys. It runs "
        "without a shell.",
        {"script": "/etc/hacluster/notify.sh master"},
        lambda e: _with_instance(notify_master=e), lambda c: _instance(c).notify_master,
        keys=keydocs.NOTIFY_KEYS,
    ),
    Container(
        "vrrp_sync_groups.NAME", m.VrrpSyncGroup, "vrrp_sync_group NAME { }",
        "Instances that move between states together (all-or-nothing takeover).",
        {"group": ["VI_1"]}, lambda e: {**_with_instance(), "vrrp_sync_groups": {"G1": e}},
        lambda c: c.vrrp_sync_groups["G1"],
    ),
    Container(
        "virtual_servers[]", m.VirtualServer, "virtual_server IP PORT { } / virtual_server "
        "fwmark N { }",
        "One virtual service: `ip` + `port` + `protocol`, or `fwmark`. Timing keys given here "
        "are passed down to the checkers of its real servers.",
        {"ip": "10.99.0.100", "port": 80}, lambda e: {"virtual_servers": [e]},
        lambda c: c.virtual_servers[0],
    ),
    Container(
        "virtual_servers[].real_servers[]", m.RealServer, "real_server IP PORT { }",
        "One real server. Its checks are given under the checker keys (`HTTP_GET`, "
        "`TCP_CHECK`, ...), each holding one mapping or a list of them; the server is up "
        "while all its checks are up, and always up without any.",
        {"ip": "10.99.1.11"}, lambda e: _with_real_server(**e), _real_server,
        extra_keys=tuple(ld.CHECKER_KEYS),
    ),
    _checker("HTTP_GET", {"url": [{"path": "/"}]}, "Fetch each url over plain HTTP."),
    _checker("SSL_GET", {"url": [{"path": "/"}]},
             "Fetch each url over TLS (certificates are not verified, as keepalived)."),
    Container(
        "virtual_servers[].real_servers[].HTTP_GET.url[]", m.UrlCheck, "url { }",
        "One URL of HTTP_GET or SSL_GET.",
        {"path": "/"}, lambda e: _with_real_server(HTTP_GET={"url": [e]}),
        lambda c: typing.cast(m.HttpGetCheck, _real_server(c).checks[0]).url[0],
    ),
    _checker("TCP_CHECK", {}, "A TCP connect succeeds."),
    _checker("SMTP_CHECK", {}, "The server greets with 220 and answers HELO with 250."),
    _checker("DNS_CHECK", {}, "A query over UDP gets an answer with records."),
    _checker("MISC_CHECK", {"misc_path": "/bin/true"},
             "Run a program; exit 0 is up. Its whole process group is killed on timeout."),
    _checker("PING_CHECK", {}, "An ICMP (IPv6: ICMPv6) echo is answered within "
             "connect_timeout; connect_port is not used."),
    _checker("UDP_CHECK", {}, "A datagram sent draws no ICMP error within connect_timeout, "
             "or with require_reply a reply that fits."),
    _checker("FILE_CHECK", {"track_file": "tf"},
             "The number in a vrrp_track_files entry's file decides: with weight 0 the server "
             "is down while it is not 0 (reverse: while it is 0), otherwise the server's "
             "weight is its configured weight + number x weight (never below 0). None of "
             "the servers' timing keys are passed down to it."),
)

# Classes written as one value (text), not as a mapping of keys.
VALUE_CLASSES: tuple[type[Any], ...] = (m.Command, m.NotifyCommand, m.HostPort, m.StatusCodeRange)


# --------------------------------------------------------------------------- one key


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One key as the reference shows it."""

    key: str
    type: str
    default: str
    keepalived: str | None  # None: hacluster only
    example: str  # `key: value`
    text: str
    doc: keydocs.KeyDoc | None = None
    quotes_model_default: bool = False  # the default shown is the model field's, as is


class MissingKeyDoc(LookupError):
    """A key the loader reads has no entry in keydocs."""


def keydoc(cls: type[Any], key: str) -> keydocs.KeyDoc | None:
    """The entry for `key` of `cls`, looked up along the MRO."""
    for klass in cls.__mro__:
        doc = keydocs.KEYS.get((klass.__name__, key))
        if doc is not None:
            return doc
    return None


def _hint_text(hint: Any) -> str:
    inner, nullable = ld._strip_none(hint)
    if nullable:
        return _hint_text(inner)
    names: dict[Any, str] = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        Path: "file path",
        m.IPAddress: "IP address",
        ipaddress.IPv4Address: "IPv4 address",
        ipaddress.IPv6Address: "IPv6 address",
        m.IPInterface: "IP[/prefix]",
        m.HostPort: "IP:PORT",
        m.SmtpServer: "HOST[:PORT] or mapping",
        bool | str: "boolean or hex pattern",
        m.Command: "command line or list",
        m.NotifyCommand: "notify command",
        m.VirtualIpAddress: "address",
        m.TrackInterface: "name or mapping",
        m.TrackScript: "name or mapping",
        m.TrackFile: "name or mapping",
        m.TrackProcess: "name or mapping",
        m.Route: "route text or mapping",
        m.Nexthop: "mapping",
        m.Rule: "rule text or mapping",
        m.UnicastPeer: "address or mapping",
        tuple[m.StatusCodeRange, ...]: "code, range or list",
    }
    if hint in names:
        return names[hint]
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in typing.get_args(hint))
    if origin is tuple:
        return f"list of {_hint_text(typing.get_args(hint)[0])}"
    if isinstance(hint, type) and is_dataclass(hint):
        return "mapping"
    raise TypeError(f"no reference wording for {hint!r}")


def _bounds(meta: Mapping[str, Any]) -> str:
    low, high = meta.get("min"), meta.get("max")
    if low is None and high is None:
        return ""
    return f" {'' if low is None else ld._num(low)}..{'' if high is None else ld._num(high)}"


def _value_text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return ld._num(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]" if value else "[]"
    return str(value)


def _model_default(f: Field[Any]) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def entry_for(container: Container, key: str) -> KeyEntry:
    """The reference entry of `key` in `container`; MissingKeyDoc when keydocs lacks it."""
    cls = container.cls
    if cls is None:
        doc = container.keys[key]
        kinds = {"script": "command line or list", "user": "user name", "group": "group name"}
        return KeyEntry(key, kinds.get(key, "string"), doc.default or "none",
                        _keepalived(doc, key), f"{key}: {doc.example}", doc.text, doc=doc)
    if key in container.extra_keys:  # a checker key of a real server
        checker = next(c for c in CONTAINERS if c.cls is ld.CHECKER_KEYS[key])
        example = yaml.safe_dump(checker.base, default_flow_style=True, width=1000).strip()
        return KeyEntry(
            key, "mapping or list of mappings", "none", key, f"{key}: {example}",
            f"A {key} check; see [{key}](#{checker.anchor}).",
        )
    f = ld.yaml_fields(cls)[key]
    found = keydoc(cls, key)
    if found is None:
        raise MissingKeyDoc(
            f"{cls.__name__}.{key} ({container.path}.{key}) has no entry in "
            "hacluster/config/keydocs.py: add one and run `python -m hacluster.config.reference`"
        )
    doc = found
    hint = ld._hints(cls)[f.name]
    type_text = _hint_text(hint)
    if typing.get_origin(ld._strip_none(hint)[0]) is not tuple:
        type_text += _bounds(f.metadata)
    default = _model_default(f)
    quoted = False
    if doc.default is not None:
        default_text = doc.default
    elif default is MISSING:
        default_text = "required"
    else:
        default_text = _value_text(default)
        quoted = True
    if issubclass(cls, m.CheckBase) and key in ld.inherited_keys(cls):
        default_text = f"the real server's, else the virtual server's, else {default_text}"
    return KeyEntry(key, type_text, default_text, _keepalived(doc, key),
                    f"{key}: {doc.example}", doc.text, doc, quoted)


def _keepalived(doc: keydocs.KeyDoc, key: str) -> str | None:
    return key if doc.keepalived == keydocs.SAME else doc.keepalived


def keys_of(container: Container) -> list[str]:
    """The keys the loader reads in `container`, in the model's order."""
    if container.cls is None:
        return list(container.keys)
    return [*ld.yaml_fields(container.cls), *container.extra_keys]


def entries(container: Container) -> list[KeyEntry]:
    return [entry_for(container, key) for key in keys_of(container)]


# --------------------------------------------------------------------------- Markdown

_INTRO = """\
One YAML file, `/etc/hacluster/hacluster.yaml` by default, holds the whole configuration.
Its keys are keepalived's keywords (see keepalived.conf(5)); the shape of the file and the
commands are in [CONFIG.md](CONFIG.md). Unknown keys are errors, and every problem is
reported as `FILE:LINE: key.path: message` (`hacluster check-config -f FILE`).

In the paths below `NAME` stands for a name you choose and `[]` for an item of a list.
Types: a *number* may have a fraction (seconds are numbers); an *IP address* is IPv4 or
IPv6; a *command line* is split into arguments as a shell would, and run without a shell;
a *notify command* is a command line, a list, or `{script, user, group}`
([below](#vrrp_instancesnamenotify_master)). *keepalived* names the keyword that does the
same in keepalived.conf; "none" marks what hacluster adds.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown() -> str:
    """docs/configuration.md as it should be."""
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m hacluster.config.reference` from hacluster/config "
        "(model.py, loader.py, keydocs.py). Do not edit: edit keydocs.py and run it. -->",
        "",
        _INTRO,
        "## Sections",
        "",
    ]
    out += [f"- [`{c.path}`](#{c.anchor}): {c.intro.split('. ')[0].rstrip('.')}"
            for c in CONTAINERS]
    for c in CONTAINERS:
        out += ["", f"## {c.path}", "", f"keepalived: `{c.keepalived}`", "", c.intro, ""]
        out += ["| key | meaning | type | default | keepalived | example |",
                "|---|---|---|---|---|---|"]
        for e in entries(c):
            keepalived = "none" if e.keepalived is None else f"`{_cell(e.keepalived)}`"
            out.append(
                f"| `{e.key}` | {_cell(e.text)} | {_cell(e.type)} | {_cell(e.default)} "
                f"| {keepalived} | `{_cell(e.example)}` |"
            )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hacluster.config.reference",
        description="Write the configuration key reference (docs/configuration.md).",
    )
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT, metavar="FILE")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if FILE differs from what would be written")
    args = parser.parse_args(argv)
    text = render_markdown()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run python -m hacluster.config.reference",
                  file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
