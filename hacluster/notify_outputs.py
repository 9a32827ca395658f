"""The notify scripts and the alert outputs (mail, FIFOs) of one process, as one part.

`NotifyOutputs` holds the `hacluster.notify.Notifier` (notify_* scripts, the event log)
and the `hacluster.alert_outputs.AlertOutputs` it feeds, when the configuration asks for
them, and follows reloads. The process that runs the VRRP instances has one (the VRRP
role, or a single-process daemon, whose balancer shares it); the supervisor has one for
the balancer role's notifications. Nothing of notify is imported for a configuration
without any of it (`hacluster.vrrp_extras`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from hacluster import vrrp_extras
from hacluster.config.model import Config
from hacluster.roles.interface import RoleFailed

if TYPE_CHECKING:
    from hacluster.alert_outputs import AlertOutputs
    from hacluster.metrics import Metrics
    from hacluster.notify import Notifier

log = logging.getLogger("hacluster.daemon")


class NotifyOutputs:
    """The notifier and alert outputs of a configuration; `readers` runs the FIFOs'
    reader scripts here (one process does: two readers would share out a FIFO's bytes)."""

    def __init__(self, *, readers: bool = True,
                 metrics: Callable[[], Metrics | None] | None = None) -> None:
        self.notifier: Notifier | None = None
        self.alerts: AlertOutputs | None = None
        self._readers = readers
        self._metrics = metrics  # what alert mail is counted in (once it exists)

    def start(self, config: Config) -> None:
        """notify_* scripts and the event log, if `config` has any; RoleFailed."""
        if not vrrp_extras.notify(config):
            return  # nothing would be prepared: none of it is imported
        from hacluster import scripts
        from hacluster.notify import Notifier, prepare_commands

        try:
            has_commands = bool(prepare_commands(config))
        except scripts.ScriptError as exc:
            raise RoleFailed(f"notify: {exc}") from exc
        alerts = vrrp_extras.alerts(config.global_defs)
        if has_commands or alerts or config.global_defs.event_log is not None:
            self.notifier = Notifier(config)
        if alerts:
            self._attach_alerts(config)

    async def reconfigure(self, new: Config) -> None:
        """Take `new` in place (a script that cannot run is logged: nothing refuses)."""
        from hacluster import scripts
        from hacluster.alert_outputs import wanted
        from hacluster.notify import Notifier, prepare_commands

        alerts = wanted(new.global_defs)
        try:
            if self.notifier is not None:
                self.notifier.reconfigure(new)
            elif prepare_commands(new) or alerts or new.global_defs.event_log is not None:
                self.notifier = Notifier(new)
        except scripts.ScriptError as exc:
            log.error("notify: %s", exc)
        if self.alerts is not None:
            await self.alerts.reconfigure(new)
        elif alerts and self.notifier is not None:
            self._attach_alerts(new)

    def _attach_alerts(self, config: Config) -> None:
        """Alert mail and notify FIFOs, fed by the notifier (hacluster.alert_outputs)."""
        from hacluster.alert_outputs import AlertOutputs

        assert self.notifier is not None
        self.alerts = AlertOutputs(config, on_mail_count=self._mail_counted,
                                   readers=self._readers)
        self.alerts.start()
        self.notifier.add_observer(self.alerts.observe)

    def _mail_counted(self, outcome: str) -> None:
        metrics = None if self._metrics is None else self._metrics()
        if metrics is not None:
            metrics.alert_mail(outcome)

    async def close(self, timeout: float) -> None:
        """The notifications queued run (within `timeout`), queued mail gets a few seconds."""
        if self.notifier is not None:
            await self.notifier.close(timeout=timeout)
        if self.alerts is not None:
            await self.alerts.close()
