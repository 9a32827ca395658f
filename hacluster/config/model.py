"""The validated, frozen configuration model with keepalived's keywords and defaults. Does no I/O.

Every value here has already been checked by the loader: addresses are parsed, ranges
hold, names refer to things that exist, and inherited settings (virtual server → real
server → checker) are resolved into each checker. Field names are the YAML keys (see
CONFIG.md); where a YAML key is not a Python identifier the field's metadata says so.
Field metadata also carries the bounds the loader enforces (`min`, `max`).
"""

# No `from __future__ import annotations`: the annotations are evaluated once, when the
# classes are defined. The loader reads them (typing.get_type_hints) at every start,
# which from strings meant compiling each one: ~2 ms more on the way to the VRRP
# role's release, and dataclasses matching every string against ClassVar ~1 ms more.
import types
from collections.abc import Mapping
from dataclasses import field
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeAlias

from vrrp.slotted import slotted

IPAddress: TypeAlias = IPv4Address | IPv6Address
IPInterface: TypeAlias = IPv4Interface | IPv6Interface

InitialState: TypeAlias = Literal["MASTER", "BACKUP"]
Dataplane: TypeAlias = Literal["ipvs", "nftables", "none"]
AuthType: TypeAlias = Literal["PASS"]
LbAlgo: TypeAlias = Literal[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos"
]
LbKind: TypeAlias = Literal["NAT", "DR", "TUN"]
L4Protocol: TypeAlias = Literal["TCP", "UDP", "SCTP"]
HttpProtocol: TypeAlias = Literal["1.0", "1.0C", "1.0K", "1.1"]
DnsQueryType: TypeAlias = Literal["A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA"]

LB_ALGOS: tuple[str, ...] = (
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos",
)


def spec(**kwargs: Any) -> dict[str, Any]:
    """Field metadata read by the loader: key (YAML name), min, max, from_key, derived."""
    return kwargs


def _frozen_map(items: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return types.MappingProxyType(dict(items or {}))


# --------------------------------------------------------------------------- values


@slotted(frozen=True)
class Command:
    """A program to run without a shell: argv split like a shell would, and the original text."""

    argv: tuple[str, ...]
    text: str

    def __str__(self) -> str:
        return self.text


@slotted(frozen=True)
class NotifyCommand(Command):
    """A notify command (notify_*, quorum_*) and the user and group it runs as, when given.

    Written as a command line, a list, or ``{script: ..., user: NAME, group: NAME}``
    (keepalived's ``notify_master SCRIPT [username [groupname]]``). Without a user it runs
    as ``global_defs.script_user``; without a group, in the user's own group.
    """

    user: str | None = None
    group: str | None = None  # only with user

    def run_as(self, default_user: str | None) -> tuple[str | None, str | None]:
        """(user, group) the command runs as; `default_user` is global_defs.script_user."""
        if self.user is None:
            return default_user, None
        return self.user, self.group


@slotted(frozen=True)
class HostPort:
    """An IP address and a TCP port, written `IP:PORT` or `[IPv6]:PORT`."""

    host: IPAddress
    port: int

    def __str__(self) -> str:
        if self.host.version == 6:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


@slotted(frozen=True)
class StatusCodeRange:
    """An inclusive range of HTTP status codes (a single code is first == last)."""

    first: int
    last: int

    def __contains__(self, code: object) -> bool:
        return isinstance(code, int) and self.first <= code <= self.last

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


# --------------------------------------------------------------------------- global_defs

VRRP_MCAST_GROUP4 = IPv4Address("224.0.0.18")  # RFC 5798 §5.1.1.2
VRRP_MCAST_GROUP6 = IPv6Address("ff02::12")  # RFC 5798 §5.1.2.2


@slotted(frozen=True)
class LvsSyncDaemon:
    """`global_defs.lvs_sync_daemon`: IPVS connection sync that follows a VRRP instance."""

    interface: str
    # The vrrp_instance whose state decides master or backup sync. keepalived also takes
    # the daemon without one (`lvs_sync_daemon IFACE [id N] ...`): syncid then defaults to 0.
    instance: str | None = None
    syncid: int | None = field(default=None, metadata=spec(min=0, max=255))  # None: the VRID
    maxlen: int | None = field(default=None, metadata=spec(min=1, max=65507))
    port: int = field(default=8848, metadata=spec(min=1, max=65535))
    ttl: int = field(default=1, metadata=spec(min=1, max=255))
    group: IPAddress | None = None  # None: 224.0.0.81


@slotted(frozen=True)
class LvsTimeouts:
    """`global_defs.lvs_timeouts`: IPVS connection timeouts in seconds (0: leave as is).

    Applied with IPVS_CMD_SET_CONFIG, as `ipvsadm --set tcp tcpfin udp`; IPVS only.
    """

    tcp: int = field(default=0, metadata=spec(min=0, max=86400 * 31))
    tcpfin: int = field(default=0, metadata=spec(min=0, max=86400 * 31))
    udp: int = field(default=0, metadata=spec(min=0, max=86400 * 31))


@slotted(frozen=True)
class SmtpServer:
    """`global_defs.smtp_server`: where alert mail goes (an IP address or a host name)."""

    host: str
    port: int = field(default=25, metadata=spec(min=1, max=65535))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@slotted(frozen=True)
class GlobalDefs:
    """`global_defs`: daemon-wide settings and defaults for VRRP instances."""

    router_id: str | None = None  # None: the daemon uses the host name
    dataplane: Dataplane = "ipvs"
    control_socket: Path = Path("/run/hacluster/hacluster.sock")
    metrics_listen: HostPort | None = None
    api_listen: HostPort | None = None  # optional TCP control API
    api_token: str | None = None  # bearer token required by api_listen for changes
    enable_script_security: bool = False
    script_user: str | None = None
    notify_timeout: float = field(default=30.0, metadata=spec(min=0.1, max=3600))
    event_log: Path | None = None  # JSON lines of state changes and notifications
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    vrrp_version: Literal[2, 3] = 2
    vrrp_mcast_group4: IPv4Address = VRRP_MCAST_GROUP4
    vrrp_mcast_group6: IPv6Address = VRRP_MCAST_GROUP6
    vrrp_garp_master_delay: int = field(default=5, metadata=spec(min=0, max=86400))
    vrrp_garp_master_repeat: int = field(default=5, metadata=spec(min=1, max=255))
    vrrp_garp_master_refresh: int = field(default=0, metadata=spec(min=0, max=86400))
    vrrp_garp_master_refresh_repeat: int = field(default=1, metadata=spec(min=1, max=255))
    vrrp_garp_lower_prio_delay: int | None = field(default=None, metadata=spec(min=0, max=86400))
    vrrp_garp_lower_prio_repeat: int | None = field(default=None, metadata=spec(min=0, max=255))
    vrrp_lower_prio_no_advert: bool = False  # a master hearing a lower advert: no advert back
    vrrp_higher_prio_send_advert: bool = False  # a master leaving for a higher one: advert first
    vrrp_strict: bool = False  # RFC compliance enforced (strict_mode of every instance)
    vrrp_skip_check_adv_addr: bool = False  # don't re-check the VIPs of the same master's adverts
    vrrp_check_unicast_src: bool = False  # unicast adverts only from the unicast peers
    vrrp_notify_priority_changes: bool = False  # FIFO lines for effective priority changes
    vrrp_garp_interval: float = field(default=0.0, metadata=spec(min=0, max=1))
    vrrp_gna_interval: float = field(default=0.0, metadata=spec(min=0, max=1))
    vrrp_down_timer_adverts: int = field(default=3, metadata=spec(min=1, max=100))
    vrrp_checksum_pseudo_header: bool = True  # v3 over IPv4 (keepalived's default)
    # The nftables table (`inet NAME`) that carries out no_accept: it drops traffic to
    # the VIPs of masters that are not the address owner and have accept off.
    nftables: str = "hacluster_vrrp"
    nftables_priority: int = field(default=-1, metadata=spec(min=-2**31, max=2**31 - 1))
    nftables_counters: bool = False  # counters on the table's drop rules
    nftables_ifindex: bool = False  # link-local IPv6 VIPs keyed by ifindex, not name
    lvs_sync_daemon: LvsSyncDaemon | None = None
    lvs_timeouts: LvsTimeouts | None = None
    # Email alerts (keepalived's SMTP alerting): sent when notification_email and
    # smtp_server are both set. smtp_alert* are None when not given; the precedence
    # (object's own, then smtp_alert_vrrp / smtp_alert_checker, then smtp_alert) is
    # resolved by hacluster.alerts.
    notification_email: tuple[str, ...] = ()
    notification_email_from: str | None = None  # None: USER@<host name>, as keepalived
    smtp_server: SmtpServer | None = None
    smtp_helo_name: str | None = None  # None: the local host name
    smtp_connect_timeout: float = field(default=30.0, metadata=spec(min=1, max=3600))
    smtp_alert: bool | None = None
    smtp_alert_vrrp: bool | None = None
    smtp_alert_checker: bool | None = None
    no_email_faults: bool = False  # no mail when an instance or group enters FAULT
    # notify FIFOs: one line per event (keepalived's format). notify_fifo gets every
    # event, vrrp_notify_fifo the VRRP ones, lvs_notify_fifo the virtual/real server ones.
    notify_fifo: Path | None = None
    notify_fifo_script: NotifyCommand | None = None
    vrrp_notify_fifo: Path | None = None
    vrrp_notify_fifo_script: NotifyCommand | None = None
    lvs_notify_fifo: Path | None = None
    lvs_notify_fifo_script: NotifyCommand | None = None
    # The owner a FIFO is created with (keepalived's `notify_fifo FILE [user [group]]`);
    # None: the daemon's user; a group only with a user (default: the user's own group).
    notify_fifo_user: str | None = None
    notify_fifo_group: str | None = None
    vrrp_notify_fifo_user: str | None = None
    vrrp_notify_fifo_group: str | None = None
    lvs_notify_fifo_user: str | None = None
    lvs_notify_fifo_group: str | None = None
    # After each reload, every instance's state (then every sync group's) is written
    # to notify_fifo and vrrp_notify_fifo, as if it had just been entered.
    fifo_write_vrrp_states_on_reload: bool = False
    lvs_flush: bool = False  # flush the IPVS table at start
    lvs_flush_on_stop: bool = False  # remove our IPVS services at stop (else leave them)
    reconcile_interval: float = field(default=10.0, metadata=spec(min=0.1, max=3600))
    # Health-check worker processes; None: enough for the configured check rate, at
    # most one per CPU; 0: checks run in the daemon's own process.
    checker_processes: int | None = field(default=None, metadata=spec(min=0, max=64))
    # The VRRP role process (keepalived's keywords): nice value, SCHED_RR priority, the
    # real-time CPU limit that goes with it (microseconds), memory locked (mlockall).
    vrrp_priority: int = field(default=0, metadata=spec(min=-20, max=19))
    vrrp_rt_priority: int | None = field(default=None, metadata=spec(min=1, max=99))
    vrrp_rlimit_rttime: int | None = field(default=None, metadata=spec(min=1, max=10**9))
    vrrp_no_swap: bool = False


# --------------------------------------------------------------------------- VRRP


@slotted(frozen=True)
class VrrpScript:
    """`vrrp_scripts.NAME`: a command run periodically; its result adjusts priority or faults."""

    name: str = field(metadata=spec(from_key=True))
    script: Command
    interval: float = field(default=1.0, metadata=spec(min=0.01, max=86400))
    timeout: float | None = field(default=None, metadata=spec(min=0.01, max=86400))
    weight: int = field(default=0, metadata=spec(min=-253, max=253))
    reverse: bool = False
    rise: int = field(default=1, metadata=spec(min=1, max=1000))
    fall: int = field(default=1, metadata=spec(min=1, max=1000))
    user: str | None = None  # None: global_defs.script_user
    group: str | None = None  # only with user; None: the user's own group
    init_fail: bool = False

    @property
    def effective_timeout(self) -> float:
        """keepalived's rule: without a timeout, a script may run for one interval."""
        return self.interval if self.timeout is None else self.timeout


@slotted(frozen=True)
class VrrpTrackFile:
    """`vrrp_track_files.NAME`: a file holding a number that is added to priority (x weight)."""

    name: str = field(metadata=spec(from_key=True))
    file: Path
    weight: int = field(default=1, metadata=spec(min=-254, max=254))
    reverse: bool = False
    init_file: int | None = None  # create the file with this value if missing


@slotted(frozen=True)
class VrrpTrackProcess:
    """`vrrp_track_processes.NAME`: how many processes of a name run decides up or down.

    ``process`` is the name (``/proc/PID/comm``), or with parameters, ``param_match`` or
    ``full_command`` the command line (argv[0] exactly, then the parameters).
    """

    name: str = field(metadata=spec(from_key=True))
    process: Command
    param_match: Literal["exact", "initial", "partial"] | None = None  # None: exact with params
    weight: int = field(default=0, metadata=spec(min=-254, max=254))
    reverse: bool = False
    quorum: int = field(default=1, metadata=spec(min=0, max=65535))
    quorum_max: int | None = field(default=None, metadata=spec(min=0, max=65535))  # None: any
    delay: float | None = field(default=None, metadata=spec(min=0.000001, max=3600))
    terminate_delay: float | None = field(default=None, metadata=spec(min=0.000001, max=3600))
    fork_delay: float | None = field(default=None, metadata=spec(min=0.000001, max=3600))
    full_command: bool = False

    @property
    def params(self) -> tuple[str, ...]:
        return self.process.argv[1:]

    @property
    def uses_cmdline(self) -> bool:
        """keepalived's rule: parameters or param_match imply the full command line."""
        return self.full_command or bool(self.params) or self.param_match is not None

    @property
    def match(self) -> Literal["none", "exact", "initial", "partial"]:
        if self.param_match is not None:
            return self.param_match
        return "exact" if self.params else "none"

    @property
    def effective_terminate_delay(self) -> float:
        if self.terminate_delay is not None:
            return self.terminate_delay
        return self.delay or 0.0

    @property
    def effective_fork_delay(self) -> float:
        if self.fork_delay is not None:
            return self.fork_delay
        return self.delay or 0.0


@slotted(frozen=True)
class TrackProcess:
    """One `track_process` entry; weight None means the tracked process's own weight."""

    name: str
    weight: int | None = field(default=None, metadata=spec(min=-254, max=254))
    reverse: bool = False


@slotted(frozen=True)
class TrackInterface:
    """One `track_interface` entry; weight 0 means link down puts the instance in FAULT."""

    name: str
    weight: int = field(default=0, metadata=spec(min=-253, max=253))
    reverse: bool = False


@slotted(frozen=True)
class TrackScript:
    """One `track_script` entry; weight None means the script's own weight."""

    name: str
    weight: int | None = field(default=None, metadata=spec(min=-253, max=253))
    reverse: bool = False


@slotted(frozen=True)
class TrackFile:
    """One `track_file` entry; weight None means the track file's own weight."""

    name: str
    weight: int | None = field(default=None, metadata=spec(min=-254, max=254))
    reverse: bool = False


@slotted(frozen=True)
class UnicastPeer:
    """A unicast VRRP peer, optionally with the TTL / hop-limit range accepted from it."""

    ip: IPAddress
    min_ttl: int | None = field(default=None, metadata=spec(min=0, max=255))
    max_ttl: int | None = field(default=None, metadata=spec(min=0, max=255))


@slotted(frozen=True)
class Authentication:
    """VRRPv2 simple-text authentication (RFC 2338 type 1); at most 8 characters."""

    auth_type: AuthType
    auth_pass: str


# linux/rtnetlink.h: enum rt_scope_t
_RT_SCOPES = {"global": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}


@slotted(frozen=True)
class VirtualIpAddress:
    """A VIP: `IP/prefix [dev IFACE] [scope SCOPE] [label LABEL] [no_track]`."""

    address: IPInterface  # prefix defaults to /32 or /128
    dev: str | None = None  # None: the instance's interface
    scope: Literal["global", "site", "link", "host", "nowhere"] | None = None
    label: str | None = None
    no_track: bool = False

    @property
    def ip(self) -> IPAddress:
        return self.address.ip

    @property
    def family(self) -> int:
        """4 or 6."""
        return self.address.version

    @property
    def rt_scope(self) -> int:
        """The scope as rtnetlink numbers it (global when not given, as `ip addr add`)."""
        return _RT_SCOPES[self.scope or "global"]

    def __str__(self) -> str:
        text = str(self.address)
        if self.dev is not None:
            text += f" dev {self.dev}"
        if self.scope is not None:
            text += f" scope {self.scope}"
        if self.label is not None:
            text += f" label {self.label}"
        if self.no_track:
            text += " no_track"
        return text


RouteType: TypeAlias = Literal["unicast", "blackhole", "unreachable", "prohibit", "throw"]


@slotted(frozen=True)
class Nexthop:
    """One path of a multipath route: `nexthop via GW [dev IFACE] [weight N] [onlink]`."""

    via: IPAddress | None = None
    dev: str | None = None  # None: the route's dev
    weight: int = field(default=1, metadata=spec(min=1, max=256))
    onlink: bool = False  # the gateway is on the link even without a matching prefix

    def __str__(self) -> str:
        text = "nexthop"
        if self.via is not None:
            text += f" via {self.via}"
        if self.dev is not None:
            text += f" dev {self.dev}"
        if self.weight != 1:
            text += f" weight {self.weight}"
        return text + (" onlink" if self.onlink else "")


@slotted(frozen=True)
class Route:
    """A route (virtual_routes, static_routes): `[TYPE] DEST [via GW] [dev IFACE] [src IP]
    [scope S] [table N] [metric N] [protocol N] [no_track]` or a mapping of these keys."""

    to: IPInterface  # "default" reads as 0.0.0.0/0 (::/0 with an IPv6 gateway)
    via: IPAddress | None = None
    dev: str | None = None
    src: IPAddress | None = None
    scope: Literal["global", "site", "link", "host", "nowhere"] | None = None
    table: int | None = field(default=None, metadata=spec(min=1, max=0xFFFFFFFF))  # None: main
    metric: int | None = field(default=None, metadata=spec(min=0, max=0xFFFFFFFF))
    protocol: int | None = field(default=None, metadata=spec(min=0, max=255))  # None: boot
    type: RouteType = "unicast"
    no_track: bool = False
    # A multipath route (RTA_MULTIPATH): the paths, instead of via. keepalived's
    # `DEST via A or B` is the two nexthops via A and via B.
    nexthops: tuple[Nexthop, ...] = ()

    @property
    def family(self) -> int:
        return self.to.version

    @property
    def rt_scope(self) -> int | None:
        return None if self.scope is None else _RT_SCOPES[self.scope]

    def __str__(self) -> str:
        text = ("" if self.type == "unicast" else f"{self.type} ") + str(self.to.network)
        for key in ("via", "dev", "src", "scope", "table", "metric", "protocol"):
            value = getattr(self, key)
            if value is not None:
                text += f" {key} {value}"
        for hop in self.nexthops:
            text += f" {hop}"
        return text + (" no_track" if self.no_track else "")


@slotted(frozen=True)
class Rule:
    """A policy-routing rule (virtual_rules, static_rules): `[from P] [to P] [fwmark N]
    [iif IFACE] [oif IFACE] table N [priority N] [no_track]` or a mapping of these keys."""

    table: int = field(metadata=spec(min=1, max=0xFFFFFFFF))
    from_: IPInterface | None = field(default=None, metadata=spec(key="from"))  # None: all
    to: IPInterface | None = None
    fwmark: int | None = field(default=None, metadata=spec(min=0, max=0xFFFFFFFF))
    iif: str | None = None
    oif: str | None = None
    # keepalived: "Rule has no preference specified - setting to 16384"
    priority: int = field(default=16384, metadata=spec(min=0, max=0xFFFFFFFF))
    family: Literal[4, 6] | None = None  # None: from the addresses, else 4
    no_track: bool = False

    @property
    def ip_family(self) -> int:
        for net in (self.from_, self.to):
            if net is not None:
                return net.version
        return self.family or 4

    def __str__(self) -> str:
        parts = [f"from {self.from_.network if self.from_ else 'all'}"]
        if self.to is not None:
            parts.append(f"to {self.to.network}")
        for key in ("fwmark", "iif", "oif"):
            if getattr(self, key) is not None:
                parts.append(f"{key} {getattr(self, key)}")
        parts.append(f"table {self.table} priority {self.priority}")
        return " ".join(parts)


@slotted(frozen=True)
class VrrpInstance:
    """`vrrp_instances.NAME`: one virtual router on one interface and address family."""

    name: str = field(metadata=spec(from_key=True))
    interface: str
    virtual_router_id: int = field(metadata=spec(min=1, max=255))
    # May be empty under VRRPv2/IPv4, as keepalived allows ("No VIP specified; at least
    # one is sensible"): cloud floating addresses moved by a notify script.
    virtual_ipaddress: tuple[VirtualIpAddress, ...] = ()
    state: InitialState = "BACKUP"
    priority: int = field(default=100, metadata=spec(min=1, max=255))
    advert_int: float = 1.0  # seconds; the loader checks it against the version
    version: Literal[2, 3] = 2  # the loader fills in global_defs.vrrp_version when unset
    nopreempt: bool = False
    preempt_delay: float = field(default=0.0, metadata=spec(min=0, max=1000))
    unicast_src_ip: IPAddress | None = None
    unicast_peers: tuple[UnicastPeer, ...] = ()
    unicast_ttl: int = field(default=255, metadata=spec(min=1, max=255))
    mcast_src_ip: IPAddress | None = None
    mcast_dst_ip: IPAddress | None = None  # None: global vrrp_mcast_group4/6
    authentication: Authentication | None = None
    virtual_ipaddress_excluded: tuple[VirtualIpAddress, ...] = ()
    virtual_routes: tuple[Route, ...] = ()  # added while MASTER, removed on leaving it
    virtual_rules: tuple[Rule, ...] = ()
    track_interface: tuple[TrackInterface, ...] = ()
    track_script: tuple[TrackScript, ...] = ()
    track_file: tuple[TrackFile, ...] = ()
    track_process: tuple[TrackProcess, ...] = ()
    dont_track_primary: bool = False
    accept: bool = True  # accept mode: the VIPs answer even when not the address owner
    checksum_pseudo_header: bool = True  # v3/IPv4 checksum includes the pseudo-header
    down_timer_adverts: int = field(default=3, metadata=spec(min=1, max=100))
    # The garp_* values default to the vrrp_garp_* ones of global_defs (loader resolves).
    garp_master_delay: int = field(default=5, metadata=spec(min=0, max=86400))
    garp_master_repeat: int = field(default=5, metadata=spec(min=1, max=255))
    garp_master_refresh: int = field(default=0, metadata=spec(min=0, max=86400))
    garp_master_refresh_repeat: int = field(default=1, metadata=spec(min=1, max=255))
    garp_lower_prio_delay: int = field(default=5, metadata=spec(min=0, max=86400))
    garp_lower_prio_repeat: int = field(default=5, metadata=spec(min=0, max=255))
    lower_prio_no_advert: bool = False  # default: global_defs.vrrp_lower_prio_no_advert
    higher_prio_send_advert: bool = False  # default: global_defs.vrrp_higher_prio_send_advert
    strict_mode: bool = False  # default: global_defs.vrrp_strict
    skip_check_adv_addr: bool = False  # default: global_defs.vrrp_skip_check_adv_addr
    # default: global_defs.vrrp_check_unicast_src, or on when a peer has min_ttl/max_ttl
    check_unicast_src: bool = False
    notify_priority_changes: bool = False  # default: global_defs.vrrp_notify_priority_changes
    use_vmac: bool = False  # a macvlan with the virtual MAC carries the VIPs (and adverts)
    vmac_interface: str | None = None  # its name; None: vrrp.VRID (vrrp6.VRID for IPv6)
    vmac_xmit_base: bool = False  # adverts on the base interface, not the macvlan
    notify_master: NotifyCommand | None = None
    notify_backup: NotifyCommand | None = None
    notify_fault: NotifyCommand | None = None
    notify_stop: NotifyCommand | None = None
    notify: NotifyCommand | None = None  # called as: notify INSTANCE NAME STATE PRIORITY
    smtp_alert: bool | None = None  # None: global smtp_alert_vrrp, else smtp_alert, else off

    @property
    def family(self) -> int:
        """4 or 6: the family of the VIPs carried in adverts (without VIPs, as keepalived
        decides it: the unicast source or peers, else IPv4)."""
        if self.virtual_ipaddress:
            return self.virtual_ipaddress[0].family
        for ip in (self.unicast_src_ip, self.mcast_src_ip,
                   *(p.ip for p in self.unicast_peers)):
            if ip is not None:
                return ip.version
        return 4

    @property
    def is_unicast(self) -> bool:
        return bool(self.unicast_peers)

    @property
    def is_owner(self) -> bool:
        """Priority 255: the address owner (RFC 5798 §6.1)."""
        return self.priority == 255


@slotted(frozen=True)
class VrrpSyncGroup:
    """`vrrp_sync_groups.NAME`: instances that move between states together."""

    name: str = field(metadata=spec(from_key=True))
    group: tuple[str, ...]
    track_interface: tuple[TrackInterface, ...] = ()
    track_script: tuple[TrackScript, ...] = ()
    track_file: tuple[TrackFile, ...] = ()
    track_process: tuple[TrackProcess, ...] = ()
    notify_master: NotifyCommand | None = None
    notify_backup: NotifyCommand | None = None
    notify_fault: NotifyCommand | None = None
    notify_stop: NotifyCommand | None = None
    notify: NotifyCommand | None = None  # called as: notify GROUP NAME STATE PRIORITY
    smtp_alert: bool | None = None  # None: global smtp_alert_vrrp, else smtp_alert, else off
    # The default of its members' notify_priority_changes (those that set none); None:
    # the global vrrp_notify_priority_changes.
    notify_priority_changes: bool | None = None


# --------------------------------------------------------------------------- checkers


@slotted(frozen=True, kw_only=True)
class CheckBase:
    """Settings every checker has; inherited from the real server and virtual server."""

    KIND: ClassVar[str] = ""

    retry: int = field(default=1, metadata=spec(min=0, max=1000))
    delay_before_retry: float = field(default=1.0, metadata=spec(min=0, max=86400))
    delay_loop: float = field(default=60.0, metadata=spec(min=0.01, max=86400))
    warmup: float | None = field(default=None, metadata=spec(min=0, max=86400))  # None: delay_loop
    alpha: bool = False  # start down: the server must pass before it gets traffic
    log_all_failures: bool = False

    @property
    def effective_warmup(self) -> float:
        """Upper bound of the random delay before the first check."""
        return self.delay_loop if self.warmup is None else self.warmup


@slotted(frozen=True, kw_only=True)
class NetworkCheckBase(CheckBase):
    """Connection settings of the network checkers; connect_ip/port default to the real server."""

    connect_ip: IPAddress | None = None
    connect_port: int | None = field(default=None, metadata=spec(min=1, max=65535))
    bindto: IPAddress | None = None
    bind_port: int | None = field(default=None, metadata=spec(min=1, max=65535))
    bind_if: str | None = None
    fwmark: int | None = field(default=None, metadata=spec(min=1, max=0xFFFFFFFF))
    connect_timeout: float = field(default=5.0, metadata=spec(min=0.01, max=3600))


@slotted(frozen=True)
class UrlCheck:
    """One `url` of HTTP_GET / SSL_GET: the path, the accepted status codes, optional checks."""

    path: str
    status_code: tuple[StatusCodeRange, ...] = (StatusCodeRange(200, 299),)
    digest: str | None = None  # md5 of the body, 32 lowercase hex digits
    virtualhost: str | None = None
    regex: str | None = None
    regex_no_match: bool = False

    def accepts(self, code: int) -> bool:
        return any(code in r for r in self.status_code)


@slotted(frozen=True, kw_only=True)
class HttpCheckBase(NetworkCheckBase):
    """What HTTP_GET and SSL_GET share."""

    delay_before_retry: float = field(default=3.0, metadata=spec(min=0, max=86400))
    url: tuple[UrlCheck, ...] = ()
    http_protocol: HttpProtocol = "1.0"
    virtualhost: str | None = None
    fast_recovery: bool = False


@slotted(frozen=True, kw_only=True)
class HttpGetCheck(HttpCheckBase):
    """`HTTP_GET`: fetch each url over plain HTTP."""

    KIND: ClassVar[str] = "HTTP_GET"


@slotted(frozen=True, kw_only=True)
class SslGetCheck(HttpCheckBase):
    """`SSL_GET`: fetch each url over TLS (certificates are not verified, as keepalived)."""

    KIND: ClassVar[str] = "SSL_GET"
    enable_sni: bool = False


@slotted(frozen=True, kw_only=True)
class TcpCheck(NetworkCheckBase):
    """`TCP_CHECK`: a TCP connect succeeds."""

    KIND: ClassVar[str] = "TCP_CHECK"
    # False: reset on the server's SYN-ACK (HAProxy's half-open check); True: send the
    # handshake's last ACK first, so the server accepts a connection (keepalived's way).
    complete_handshake: bool = False


@slotted(frozen=True, kw_only=True)
class SmtpCheck(NetworkCheckBase):
    """`SMTP_CHECK`: the server greets with 220 and answers HELO with 250."""

    KIND: ClassVar[str] = "SMTP_CHECK"
    helo_name: str | None = None  # None: the local host name


@slotted(frozen=True, kw_only=True)
class DnsCheck(NetworkCheckBase):
    """`DNS_CHECK`: a query over UDP gets an answer."""

    KIND: ClassVar[str] = "DNS_CHECK"
    retry: int = field(default=3, metadata=spec(min=0, max=1000))
    type: DnsQueryType = "SOA"
    name: str = "."


@slotted(frozen=True, kw_only=True)
class MiscCheck(CheckBase):
    """`MISC_CHECK`: run a program; exit 0 is up (with misc_dynamic, 2..255 set the weight)."""

    KIND: ClassVar[str] = "MISC_CHECK"
    retry: int = field(default=0, metadata=spec(min=0, max=1000))
    misc_path: Command
    misc_timeout: float | None = field(default=None, metadata=spec(min=0.01, max=86400))
    misc_dynamic: bool = False
    user: str | None = None  # None: global_defs.script_user
    group: str | None = None  # only with user; None: the user's own group

    @property
    def effective_timeout(self) -> float:
        """keepalived's rule: without misc_timeout, the program may run for delay_loop."""
        return self.delay_loop if self.misc_timeout is None else self.misc_timeout


@slotted(frozen=True, kw_only=True)
class PingCheck(NetworkCheckBase):
    """`PING_CHECK`: an ICMP (IPv6: ICMPv6) echo is answered within connect_timeout."""

    KIND: ClassVar[str] = "PING_CHECK"


@slotted(frozen=True, kw_only=True)
class UdpCheck(NetworkCheckBase):
    """`UDP_CHECK`: a datagram sent draws no ICMP error (or, with require_reply, a reply).

    `payload` and a `require_reply` pattern are hex strings (spaces allowed; in the
    pattern an `x` matches any nibble), as keepalived reads them.
    """

    KIND: ClassVar[str] = "UDP_CHECK"
    payload: str | None = None  # None: 32 bytes of "keepalived check - ..."
    require_reply: bool | str = False  # true, or the hex pattern the reply starts with
    min_reply_length: int = field(default=0, metadata=spec(min=0, max=65535))
    max_reply_length: int = field(default=255, metadata=spec(min=0, max=65535))


@slotted(frozen=True, kw_only=True)
class FileCheck(CheckBase):
    """`FILE_CHECK`: a vrrp_track_files entry's number decides up, down or a weight.

    With weight 0 the server is down while the file holds a non-zero number (reverse:
    while it holds 0); otherwise value x weight (negated by reverse) is added to the
    real server's weight. The file is read every delay_loop (default 1 s): keepalived
    watches it with inotify.
    """

    KIND: ClassVar[str] = "FILE_CHECK"
    track_file: str
    weight: int | None = field(  # None: the track file's own weight and reverse
        default=None, metadata=spec(min=-(2**31 - 1), max=2**31 - 1)
    )
    reverse: bool = False
    retry: int = field(default=0, metadata=spec(min=0, max=1000))
    delay_loop: float = field(default=1.0, metadata=spec(min=0.01, max=86400))
    warmup: float | None = field(default=0.0, metadata=spec(min=0, max=86400))


Checker: TypeAlias = (
    HttpGetCheck | SslGetCheck | TcpCheck | SmtpCheck | DnsCheck | MiscCheck | PingCheck
    | UdpCheck | FileCheck
)

CHECKER_TYPES: tuple[type[CheckBase], ...] = (
    HttpGetCheck,
    SslGetCheck,
    TcpCheck,
    SmtpCheck,
    DnsCheck,
    MiscCheck,
    PingCheck,
    UdpCheck,
    FileCheck,
)


# --------------------------------------------------------------------------- virtual servers


@slotted(frozen=True)
class RealServer:
    """One real server of a virtual server, with its checks (all must pass for it to be up).

    The timing keys (connect_timeout, retry, ...) are as written here, None when not
    given; the resolved values live in each check.
    """

    ip: IPAddress
    port: int = field(default=0, metadata=spec(min=0, max=65535))  # 0: the virtual port
    weight: int = field(default=1, metadata=spec(min=0, max=65535))
    lb_kind: LbKind | None = None  # None: the virtual server's lb_kind (see forwarding)
    inhibit_on_failure: bool | None = None  # None: the virtual server's setting
    notify_up: NotifyCommand | None = None
    notify_down: NotifyCommand | None = None
    # None: global smtp_alert_checker, else smtp_alert, else on (keepalived's default)
    smtp_alert: bool | None = None
    uthreshold: int = field(default=0, metadata=spec(min=0, max=0xFFFFFFFF))
    lthreshold: int = field(default=0, metadata=spec(min=0, max=0xFFFFFFFF))
    virtualhost: str | None = None
    alpha: bool | None = None
    connect_timeout: float | None = field(default=None, metadata=spec(min=0.01, max=3600))
    retry: int | None = field(default=None, metadata=spec(min=0, max=1000))
    delay_before_retry: float | None = field(default=None, metadata=spec(min=0, max=86400))
    delay_loop: float | None = field(default=None, metadata=spec(min=0.01, max=86400))
    warmup: float | None = field(default=None, metadata=spec(min=0, max=86400))
    # built from the HTTP_GET / TCP_CHECK / ... keys, not a key of its own
    checks: tuple[Checker, ...] = field(default=(), metadata=spec(derived=True))

    @property
    def family(self) -> int:
        return self.ip.version

    @property
    def key(self) -> tuple[IPAddress, int]:
        """Identity within its virtual server."""
        return (self.ip, self.port)

    def __str__(self) -> str:
        return str(HostPort(self.ip, self.port))


@slotted(frozen=True)
class VirtualServer:
    """One IPVS virtual service: `ip` + `port` + `protocol`, or `fwmark`."""

    ip: IPAddress | None = None
    port: int | None = field(default=None, metadata=spec(min=0, max=65535))
    fwmark: int | None = field(default=None, metadata=spec(min=1, max=0xFFFFFFFF))
    protocol: L4Protocol = "TCP"
    ip_family: Literal["inet", "inet6"] | None = None  # for fwmark services
    lb_algo: LbAlgo = "wlc"
    lb_kind: LbKind = "NAT"
    persistence_timeout: int = field(default=0, metadata=spec(min=0, max=0xFFFFFFFF))
    ops: bool = False  # one-packet scheduling (UDP)
    delay_loop: float = field(default=60.0, metadata=spec(min=0.01, max=86400))
    connect_timeout: float | None = field(default=None, metadata=spec(min=0.01, max=3600))
    retry: int | None = field(default=None, metadata=spec(min=0, max=1000))
    delay_before_retry: float | None = field(default=None, metadata=spec(min=0, max=86400))
    warmup: float | None = field(default=None, metadata=spec(min=0, max=86400))
    quorum: int = field(default=1, metadata=spec(min=0, max=0xFFFFFFFF))
    hysteresis: int = field(default=0, metadata=spec(min=0, max=0xFFFFFFFF))
    quorum_up: NotifyCommand | None = None
    quorum_down: NotifyCommand | None = None
    sorry_server: HostPort | None = None
    sorry_server_inhibit: bool = False
    sorry_server_lb_kind: LbKind | None = None  # None: lb_kind
    alpha: bool = False
    omega: bool = False
    inhibit_on_failure: bool = False
    virtualhost: str | None = None
    ha_suspend: bool = False
    smtp_alert: bool | None = None  # None: global smtp_alert_checker, else smtp_alert, else off
    real_servers: tuple[RealServer, ...] = ()

    @property
    def family(self) -> int:
        """4 or 6."""
        if self.ip is not None:
            return self.ip.version
        if self.ip_family is not None:
            return 6 if self.ip_family == "inet6" else 4
        if self.real_servers:
            return self.real_servers[0].family
        return 4

    @property
    def key(self) -> tuple[str, str, int]:
        """Identity of the service: (protocol, ip or 'fwmark', port or mark)."""
        if self.fwmark is not None:
            return (self.protocol, "fwmark", self.fwmark)
        return (self.protocol, str(self.ip), self.port or 0)

    def forwarding(self, rs: RealServer) -> LbKind:
        """The forwarding method used for `rs`."""
        return rs.lb_kind if rs.lb_kind is not None else self.lb_kind

    def inhibits(self, rs: RealServer) -> bool:
        """True when a failed `rs` is kept with weight 0 instead of being removed."""
        if rs.inhibit_on_failure is not None:
            return rs.inhibit_on_failure
        return self.inhibit_on_failure

    def __str__(self) -> str:
        if self.fwmark is not None:
            return f"FWM {self.fwmark}/{self.protocol}"
        assert self.ip is not None
        return f"{HostPort(self.ip, self.port or 0)}/{self.protocol}"


# --------------------------------------------------------------------------- the whole file


@slotted(frozen=True)
class Config:
    """A whole validated configuration file.

    The mappings are read-only and keep the file's order; they take part in equality
    but not in hashing.
    """

    source_path: Path | None = None
    global_defs: GlobalDefs = field(default_factory=GlobalDefs)
    vrrp_scripts: Mapping[str, VrrpScript] = field(default_factory=_frozen_map, hash=False)
    vrrp_track_files: Mapping[str, VrrpTrackFile] = field(
        default_factory=_frozen_map, hash=False
    )
    vrrp_track_processes: Mapping[str, VrrpTrackProcess] = field(
        default_factory=_frozen_map, hash=False
    )
    vrrp_instances: Mapping[str, VrrpInstance] = field(default_factory=_frozen_map, hash=False)
    vrrp_sync_groups: Mapping[str, VrrpSyncGroup] = field(
        default_factory=_frozen_map, hash=False
    )
    virtual_servers: tuple[VirtualServer, ...] = ()
    static_ipaddress: tuple[VirtualIpAddress, ...] = ()  # set at start, whatever the state
    static_routes: tuple[Route, ...] = ()
    static_rules: tuple[Rule, ...] = ()

    def sync_group_of(self, instance: str) -> VrrpSyncGroup | None:
        """The sync group that `instance` belongs to, if any."""
        for group in self.vrrp_sync_groups.values():
            if instance in group.group:
                return group
        return None


def frozen_map(items: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy of `items`, as Config's mappings are built."""
    return _frozen_map(items)
