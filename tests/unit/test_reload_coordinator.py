"""The reload coordinator without root: reloads while starting, running, stopping.

A daemon that runs nothing, reloads asked for while it starts, runs and stops, and files
that are refused whole.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from hacluster.config.loader import parse_config
from hacluster.daemon import Daemon
from hacluster.daemon_options import DaemonOptions

TEXT = "global_defs: {router_id: director-a}\n"


def daemon(tmp_path: Path, text: str = TEXT) -> Daemon:
    path = tmp_path / "hacluster.yaml"
    path.write_text(text)
    return Daemon(parse_config(text, str(path)), DaemonOptions(config_file=path))


def running(d: Daemon) -> None:
    d._running = True  # what run() sets once everything is up
    d.started.set()


async def test_a_reload_during_start_up_waits_for_it(tmp_path: Path) -> None:
    d = daemon(tmp_path)
    (tmp_path / "hacluster.yaml").write_text("global_defs: {router_id: director-b}\n")
    reload = asyncio.ensure_future(d.reload())
    await asyncio.sleep(0.05)
    assert not reload.done()  # not refused, not lost: waiting
    running(d)
    ok, message = await asyncio.wait_for(reload, 5)
    assert ok, message
    assert d.config.global_defs.router_id == "director-b"
    assert d.reloads == {"ok": 1, "refused": 0}


async def test_a_reload_during_the_stop_is_refused(tmp_path: Path) -> None:
    d = daemon(tmp_path)
    d.request_stop()
    ok, message = await asyncio.wait_for(d.reload(), 5)
    assert not ok and "not running" in message
    assert d.reloads == {"ok": 0, "refused": 0}  # (not a refused file)


async def test_a_bad_file_is_refused_whole_and_the_same_file_changes_nothing(
    tmp_path: Path,
) -> None:
    d = daemon(tmp_path)
    running(d)
    before = d.config
    assert await d.reload() == (True, "no change")
    (tmp_path / "hacluster.yaml").write_text(
        "global_defs: {router_id: director-b, bogus: 1}\n")
    ok, message = await d.reload()
    assert not ok and "hacluster.yaml:1" in message and "global_defs.bogus" in message
    assert d.config is before
    assert d.reloads == {"ok": 1, "refused": 1}


async def test_the_supervisor_hands_maintenance_back_by_the_new_name(tmp_path: Path) -> None:
    """After a reload, a restarted VRRP role is told of the instances in maintenance
    that are still there: a renamed one (the same router) by its new name."""
    from typing import Any

    from hacluster.roles.vrrp import VrrpRole

    def instances(*named: tuple[str, int]) -> str:
        return "vrrp_instances:\n" + "".join(
            f"  {n}: {{interface: eth0, virtual_router_id: {vrid}, "
            f"virtual_ipaddress: [10.0.0.{vrid}/24]}}\n" for n, vrid in named)

    role = VrrpRole()
    role.config = parse_config(instances(("VI_1", 1), ("VI_2", 2), ("VI_3", 3)), "t.yaml")
    role._maintenance = {"VI_1", "VI_2"}

    async def call(method: str, *args: Any, timeout: float = 0) -> Any:
        assert method == "reload"
        return True, "reloaded"

    role.call = call  # type: ignore[method-assign]
    new = parse_config(instances(("WEB", 1), ("VI_3", 3)), "t.yaml")
    assert await role.reload(new) == (True, "reloaded")
    assert role._maintenance == {"WEB"}  # VI_1 renamed, VI_2 gone
