"""`hacluster drain VS RS`: weight 0 for a real server (running connections finish)."""

from __future__ import annotations

import argparse
import sys
from urllib.parse import quote

from hacluster.commands.daemon_client import add_target_arguments, error_text, request, target_of

DRAIN = True


def add_server_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.description = what
    parser.add_argument(
        "virtual_server", metavar="VS",
        help="the virtual server as status shows it: IP:PORT[/PROTO], [IPv6]:PORT, fwmark:N",
    )
    parser.add_argument("real_server", metavar="RS", help="the real server: IP:PORT")
    add_target_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_arguments(
        parser,
        "Drain a real server: its weight becomes 0, so it gets no new connections while "
        "the ones it has finish. Health checks go on; `hacluster undrain` gives it back "
        "its weight. Against the local control socket, or a remote director with --api.",
    )


def server_action(args: argparse.Namespace, drain: bool) -> int:
    verb = "drain" if drain else "undrain"
    prog = f"hacluster {verb}"
    path = (f"/v1/servers/{quote(args.virtual_server, safe='')}/"
            f"{quote(args.real_server, safe='')}/{verb}")
    code, data = request(prog, target_of(args), "POST", path, timeout=args.timeout)
    if code is None:
        return 1
    if code != 200:
        print(f"{prog}: {error_text(data)} (HTTP {code})", file=sys.stderr)
        return 1
    state = "drained (weight 0)" if drain else "undrained (weight restored)"
    print(f"{data.get('virtual_server')} {data.get('real_server')}: {state}")
    return 0


def run(args: argparse.Namespace) -> int:
    return server_action(args, DRAIN)
