"""Where notifier events go besides notify scripts: alert mail and the notify FIFOs.

`AlertOutputs.observe()` is handed every event the notifier sees (it never blocks);
mail goes to the `Mailer`'s queue when keepalived's smtp_alert rules say so (and, as
keepalived, not twice in a row for the same state of an instance or group), and the
event's line goes to ``notify_fifo`` and to ``vrrp_notify_fifo`` or ``lvs_notify_fifo``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from hacluster import scripts, vrrp_extras
from hacluster.alerts import (
    AlertEvent,
    GroupEvent,
    InstanceEvent,
    QuorumEvent,
    alert_enabled,
    fifo_line,
    local_name,
    mail_for,
)
from hacluster.config.model import Config, GlobalDefs, NotifyCommand
from hacluster.notify import VRRP_NOTIFY_STATES, prepare_command
from hacluster.notify_fifo import FifoError, NotifyFifo

if TYPE_CHECKING:
    from hacluster.mailer import Mailer
    from vrrp.machine import State

log = logging.getLogger("hacluster.notify")

_FIFOS = vrrp_extras.FIFOS


def wanted(g: GlobalDefs) -> bool:
    """Whether `g` asks for mail or any FIFO."""
    return vrrp_extras.alerts(g)


def _fifo_key(
    config: Config, key: str
) -> tuple[Path, NotifyCommand | None, str | None, str | None] | None:
    g = config.global_defs
    path = getattr(g, key)
    if path is None:
        return None
    return path, getattr(g, f"{key}_script"), getattr(g, f"{key}_user"), getattr(g, f"{key}_group")


def state_events(
    config: Config, instances: Mapping[str, tuple[State, int]], groups: Mapping[str, State]
) -> list[InstanceEvent | GroupEvent]:
    """fifo_write_vrrp_states_on_reload: each instance's state line (file order), then
    each sync group's, from the states the instances are in now."""
    events: list[InstanceEvent | GroupEvent] = [
        InstanceEvent(name, VRRP_NOTIFY_STATES[instances[name][0]], instances[name][1])
        for name in config.vrrp_instances if name in instances
    ]
    events += [GroupEvent(name, VRRP_NOTIFY_STATES[groups[name]])
               for name in config.vrrp_sync_groups if name in groups]
    return events


class AlertOutputs:
    """Mail and FIFOs of one configuration; `reconfigure` follows a reload."""

    def __init__(
        self,
        config: Config,
        *,
        on_mail_count: Callable[[str], None] | None = None,
        readers: bool = True,
    ) -> None:
        self._config = config
        self._readers = readers  # False: write lines only, another process runs the readers
        # (imported here: aiosmtplib is not worth its import time to a daemon without mail)
        from hacluster.mailer import Mailer

        self._mailer = Mailer(config.global_defs, on_count=on_mail_count)
        self._fifos: dict[str, NotifyFifo] = {}
        self._keys: dict[str, tuple[Path, NotifyCommand | None, str | None, str | None] | None]
        self._keys = {}
        self._last_mailed: dict[tuple[str, str], str] = {}
        self._quorum_seen: set[tuple[str, str, int]] = set()

    @property
    def mailer(self) -> Mailer:
        return self._mailer

    def fifo(self, key: str) -> NotifyFifo | None:
        return self._fifos.get(key)

    def start(self) -> None:
        """Open the FIFOs (and start their readers); a FIFO that fails is logged, not fatal."""
        for key, _ in _FIFOS:
            self._open(key, self._config)

    def _open(self, key: str, config: Config) -> None:
        spec = _fifo_key(config, key)
        self._keys[key] = spec
        if spec is None:
            return
        path, cmd, user, group = spec
        owner = None
        if user is not None:
            try:
                owner = scripts.resolve_named(user, group, f"global_defs.{key}_user",
                                              f"global_defs.{key}_group")
            except scripts.ScriptError as exc:
                log.error("%s: created as the daemon's user: %s", key, exc)
        script = None
        if cmd is not None and self._readers:
            try:
                script = prepare_command(cmd, config, f"global_defs.{key}_script")
            except scripts.ScriptError as exc:
                log.error("%s: reader not started: %s", key, exc)
        fifo = NotifyFifo(path, script, what=key, owner=owner)
        try:
            fifo.open()
        except FifoError as exc:
            log.error("%s", exc)
            return
        self._fifos[key] = fifo

    async def reconfigure(self, config: Config) -> None:
        """Use `config` from now on: a FIFO whose path or script changed is reopened."""
        old, self._config = self._config, config
        self._mailer.reconfigure(config.global_defs)
        for key, _ in _FIFOS:
            if _fifo_key(config, key) == self._keys.get(key):
                continue
            fifo = self._fifos.pop(key, None)
            if fifo is not None:
                await fifo.close()
            self._open(key, config)
        if old.global_defs.router_id != config.global_defs.router_id:
            self._last_mailed.clear()

    def observe(self, event: AlertEvent) -> None:
        if isinstance(event, QuorumEvent) and event.vs.key not in self._quorum_seen:
            self._quorum_seen.add(event.vs.key)  # keepalived: "Starting with quorum up"
            event = dataclasses.replace(event, init=True)
        channel, line = fifo_line(event)
        for key, only in _FIFOS:
            fifo = self._fifos.get(key)
            if fifo is not None and only in (None, channel):
                fifo.write(line)
        if alert_enabled(event, self._config) and not self._repeat(event):
            g = self._config.global_defs
            mail = mail_for(event, g.router_id or local_name())
            if mail is not None:
                self._mailer.submit(mail)

    def write_states(self, events: list[InstanceEvent | GroupEvent]) -> None:
        """fifo_write_vrrp_states_on_reload: the states' FIFO lines, nothing else (no
        mail: no state changed)."""
        for event in events:
            channel, line = fifo_line(event)
            for key, only in _FIFOS:
                fifo = self._fifos.get(key)
                if fifo is not None and only in (None, channel):
                    fifo.write(line)

    def _repeat(self, event: AlertEvent) -> bool:
        """keepalived mails an instance's or group's state once, not again until it changes."""
        match event:
            case InstanceEvent():
                key, state = ("instance", event.instance), event.state
            case GroupEvent():
                key, state = ("group", event.group), event.state
            case _:
                return False
        if self._last_mailed.get(key) == state:
            return True
        self._last_mailed[key] = state
        return False

    async def close(self, timeout: float = 5.0) -> None:
        """Send queued mail for at most `timeout`, close the FIFOs, stop their readers."""
        await self._mailer.close(timeout)
        for fifo in self._fifos.values():
            await fifo.close()
        self._fifos.clear()
