"""`hacluster run -f FILE`: load the configuration and run the daemon in the foreground."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hacluster.config.model import Config
    from hacluster.daemon_options import DaemonOptions
    from hacluster.roles.vrrp import VrrpRole
    from healthchecks.zygote import Zygote
    from vrrp import vipstate

from hacluster.commands.common import add_config_argument
from hacluster.startuptrace import mark

#: Seconds the supervisor waits, after the release, for the VRRP role's first word.
ROLE_FIRST_WORD = 0.1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run the daemon in the foreground: VRRP instances, health checks, the dataplane "
        "and the control API. The whole file is checked first (as check-config does, "
        "every real server included) before VRRP may start: a refused file never sends an "
        "advert. A second run of the same director is refused before it touches anything. "
        "SIGHUP reloads, SIGTERM/SIGINT stop (masters resign), SIGUSR1 dumps the state."
    )
    add_config_argument(parser)
    parser.add_argument(
        "--log-format",
        choices=("human", "json"),
        default=None,
        help="log line format on stderr (default: global_defs.log_format, else human)",
    )
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default=None,
        help="minimum level logged (default: global_defs.log_level)",
    )
    parser.add_argument(
        "--status-file",
        type=Path,
        default=None,
        help="write a JSON status (states, counters) here on every change and on SIGUSR1",
    )
    parser.add_argument(
        "--single-process",
        action="store_true",
        help="run VRRP in the same process as the rest (default: a VRRP role process "
             "of its own under the supervisor)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where the VIPs this daemon added (and its no_accept nftables table) are "
        "recorded, to be removed first after a crash (default: /run/hacluster)",
    )
    parser.add_argument(
        "--control-socket",
        type=Path,
        default=None,
        help="the control API's unix socket (default: global_defs.control_socket)",
    )


def run(args: argparse.Namespace) -> int:
    # Importing frees next to nothing: the collector's passes would only delay the fork
    # of the VRRP role (~2 ms; the role collects before it forks, and enables its own).
    gc.disable()
    # Before anything slow (heavy imports, parsing the configuration): take off the VIPs
    # a crashed predecessor left, so that clients stop being sent here at once.
    from vrrp import vipstate

    vip_state = vipstate.state_file(args.state_dir or vipstate.DEFAULT_STATE_DIR, args.config)
    leftovers = vipstate.clear_leftovers(vip_state)
    mark("leftovers cleared")

    role: VrrpRole | None = None
    zygote: Zygote | None = None
    # The one module both processes need before the release (the role decodes the file
    # into it, this process loads it): imported once, before the fork, its pages shared.
    # Each process would otherwise import it at the same time: on a busy machine the
    # role got ready ~45 ms of CPU later (the trace bench/startup.py prints).
    import hacluster.config.model  # noqa: F401
    if not args.single_process:
        # So are the codec of the release (and its json) and the constructors of the
        # config classes every file has: ~5 ms of CPU each process spent after the fork.
        from hacluster.roles.codec import CODEC  # noqa: F401
        from hacluster.roles.constructors import prepare_release

        prepare_release()
        from hacluster.roles.vrrp import VrrpRole

        # The VRRP role starts now and gets ready while the file is loaded and checked
        # here; it runs nothing before run_daemon releases it with the accepted file.
        role = VrrpRole()
        role.fork()
        mark("role forked")
    gc.enable()  # the zygote and its check workers collect as usual
    if not args.single_process:
        from healthchecks.zygote import Zygote

        # Forked while this process is small: it imports what the check workers share
        # (when first asked: it slows nothing down here) and forks them from that.
        zygote = Zygote(lazy=True)
        zygote.start()
    try:
        # Loading builds tens of thousands of objects with thousands of real servers and
        # frees few: the collector's passes over them would only delay the release.
        gc.disable()
        try:
            config = _load(args.config, leftovers)
        finally:
            gc.enable()
        if config is not None and zygote is not None and not config.virtual_servers:
            zygote.stop()  # no checks to run (a reload that adds some execs its workers)
            zygote = None
        return 1 if config is None else _run(args, config, vip_state, leftovers, role, zygote)
    finally:
        if role is not None:
            role.abandon()  # refused: the unreleased role exits without a trace
        if zygote is not None:
            zygote.stop()


def _load(path: Path, leftovers: vipstate.Cleared) -> Config | None:
    """The file, loaded and preflighted; None once every problem is printed."""
    from hacluster.config import ConfigError
    from hacluster.config.loader import load_config_located
    from hacluster.preflight import preflight

    mark("loader imported")
    try:
        config, lines = load_config_located(path)
    except ConfigError as exc:
        _report(leftovers)
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
    except OSError as exc:
        _report(leftovers)
        print(f"{path}: {exc.strerror or exc}", file=sys.stderr)
        return None
    mark("file loaded")
    findings = preflight(config, lines)
    mark("preflighted")
    if findings:
        _report(leftovers)
        for finding in findings:
            print(finding, file=sys.stderr)
        print(f"{path}: refused, {len(findings)} problem(s)", file=sys.stderr)
        return None
    return config


def _run(args: argparse.Namespace, config: Config, vip_state: Path,
         leftovers: vipstate.Cleared, role: VrrpRole | None, zygote: Zygote | None) -> int:
    from hacluster.daemon_options import DaemonOptions, with_overrides
    from hacluster.single_instance import AlreadyRunning, Locks, lock_specs

    log_format = args.log_format
    if log_format is None:
        log_format = "json" if config.global_defs.log_format == "json" else "human"
    locks = Locks()
    options = DaemonOptions(
        log_format=log_format,
        log_level=args.log_level or config.global_defs.log_level,
        status_file=args.status_file,
        config_file=args.config,
        control_socket=args.control_socket,
        vip_state_file=vip_state,
        leftovers=tuple(leftovers.report()),
        locks=locks,
        role="all" if args.single_process else "supervisor",
    )
    # Before anything else is touched (the control socket, VIPs from the configuration):
    # one daemon only. The recorded leftovers above were left alone if their writer lives.
    try:
        locks.acquire(lock_specs(with_overrides(config, options)))
    except AlreadyRunning as exc:
        print(f"hacluster run: refused: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"hacluster run: cannot take the single-instance lock: {exc}", file=sys.stderr)
        return 1
    mark("locked")
    try:
        if role is not None:
            from hacluster.roles.vrrp import release

            # The file is accepted and this is the one director: the role may run it,
            # while the supervisor imports and builds the rest. A SIGTERM meanwhile
            # must not kill the supervisor outright: held until its loop handles it
            # (SIGUSR1 too: the role may be MASTER, and asked for a status, before then).
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP,
                                                   signal.SIGUSR1})
            # The leftovers removed before anything else are logged before the role's
            # first line, as they happened.
            if options.leftovers:
                _log_leftovers(options)
            options = dataclasses.replace(options, leftovers=())
            release(role, config, options)
            mark("released")
            if config.vrrp_instances:
                # VRRP first: the role's first state change (sent with its first
                # advert) before this process starts its own heavier part (the control
                # API, the checks, the dataplane), which on a busy machine shares the
                # CPU with the role's last steps (release -> first advert: 25 -> 10 ms
                # at load 12). Bounded: a slow role delays the rest by 0.1 s at most.
                role.wait_heard(ROLE_FIRST_WORD)
                mark("role heard")
            if config.virtual_servers:
                from hacluster.logs import setup_logging
                from hacluster.roles.balancer import prefork

                # The balancer gets ready (imports, dataplane, checks' plan) while the
                # rest of this process is imported and built; it logs as the daemon will.
                # What both import (the loop, the metrics) is imported once, here, before
                # the fork: not twice at the same time, and its pages stay shared.
                setup_logging(options.log_format, options.log_level)
                import asyncio  # noqa: F401

                import hacluster.metrics  # noqa: F401

                prefork(config)
        else:
            _warn_single_process(config, options)
        from hacluster.daemon import run_daemon

        return run_daemon(config, options, role, zygote)
    finally:
        locks.release()


def _log_leftovers(options: DaemonOptions) -> None:
    import logging

    from hacluster.logs import setup_logging

    setup_logging(options.log_format, options.log_level)
    log = logging.getLogger("hacluster.daemon")
    for level, line in options.leftovers:
        log.log(logging.getLevelName(level.upper()), "%s", line)


#: The VRRP role's own process settings (`hacluster.roles.vrrp.apply_process_settings`).
VRRP_PROCESS_KEYS = ("vrrp_priority", "vrrp_rt_priority", "vrrp_rlimit_rttime", "vrrp_no_swap")


def ignored_in_one_process(config: Config) -> list[str]:
    """What `--single-process` leaves out of `config`: the VRRP role's process settings
    (applied to one process, they would give the checks and the dataplane the real-time
    priority, or lock all of their memory), a line each."""
    g = config.global_defs
    return [f"global_defs.{key} applies to the VRRP role process, and is ignored with "
            "--single-process" for key in VRRP_PROCESS_KEYS if getattr(g, key)]


def _warn_single_process(config: Config, options: DaemonOptions) -> None:
    lines = ignored_in_one_process(config)
    if not lines:
        return
    import logging

    from hacluster.logs import setup_logging

    setup_logging(options.log_format, options.log_level)
    log = logging.getLogger("hacluster.daemon")
    for line in lines:
        log.warning("%s", line)


def _report(leftovers: vipstate.Cleared) -> None:
    for _level, message in leftovers.report():
        print(message, file=sys.stderr)
