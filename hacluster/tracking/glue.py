"""The trackers' asyncio glue (`Tracking`): every tracked object watched, the core fed.

Scripts, links, files and processes are followed; every change the core returns is
reported to ``on_change``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import TypeAlias

from hacluster.config.model import Config
from hacluster.proc_events import ProcessMonitor
from hacluster.tracking.core import TrackingCore
from hacluster.tracking.events import ObjectStatus, TrackChange
from hacluster.tracking.file import TrackedFiles
from hacluster.tracking.interface import LinkMonitor
from hacluster.tracking.script import TrackedScripts, prepare_scripts
from hacluster.tracking.watches import plan_watches

log = logging.getLogger("hacluster.tracking")

ChangeCallback: TypeAlias = Callable[[TrackChange], None]


class Tracking:
    """Runs the trackers of a configuration and reports every change to ``on_change``.

    `start()` reads the link states and track files, runs every script once (unless
    ``wait_first`` is False) and reports the starting picture before it returns, so the
    daemon can hand it to the machines before they start. Scripts whose settings did
    not change keep running across `reconfigure()`.
    """

    def __init__(
        self,
        config: Config,
        on_change: ChangeCallback,
        *,
        file_poll_interval: float = 1.0,
    ) -> None:
        self._config = config
        self._on_change = on_change
        self._core = TrackingCore(config)
        self._scripts = TrackedScripts(
            self._core, self._emit, lambda: self._config,
            prepare_scripts(config, self._core.names("script")),
        )
        self._links: LinkMonitor | None = None
        self._processes: ProcessMonitor | None = None
        self._files = TrackedFiles(
            self._core, self._emit, lambda: self._config, file_poll_interval
        )
        self._started = False

    @property
    def core(self) -> TrackingCore:
        return self._core

    def replay(self, instance: str) -> list[TrackChange]:
        """The changes that bring a freshly built machine for `instance` up to date."""
        return self._core.replay(instance)

    def objects(self) -> list[ObjectStatus]:
        return self._core.objects()

    # ------------------------------------------------------------------ lifecycle

    async def start(self, *, wait_first: bool = True) -> None:
        if self._started:
            return
        self._started = True
        self._core.hold = True  # gather the whole starting picture, then report it once
        try:
            await self._sync_links()
            self._files.sync()
            await self._sync_processes()
            self._scripts.sync()
            if wait_first:
                await self._scripts.wait_first()
        finally:
            self._core.hold = False
        self._emit(self._core.pending())

    async def stop(self) -> None:
        """Stop every script (killing running ones), the link monitor and the file poller."""
        self._started = False
        tasks = self._scripts.detach() + self._files.detach()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._links is not None:
            await self._links.stop()
            self._links = None
        if self._processes is not None:
            await self._processes.stop()
            self._processes = None

    async def reconfigure(self, config: Config) -> None:
        """Switch to `config`: unchanged objects keep their state and their schedule.

        Raises ScriptError (and changes nothing) when a new script cannot be used.
        """
        wanted = {w.name for w in plan_watches(config) if w.kind == "script"}
        prepared = prepare_scripts(config, wanted)
        self._config = config
        self._scripts.prepared = prepared
        changes = self._core.reconfigure(config)
        if self._started:
            await self._sync_links()
            self._files.sync()
            await self._sync_processes()
            self._scripts.sync()
            changes += self._core.pending()
        self._emit(changes)

    # ------------------------------------------------------------------ plumbing

    def _emit(self, changes: Iterable[TrackChange]) -> None:
        for change in changes:
            log.info("%s", change)
            try:
                self._on_change(change)
            except Exception:
                log.exception("%s: on_change failed", change)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def _sync_links(self) -> None:
        wanted = self._core.names("interface")
        if not wanted:
            if self._links is not None:
                await self._links.stop()
                self._links = None
            return
        if self._links is None:
            held, self._core.hold = self._core.hold, True  # the dump comes link by link
            try:
                self._links = LinkMonitor(self._on_link)
                await self._links.start()
            finally:
                self._core.hold = held
        self._emit(self._core.link_states(self._links.states, self._now()))

    async def _sync_processes(self) -> None:
        wanted = self._core.names("process")
        specs = {n: self._config.vrrp_track_processes[n] for n in sorted(wanted)}
        if not specs:
            if self._processes is not None:
                await self._processes.stop()
                self._processes = None
            return
        held, self._core.hold = self._core.hold, True  # the scan reports name by name
        try:
            if self._processes is None:
                self._processes = ProcessMonitor(specs, self._on_process)
                await self._processes.start()
            else:
                self._processes.reconfigure(specs)
        finally:
            self._core.hold = held
        now = self._now()
        for name, up in self._processes.states().items():
            self._emit(self._core.process_state(name, up, now))

    def _on_process(self, name: str, up: bool) -> None:
        self._emit(self._core.process_state(name, up, self._now()))

    def _on_link(self, name: str, up: bool) -> None:
        if not self._started:
            return
        self._emit(self._core.link_state(name, up, self._now()))
