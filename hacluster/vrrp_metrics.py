"""The VRRP part's metrics: its counters pushed to `hacluster.metrics.Metrics` as deltas.

The drivers, endpoints and transport keep their counters as plain attributes; when the
metrics are asked for (a scrape, the supervisor's request), `VrrpMetrics.push` forwards
what changed since: nothing runs on a timer. The VRRP role builds its metrics after its
instances run (a measured hot path: prometheus_client and the package metadata cost it
~50 ms of its start-up), in a thread, and counts the transitions made before they existed.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hacluster.metrics import Metrics
    from vrrp.speaker import Speaker

def import_metrics() -> None:
    """What the metrics and a reload import, imported (in a thread, off the loop)."""
    import hacluster
    import hacluster.apitypes  # the control requests'
    import hacluster.metrics
    import hacluster.reload_coordinator  # a reload's
    import hacluster.vrrp_reload

    _ = hacluster.__version__  # read from the package metadata: the metrics carry it


def new_metrics(**kwargs: bool) -> Metrics:
    from hacluster import __version__
    from hacluster.metrics import Metrics

    return Metrics(version=__version__, **kwargs)


class VrrpMetrics:
    """The VRRP counters of one speaker, pushed to `metrics` (built late when None)."""

    def __init__(self, metrics: Metrics | None) -> None:
        self.metrics = metrics
        self._early: list[tuple[str, str]] | None = None if metrics is not None else []
        self._pushed: dict[tuple[str, str], int] = {}
        self._built: asyncio.Task[None] | None = None

    def transition(self, name: str, label: str) -> None:
        if self.metrics is not None:
            self.metrics.vrrp_transition(name, label)
        elif self._early is not None:
            self._early.append((name, label))

    def forget(self, name: str) -> None:
        if self.metrics is not None:
            self.metrics.forget_instance(name)

    def count_states(self, speaker: Speaker | None) -> None:
        if self.metrics is None or speaker is None:
            return
        from hacluster.vrrp_status import state_label

        for name, driver in speaker.driver_of.items():
            self.metrics.vrrp_state(name, state_label(driver.members[name].machine.state))

    def start(self, speaker: Speaker | None) -> None:
        """The instances run: count their states (building the metrics first, if late)."""
        if self.metrics is None:
            self._built = asyncio.get_running_loop().create_task(
                self._build(speaker), name="metrics-build")
        else:
            self.count_states(speaker)

    async def _build(self, speaker: Speaker | None) -> None:
        """Imported in a thread, so that the loop keeps its timers meanwhile."""
        await asyncio.to_thread(import_metrics)
        metrics = new_metrics()
        for name, label in self._early or ():
            metrics.vrrp_transition(name, label)
        self._early = None
        self.metrics = metrics
        self.count_states(speaker)

    async def ready(self) -> None:
        """Return once the metrics exist (the VRRP role builds them after start)."""
        if self._built is not None:
            await asyncio.shield(self._built)

    def families(self, speaker: Speaker | None) -> list[Any]:
        """The VRRP metric families, as plain data for the supervisor's /metrics."""
        if self.metrics is None:
            return []
        self.push(speaker)
        return (self.metrics.families("hacluster_vrrp_")
                + self.metrics.families("hacluster_alert_mails"))

    def push(self, speaker: Speaker | None) -> None:
        """Forward the VRRP counters kept by the drivers and the transport (as deltas)."""
        metrics = self.metrics
        if metrics is None or speaker is None:
            return
        endpoints = speaker.endpoints
        for name, driver in list(speaker.driver_of.items()):
            metrics.vrrp_priority(name, driver.members[name].machine.priority)
            endpoint = endpoints.get(name)
            if endpoint is None:
                continue
            for what, value, inc in (("sent", endpoint.sent, metrics.adverts_sent),
                                     ("received", endpoint.received, metrics.adverts_received)):
                key = (f"{name}/{id(endpoint)}", what)
                delta = value - self._pushed.get(key, 0)
                if delta > 0:
                    inc(name, delta)
                self._pushed[key] = value
        if speaker.transport is not None:
            for channel, counts in speaker.transport.stats().items():
                ifname = channel.rsplit("/", 1)[0]
                for reason, value in counts.items():
                    if reason in ("received", "accepted", "sent"):
                        continue
                    key = (f"drop {channel}", reason)
                    delta = value - self._pushed.get(key, 0)
                    if delta > 0:
                        metrics.packet_dropped(ifname, reason, delta)
                    self._pushed[key] = value

    async def stop(self) -> None:
        import contextlib

        task = self._built
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
