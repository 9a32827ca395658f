"""What the subcommands that ask the running daemon share: a timeout argument and one GET."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any


def seconds(text: str) -> float:
    """argparse type for `--timeout`: a number of seconds in (0, 3600]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be within (0, 3600]: {text}")
    return value


def get(prog: str, control_socket: Path, path: str, timeout: float) -> tuple[bool, Any]:
    """GET `path` from the daemon: (True, JSON) on HTTP 200; else one line on stderr
    naming `prog` and (False, None)."""
    from hacluster.api import DaemonUnreachable, call

    try:
        code, data = asyncio.run(call(control_socket, "GET", path, timeout=timeout))
    except DaemonUnreachable as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return False, None
    if code != 200:
        message = data.get("error") if isinstance(data, dict) else data
        print(f"{prog}: the daemon answered HTTP {code}: {message}", file=sys.stderr)
        return False, None
    return True, data
