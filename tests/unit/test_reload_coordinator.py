"""The reload coordinator without root, driving fake roles through their interface.

A root whose roles record what they are asked: reloads asked for while it starts, runs
and stops, files refused whole (by the loader, or by the balancer, the one role that
may refuse, before anything is touched) and accepted ones handed to each role in turn.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from hacluster.config.loader import parse_config
from hacluster.config.model import Config
from hacluster.daemon_options import DaemonOptions
from hacluster.reload_coordinator import Reloader
from hacluster.roles.interface import Outcome, Role

TEXT = "global_defs: {router_id: director-a}\n"


class FakeRole:
    """A role that takes (or refuses) every configuration and says what it was asked."""

    def __init__(self, name: str, calls: list[str], refuse: str | None = None) -> None:
        self.name, self.calls, self.refuse = name, calls, refuse
        self.config: Config | None = None

    async def start(self) -> None:
        self.calls.append(f"{self.name} start")

    async def reconfigure(self, config: Config) -> Outcome:
        self.calls.append(f"{self.name} reconfigure {config.global_defs.router_id}")
        if self.refuse is not None:
            return False, self.refuse
        self.config = config
        return True, f"{self.name} took it"

    async def stop(self) -> None:
        self.calls.append(f"{self.name} stop")

    async def snapshot(self) -> dict[str, Any]:
        return {}


class FakeSd:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def reloading(self) -> None:
        self.calls.append("sd RELOADING")

    def ready(self, status: str | None = None) -> None:
        self.calls.append(f"sd READY {status}")


class FakeRoot:
    """What the coordinator reads and calls of a root (`ReloadHost`)."""

    def __init__(self, tmp_path: Path, text: str = TEXT, *, balancer: str | None = None,
                 refuse: str | None = None) -> None:
        path = tmp_path / "hacluster.yaml"
        path.write_text(text)
        self.calls: list[str] = []
        self.options = DaemonOptions(config_file=path)
        self.config = parse_config(text, str(path))
        self.started = asyncio.Event()
        self.stopping = asyncio.Event()
        self.running = False
        self.reload_lock = asyncio.Lock()
        self.sd: Any = FakeSd(self.calls)
        self.metrics = None
        self.vrrp: Role[Any] | None = FakeRole("vrrp", self.calls)
        self.balancer: Role[Any] | None = (
            None if balancer is None else FakeRole(balancer, self.calls, refuse))
        self.reloader = Reloader(self)

    def run(self) -> None:
        self.running = True  # what a root sets once everything is up
        self.started.set()

    async def prepare_config(self, config: Config) -> Config:
        return config

    async def new_balancer(self, config: Config) -> Any:
        raise AssertionError("no first balancer here")

    async def unchanged(self, config: Config) -> None:
        self.calls.append("unchanged")

    async def reconfigured(self, config: Config, balancer: Any) -> None:
        self.calls.append(f"reconfigured {config.global_defs.router_id}")

    def reloaded(self, ok: bool) -> None:
        self.calls.append(f"reloaded {ok}")


def test_the_four_implementations_have_the_role_interface() -> None:
    import inspect

    from hacluster.balancer import Balancer
    from hacluster.roles.balancer import BalancerRole
    from hacluster.roles.vrrp import VrrpRole
    from hacluster.vrrp_part import VrrpPart

    for cls in (VrrpPart, VrrpRole, Balancer, BalancerRole):
        for name in ("start", "reconfigure", "stop", "snapshot"):
            method = getattr(cls, name)
            assert inspect.iscoroutinefunction(method), (cls, name)
            params = list(inspect.signature(method).parameters.values())[1:]
            required = [p.name for p in params if p.default is inspect.Parameter.empty]
            assert required == (["config"] if name == "reconfigure" else []), (cls, name)
    config = parse_config(TEXT, "t.yaml")
    from hacluster.notify_outputs import NotifyOutputs

    assert isinstance(VrrpPart(config, DaemonOptions(), NotifyOutputs()), Role)
    assert isinstance(VrrpRole(), Role)
    assert isinstance(Balancer(config), Role)
    assert isinstance(BalancerRole(config), Role)


async def test_a_reload_during_start_up_waits_for_it(tmp_path: Path) -> None:
    root = FakeRoot(tmp_path)
    (tmp_path / "hacluster.yaml").write_text("global_defs: {router_id: director-b}\n")
    reload = asyncio.ensure_future(root.reloader.reload())
    await asyncio.sleep(0.05)
    assert not reload.done()  # not refused, not lost: waiting
    root.run()
    ok, message = await asyncio.wait_for(reload, 5)
    assert (ok, message) == (True, "vrrp took it")
    assert root.config.global_defs.router_id == "director-b"
    assert root.reloader.counts == {"ok": 1, "refused": 0}


async def test_a_reload_during_the_stop_is_refused(tmp_path: Path) -> None:
    root = FakeRoot(tmp_path)
    root.stopping.set()
    ok, message = await asyncio.wait_for(root.reloader.reload(), 5)
    assert not ok and "not running" in message
    assert root.reloader.counts == {"ok": 0, "refused": 0}  # (not a refused file)
    assert root.calls == []


async def test_a_bad_file_is_refused_whole_and_the_same_file_changes_nothing(
    tmp_path: Path,
) -> None:
    root = FakeRoot(tmp_path)
    root.run()
    before = root.config
    assert await root.reloader.reload() == (True, "no change")
    (tmp_path / "hacluster.yaml").write_text(
        "global_defs: {router_id: director-b, bogus: 1}\n")
    ok, message = await root.reloader.reload()
    assert not ok and "hacluster.yaml:1" in message and "global_defs.bogus" in message
    assert root.config is before
    assert root.reloader.counts == {"ok": 1, "refused": 1}
    assert root.calls == ["sd RELOADING", "unchanged", "reloaded True", "sd READY reload done",
                          "sd RELOADING", "reloaded False", "sd READY reload refused"]


async def test_a_file_the_balancer_refuses_touches_no_other_role(tmp_path: Path) -> None:
    root = FakeRoot(tmp_path, balancer="balancer", refuse="TCP 10.0.0.1:80: no checker")
    root.run()
    before = root.config
    (tmp_path / "hacluster.yaml").write_text("global_defs: {router_id: director-b}\n")
    ok, message = await root.reloader.reload()
    assert (ok, message) == (False, "TCP 10.0.0.1:80: no checker")
    assert root.config is before
    assert root.calls == ["sd RELOADING", "balancer reconfigure director-b",
                          "reloaded False", "sd READY reload refused"]
    assert root.reloader.counts == {"ok": 0, "refused": 1}


async def test_an_accepted_file_goes_to_the_balancer_then_vrrp_then_the_root(
    tmp_path: Path,
) -> None:
    root = FakeRoot(tmp_path, balancer="balancer")
    root.run()
    (tmp_path / "hacluster.yaml").write_text("global_defs: {router_id: director-b}\n")
    assert await root.reloader.reload() == (True, "vrrp took it")
    assert root.config.global_defs.router_id == "director-b"
    assert root.calls == ["sd RELOADING", "balancer reconfigure director-b",
                          "vrrp reconfigure director-b", "reconfigured director-b",
                          "reloaded True", "sd READY reload done"]
    assert root.reloader.counts == {"ok": 1, "refused": 0}


async def test_the_supervisor_hands_maintenance_back_by_the_new_name(tmp_path: Path) -> None:
    """After a reload, a restarted VRRP role is told of the instances in maintenance
    that are still there: a renamed one (the same router) by its new name."""
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
    assert await role.reconfigure(new) == (True, "reloaded")
    assert role._maintenance == {"WEB"}  # VI_1 renamed, VI_2 gone
