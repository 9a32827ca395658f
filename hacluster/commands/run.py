"""`hacluster run -f FILE`: load the configuration and run the daemon in the foreground."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vrrp import vipstate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--file", required=True, type=Path, help="configuration file")
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
        "--state-dir",
        type=Path,
        default=None,
        help="where the VIPs this daemon added are recorded, to be removed first after a "
        "crash (default: /run/hacluster)",
    )
    parser.add_argument(
        "--control-socket",
        type=Path,
        default=None,
        help="the control API's unix socket (default: global_defs.control_socket)",
    )


def run(args: argparse.Namespace) -> int:
    # Before anything slow (heavy imports, parsing the configuration): take off the VIPs
    # a crashed predecessor left, so that clients stop being sent here at once.
    from vrrp import vipstate

    vip_state = vipstate.state_file(args.state_dir or vipstate.DEFAULT_STATE_DIR, args.file)
    leftovers = vipstate.clear_leftovers(vip_state)

    from hacluster.config import ConfigError
    from hacluster.config.loader import load_config

    try:
        config = load_config(args.file)
    except ConfigError as exc:
        _report(leftovers)
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except OSError as exc:
        _report(leftovers)
        print(f"{args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1

    from hacluster.daemon import DaemonOptions, run_daemon

    log_format = args.log_format
    if log_format is None:
        log_format = "json" if config.global_defs.log_format == "json" else "human"
    options = DaemonOptions(
        log_format=log_format,
        log_level=args.log_level or config.global_defs.log_level,
        status_file=args.status_file,
        config_file=args.file,
        control_socket=args.control_socket,
        vip_state_file=vip_state,
        leftovers=tuple(leftovers.report()),
    )
    return run_daemon(config, options)


def _report(leftovers: vipstate.Cleared) -> None:
    for _level, message in leftovers.report():
        print(message, file=sys.stderr)
