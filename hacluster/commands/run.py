"""`hacluster run -f FILE`: load the configuration and run the daemon in the foreground."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


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
        "--single-process",
        action="store_true",
        help="run VRRP in the same process as the rest (default: a VRRP role process "
             "of its own under the supervisor)",
    )
    parser.add_argument(
        "--control-socket",
        type=Path,
        default=None,
        help="the control API's unix socket (default: global_defs.control_socket)",
    )


def run(args: argparse.Namespace) -> int:
    from hacluster.config import ConfigError
    from hacluster.config.loader import load_config

    try:
        config = load_config(args.file)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except OSError as exc:
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
        role="all" if args.single_process else "supervisor",
    )
    return run_daemon(config, options)
