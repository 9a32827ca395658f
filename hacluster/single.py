"""`hacluster run --single-process`: the VRRP part, the balancer and the API in one process.

`SingleProcess` extends the VRRP role's root (`hacluster.vrrp_root.VrrpRoot`) with a
`hacluster.balancer.Balancer` in the same loop (sharing the VRRP part's notifier and the
metrics), lvs_sync_daemon following the instances' states, the control API and /metrics,
and systemd notification. The dataplane is reconciled before any VIP can arrive, so a
restart after a crash finds the table it left and repairs it rather than adding twice.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from hacluster.config.model import Config
from hacluster.daemon_options import DaemonOptions
from hacluster.vrrp_root import VrrpRoot

if TYPE_CHECKING:
    from hacluster.balancer import Balancer
    from hacluster.metrics import Metrics
    from hacluster.roles.balancer import BalancerRole

log = logging.getLogger("hacluster.daemon")


class SingleProcess(VrrpRoot):
    """VRRP, the balancer and the control API in this process."""

    def __init__(self, config: Config, options: DaemonOptions) -> None:
        super().__init__(config, options)
        from hacluster.lvs_follow import LvsSyncPart

        self.lvs_sync = LvsSyncPart()
        self.part.on_state_change = self.lvs_sync.state
        self.local: Balancer | None = None
        if self.metrics is not None:  # a scrape reads the VRRP counters as they are now
            self.metrics.refresh = self._push_vrrp_counters

    def _new_metrics(self) -> Metrics | None:
        from hacluster.vrrp_metrics import new_metrics

        return new_metrics()

    async def _push_vrrp_counters(self) -> None:
        self.part.counters.push(self.part.speaker)

    def _status_extra(self) -> dict[str, Any]:
        extra = super()._status_extra()
        lb = None if self.local is None else self.local.load_balancer
        if lb is not None:
            extra["load_balancer"] = lb.status()
        return extra

    async def _prepare_others(self, config: Config) -> None:
        self.local = await self._balancer(config)
        self.balancer = self.local

    async def _before_vrrp(self, config: Config) -> None:
        if self.local is not None:
            # The table is reconciled before any VIP can arrive: a restart after a
            # crash finds what it left and repairs it rather than adding twice.
            await self.local.start()
        # As backup before any instance can be master.
        await self.lvs_sync.follow(config, self.balancer)

    async def _after_vrrp(self) -> None:
        await self._start_api()

    async def _stop_others(self) -> None:
        await self.lvs_sync.stop()
        if self.local is not None:
            await self.local.stop()

    async def _balancer(self, config: Config) -> Balancer | None:
        """The balancer of `config`, prepared (None without virtual servers); RoleFailed."""
        if not config.virtual_servers:
            return None
        from hacluster.balancer import Balancer

        balancer = Balancer(config, metrics=self.metrics, notifier=self.outputs.notifier)
        await balancer.prepare()
        return balancer

    # ------------------------------------------------------------------ reload hooks

    async def new_balancer(self, config: Config) -> Balancer | BalancerRole | None:
        return await self._balancer(config)

    async def reconfigured(self, config: Config,
                           balancer: Balancer | BalancerRole | None) -> None:
        from hacluster.balancer import Balancer

        if isinstance(balancer, Balancer):
            self.local = balancer
            await balancer.start()
        notifier = self.outputs.notifier
        if self.local is not None and self.local.notifier is not notifier:
            self.local.set_notifier(notifier)  # the first notify script came with it
        await super().reconfigured(config, balancer)
        await self.lvs_sync.follow(config, self.balancer)

    async def _close(self) -> None:
        await self.lvs_sync.close()
        await super()._close()

