"""What each configuration key means, its keepalived keyword and an example. Data only.

`hacluster.config.reference` joins this text with what the model and the loader say about
each key (type, bounds, default) to write docs/configuration.md and hacluster.yaml(5).
Entries are keyed by (model class, YAML key); a key inherited from a base class is looked
up along the class's MRO, so a subclass may give its own entry. A new key needs an entry
here: the reference tests fail until it has one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SAME = "="  # keepalived's keyword is the key's own name


@dataclass(frozen=True, slots=True)
class KeyDoc:
    """The human part of one key's reference entry."""

    text: str
    example: str  # the value as written in YAML (flow style)
    keepalived: str | None = SAME  # keepalived's keyword; None: hacluster only
    default: str | None = None  # said instead of the model's default when the loader resolves it
    needs: Mapping[str, Any] = field(default_factory=dict)  # keys the example needs beside it


_GARP = "global_defs.vrrp_{}"
_FROM_VS = "the virtual server's"

KEYS: dict[tuple[str, str], KeyDoc] = {
    # ------------------------------------------------------------------ global_defs
    ("GlobalDefs", "router_id"): KeyDoc(
        "Name of this director in logs, status, metrics and the event log.", "lvs-a",
        default="the host name"),
    ("GlobalDefs", "dataplane"): KeyDoc(
        "Where virtual servers are carried out: the kernel's IPVS, an nftables table "
        "(`inet hacluster`) for kernels without IPVS, or nowhere (VRRP only).", "nftables",
        keepalived=None),
    ("GlobalDefs", "control_socket"): KeyDoc(
        "Unix socket of the control API (mode 0600) used by `hacluster status` and the "
        "other client commands.", "/run/hacluster/hacluster.sock", keepalived=None),
    ("GlobalDefs", "metrics_listen"): KeyDoc(
        "Address that serves Prometheus metrics on `/metrics` alone.", "127.0.0.1:9650",
        keepalived=None),
    ("GlobalDefs", "api_listen"): KeyDoc(
        "A TCP listener for the control API: reading is open, changes need `api_token`.",
        "127.0.0.1:9651", keepalived=None),
    ("GlobalDefs", "api_token"): KeyDoc(
        "Bearer token that `api_listen` requires for changes (drain, maintenance, "
        "reload); without it the TCP API is read-only.", "s3cret-token", keepalived=None,
        needs={"api_listen": "127.0.0.1:9651"}),
    ("GlobalDefs", "enable_script_security"): KeyDoc(
        "Refuse to run a script as root when any part of its path is owned by or "
        "writable by a non-root user.", "true"),
    ("GlobalDefs", "script_user"): KeyDoc(
        "User that scripts and notify commands run as unless they name their own.",
        "nobody", default="root (the daemon's user)"),
    ("GlobalDefs", "notify_timeout"): KeyDoc(
        "Seconds a notify command may run before it is killed with its children.", "10",
        keepalived=None),
    ("GlobalDefs", "event_log"): KeyDoc(
        "File to which one JSON object per state change and notification is appended.",
        "/var/log/hacluster/events.jsonl", keepalived=None),
    ("GlobalDefs", "log_format"): KeyDoc(
        "Log line format on stderr (`hacluster run --log-format` overrides it).", "json",
        keepalived=None),
    ("GlobalDefs", "log_level"): KeyDoc(
        "Lowest level logged (`hacluster run --log-level` overrides it).", "debug",
        keepalived=None),
    ("GlobalDefs", "vrrp_version"): KeyDoc(
        "VRRP version of instances that do not set `version` (IPv6 instances use 3).", "3"),
    ("GlobalDefs", "vrrp_mcast_group4"): KeyDoc(
        "IPv4 multicast group adverts are sent to (RFC 5798 §5.1.1.2).", "224.0.0.18"),
    ("GlobalDefs", "vrrp_mcast_group6"): KeyDoc(
        "IPv6 multicast group adverts are sent to (RFC 5798 §5.1.2.2).", "ff02::12"),
    ("GlobalDefs", "vrrp_garp_master_delay"): KeyDoc(
        "Seconds after becoming master before the second burst of gratuitous ARPs / "
        "unsolicited NAs; 0: no second burst.", "10"),
    ("GlobalDefs", "vrrp_garp_master_repeat"): KeyDoc(
        "Gratuitous ARPs / NAs sent per burst.", "3"),
    ("GlobalDefs", "vrrp_garp_master_refresh"): KeyDoc(
        "Seconds between repeated bursts while master; 0: none.", "60"),
    ("GlobalDefs", "vrrp_garp_master_refresh_repeat"): KeyDoc(
        "Gratuitous ARPs / NAs sent per refresh.", "2"),
    ("GlobalDefs", "vrrp_garp_lower_prio_delay"): KeyDoc(
        "Seconds before a master that hears a lower-priority advert sends its burst again.",
        "10", default="vrrp_garp_master_delay"),
    ("GlobalDefs", "vrrp_garp_lower_prio_repeat"): KeyDoc(
        "Gratuitous ARPs / NAs sent after a lower-priority advert.", "1",
        default="vrrp_garp_master_repeat"),
    ("GlobalDefs", "vrrp_lower_prio_no_advert"): KeyDoc(
        "A master that hears a lower-priority advert does not answer with an advert of its "
        "own (it still sends the garp_lower_prio burst); instances' default.", "true"),
    ("GlobalDefs", "vrrp_strict"): KeyDoc(
        "Strict RFC 3768/5798 compliance for every instance (each may say otherwise with "
        "`strict_mode`): no unicast peers, no authentication, no preempt_delay, MASTER only "
        "at priority 255, at least one VIP (the first IPv6 one link-local); no advert "
        "answers a lower-priority master; accept only for the address owner (others drop "
        "traffic to their VIPs while master, see `nftables`).", "true"),
    ("GlobalDefs", "nftables"): KeyDoc(
        "The nftables table (`inet NAME`, created and removed by hacluster, never another "
        "table) that carries out `accept: false`: a set of the VIPs of masters that are not "
        "the address owner and do not accept, dropped on input and output (neighbour "
        "discovery excepted).", "keepalived_vips", keepalived="nftables [TABLENAME]"),
    ("GlobalDefs", "nftables_priority"): KeyDoc(
        "Priority of that table's input and output chains.", "-150"),
    ("GlobalDefs", "nftables_counters"): KeyDoc(
        "Counters on that table's drop rules (`nft list table inet hacluster_vrrp`).",
        "true"),
    ("GlobalDefs", "nftables_ifindex"): KeyDoc(
        "Link-local IPv6 VIPs are matched with their interface's index rather than its "
        "name.", "true"),
    ("GlobalDefs", "vrrp_notify_priority_changes"): KeyDoc(
        "Default of the instances' `notify_priority_changes`.", "true"),
    ("GlobalDefs", "vrrp_skip_check_adv_addr"): KeyDoc(
        "Default of the instances' `skip_check_adv_addr`.", "true"),
    ("GlobalDefs", "vrrp_check_unicast_src"): KeyDoc(
        "Default of the instances' `check_unicast_src`.", "true"),
    ("GlobalDefs", "vrrp_higher_prio_send_advert"): KeyDoc(
        "A master that hears a higher-priority advert sends one advert before yielding, so "
        "the new master hears it and re-announces the VIPs; instances' default.", "true"),
    ("GlobalDefs", "vrrp_garp_interval"): KeyDoc(
        "Seconds between gratuitous ARPs within a burst.", "0.001"),
    ("GlobalDefs", "vrrp_gna_interval"): KeyDoc(
        "Seconds between unsolicited neighbour advertisements within a burst.", "0.001"),
    ("GlobalDefs", "vrrp_down_timer_adverts"): KeyDoc(
        "Adverts missed before a backup declares the master down (instances' default).",
        "4"),
    ("GlobalDefs", "vrrp_checksum_pseudo_header"): KeyDoc(
        "Whether VRRPv3 over IPv4 includes the IPv4 pseudo-header in its checksum, as "
        "keepalived and FRR do; false sends the RFC 9568 form (both are accepted).",
        "false", keepalived="old_unicast_checksum (the opposite sense, per instance)"),
    ("GlobalDefs", "lvs_sync_daemon"): KeyDoc(
        "IPVS connection synchronisation that follows a VRRP instance: master sync while "
        "it is MASTER, backup sync otherwise.", "{interface: eth1, instance: VI_1}"),
    ("GlobalDefs", "lvs_flush"): KeyDoc(
        "Flush the whole IPVS table at start, services hacluster did not configure too.",
        "true"),
    ("GlobalDefs", "lvs_flush_on_stop"): KeyDoc(
        "Remove hacluster's virtual servers at stop (otherwise they are left in place).",
        "true"),
    ("GlobalDefs", "lvs_timeouts"): KeyDoc(
        "IPVS connection timeouts (IPVS only).", "{tcp: 900, tcpfin: 30, udp: 60}"),
    ("GlobalDefs", "notification_email"): KeyDoc(
        "Recipients of alert mail (`a@b` or `Name <a@b>`). Mail is sent only with "
        "`smtp_server` too.", "[ops@example.com]"),
    ("GlobalDefs", "notification_email_from"): KeyDoc(
        "Sender of alert mail.", "lvs-a@example.com", default="USER@HOST, as keepalived"),
    ("GlobalDefs", "smtp_server"): KeyDoc(
        "SMTP server of alert mail (plain SMTP, no TLS, as keepalived).", "10.99.0.25:25"),
    ("GlobalDefs", "smtp_helo_name"): KeyDoc(
        "Name sent in HELO/EHLO.", "lvs-a.example.com", default="the host name"),
    ("GlobalDefs", "smtp_connect_timeout"): KeyDoc(
        "Seconds each step of a mail's delivery may take; a failed delivery is retried "
        "after 5 s, 30 s, 2 min and 10 min, then given up (logged and counted).", "10"),
    ("GlobalDefs", "smtp_alert"): KeyDoc(
        "Mail state changes of everything that does not say otherwise (after "
        "`smtp_alert_vrrp` / `smtp_alert_checker`).", "true",
        default="off; real servers on (keepalived's rule)"),
    ("GlobalDefs", "smtp_alert_vrrp"): KeyDoc(
        "Mail VRRP instance and sync group state changes (before `smtp_alert`).", "true",
        default="smtp_alert"),
    ("GlobalDefs", "smtp_alert_checker"): KeyDoc(
        "Mail real server and quorum changes (before `smtp_alert`).", "false",
        default="smtp_alert"),
    ("GlobalDefs", "no_email_faults"): KeyDoc(
        "No mail when an instance or sync group enters FAULT.", "true"),
    ("GlobalDefs", "notify_fifo"): KeyDoc(
        "Named pipe that gets one line per event, keepalived's format "
        "(`INSTANCE \"VI_1\" MASTER 100`, `RS [IP]:tcp:PORT [VIP]:tcp:PORT DOWN`); created if "
        "missing.", "/run/hacluster/notify.fifo", keepalived="notify_fifo FIFO"),
    ("GlobalDefs", "notify_fifo_script"): KeyDoc(
        "Reader started with the FIFO's path as its last argument, running as long as "
        "the daemon.", "/usr/local/bin/fifo-reader", keepalived="notify_fifo_script SCRIPT",
        needs={"notify_fifo": "/run/hacluster/notify.fifo"}),
    ("GlobalDefs", "vrrp_notify_fifo"): KeyDoc(
        "As notify_fifo, for VRRP instance and sync group lines only.",
        "/run/hacluster/vrrp.fifo"),
    ("GlobalDefs", "vrrp_notify_fifo_script"): KeyDoc(
        "As notify_fifo_script, for vrrp_notify_fifo.", "/usr/local/bin/fifo-reader",
        needs={"vrrp_notify_fifo": "/run/hacluster/vrrp.fifo"}),
    ("GlobalDefs", "lvs_notify_fifo"): KeyDoc(
        "As notify_fifo, for virtual server (VS) and real server (RS) lines only.",
        "/run/hacluster/lvs.fifo"),
    ("GlobalDefs", "notify_fifo_user"): KeyDoc(
        "The user the FIFO is created for (chown when hacluster creates it; an existing "
        "FIFO is left as it is).", "haproxy",
        keepalived="notify_fifo FIFO USER", needs={"notify_fifo": "/run/hacluster/notify.fifo"}),
    ("GlobalDefs", "notify_fifo_group"): KeyDoc(
        "The FIFO's group, with notify_fifo_user.", "adm",
        default="notify_fifo_user's own group", keepalived="notify_fifo FIFO USER GROUP",
        needs={"notify_fifo": "/run/hacluster/notify.fifo", "notify_fifo_user": "haproxy"}),
    ("GlobalDefs", "vrrp_notify_fifo_user"): KeyDoc(
        "As notify_fifo_user, for vrrp_notify_fifo.", "haproxy",
        keepalived="vrrp_notify_fifo FIFO USER",
        needs={"vrrp_notify_fifo": "/run/hacluster/vrrp.fifo"}),
    ("GlobalDefs", "vrrp_notify_fifo_group"): KeyDoc(
        "As notify_fifo_group, for vrrp_notify_fifo.", "adm",
        default="vrrp_notify_fifo_user's own group",
        keepalived="vrrp_notify_fifo FIFO USER GROUP",
        needs={"vrrp_notify_fifo": "/run/hacluster/vrrp.fifo",
               "vrrp_notify_fifo_user": "haproxy"}),
    ("GlobalDefs", "lvs_notify_fifo_user"): KeyDoc(
        "As notify_fifo_user, for lvs_notify_fifo.", "haproxy",
        keepalived="lvs_notify_fifo FIFO USER",
        needs={"lvs_notify_fifo": "/run/hacluster/lvs.fifo"}),
    ("GlobalDefs", "lvs_notify_fifo_group"): KeyDoc(
        "As notify_fifo_group, for lvs_notify_fifo.", "adm",
        default="lvs_notify_fifo_user's own group",
        keepalived="lvs_notify_fifo FIFO USER GROUP",
        needs={"lvs_notify_fifo": "/run/hacluster/lvs.fifo", "lvs_notify_fifo_user": "haproxy"}),
    ("GlobalDefs", "fifo_write_vrrp_states_on_reload"): KeyDoc(
        "After each reload (SIGHUP, `hacluster reload`), write every VRRP instance's "
        "state line, then every sync group's, to notify_fifo and vrrp_notify_fifo, so a "
        "FIFO reader has the whole picture again.", "true"),
    ("GlobalDefs", "lvs_notify_fifo_script"): KeyDoc(
        "As notify_fifo_script, for lvs_notify_fifo.", "/usr/local/bin/fifo-reader",
        needs={"lvs_notify_fifo": "/run/hacluster/lvs.fifo"}),
    ("GlobalDefs", "reconcile_interval"): KeyDoc(
        "Seconds between full read-backs of the dataplane that put right what was changed "
        "by hand.", "30", keepalived=None),
    ("GlobalDefs", "checker_processes"): KeyDoc(
        "Health-check worker processes; each real server's checks run in one of them. 0 "
        "runs the checks in the daemon's own process.", "2", keepalived=None,
        default="enough for the configured check rate (2,500 checks/s each), at most one "
                "per CPU the daemon may run on (CPUAffinity=)"),
    ("GlobalDefs", "vrrp_priority"): KeyDoc(
        "Nice value of the VRRP role process (-20 to 19; lower runs first).", "-10"),
    ("GlobalDefs", "vrrp_rt_priority"): KeyDoc(
        "Run the VRRP role process under SCHED_RR at this real-time priority (1-99), so a "
        "busy director never delays an advert.", "20"),
    ("GlobalDefs", "vrrp_rlimit_rttime"): KeyDoc(
        "With vrrp_rt_priority: microseconds of CPU the VRRP role may use without blocking "
        "before the kernel stops it (RLIMIT_RTTIME; the supervisor then restarts it).",
        "1000000", default="1000000 (keepalived: 10000, too short for a Python loop)"),
    ("GlobalDefs", "vrrp_no_swap"): KeyDoc(
        "Lock the VRRP role's memory (mlockall) so that it is never paged out.", "true"),
    # ------------------------------------------------------------------ lvs_sync_daemon
    ("LvsSyncDaemon", "interface"): KeyDoc(
        "Interface the sync messages are sent and received on.", "eth1",
        keepalived="lvs_sync_daemon INTERFACE"),
    ("LvsSyncDaemon", "instance"): KeyDoc(
        "The vrrp_instance whose state decides master or backup sync.", "VI_1",
        keepalived="inst NAME (old: lvs_sync_daemon INTERFACE INSTANCE [SYNCID])",
        default="none (keepalived accepts the daemon without one; syncid is then 0)"),
    ("LvsSyncDaemon", "syncid"): KeyDoc(
        "Sync ID carried in the messages.", "5", keepalived="id", default="the instance's VRID"),
    ("LvsSyncDaemon", "maxlen"): KeyDoc(
        "Largest sync message in bytes.", "1472", default="the kernel's (from the MTU)"),
    ("LvsSyncDaemon", "port"): KeyDoc("UDP port of the sync messages.", "8849"),
    ("LvsSyncDaemon", "ttl"): KeyDoc("TTL of the sync messages.", "2"),
    ("LvsSyncDaemon", "group"): KeyDoc(
        "Multicast group of the sync messages.", "224.0.0.82", default="224.0.0.81"),
    # ------------------------------------------------------------------ lvs_timeouts
    ("LvsTimeouts", "tcp"): KeyDoc("Established TCP connections, seconds.", "900",
                                   keepalived="tcp"),
    ("LvsTimeouts", "tcpfin"): KeyDoc("TCP connections after a FIN, seconds.", "30",
                                      keepalived="tcpfin"),
    ("LvsTimeouts", "udp"): KeyDoc("UDP flows, seconds.", "60", keepalived="udp"),
    # ------------------------------------------------------------------ smtp_server
    ("SmtpServer", "host"): KeyDoc("IP address or host name.", "mail.example.com",
                                   keepalived="smtp_server HOST"),
    ("SmtpServer", "port"): KeyDoc("TCP port.", "587", keepalived="smtp_server HOST PORT"),
    # ------------------------------------------------------------------ vrrp_scripts
    ("VrrpScript", "script"): KeyDoc(
        "The command, run without a shell (split into arguments as a shell would). Exit 0 "
        "is success.", '"/usr/local/bin/check-proxy --quiet"'),
    ("VrrpScript", "interval"): KeyDoc("Seconds between runs.", "2"),
    ("VrrpScript", "timeout"): KeyDoc(
        "Seconds a run may take; a run that takes longer is killed and counts as a failure.",
        "3", default="interval"),
    ("VrrpScript", "weight"): KeyDoc(
        "Priority change: a positive weight is added while the script succeeds, a "
        "negative one subtracted while it fails; 0 puts tracking instances in FAULT "
        "while it fails.", "-20"),
    ("VrrpScript", "reverse"): KeyDoc(
        "Invert the weight's sense (keepalived's `weight N reverse`).", "true",
        keepalived="weight N reverse"),
    ("VrrpScript", "rise"): KeyDoc("Consecutive successes before the script counts as up.", "2"),
    ("VrrpScript", "fall"): KeyDoc("Consecutive failures before the script counts as down.", "2"),
    ("VrrpScript", "user"): KeyDoc(
        "User the script runs as.", "nobody", keepalived="user USER [GROUP]",
        default="global_defs.script_user"),
    ("VrrpScript", "group"): KeyDoc(
        "Group the script runs as (only with `user`).", "nogroup",
        keepalived="user USER GROUP", default="the user's own group", needs={"user": "nobody"}),
    ("VrrpScript", "init_fail"): KeyDoc(
        "Start in the failed state rather than the succeeded one.", "true"),
    # ------------------------------------------------------------------ vrrp_track_files
    ("VrrpTrackFile", "file"): KeyDoc(
        "File holding an integer; value x weight is added to the priority of tracking "
        "instances. Read when its writer closes it or it is renamed into place.",
        "/run/hacluster/prio", keepalived="file (in track_file NAME)"),
    ("VrrpTrackFile", "weight"): KeyDoc(
        "Multiplier of the value; 0: a non-zero value puts tracking instances in FAULT.",
        "-1"),
    ("VrrpTrackFile", "reverse"): KeyDoc(
        "Invert the weight's sense.", "true", keepalived="weight N reverse"),
    ("VrrpTrackFile", "init_file"): KeyDoc(
        "Create the file with this value when it does not exist.", "0"),
    # ------------------------------------------------------------------ vrrp_track_processes
    ("VrrpTrackProcess", "process"): KeyDoc(
        "Process to count: its name (`/proc/PID/comm`, as `pgrep -x`), or with parameters "
        "(or `param_match` / `full_command`) argv[0] exactly and then the parameters. A "
        "list keeps a name with spaces whole.", "haproxy",
        keepalived="process NAME [PARAM...] (in vrrp_track_process NAME)"),
    ("VrrpTrackProcess", "param_match"): KeyDoc(
        "How the parameters match: `exact` (all of them, no more), `partial` (the first "
        "ones given match exactly, more may follow), `initial` (as partial, and the last "
        "given one may be the start of a longer one).", "partial",
        keepalived="param_match [initial|partial]", default="exact when parameters are given"),
    ("VrrpTrackProcess", "weight"): KeyDoc(
        "Priority change while the quorum holds (positive) or is lost (negative); 0: FAULT "
        "while it is lost.", "10", keepalived="weight N [reverse]"),
    ("VrrpTrackProcess", "reverse"): KeyDoc(
        "Invert the weight's sense (weight 0: FAULT while the quorum holds).", "true",
        keepalived="weight N reverse"),
    ("VrrpTrackProcess", "quorum"): KeyDoc(
        "Fewest matching processes that count as up.", "2"),
    ("VrrpTrackProcess", "quorum_max"): KeyDoc(
        "Most matching processes that count as up (0 alone: up while none runs).", "1",
        default="no limit"),
    ("VrrpTrackProcess", "delay"): KeyDoc(
        "Sets both `terminate_delay` and `fork_delay`.", "2"),
    ("VrrpTrackProcess", "terminate_delay"): KeyDoc(
        "Seconds a quorum lost by a process exiting must stay lost before it counts "
        "(a restart within that time changes nothing).", "1.5", default="`delay`, else 0"),
    ("VrrpTrackProcess", "fork_delay"): KeyDoc(
        "Seconds a quorum gained by a fork must hold before it counts.", "0.5",
        default="`delay`, else 0"),
    ("VrrpTrackProcess", "full_command"): KeyDoc(
        "Match `process` against the command line's argv[0] (`/proc/PID/cmdline`) rather "
        "than the process name.", "true"),
    # ------------------------------------------------------------------ routes and rules
    ("Route", "to"): KeyDoc(
        "Destination prefix; `default` is 0.0.0.0/0 (::/0 with an IPv6 gateway).",
        "192.0.2.0/24", keepalived="DEST (or: to DEST)"),
    ("Route", "via"): KeyDoc("Gateway.", "10.99.0.254", keepalived="via|gw IP"),
    ("Route", "dev"): KeyDoc("Outgoing interface.", "eth1", default="the kernel's choice"),
    ("Route", "src"): KeyDoc("Preferred source address.", "10.99.0.100"),
    ("Route", "scope"): KeyDoc(
        "Route scope.", "link", default="link with a device and no gateway, else global"),
    ("Route", "table"): KeyDoc("Routing table number.", "100", default="main (254)"),
    ("Route", "metric"): KeyDoc("Route priority.", "10", keepalived="metric|preference N"),
    ("Route", "protocol"): KeyDoc(
        "Route protocol number (names: boot, static, kernel, dhcp, ... in the text form).",
        "4", keepalived="protocol|proto P", default="boot (3)"),
    ("Route", "type"): KeyDoc(
        "Route type: `blackhole`, `unreachable`, `prohibit`, `throw` written first in the "
        "text form.", "blackhole", keepalived="TYPE DEST"),
    ("Route", "no_track"): KeyDoc(
        "Accepted as keepalived does; hacluster does not watch routes, so it changes "
        "nothing.", "true"),
    ("Route", "nexthops"): KeyDoc(
        "A multipath route: its paths (RTA_MULTIPATH), instead of `via`; the kernel shares "
        "flows out among them by weight.", "[{via: 10.99.0.253}, {via: 10.99.0.254}]",
        keepalived="nexthop via GW ... nexthop via GW ... (or: via A or B)"),
    ("Nexthop", "via"): KeyDoc("This path's gateway.", "10.99.0.253"),
    ("Nexthop", "dev"): KeyDoc("This path's interface.", "eth1", default="the route's dev"),
    ("Nexthop", "weight"): KeyDoc("This path's share, relative to the others.", "2"),
    ("Nexthop", "onlink"): KeyDoc(
        "The gateway is on the link even if no prefix of the interface holds it.", "true"),
    ("Rule", "table"): KeyDoc("Table looked up.", "100", keepalived="table|lookup N"),
    ("Rule", "from"): KeyDoc("Source prefix.", "10.99.0.0/24", default="all"),
    ("Rule", "to"): KeyDoc("Destination prefix.", "192.0.2.0/24", default="all"),
    ("Rule", "fwmark"): KeyDoc("Firewall mark matched.", "3"),
    ("Rule", "iif"): KeyDoc("Incoming interface matched.", "eth1"),
    ("Rule", "oif"): KeyDoc("Outgoing interface matched.", "eth1"),
    ("Rule", "priority"): KeyDoc(
        "Rule preference; keepalived sets 16384 (with a warning) when none is given.", "100",
        keepalived="priority|preference|pref N"),
    ("Rule", "family"): KeyDoc(
        "Address family of a rule without addresses (`from all fwmark 3 ...`).", "6",
        keepalived=None, default="from the addresses, else 4"),
    ("Rule", "no_track"): KeyDoc(
        "Accepted as keepalived does; hacluster does not watch rules, so it changes "
        "nothing.", "true"),
    # ------------------------------------------------------------------ track entries
    ("TrackProcess", "name"): KeyDoc(
        "A vrrp_track_processes name.", "tp", keepalived="PROCESS_NAME"),
    ("TrackProcess", "weight"): KeyDoc(
        "Overrides the tracked process's own weight for this instance or group.", "-20",
        keepalived="PROCESS_NAME weight N", default="the tracked process's weight"),
    ("TrackProcess", "reverse"): KeyDoc(
        "Invert the weight's sense.", "true", keepalived="PROCESS_NAME weight N reverse"),
    ("TrackInterface", "name"): KeyDoc("Interface to follow (up = admin up and carrier).", "eth1"),
    ("TrackInterface", "weight"): KeyDoc(
        "Priority change while the interface is down (a positive one while up); 0: FAULT "
        "while down.", "-30", keepalived="IFACE weight N"),
    ("TrackInterface", "reverse"): KeyDoc(
        "Invert the weight's sense.", "true", keepalived="IFACE weight N reverse"),
    ("TrackScript", "name"): KeyDoc("A vrrp_scripts name.", "chk", keepalived="SCRIPT_NAME"),
    ("TrackScript", "weight"): KeyDoc(
        "Overrides the script's own weight for this instance or group.", "-30",
        keepalived="SCRIPT_NAME weight N", default="the script's weight"),
    ("TrackScript", "reverse"): KeyDoc(
        "Invert the weight's sense.", "true", keepalived="SCRIPT_NAME weight N reverse"),
    ("TrackFile", "name"): KeyDoc("A vrrp_track_files name.", "tf", keepalived="FILE_NAME"),
    ("TrackFile", "weight"): KeyDoc(
        "Overrides the track file's own weight for this instance or group.", "2",
        keepalived="FILE_NAME weight N", default="the track file's weight"),
    ("TrackFile", "reverse"): KeyDoc(
        "Invert the weight's sense.", "true", keepalived="FILE_NAME weight N reverse"),
    ("UnicastPeer", "ip"): KeyDoc("The peer's address.", "10.0.0.3",
                                  keepalived="unicast_peer { IP }"),
    ("UnicastPeer", "min_ttl"): KeyDoc(
        "Lowest TTL / hop limit accepted from the peer.", "250",
        keepalived="IP min_ttl N", default="any"),
    ("UnicastPeer", "max_ttl"): KeyDoc(
        "Highest TTL / hop limit accepted from the peer.", "255",
        keepalived="IP max_ttl N", default="any"),
    ("Authentication", "auth_type"): KeyDoc(
        "VRRPv2 simple-text authentication (RFC 2338 type 1).", "PASS"),
    ("Authentication", "auth_pass"): KeyDoc(
        "The password, 1 to 8 bytes; carried in clear in every advert.", "s3cret"),
    ("VirtualIpAddress", "address"): KeyDoc(
        "The address, with its prefix (default /32 or /128).", "10.99.0.100/24",
        keepalived="the address itself"),
    ("VirtualIpAddress", "dev"): KeyDoc(
        "Interface the address is added to.", "eth1", keepalived="dev IFACE",
        default="the instance's interface"),
    ("VirtualIpAddress", "scope"): KeyDoc(
        "Address scope, as `ip addr add scope` takes it.", "link", keepalived="scope SCOPE",
        default="global"),
    ("VirtualIpAddress", "label"): KeyDoc(
        "IPv4 address label, as `ip addr add label` takes it.", "eth0:vip",
        keepalived="label LABEL"),
    ("VirtualIpAddress", "no_track"): KeyDoc(
        "keepalived: the address's interface going down does not put the instance in "
        "FAULT." " Accepted for keepalived files; hacluster does not act on it yet.", "true"),
    # ------------------------------------------------------------------ vrrp_instances
    ("VrrpInstance", "lower_prio_no_advert"): KeyDoc(
        "As global_defs.vrrp_lower_prio_no_advert, for this instance.", "true",
        default="global_defs.vrrp_lower_prio_no_advert"),
    ("VrrpInstance", "higher_prio_send_advert"): KeyDoc(
        "As global_defs.vrrp_higher_prio_send_advert, for this instance.", "true",
        default="global_defs.vrrp_higher_prio_send_advert"),
    ("VrrpInstance", "smtp_alert"): KeyDoc(
        "Mail this instance's state changes.", "true",
        default="smtp_alert_vrrp, else smtp_alert, else off"),
    ("VrrpInstance", "interface"): KeyDoc(
        "Interface the adverts are sent and received on.", "eth0"),
    ("VrrpInstance", "virtual_router_id"): KeyDoc(
        "The VRID, shared by the instances of one virtual router on a link.", "51"),
    ("VrrpInstance", "virtual_ipaddress"): KeyDoc(
        "The addresses the master holds, all of one family; each `IP[/prefix] [dev IFACE] "
        "[scope SCOPE] [label LABEL] [no_track]` or a mapping of those keys. A VRRPv2 IPv4 "
        "instance may have none, as keepalived allows (a notify script moves a cloud "
        "floating address); VRRPv3 and IPv6 instances need one.",
        '[10.99.0.100/24, "10.99.0.101/24 dev eth1"]',
        default="none (VRRPv2 IPv4 only, as keepalived allows)"),
    ("VrrpInstance", "state"): KeyDoc(
        "Initial state. MASTER takes over at once when no better master is heard.", "MASTER"),
    ("VrrpInstance", "priority"): KeyDoc(
        "Election priority; 255 is the address owner.", "150"),
    ("VrrpInstance", "advert_int"): KeyDoc(
        "Seconds between adverts: whole seconds 1..255 for v2, 0.01..40.95 in 0.01 steps "
        "for v3.", "1"),
    ("VrrpInstance", "version"): KeyDoc(
        "VRRP version, 2 (RFC 3768, IPv4) or 3 (RFC 5798).", "3",
        default="global_defs.vrrp_version; 3 for IPv6"),
    ("VrrpInstance", "nopreempt"): KeyDoc(
        "Do not take over from a lower-priority master (needs state BACKUP).", "true"),
    ("VrrpInstance", "preempt_delay"): KeyDoc(
        "Seconds after start before preempting a lower-priority master.", "30"),
    ("VrrpInstance", "unicast_src_ip"): KeyDoc(
        "Source address of unicast adverts.", "10.0.0.1",
        default="the interface's primary address"),
    ("VrrpInstance", "unicast_peers"): KeyDoc(
        "Send adverts to these peers, and accept only theirs, instead of multicast; each "
        "an address or `{ip, min_ttl, max_ttl}`.", "[10.0.0.2, {ip: 10.0.0.3, min_ttl: 250}]",
        keepalived="unicast_peer"),
    ("VrrpInstance", "unicast_ttl"): KeyDoc("TTL / hop limit of unicast adverts.", "64"),
    ("VrrpInstance", "mcast_src_ip"): KeyDoc(
        "Source address of multicast adverts.", "10.0.0.1",
        default="the interface's primary address"),
    ("VrrpInstance", "mcast_dst_ip"): KeyDoc(
        "Multicast group of this instance's adverts.", "224.0.0.19",
        default="global_defs.vrrp_mcast_group4 / 6"),
    ("VrrpInstance", "authentication"): KeyDoc(
        "VRRPv2 only: `{auth_type: PASS, auth_pass: SECRET}`.",
        "{auth_type: PASS, auth_pass: s3cret}", needs={"version": 2}),
    ("VrrpInstance", "virtual_ipaddress_excluded"): KeyDoc(
        "Addresses the master holds that are not carried in adverts (other families too).",
        "[fd00::100/64]"),
    ("VrrpInstance", "track_interface"): KeyDoc(
        "Interfaces followed: a name or `{name, weight, reverse}`.",
        "[eth1, {name: eth2, weight: -30}]"),
    ("VrrpInstance", "track_script"): KeyDoc(
        "vrrp_scripts followed: a name or `{name, weight, reverse}`.", "[chk]"),
    ("VrrpInstance", "track_file"): KeyDoc(
        "vrrp_track_files followed: a name or `{name, weight, reverse}`.", "[tf]"),
    ("VrrpInstance", "strict_mode"): KeyDoc(
        "Strict RFC compliance for this instance (see `global_defs.vrrp_strict`).", "true",
        default="global_defs.vrrp_strict"),
    ("VrrpInstance", "skip_check_adv_addr"): KeyDoc(
        "Skip checking the addresses of adverts from the master last heard (the first "
        "advert of a new master is still checked). Without it, an advert whose address "
        "list differs from `virtual_ipaddress` is dropped (counted as address_mismatch).",
        "true", default="global_defs.vrrp_skip_check_adv_addr"),
    ("VrrpSyncGroup", "notify_priority_changes"): KeyDoc(
        "Default of its members' `notify_priority_changes` (a member's own setting wins).",
        "true", default="global_defs.vrrp_notify_priority_changes"),
    ("VrrpInstance", "notify_priority_changes"): KeyDoc(
        "Write `INSTANCE \"NAME\" MASTER_PRIORITY|BACKUP_PRIORITY N` to the notify FIFOs "
        "whenever the effective priority changes (trackers, maintenance).", "true",
        default="global_defs.vrrp_notify_priority_changes"),
    ("VrrpInstance", "use_vmac"): KeyDoc(
        "Carry the VIPs (and the adverts) on a macvlan (mode private) with the virtual "
        "MAC 00:00:5e:00:01:VRID (IPv6 00:00:5e:00:02:VRID), so a failover changes no "
        "neighbour's entry; sets the sysctls keepalived sets (arp_ignore, arp_filter, "
        "rp_filter, accept_local) and removes the macvlan at stop.", "true",
        keepalived="use_vmac [NAME]"),
    ("VrrpInstance", "vmac_interface"): KeyDoc(
        "Name of the macvlan.", "vrrp.51", keepalived="use_vmac NAME",
        default="vrrp.VRID (vrrp6.VRID for IPv6)", needs={"use_vmac": True}),
    ("VrrpInstance", "vmac_xmit_base"): KeyDoc(
        "Send and receive the adverts on the base interface; the VIPs stay on the macvlan.",
        "true", needs={"use_vmac": True}),
    ("VrrpInstance", "check_unicast_src"): KeyDoc(
        "Take unicast adverts only from the `unicast_peers`; without it (keepalived's "
        "default) an advert from any source is taken.", "true",
        default="global_defs.vrrp_check_unicast_src; on when a peer has min_ttl or max_ttl"),
    ("VrrpInstance", "virtual_routes"): KeyDoc(
        "Routes added (after the VIPs) on becoming MASTER and removed on leaving it.",
        '["0.0.0.0/0 via 203.0.113.1 dev eth0"]'),
    ("VrrpInstance", "virtual_rules"): KeyDoc(
        "Policy-routing rules added on becoming MASTER and removed on leaving it.",
        '["from 198.51.100.10/32 table 1 priority 100"]'),
    ("VrrpInstance", "track_process"): KeyDoc(
        "vrrp_track_processes followed: a name or `{name, weight, reverse}`.", "[tp]"),
    ("VrrpInstance", "dont_track_primary"): KeyDoc(
        "keepalived: the instance's own interface going down does not put it in FAULT."
        " Accepted for keepalived files; hacluster does not act on it yet.", "true"),
    ("VrrpInstance", "accept"): KeyDoc(
        "Accept mode: the VIPs answer traffic even when this is not the address owner. "
        "false (keepalived's `no_accept`): while MASTER, traffic to the VIPs and excluded "
        "VIPs is dropped by the `global_defs.nftables` table, unless priority is 255.",
        "false", keepalived="accept / no_accept",
        default="true; with strict_mode, true only at priority 255"),
    ("VrrpInstance", "checksum_pseudo_header"): KeyDoc(
        "VRRPv3 over IPv4: include the pseudo-header in the checksum.", "false",
        keepalived="old_unicast_checksum (the opposite sense)",
        default="global_defs.vrrp_checksum_pseudo_header"),
    ("VrrpInstance", "down_timer_adverts"): KeyDoc(
        "Adverts missed before this backup declares the master down.", "4",
        default="global_defs.vrrp_down_timer_adverts"),
    ("VrrpInstance", "garp_master_delay"): KeyDoc(
        "As global_defs.vrrp_garp_master_delay, for this instance.", "10",
        default=_GARP.format("garp_master_delay")),
    ("VrrpInstance", "garp_master_repeat"): KeyDoc(
        "As global_defs.vrrp_garp_master_repeat, for this instance.", "3",
        default=_GARP.format("garp_master_repeat")),
    ("VrrpInstance", "garp_master_refresh"): KeyDoc(
        "As global_defs.vrrp_garp_master_refresh, for this instance.", "60",
        default=_GARP.format("garp_master_refresh")),
    ("VrrpInstance", "garp_master_refresh_repeat"): KeyDoc(
        "As global_defs.vrrp_garp_master_refresh_repeat, for this instance.", "2",
        default=_GARP.format("garp_master_refresh_repeat")),
    ("VrrpInstance", "garp_lower_prio_delay"): KeyDoc(
        "As global_defs.vrrp_garp_lower_prio_delay, for this instance.", "10",
        default=_GARP.format("garp_lower_prio_delay")
        + ", else global_defs.vrrp_garp_master_delay"),
    ("VrrpInstance", "garp_lower_prio_repeat"): KeyDoc(
        "As global_defs.vrrp_garp_lower_prio_repeat, for this instance.", "1",
        default=_GARP.format("garp_lower_prio_repeat")
        + ", else global_defs.vrrp_garp_master_repeat"),
    ("VrrpInstance", "notify_master"): KeyDoc(
        "Run on becoming MASTER.", "/etc/hacluster/notify.sh master"),
    ("VrrpInstance", "notify_backup"): KeyDoc(
        "Run on becoming BACKUP.", "/etc/hacluster/notify.sh backup"),
    ("VrrpInstance", "notify_fault"): KeyDoc(
        "Run on entering FAULT.", "/etc/hacluster/notify.sh fault"),
    ("VrrpInstance", "notify_stop"): KeyDoc(
        "Run when the instance stops.", "/etc/hacluster/notify.sh stop"),
    ("VrrpInstance", "notify"): KeyDoc(
        "Run on every change, with `INSTANCE NAME STATE PRIORITY` appended.",
        "/etc/hacluster/notify-any.sh"),
    # ------------------------------------------------------------------ vrrp_sync_groups
    ("VrrpSyncGroup", "smtp_alert"): KeyDoc(
        "Mail this sync group's state changes.", "true",
        default="smtp_alert_vrrp, else smtp_alert, else off"),
    ("VrrpSyncGroup", "group"): KeyDoc(
        "Instances that move between states together.", "[VI_1]"),
    ("VrrpSyncGroup", "track_interface"): KeyDoc(
        "Interfaces followed by every member.", "[eth1]"),
    ("VrrpSyncGroup", "track_script"): KeyDoc("vrrp_scripts followed by every member.", "[chk]"),
    ("VrrpSyncGroup", "track_file"): KeyDoc("vrrp_track_files followed by every member.", "[tf]"),
    ("VrrpSyncGroup", "track_process"): KeyDoc(
        "vrrp_track_processes followed by every member.", "[tp]"),
    ("VrrpSyncGroup", "notify_master"): KeyDoc(
        "Run when the group becomes MASTER.", "/etc/hacluster/notify.sh master"),
    ("VrrpSyncGroup", "notify_backup"): KeyDoc(
        "Run when the group becomes BACKUP.", "/etc/hacluster/notify.sh backup"),
    ("VrrpSyncGroup", "notify_fault"): KeyDoc(
        "Run when the group enters FAULT.", "/etc/hacluster/notify.sh fault"),
    ("VrrpSyncGroup", "notify_stop"): KeyDoc(
        "Run when the group stops.", "/etc/hacluster/notify.sh stop"),
    ("VrrpSyncGroup", "notify"): KeyDoc(
        "Run on every change, with `GROUP NAME STATE PRIORITY` appended.",
        "/etc/hacluster/notify-any.sh"),
    # ------------------------------------------------------------------ virtual_servers
    ("VirtualServer", "smtp_alert"): KeyDoc(
        "Mail this virtual server's quorum changes.", "true",
        default="smtp_alert_checker, else smtp_alert, else off"),
    ("VirtualServer", "ip"): KeyDoc(
        "Virtual address of the service (or give `fwmark`).", "10.99.0.100",
        keepalived="virtual_server IP PORT", default="required, unless fwmark"),
    ("VirtualServer", "port"): KeyDoc(
        "Virtual port; may be left out only by a persistent service (all ports).", "80",
        keepalived="virtual_server IP PORT",
        default="required with ip, unless persistence_timeout"),
    ("VirtualServer", "fwmark"): KeyDoc(
        "A firewall-mark service instead of ip and port.", "1",
        keepalived="virtual_server fwmark N", needs={"ip": None, "port": None}),
    ("VirtualServer", "protocol"): KeyDoc("Transport protocol.", "UDP"),
    ("VirtualServer", "ip_family"): KeyDoc(
        "Address family of a fwmark service.", "inet6", default="inet (or the real servers')",
        needs={"ip": None, "port": None, "fwmark": 1}),
    ("VirtualServer", "lb_algo"): KeyDoc(
        "Scheduler. nftables carries rr, wrr and sh.", "rr", keepalived="lb_algo / lvs_sched"),
    ("VirtualServer", "lb_kind"): KeyDoc(
        "Forwarding method. nftables carries NAT.", "DR", keepalived="lb_kind / lvs_method"),
    ("VirtualServer", "persistence_timeout"): KeyDoc(
        "Seconds a client sticks to its real server; 0: no persistence.", "300"),
    ("VirtualServer", "ops"): KeyDoc("One-packet scheduling (UDP).", "true",
                                     needs={"protocol": "UDP"}),
    ("VirtualServer", "delay_loop"): KeyDoc(
        "Seconds between checks, for checkers that do not set their own.", "6"),
    ("VirtualServer", "connect_timeout"): KeyDoc(
        "Connect timeout passed down to the checkers.", "3", default="none (checker's 5)"),
    ("VirtualServer", "retry"): KeyDoc(
        "Retries passed down to the checkers.", "2", default="none (checker's own)"),
    ("VirtualServer", "delay_before_retry"): KeyDoc(
        "Seconds before a retry, passed down to the checkers.", "2",
        default="none (checker's own)"),
    ("VirtualServer", "warmup"): KeyDoc(
        "Upper bound of the random delay before a checker's first check, passed down.",
        "5", default="none (delay_loop)"),
    ("VirtualServer", "quorum"): KeyDoc(
        "Sum of the live real servers' weights needed for the service to be up; below it "
        "the sorry server serves.", "2"),
    ("VirtualServer", "hysteresis"): KeyDoc(
        "Slack around quorum before the service changes state.", "1"),
    ("VirtualServer", "quorum_up"): KeyDoc(
        "Run when quorum is gained.", "/etc/hacluster/quorum.sh up"),
    ("VirtualServer", "quorum_down"): KeyDoc(
        "Run when quorum is lost.", "/etc/hacluster/quorum.sh down"),
    ("VirtualServer", "sorry_server"): KeyDoc(
        "Server that takes the traffic while the service is below quorum; the port "
        "defaults to the virtual port.", "10.99.0.50:80", keepalived="sorry_server IP PORT"),
    ("VirtualServer", "sorry_server_inhibit"): KeyDoc(
        "Keep the sorry server in the table with weight 0 while it is not needed.", "true"),
    ("VirtualServer", "sorry_server_lb_kind"): KeyDoc(
        "Forwarding method of the sorry server.", "DR", default="lb_kind",
        keepalived="sorry_server_lvs_method"),
    ("VirtualServer", "alpha"): KeyDoc(
        "Real servers start down and must pass a check before they get traffic.", "true"),
    ("VirtualServer", "omega"): KeyDoc(
        "Run quorum_down and remove the service when it is removed or at stop.", "true"),
    ("VirtualServer", "inhibit_on_failure"): KeyDoc(
        "A failed real server is kept with weight 0 instead of being removed.", "true"),
    ("VirtualServer", "virtualhost"): KeyDoc(
        "Host header of HTTP_GET / SSL_GET checks, passed down.", "www.example.com"),
    ("VirtualServer", "ha_suspend"): KeyDoc(
        "keepalived: check the real servers only while this director holds the virtual "
        "address. Accepted for keepalived files; hacluster does not act on it yet (check-config "
        "and run say so).", "true"),
    ("VirtualServer", "real_servers"): KeyDoc(
        "The real servers; see the next section.", "[{ip: 10.99.1.11, port: 80}]",
        keepalived="real_server IP PORT"),
    # ------------------------------------------------------------------ real_servers
    ("RealServer", "smtp_alert"): KeyDoc(
        "Mail this real server's up and down (the checker's text).", "true",
        default="smtp_alert_checker, else smtp_alert, else on"),
    ("RealServer", "ip"): KeyDoc("Address of the real server.", "10.99.1.11",
                                 keepalived="real_server IP PORT"),
    ("RealServer", "port"): KeyDoc(
        "Port of the real server.", "8080", keepalived="real_server IP PORT",
        default="the virtual port"),
    ("RealServer", "weight"): KeyDoc("Scheduling weight; 0 takes no new connections.", "3"),
    ("RealServer", "lb_kind"): KeyDoc(
        "Forwarding method of this real server.", "NAT", keepalived="lvs_method",
        default=_FROM_VS),
    ("RealServer", "inhibit_on_failure"): KeyDoc(
        "As the virtual server's key, for this real server.", "true", default=_FROM_VS),
    ("RealServer", "notify_up"): KeyDoc(
        "Run when the real server comes up.", "/etc/hacluster/rs.sh up"),
    ("RealServer", "notify_down"): KeyDoc(
        "Run when the real server goes down.", "/etc/hacluster/rs.sh down"),
    ("RealServer", "uthreshold"): KeyDoc(
        "Most connections the real server is given (IPVS); 0: no limit.", "1000"),
    ("RealServer", "lthreshold"): KeyDoc(
        "Connections below which an overloaded real server takes new ones again (IPVS).",
        "500"),
    ("RealServer", "virtualhost"): KeyDoc(
        "Host header of this real server's HTTP checks.", "www.example.com", default=_FROM_VS),
    ("RealServer", "alpha"): KeyDoc("As the virtual server's key, for this real server.",
                                    "true", default=_FROM_VS),
    ("RealServer", "connect_timeout"): KeyDoc(
        "Passed down to this real server's checkers.", "3", default=_FROM_VS),
    ("RealServer", "retry"): KeyDoc("Passed down to this real server's checkers.", "2",
                                    default=_FROM_VS),
    ("RealServer", "delay_before_retry"): KeyDoc(
        "Passed down to this real server's checkers.", "2", default=_FROM_VS),
    ("RealServer", "delay_loop"): KeyDoc(
        "Passed down to this real server's checkers.", "5", default=_FROM_VS),
    ("RealServer", "warmup"): KeyDoc("Passed down to this real server's checkers.", "5",
                                     default=_FROM_VS),
    # ------------------------------------------------------------------ checkers
    ("CheckBase", "retry"): KeyDoc(
        "Failed attempts retried before the check counts as failed.", "3",
        keepalived="retry (old: nb_get_retry)"),
    ("CheckBase", "delay_before_retry"): KeyDoc("Seconds before a retry.", "2"),
    ("CheckBase", "delay_loop"): KeyDoc("Seconds between checks.", "6"),
    ("CheckBase", "warmup"): KeyDoc(
        "Upper bound of the random delay before the first check.", "5", default="delay_loop"),
    ("CheckBase", "alpha"): KeyDoc(
        "The real server starts down until this check passes.", "true"),
    ("CheckBase", "log_all_failures"): KeyDoc(
        "keepalived: log every failed attempt, not only state changes."
        " Accepted for keepalived files; hacluster does not act on it yet.", "true"),
    ("NetworkCheckBase", "connect_ip"): KeyDoc(
        "Address to check.", "10.99.1.21", default="the real server's"),
    ("NetworkCheckBase", "connect_port"): KeyDoc(
        "Port to check.", "8081", default="the real server's"),
    ("NetworkCheckBase", "bindto"): KeyDoc("Source address of the check.", "10.99.1.1"),
    ("NetworkCheckBase", "bind_port"): KeyDoc("Source port of the check.", "40000"),
    ("NetworkCheckBase", "bind_if"): KeyDoc(
        "Interface the check's socket is bound to.", "eth1"),
    ("NetworkCheckBase", "fwmark"): KeyDoc("Firewall mark set on the check's packets.", "7"),
    ("NetworkCheckBase", "connect_timeout"): KeyDoc(
        "Seconds a connection (and, for HTTP, the whole request) may take.", "3"),
    ("HttpCheckBase", "url"): KeyDoc(
        "URLs fetched; every one must pass. Each `{path, status_code, digest, "
        "virtualhost, regex, regex_no_match}`.", "[{path: /health, status_code: 200}]",
        default="required"),
    ("HttpCheckBase", "http_protocol"): KeyDoc(
        "The request as keepalived builds it: 1.0 (HTTP/1.0, no Connection header), "
        "1.0C (HTTP/1.0 with `Connection: close`), 1.0K (HTTP/1.0 with "
        "`Connection: keep-alive`; the check still closes the connection once it has "
        "read what it needs) or 1.1 (HTTP/1.1 with `Connection: close`). keepalived's "
        "own config parser turns 1.0K down.", "1.1"),
    ("HttpCheckBase", "virtualhost"): KeyDoc(
        "Host header of the requests.", "www.example.com", default="the real server's"),
    ("HttpCheckBase", "fast_recovery"): KeyDoc(
        "Check a failed server again at once instead of after delay_loop.", "true"),
    ("HttpCheckBase", "delay_before_retry"): KeyDoc("Seconds before a retry.", "1"),
    ("TcpCheck", "complete_handshake"): KeyDoc(
        "false: the check is up on the server's SYN-ACK and resets the connection "
        "without sending the handshake's last ACK, so the server never accepts a "
        "connection (HAProxy's half-open TCP check). true: the "
        "handshake completes and the server accepts a connection that is then reset "
        "(keepalived's TCP_CHECK, for servers that must see a connection).", "true",
        keepalived=None),
    ("SslGetCheck", "enable_sni"): KeyDoc(
        "Send the virtualhost as TLS SNI.", "true"),
    ("SmtpCheck", "helo_name"): KeyDoc(
        "Name sent in HELO.", "lvs-a.example.com", default="the host name"),
    ("DnsCheck", "type"): KeyDoc("Query type.", "A"),
    ("DnsCheck", "name"): KeyDoc("Name queried.", "example.com."),
    ("DnsCheck", "delay_before_retry"): KeyDoc(
        "Seconds before a retry.", "2", default="delay_loop (keepalived's DNS_CHECK rule)"),
    ("MiscCheck", "misc_path"): KeyDoc(
        "Program run for the check, without a shell. Exit 0 is up.",
        '"/usr/local/bin/probe 10.99.1.11"'),
    ("MiscCheck", "misc_timeout"): KeyDoc(
        "Seconds a run may take; on timeout its whole process group is killed.", "5",
        default="delay_loop"),
    ("MiscCheck", "misc_dynamic"): KeyDoc(
        "Exit 1 is down, 2..255 is up with weight (exit - 2).", "true"),
    ("MiscCheck", "user"): KeyDoc(
        "User the program runs as.", "nobody", keepalived="user USER [GROUP]",
        default="global_defs.script_user"),
    ("MiscCheck", "group"): KeyDoc(
        "Group the program runs as (only with `user`).", "nogroup",
        keepalived="user USER GROUP", default="the user's own group", needs={"user": "nobody"}),
    ("UdpCheck", "payload"): KeyDoc(
        "Datagram sent, as hex (spaces allowed between octets).", '"01 02 0a ff"',
        default='32 bytes of "keepalived check - ..."'),
    ("UdpCheck", "require_reply"): KeyDoc(
        "A reply must come within connect_timeout: true, or the hex pattern the reply "
        "must start with (`x` matches any nibble).", '"01 0x"',
        keepalived="require_reply [HEX]"),
    ("UdpCheck", "min_reply_length"): KeyDoc(
        "Shortest reply accepted against a pattern.", "4"),
    ("UdpCheck", "max_reply_length"): KeyDoc(
        "Longest reply accepted against a pattern.", "512"),
    ("FileCheck", "track_file"): KeyDoc(
        "The vrrp_track_files entry read.", "tf"),
    ("FileCheck", "weight"): KeyDoc(
        "0: the number is up (0) or down; otherwise number x weight is added to the real "
        "server's weight.", "5", keepalived="weight N [reverse]",
        default="the track file's weight and reverse"),
    ("FileCheck", "reverse"): KeyDoc(
        "Negate: weight 0 is down while the number is 0; otherwise number x weight is "
        "subtracted.", "true", keepalived="weight N reverse"),
    ("FileCheck", "retry"): KeyDoc("Failed reads retried before the check counts as failed.",
                                   "0", keepalived=None),
    ("FileCheck", "delay_loop"): KeyDoc(
        "Seconds between reads of the file (keepalived watches it with inotify).", "0.5",
        keepalived=None),
    ("FileCheck", "warmup"): KeyDoc("Upper bound of the random delay before the first read.",
                                    "0", keepalived=None),
    # ------------------------------------------------------------------ url entries
    ("UrlCheck", "path"): KeyDoc("Path requested.", "/health"),
    ("UrlCheck", "status_code"): KeyDoc(
        "Accepted status codes: a code, a range, or a list of them.", "[200, 301-302]",
        default="200-299"),
    ("UrlCheck", "digest"): KeyDoc(
        "MD5 of the body, as `genhash` prints it.", "9b3a0c85a887a256d6939da88aabd8cd"),
    ("UrlCheck", "virtualhost"): KeyDoc(
        "Host header of this URL.", "api.example.com", default="the checker's"),
    ("UrlCheck", "regex"): KeyDoc(
        "Regular expression the body must match.", '"status: ok"'),
    ("UrlCheck", "regex_no_match"): KeyDoc(
        "The body must not match `regex`.", "true", needs={"regex": "error"}),
}

# The mapping form of a notify command: keys the loader reads, beside keydocs of the model.
NOTIFY_KEYS: dict[str, KeyDoc] = {
    "script": KeyDoc("The command, as a command line or a list.",
                     '"/etc/hacluster/notify.sh master"', keepalived="the command"),
    "user": KeyDoc("User it runs as.", "nobody", keepalived="SCRIPT USER",
                   default="global_defs.script_user"),
    "group": KeyDoc("Group it runs as (only with `user`).", "nogroup",
                    keepalived="SCRIPT USER GROUP", default="the user's own group",
                    needs={"user": "nobody"}),
}
