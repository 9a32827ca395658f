"""`hacluster check-config -f FILE`: validate a configuration file and summarise it."""

from __future__ import annotations

import argparse
import sys

from hacluster.commands.common import add_config_argument
from hacluster.config.errors import ConfigError
from hacluster.config.loader import load_config_located
from hacluster.config.model import Config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Validate a configuration file. The preflight that `hacluster run` and reload "
        "run comes with it: dataplane limits, scripts, users and groups, script security, "
        "interfaces. "
        "Exit 0 when it is valid; otherwise exit 1 and print one line per problem: "
        "FILE:LINE: key.path: message. Problems that depend on this machine are marked "
        "[this machine]; --offline leaves them out."
    )
    add_config_argument(parser)
    parser.add_argument(
        "--offline",
        action="store_true",
        help="skip what depends on this machine (scripts, users, interfaces, kernel), "
        "to check a file on a build host",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing when the file is valid"
    )


def summary(config: Config) -> list[str]:
    """Short human lines describing what a valid configuration holds."""
    g = config.global_defs
    lines = [
        f"{config.source_path}: valid",
        f"  router_id {g.router_id or '(host name)'}, dataplane {g.dataplane}",
    ]
    for inst in config.vrrp_instances.values():
        vips = ", ".join(str(v.address) for v in inst.virtual_ipaddress) or "none"
        mode = "unicast" if inst.is_unicast else "multicast"
        lines.append(
            f"  vrrp_instance {inst.name}: {inst.interface} VRID {inst.virtual_router_id} "
            f"v{inst.version} {inst.state} priority {inst.priority} {mode}, VIPs {vips}"
        )
    for group in config.vrrp_sync_groups.values():
        lines.append(f"  vrrp_sync_group {group.name}: {', '.join(group.group)}")
    if config.vrrp_scripts:
        lines.append(f"  vrrp_scripts: {', '.join(config.vrrp_scripts)}")
    from hacluster.config.lower import unsupported_virtual_server

    for vs in config.virtual_servers:
        checks = sum(len(rs.checks) for rs in vs.real_servers)
        lines.append(
            f"  virtual_server {vs}: {vs.lb_algo} {vs.lb_kind}, "
            f"{len(vs.real_servers)} real servers, {checks} checks"
        )
        lines.extend(f"  note: virtual_server {vs}: {note}"
                     for note in unsupported_virtual_server(vs))
    if g.smtp_server is not None and g.notification_email:
        lines.append(f"  email alerts to {len(g.notification_email)} address(es) via "
                     f"{g.smtp_server}")
    elif g.smtp_server is not None or g.notification_email:
        lines.append("  note: email alerts need both smtp_server and notification_email; "
                     "none will be sent")
    for key in ("notify_fifo", "vrrp_notify_fifo", "lvs_notify_fifo"):
        if getattr(g, key) is not None:
            user, group = getattr(g, f"{key}_user"), getattr(g, f"{key}_group")
            owner = f" (created for {user}{':' + group if group else ''})" if user else ""
            lines.append(f"  {key} {getattr(g, key)}{owner}")
    if g.fifo_write_vrrp_states_on_reload:
        lines.append("  every reload writes the VRRP states to the FIFOs again")
    from hacluster.accept_mode import blocks

    dropping = [name for name, inst in config.vrrp_instances.items() if blocks(inst)]
    if dropping:
        lines.append(f"  no_accept: {', '.join(dropping)} drop traffic to their VIPs while "
                     f"MASTER (nftables table inet {g.nftables})")
    sync = g.lvs_sync_daemon
    if sync is not None and g.dataplane != "ipvs":
        lines.append(f"  note: lvs_sync_daemon does not apply with dataplane {g.dataplane}: "
                     "it is IPVS connection synchronisation and is ignored")
    elif sync is not None:
        follows = f"follows {sync.instance}" if sync.instance else "master and backup"
        lines.append(f"  lvs_sync_daemon on {sync.interface}: {follows}")
    if g.lvs_timeouts is not None:
        t = g.lvs_timeouts
        text = f"tcp {t.tcp} tcpfin {t.tcpfin} udp {t.udp}"
        if g.dataplane == "ipvs":
            lines.append(f"  lvs_timeouts {text} (0: the kernel's value is kept)")
        else:
            lines.append(
                f"  note: lvs_timeouts ({text}) does not apply with dataplane {g.dataplane}: "
                "they are IPVS connection timeouts and are ignored"
            )
    return lines


def run(args: argparse.Namespace) -> int:
    from hacluster.preflight import preflight

    try:
        config, lines = load_config_located(args.config)
        problems: list[object] = list(preflight(config, lines, offline=args.offline))
    except ConfigError as exc:
        problems = list(exc.problems)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        count = len(problems)
        print(f"{args.config}: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        return 1
    if not args.quiet:
        print("\n".join(summary(config)))
    return 0
