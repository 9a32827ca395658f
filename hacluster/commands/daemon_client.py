"""What the subcommands that talk to a daemon share: where it is (the local control socket,
or a remote director's API with a token), a timeout, and one request."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hacluster.commands.common import add_config_argument, control_socket_of


def seconds(text: str) -> float:
    """argparse type for `--timeout`: a number of seconds in (0, 3600]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be within (0, 3600]: {text}")
    return value


@dataclass(frozen=True, slots=True)
class Target:
    """A daemon to talk to: its control socket, or a remote API URL (and bearer token)."""

    control_socket: Path | None = None
    url: str | None = None
    token: str | None = None

    def __str__(self) -> str:
        return self.url if self.url is not None else str(self.control_socket)


def add_target_arguments(parser: argparse.ArgumentParser, *, config: bool = True) -> None:
    """-f/--config, --control-socket, --api URL, --token T and --timeout."""
    if config:
        add_config_argument(parser, help_extra="; its control_socket is the default socket")
    parser.add_argument(
        "--control-socket",
        type=Path,
        default=None,
        metavar="PATH",
        help="the daemon's control socket (default: global_defs.control_socket of the "
        "configuration file, else /run/hacluster/hacluster.sock)",
    )
    parser.add_argument(
        "--api",
        metavar="URL",
        help="a remote director's control API (global_defs.api_listen), e.g. "
        "http://10.0.0.1:9651, instead of the local socket",
    )
    parser.add_argument(
        "--token",
        metavar="T",
        default=None,
        help="bearer token for --api (global_defs.api_token; default: the "
        "HACLUSTER_API_TOKEN environment variable)",
    )
    parser.add_argument(
        "--timeout", type=seconds, default=10.0, metavar="SECONDS", help="give up after (10)"
    )


def target_of(args: argparse.Namespace) -> Target:
    """Where the parsed arguments point: --api wins, else the control socket."""
    if getattr(args, "api", None):
        token = args.token if args.token is not None else os.environ.get("HACLUSTER_API_TOKEN")
        return Target(url=args.api.rstrip("/"), token=token or None)
    config = getattr(args, "config", None)
    given = args.control_socket
    if config is None:
        from hacluster.config.model import GlobalDefs

        return Target(control_socket=given or GlobalDefs().control_socket)
    return Target(control_socket=control_socket_of(config, given))


async def _call_url(target: Target, method: str, path: str, body: Any,
                    timeout: float) -> tuple[int, Any]:
    import aiohttp

    from hacluster.api import DaemonUnreachable

    headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.request(method, f"{target.url}{path}", json=body,
                            headers=headers) as response,
        ):
            text = await response.text()
            status = response.status
    except TimeoutError as exc:
        raise DaemonUnreachable(f"{target}: no answer within {timeout:g} s") from exc
    except (aiohttp.ClientError, ValueError) as exc:
        raise DaemonUnreachable(f"{target}: {exc}") from exc
    try:
        return status, json.loads(text)
    except ValueError:
        raise DaemonUnreachable(
            f"{target}: the answer is not JSON (HTTP {status}): {text[:200]!r}"
        ) from None


def request(prog: str, target: Target | Path, method: str, path: str, *, body: Any = None,
            timeout: float = 10.0) -> tuple[int | None, Any]:
    """One request: (HTTP status, JSON); (None, None) with one line on stderr naming
    `prog` when no daemon answers."""
    from hacluster.api import DaemonUnreachable, call

    if isinstance(target, Path):
        target = Target(control_socket=target)
    try:
        if target.url is not None:
            return asyncio.run(_call_url(target, method, path, body, timeout))
        assert target.control_socket is not None
        return asyncio.run(call(target.control_socket, method, path, body=body,
                                timeout=timeout))
    except DaemonUnreachable as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return None, None


def error_text(data: Any) -> str:
    return str(data.get("error")) if isinstance(data, dict) else str(data)


def get(prog: str, target: Target | Path, path: str, timeout: float) -> tuple[bool, Any]:
    """GET `path` from the daemon: (True, JSON) on HTTP 200; else one line on stderr
    naming `prog` and (False, None)."""
    code, data = request(prog, target, "GET", path, timeout=timeout)
    if code is None:
        return False, None
    if code != 200:
        print(f"{prog}: the daemon answered HTTP {code}: {error_text(data)}", file=sys.stderr)
        return False, None
    return True, data
