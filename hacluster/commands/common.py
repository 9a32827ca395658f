"""Arguments every subcommand shares: `-f/--config` with one default, and where the daemon is."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_CONFIG = Path("/etc/hacluster/hacluster.yaml")


def add_config_argument(parser: argparse.ArgumentParser, *, help_extra: str = "") -> None:
    """`-f/--config FILE` (also `--file`), default /etc/hacluster/hacluster.yaml."""
    parser.add_argument(
        "-f",
        "--config",
        "--file",
        dest="config",
        type=Path,
        default=DEFAULT_CONFIG,
        metavar="FILE",
        help=f"configuration file (default {DEFAULT_CONFIG}){help_extra}",
    )


def control_socket_of(config_file: Path, given: Path | None) -> Path:
    """The control socket to talk to: the one given, else the configuration file's
    `global_defs.control_socket` when the file loads, else the built-in default."""
    from hacluster.config.model import GlobalDefs

    if given is not None:
        return given
    try:
        from hacluster.config.loader import load_config

        return load_config(config_file).global_defs.control_socket
    except Exception:  # no file, or one with problems: the default is the best guess
        return GlobalDefs().control_socket
