"""lvs_sync_daemon as a composition root runs it: made when asked for, told every state.

`LvsSyncPart` keeps the instances' states as the VRRP part or role reports them and,
once the configuration has `global_defs.lvs_sync_daemon` and a balancer runs, a
`hacluster.lvs_sync.SyncFollower` on the balancer's dataplane (the balancer role has
its own: this process opens a handle of its own). A follower made late (a reload) is
told the states reported before it. Nothing of it is imported without the key.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

from hacluster.config.model import Config
from vrrp.machine import State

if TYPE_CHECKING:
    from hacluster.ipvs.backend import Backend
    from hacluster.lvs_sync import SyncFollower

log = logging.getLogger("hacluster.daemon")


class LvsSyncPart:
    """The sync daemon's follower of one root, and the states it is told."""

    def __init__(self) -> None:
        self.follower: SyncFollower | None = None
        #: The instances' states as last told.
        self.states: dict[str, State] = {}
        self._backend: Backend | None = None  # its own dataplane handle, if it opened one

    def state(self, name: str, state: State) -> None:
        """An instance's new state."""
        self.states[name] = state
        if self.follower is not None:
            self.follower.vrrp_state(name, state)

    async def follow(self, config: Config, balancer: Any) -> None:
        """Follow `config` (the first time it asks, on `balancer`'s dataplane)."""
        if self.follower is not None:
            self.follower.reconfigure(config)
            return
        if config.global_defs.lvs_sync_daemon is None or balancer is None:
            return
        backend = getattr(balancer, "backend", None) or self._backend
        if backend is None and config.global_defs.dataplane != "none":
            # The balancer role has its dataplane: the sync daemon gets a handle here.
            from hacluster.loadbalancer import backend_for

            try:
                backend = self._backend = backend_for(config)
            except Exception as exc:
                log.error("lvs_sync_daemon: cannot open the dataplane: %s", exc)
                return
        if not hasattr(backend, "follow_sync_role"):
            return
        from hacluster.lvs_sync import SyncBackend, SyncFollower

        self.follower = SyncFollower(cast(SyncBackend, backend), config)
        await self.follower.start()
        for name, state in self.states.items():  # what was told before it was there
            self.follower.vrrp_state(name, state)

    async def stop(self) -> None:
        """The kernel's sync daemons we ran are stopped."""
        if self.follower is not None:
            await self.follower.stop()

    async def close(self) -> None:
        if self._backend is not None:
            from hacluster.loadbalancer import close_backend

            await close_backend(self._backend, log)
            self._backend = None
