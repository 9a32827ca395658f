"""Command-line entry point: dispatches `hacluster SUBCOMMAND` to its module."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

import hacluster

# Each subcommand lives in its own module under hacluster.commands and exposes
# `add_arguments(parser)` and `run(args) -> int`. Modules are imported only when
# their subcommand is chosen, so `hacluster check-config` stays fast.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("hacluster.commands.run", "run the daemon in the foreground"),
    "check-config": ("hacluster.commands.check_config", "validate a configuration file"),
    "import-keepalived": (
        "hacluster.commands.import_keepalived",
        "convert keepalived.conf to hacluster YAML",
    ),
    "status": ("hacluster.commands.status", "show the running daemon's state"),
    "drain": ("hacluster.commands.drain", "drain a real server (weight 0)"),
    "undrain": ("hacluster.commands.undrain", "give a drained real server its weight back"),
    "maintenance": ("hacluster.commands.maintenance", "VRRP instance maintenance on or off"),
    "reload": ("hacluster.commands.reload", "reload the running daemon's configuration"),
    "ipvs": ("hacluster.commands.ipvs", "IPVS table commands"),
    "lab": ("hacluster.commands.lab", "network-namespace lab and failover drills"),
    "completion": ("hacluster.commands.completion", "print a shell completion script"),
}


def _available() -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for name, (module, helptext) in SUBCOMMANDS.items():
        if importlib.util.find_spec(module) is not None:
            found[name] = (module, helptext)
    return found


def build_parser() -> argparse.ArgumentParser:
    """The whole command line in one parser, every subcommand's module imported (for
    shell completion and the man page; `main` imports only the chosen one)."""
    parser = argparse.ArgumentParser(
        prog="hacluster",
        description="High availability for Linux load-balancer directors: VRRP, health "
        "checks and an IPVS or nftables dataplane, configured in keepalived's vocabulary.",
    )
    parser.add_argument("--version", action="version",
                        version=f"hacluster {hacluster.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, helptext) in _available().items():
        subparser = sub.add_parser(name, help=helptext)
        importlib.import_module(module_name).add_arguments(subparser)
    return parser


class _Version(argparse.Action):
    """`--version`, reading the version only when asked (`hacluster run` never pays for it)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        print(f"hacluster {hacluster.__version__}")
        parser.exit()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the chosen subcommand."""
    from hacluster.startuptrace import mark

    mark("interpreter up")
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = SUBCOMMANDS.get(argv[0]) if argv else None
    if chosen is None or importlib.util.find_spec(chosen[0]) is None:
        # The top-level parser only for what it answers: usage, --help, --version
        # (`hacluster run` goes straight to its own, ~5 ms sooner).
        parser = argparse.ArgumentParser(prog="hacluster")
        parser.add_argument("--version", action=_Version, nargs=0,
                            help="show the version and exit")
        sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
        for name, (_module, helptext) in _available().items():
            sub.add_parser(name, help=helptext, add_help=False)
        parser.parse_args(argv)  # prints usage and exits
        return 2
    module = importlib.import_module(chosen[0])
    subparser = argparse.ArgumentParser(prog=f"hacluster {argv[0]}")
    module.add_arguments(subparser)
    args = subparser.parse_args(argv[1:])
    result: int = module.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
