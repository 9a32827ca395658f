"""`hacluster undrain VS RS`: give a drained real server back its configured weight."""

from __future__ import annotations

import argparse

from hacluster.commands.drain import add_server_arguments, server_action


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_arguments(
        parser,
        "Undrain a real server: it gets its configured weight back (0 still while its "
        "health checks fail). Against the local control socket, or a remote director "
        "with --api.",
    )


def run(args: argparse.Namespace) -> int:
    return server_action(args, False)
