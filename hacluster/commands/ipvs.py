"""`hacluster ipvs list | apply`: show the table (ipvsadm layout or JSON) as the dataplane or
the running daemon has it, or put a configuration's virtual servers into the dataplane once
(with `--dry-run`: only say what would change).

Where `list` reads: `--backend`/`--netns` read the dataplane directly (they win over
`--control-socket`); otherwise `--control-socket PATH` asks the running daemon
(`GET /v1/ipvs`, which reads its own dataplane); with neither, the kernel's IPVS over
netlink, as before. Both ways print the same layouts."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from hacluster.commands.common import add_config_argument, control_socket_of
from hacluster.commands.daemon_client import get, seconds
from hacluster.config.errors import ConfigError
from hacluster.config.loader import load_config
from hacluster.ipvs.backend import (
    ApplyResult,
    Backend,
    BackendError,
    BackendUnavailable,
    describe,
)
from hacluster.ipvs.dataplane import (
    BACKENDS,
    NO_IPVS,
    BackendName,
    config_problems,
    from_dataplane,
    is_missing_ipvs,
    open_backend,
)
from hacluster.ipvs.listing import Mode, from_json, info_from_json, render, to_json
from hacluster.ipvs.model import IpvsInfo, Table, TableStats
from hacluster.ipvs.reconcile import ALL, Managed, reconcile
from hacluster.policy import evaluate, managed_keys

NETNS_DIR = Path("/run/netns")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "The load-balancing table: list it in `ipvsadm -L -n` layout (from the running "
        "daemon, the kernel's IPVS or nftables), or apply a configuration's virtual "
        "servers once."
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = sub.add_parser(
        "list", help="print the table in `ipvsadm -L -n` layout", prog="hacluster ipvs list",
        description=(
            "Print the table in `ipvsadm -L -n` layout. With --backend or --netns the "
            "dataplane is read here; otherwise the running daemon is asked when the "
            "configuration's dataplane is nftables (or the kernel has no IPVS), else the "
            "kernel's IPVS is read. Counters a dataplane does not keep show as '-'."
        ),
    )
    layout = listing.add_mutually_exclusive_group()
    layout.add_argument("--stats", action="store_true", help="counters (ipvsadm --stats)")
    layout.add_argument("--rate", action="store_true", help="rates (ipvsadm --rate)")
    layout.add_argument("--json", action="store_true", help="JSON for machines")
    listing.add_argument(
        "--backend",
        choices=[b for b in BACKENDS if b != "memory"],
        help="dataplane to read directly: the kernel's IPVS (netlink, the default when no "
        "--control-socket is given) or nftables",
    )
    listing.add_argument("--netns", metavar="NS",
                         help="read the table in network namespace NS (it must exist)")
    add_config_argument(listing, help_extra="; its dataplane and control_socket")
    listing.add_argument(
        "--control-socket",
        type=Path,
        metavar="PATH",
        help="ask the running daemon on this control socket for its table (used unless "
        "--backend or --netns is given)",
    )
    listing.add_argument(
        "--timeout",
        type=seconds,
        default=10.0,
        metavar="SECONDS",
        help="give up on the daemon after (10)",
    )
    listing.add_argument(
        "--nosort",
        action="store_true",
        help="keep the dataplane's order (needs --backend: a daemon sends its table sorted)",
    )
    listing.add_argument(
        "--exact", action="store_true", help="exact numbers, no K/M/G/T (ipvsadm --exact)"
    )
    apply = sub.add_parser(
        "apply",
        help="put a configuration's virtual servers into the dataplane once",
        prog="hacluster ipvs apply",
        description=(
            "Make the dataplane hold the configuration's virtual servers, as the daemon "
            "would with no health results yet (every real server counts as up, unless "
            "alpha). Services the configuration does not name are left alone unless "
            "global_defs.lvs_flush is set. Prints one line per operation."
        ),
    )
    add_config_argument(apply)
    apply.add_argument(
        "--dry-run", action="store_true", help="print the operations, change nothing"
    )
    apply.add_argument(
        "--backend",
        choices=[b for b in BACKENDS if b != "memory"],
        help="dataplane (default: from global_defs.dataplane)",
    )
    apply.add_argument("--netns", metavar="NS", help="work in network namespace NS")


async def _read(backend: Backend) -> tuple[Table, TableStats, IpvsInfo]:
    try:
        table = await backend.dump()
        stats = await backend.stats()
        info_fn = getattr(backend, "info", None)
        info = await info_fn() if info_fn is not None else IpvsInfo()
        return table, stats, info
    finally:
        await backend.close()


def run(args: argparse.Namespace) -> int:
    if args.action == "apply":
        return _apply(args)
    return _list(args)


async def _sync(backend: Backend, desired: Table, managed: Managed, dry_run: bool) -> int:
    try:
        ops = reconcile(desired, await backend.dump(), managed=managed)
        for op in ops:
            print(describe(op))
        if dry_run:
            print(f"{len(ops)} operations (dry run: nothing changed)")
            return 0
        result = await backend.apply(ops) if ops else ApplyResult(0)
    finally:
        await backend.close()
    for failure in result.failed:
        print(f"refused: {describe(failure.op)}: {failure.message}", file=sys.stderr)
    print(f"{result.applied} of {len(ops)} operations applied to {backend.name}")
    return 0 if result.ok else 1


def _apply(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    dataplane = args.backend or config.global_defs.dataplane
    name = from_dataplane(dataplane)
    if name is None:
        print(f"{args.config}: dataplane is none: nothing to apply", file=sys.stderr)
        return 1
    limits = config_problems(dataplane, config.virtual_servers)
    if limits:
        for limit in limits:
            print(f"{args.config}: {limit}", file=sys.stderr)
        return 1
    desired = evaluate(config.virtual_servers, {}).table
    managed: Managed = ALL if config.global_defs.lvs_flush else managed_keys(
        config.virtual_servers
    )
    try:
        backend = open_backend(name, netns=args.netns)
        return asyncio.run(_sync(backend, desired, managed, args.dry_run))
    except (BackendError, OSError, ValueError) as exc:
        print(f"hacluster ipvs apply: {exc}", file=sys.stderr)
        return 1


def _configured_dataplane(path: Path) -> str | None:
    try:
        return load_config(path).global_defs.dataplane
    except (ConfigError, OSError):
        return None


def _list(args: argparse.Namespace) -> int:
    if args.control_socket is not None and args.backend is None and args.netns is None:
        return _list_daemon(args, args.control_socket)
    if args.netns is not None and not (NETNS_DIR / args.netns).exists():
        # Opening it would create it (and leave it behind).
        print(f"hacluster ipvs list: no network namespace {args.netns!r} "
              f"(see `ip netns list`)", file=sys.stderr)
        return 1
    explicit = args.backend is not None or args.netns is not None
    if not explicit and _configured_dataplane(args.config) == "nftables":
        return _list_daemon(args, control_socket_of(args.config, None))
    name: BackendName = args.backend or "netlink"
    try:
        backend = open_backend(name, netns=args.netns)
        table, stats, info = asyncio.run(_read(backend))
    except (BackendError, OSError, ValueError) as exc:
        if not explicit and (isinstance(exc, BackendUnavailable) or is_missing_ipvs(exc)):
            return _list_daemon(args, control_socket_of(args.config, None), fallback=True)
        print(f"hacluster ipvs list: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        # pyroute2's NetlinkError for a missing IPVS family is not an OSError.
        if name == "netlink" and is_missing_ipvs(exc):
            if not explicit:
                return _list_daemon(args, control_socket_of(args.config, None),
                                    fallback=True)
            print(f"hacluster ipvs list: {NO_IPVS}", file=sys.stderr)
            return 1
        raise
    return _print(args, table, stats, info, {"backend": backend.name}, sort=not args.nosort)


def _list_daemon(args: argparse.Namespace, control_socket: Path, *,
                 fallback: bool = False) -> int:
    if fallback and not control_socket.exists():
        print(f"hacluster ipvs list: {NO_IPVS}; and no daemon on {control_socket} to ask",
              file=sys.stderr)
        return 1
    if args.nosort:
        print("hacluster ipvs list: --nosort needs --backend: the daemon sends its table "
              "in ipvsadm's order", file=sys.stderr)
        return 1
    ok, data = get("hacluster ipvs list", control_socket, "/v1/ipvs", args.timeout)
    if not ok:
        return 1
    try:
        table, stats = from_json(data)
        info = info_from_json(data)
    except ValueError as exc:
        print(f"hacluster ipvs list: unexpected answer from the daemon: {exc}", file=sys.stderr)
        return 1
    # The daemon's JSON is already in ipvsadm's order (`to_json` sorts): printed as it
    # comes, it is byte for byte what reading the dataplane here prints. (Sorting again
    # need not be: ipvsadm's wrapping comparison is not a total order.)
    return _print(args, table, stats, info, {"control_socket": str(control_socket)},
                  sort=False)


def _print(
    args: argparse.Namespace,
    table: Table,
    stats: TableStats,
    info: IpvsInfo,
    source: dict[str, Any],
    *,
    sort: bool,
) -> int:
    if args.json:
        data = to_json(table, stats, sort=sort)
        data.update(source)
        print(json.dumps(data, indent=2))
        return 0
    mode: Mode = "stats" if args.stats else "rate" if args.rate else "plain"
    sys.stdout.write(
        render(
            table,
            stats,
            mode=mode,
            version=info.version,
            size=info.size,
            sort=sort,
            exact=args.exact,
        )
    )
    return 0
