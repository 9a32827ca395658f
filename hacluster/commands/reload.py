"""`hacluster reload`: ask the daemon to load its file again; its problems when refused."""

from __future__ import annotations

import argparse
import sys

from hacluster.commands.daemon_client import add_target_arguments, error_text, request, target_of


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Reload the running daemon's configuration file (as SIGHUP does) and wait for the "
        "outcome: exit 0 and what changed, or exit 1 and every problem (FILE:LINE: key: "
        "message) when the file is refused; the running configuration is then kept. "
        "Against the local control socket, or a remote director with --api."
    )
    add_target_arguments(parser)
    parser.set_defaults(timeout=60.0)


def run(args: argparse.Namespace) -> int:
    prog = "hacluster reload"
    code, data = request(prog, target_of(args), "POST", "/v1/reload", timeout=args.timeout)
    if code is None:
        return 1
    if code == 200 and isinstance(data, dict):
        print(f"reloaded: {data.get('message')}")
        return 0
    if code == 422:
        lines = error_text(data).splitlines()
        print(f"{prog}: refused, the running configuration is kept "
              f"({len(lines)} problem{'s' if len(lines) != 1 else ''}):", file=sys.stderr)
        for line in lines:
            print(line, file=sys.stderr)
        return 1
    print(f"{prog}: {error_text(data)} (HTTP {code})", file=sys.stderr)
    return 1
