"""`hacluster maintenance INSTANCE on|off`: lower a VRRP instance to priority 1, or restore it."""

from __future__ import annotations

import argparse
import sys
from urllib.parse import quote

from hacluster.commands.daemon_client import add_target_arguments, error_text, request, target_of


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Maintenance of a VRRP instance: `on` lowers its effective priority to 1, so a "
        "backup with preemption takes over (with no such peer it stays master); `off` "
        "gives it back its priority. Against the local control socket, or a remote "
        "director with --api."
    )
    parser.add_argument("instance", metavar="INSTANCE", help="the vrrp_instances name")
    parser.add_argument("mode", choices=("on", "off"), help="on or off")
    add_target_arguments(parser)


def run(args: argparse.Namespace) -> int:
    prog = "hacluster maintenance"
    on = args.mode == "on"
    path = f"/v1/instances/{quote(args.instance, safe='')}/maintenance"
    code, data = request(prog, target_of(args), "POST", path, body={"on": on},
                         timeout=args.timeout)
    if code is None:
        return 1
    if code != 200:
        print(f"{prog}: {error_text(data)} (HTTP {code})", file=sys.stderr)
        return 1
    print(f"{args.instance}: maintenance {'on (priority 1)' if on else 'off'}")
    return 0
