"""The VRRP role's process as a root: the VRRP part, its notify scripts, its reloads.

`VrrpRoot` runs a `hacluster.vrrp_part.VrrpPart` with the notifier and alert outputs it
needs (the FIFOs' readers run in the supervisor) and its metrics, built after the
instances run unless alert mail counts from the start; `hacluster.roles.vrrp` serves it
to the supervisor. `hacluster.single.SingleProcess` extends it with the balancer and
the control API. No virtual servers, no API, no systemd here.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

from hacluster import vrrp_extras
from hacluster.config.model import Config
from hacluster.daemon import Root, settle_gc
from hacluster.daemon_options import DaemonOptions
from hacluster.notify_outputs import NotifyOutputs
from hacluster.roles.interface import RoleFailed
from hacluster.vrrp_part import VrrpPart

if TYPE_CHECKING:
    from hacluster.metrics import Metrics

log = logging.getLogger("hacluster.daemon")


class VrrpRoot(Root):
    """The VRRP part of this process, started, reloaded and stopped."""

    def __init__(self, config: Config, options: DaemonOptions) -> None:
        super().__init__(config, options)
        # One process runs the FIFOs' reader scripts: the supervisor, or this one when
        # it runs alone. The VRRP role only writes its lines (two readers would share
        # out the bytes of one FIFO between them).
        self.outputs = NotifyOutputs(readers=options.role != "vrrp",
                                     metrics=lambda: self.metrics)
        self.part = VrrpPart(self.config, options, self.outputs, self._new_metrics())
        self.part.status_extra = self._status_extra
        self.vrrp = self.part

    def _new_metrics(self) -> Metrics | None:
        """The metrics at start, or None: built once the instances run. A measured hot
        path: prometheus_client, the dataplane types it counts and the package metadata
        cost the VRRP role ~50 ms of its start-up (more under load), so unless alert
        mail counts from the start, its transitions are kept for them meanwhile."""
        if not vrrp_extras.alerts(self.config.global_defs):
            return None
        from hacluster.vrrp_metrics import new_metrics

        return new_metrics()

    @property
    def metrics(self) -> Metrics | None:
        return self.part.counters.metrics

    def _status_extra(self) -> dict[str, Any]:
        return {"reloads": dict(self.reloads)}

    # ------------------------------------------------------------------ running

    async def _start(self, loop: asyncio.AbstractEventLoop) -> int | None:
        part = self.part
        self._handle_signals(loop, part.dump)
        self.config = part.config = config = await part.prepare_config(self.config)
        try:
            self.outputs.start(config)
            await part.prepare()
            await self._prepare_others(config)
        except RoleFailed as exc:
            log.error("%s", exc)
            await part.stop()
            await self.outputs.close(timeout=config.global_defs.notify_timeout)
            await part.close()
            return 1
        names = ", ".join(config.vrrp_instances) or "none"
        log.info("hacluster started (pid %d): VRRP instances %s; %d virtual server(s), "
                 "dataplane %s", os.getpid(), names, len(config.virtual_servers),
                 config.global_defs.dataplane)
        await self._before_vrrp(config)
        self.running = True
        await part.start()
        await self._after_vrrp()
        self.started.set()
        assert self.sd is not None
        self.sd.ready(status=f"VRRP instances: {names}")
        self.sd.start_watchdog()
        settle_gc()
        return None

    async def _prepare_others(self, config: Config) -> None:
        """What else is made ready before VRRP may start (RoleFailed)."""

    async def _before_vrrp(self, config: Config) -> None:
        """What runs before any instance may become master."""

    async def _after_vrrp(self) -> None:
        """What starts once the instances run."""

    async def _stop_parts(self) -> None:
        await self.part.stop()
        await self._stop_others()
        # The STOP notifications run before we exit; queued mail gets a few seconds.
        await self.outputs.close(timeout=self.config.global_defs.notify_timeout)

    async def _stop_others(self) -> None:
        """What stops after VRRP, before the notifications are waited for."""

    async def _close(self) -> None:
        await super()._close()
        await self.part.close()

    # ------------------------------------------------------------------ reload hooks

    async def prepare_config(self, config: Config) -> Config:
        return await self.part.prepare_config(config)

    def reloaded(self, ok: bool) -> None:
        if ok and self.config.global_defs.fifo_write_vrrp_states_on_reload:
            self.part.write_states()
        self.part.schedule_status()

    async def set_maintenance(self, name: str, on: bool) -> bool:
        return await self.part.set_maintenance(name, on)

    def changed(self) -> None:
        self.part.schedule_status()
