"""SyncFollower: the sync daemons the kernel is asked for as the followed instance changes
state (a recording backend; the real kernel's answers are in tests/vm/test_netlink.py)."""

from __future__ import annotations

import asyncio

import yaml

from hacluster.config.loader import parse_config
from hacluster.config.model import Config
from hacluster.ipvs.backend import BackendError
from hacluster.ipvs.netlink import SyncDaemon, SyncState
from hacluster.lvs_sync import SyncFollower
from vrrp.machine import State


def config(**sync: object) -> Config:
    doc = {
        "global_defs": {"lvs_sync_daemon": {"interface": "eth1", **sync}},
        "vrrp_instances": {
            "VI_1": {"interface": "eth0", "virtual_router_id": 42,
                     "virtual_ipaddress": ["10.0.0.1"]},
            "VI_2": {"interface": "eth0", "virtual_router_id": 43,
                     "virtual_ipaddress": ["10.0.0.2"]},
        },
    }
    return parse_config(yaml.safe_dump(doc), "t.yaml")


class Kernel:
    """Sync daemons as the kernel keeps them: one per role, EEXIST on a second start."""

    def __init__(self) -> None:
        self.running: dict[SyncState, SyncDaemon] = {}
        self.calls: list[str] = []
        self.refuse = False

    async def sync_daemons(self) -> list[SyncDaemon]:
        return list(self.running.values())

    async def start_sync_daemon(self, daemon: SyncDaemon) -> None:
        self.calls.append(f"start {daemon.state.name} {daemon.syncid}")
        if self.refuse:
            raise BackendError("refused")
        assert daemon.state not in self.running
        self.running[daemon.state] = daemon

    async def stop_sync_daemon(self, state: SyncState) -> bool:
        self.calls.append(f"stop {state.name}")
        return self.running.pop(state, None) is not None

    async def follow_sync_role(self, daemon: SyncDaemon) -> None:
        other = SyncState.BACKUP if daemon.state is SyncState.MASTER else SyncState.MASTER
        if other in self.running:
            await self.stop_sync_daemon(other)
        if self.running.get(daemon.state) != daemon:
            if daemon.state in self.running:
                await self.stop_sync_daemon(daemon.state)
            await self.start_sync_daemon(daemon)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_follows_the_instance_from_backup() -> None:
    kernel = Kernel()
    follower = SyncFollower(kernel, config(instance="VI_1"))
    await follower.start()
    assert [(d.state, d.syncid, d.interface) for d in kernel.running.values()] == [
        (SyncState.BACKUP, 42, "eth1")]  # syncid: the instance's VRID
    follower.vrrp_state("VI_2", State.MASTER)  # not the followed one
    follower.vrrp_state("VI_1", State.MASTER)
    await settle()
    assert list(kernel.running) == [SyncState.MASTER]
    follower.vrrp_state("VI_1", State.FAULT)
    await settle()
    assert list(kernel.running) == [SyncState.BACKUP]
    # flapping faster than the kernel calls: only the latest wish is carried out
    kernel.calls.clear()
    for state in (State.MASTER, State.BACKUP, State.MASTER):
        follower.vrrp_state("VI_1", state)
    await settle()
    assert list(kernel.running) == [SyncState.MASTER]
    assert kernel.calls == ["stop BACKUP", "start MASTER 42"]
    await follower.stop()
    assert kernel.running == {}


async def test_without_an_instance_both_run() -> None:
    kernel = Kernel()
    follower = SyncFollower(kernel, config(syncid=7))
    await follower.start()
    assert sorted(d.state.name for d in kernel.running.values()) == ["BACKUP", "MASTER"]
    assert {d.syncid for d in kernel.running.values()} == {7}
    follower.vrrp_state("VI_1", State.MASTER)  # nothing to follow
    await settle()
    assert len(kernel.running) == 2
    await follower.stop()
    assert kernel.running == {}


async def test_a_reload_restarts_a_changed_daemon_and_a_refusal_is_retried() -> None:
    kernel = Kernel()
    follower = SyncFollower(kernel, config(instance="VI_1"))
    await follower.start()
    follower.reconfigure(config(instance="VI_1", syncid=9, port=8850))
    await settle()
    (daemon,) = kernel.running.values()
    assert (daemon.state, daemon.syncid, daemon.port) == (SyncState.BACKUP, 9, 8850)
    kernel.refuse = True
    follower.vrrp_state("VI_1", State.MASTER)
    await settle()
    assert kernel.running == {}  # refused: logged, nothing running
    kernel.refuse = False
    follower.vrrp_state("VI_1", State.BACKUP)
    await settle()
    assert list(kernel.running) == [SyncState.BACKUP]
    await follower.stop()


async def test_a_follower_made_by_a_reload_is_told_the_states_reported_before() -> None:
    """A root's lvs_sync part (hacluster.lvs_follow): nothing without the key or a
    balancer; made when a reload brings both, on the balancer's dataplane, it starts from
    the states the VRRP part reported meanwhile, and follows them from then on."""
    from types import SimpleNamespace

    from hacluster.lvs_follow import LvsSyncPart

    kernel = Kernel()
    part = LvsSyncPart()
    part.state("VI_1", State.MASTER)
    plain = parse_config("global_defs: {dataplane: none}\n", "t.yaml")
    await part.follow(plain, SimpleNamespace(backend=kernel))
    await part.follow(config(instance="VI_1"), None)  # no balancer (yet)
    assert part.follower is None and kernel.calls == []
    await part.follow(config(instance="VI_1"), SimpleNamespace(backend=kernel))
    await settle()
    assert list(kernel.running) == [SyncState.MASTER]
    part.state("VI_1", State.BACKUP)
    await settle()
    assert list(kernel.running) == [SyncState.BACKUP]
    await part.stop()
    await part.close()
    assert kernel.running == {}
