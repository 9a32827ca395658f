"""A `hacluster run` a test started in a lab: waiting on it, its API, its processes."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hacluster.api import call
from hacluster.lab.netns import Lab, LabProcess
from tests.integration.proctree import children, comm

HACLUSTER = str(Path(sys.executable).with_name("hacluster"))


def wait_for(what: str, predicate: Callable[[], Any], timeout: float = 20.0,
             output: Callable[[], str] = lambda: "", every: float = 0.05) -> Any:
    """What `predicate` returns once it is true; AssertionError with `output()` when it
    is not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout} s\n{output()}")


async def get_text(sock: Path, path: str) -> str:
    """GET `path` over the control socket, as text (/metrics is not JSON)."""
    import aiohttp

    async with (
        aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock))) as session,
        session.get(f"http://hacluster{path}") as resp,
    ):
        return await resp.text()


class RunningDaemon:
    """The daemon (`proc`, once started) and its control socket `sock`."""

    def __init__(self, lab: Lab, sock: Path) -> None:
        self.lab = lab
        self.sock = sock
        self.proc: LabProcess | None = None

    def output(self) -> str:
        return self.proc.output() if self.proc is not None else ""

    def api(self, path: str, method: str = "GET") -> Any:
        code, data = asyncio.run(call(self.sock, method, path))
        assert code == 200, data
        return data

    def metrics(self) -> str:
        return asyncio.run(get_text(self.sock, "/metrics"))

    def children_named(self, name: str, parent: int | None = None) -> list[int]:
        """The children of `parent` (the daemon by default) called `name`."""
        if parent is None:
            assert self.proc is not None
            parent = self.proc.pid
        return [p for p in children(parent) if comm(p) == name]
