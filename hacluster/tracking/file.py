"""track_file: files holding an integer, read on change, their values fed to the core.

A file is read when inotify reports a change in its directory, and polled as a safety net.

The file holds an integer (missing or unreadable reads as 0); with weight 0 a non-zero
value is a fault; otherwise value x weight is added, and a result below -253 is a fault.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from hacluster.config.model import Config, VrrpTrackFile
from hacluster.filewatch import DirectoryWatch
from hacluster.tracking.events import TrackChange

if TYPE_CHECKING:
    from hacluster.tracking.core import TrackingCore

log = logging.getLogger("hacluster.tracking")

_LEADING_INT = re.compile(rb"\s*([+-]?\d+)")


def read_track_file(path: Path) -> int:
    """The integer a track file holds: 0 when missing, empty or not a number."""
    try:
        with path.open("rb") as f:
            data = f.read(64)
    except FileNotFoundError:
        return 0
    except OSError as exc:
        log.warning("track_file %s: %s (read as 0)", path, exc.strerror or exc)
        return 0
    match = _LEADING_INT.match(data)
    if match is None:
        if data.strip():
            log.warning("track_file %s: %r is not a number (read as 0)", path, data[:20])
        return 0
    return int(match.group(1))


def init_track_file(tf: VrrpTrackFile) -> None:
    """Create a track file with its ``init_file`` value when it does not exist."""
    if tf.init_file is None:
        return
    try:
        fd = os.open(tf.file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return
    except OSError as exc:
        log.error("track_file %s: cannot create %s: %s", tf.name, tf.file, exc.strerror)
        return
    with os.fdopen(fd, "w") as f:
        f.write(f"{tf.init_file}\n")


def _file_signature(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_dev, st.st_mtime_ns, st.st_size)



class TrackedFiles:
    """The track files of a `Tracking`: their directories watched, the files polled."""

    def __init__(
        self,
        core: TrackingCore,
        emit: Callable[[Iterable[TrackChange]], None],
        config: Callable[[], Config],
        poll_interval: float,
    ) -> None:
        self._core = core
        self._emit = emit
        self._config = config
        self._poll_interval = poll_interval
        self._task: asyncio.Task[None] | None = None
        self._watch = DirectoryWatch(self._on_event)
        self._names: set[str] = set()
        self._sigs: dict[str, tuple[int, int, int, int] | None] = {}

    def detach(self) -> list[asyncio.Task[None]]:
        """Stop watching; the polling task (if any), forgotten here: the caller cancels it."""
        tasks = [] if self._task is None else [self._task]
        self._task = None
        self._watch.close()
        return tasks

    def sync(self) -> None:
        """Watch and read the files the core tracks now (created with `init_file` first)."""
        config = self._config()
        wanted = self._core.names("file")
        for name in wanted:
            init_track_file(config.vrrp_track_files[name])
        self._sigs = {n: s for n, s in self._sigs.items() if n in wanted}
        # inotify on the directories: a change is seen at once (keepalived does the same);
        # the poll below stays as the safety net (a directory created later, a lost event).
        paths = [config.vrrp_track_files[n].file for n in wanted]
        self._names = {p.name for p in paths}
        self._watch.watch(p.parent for p in paths)
        self._poll(force=True)
        if wanted and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="track-file")
        elif not wanted and self._task is not None:
            self._task.cancel()
            self._task = None

    def _on_event(self, names: set[str] | None) -> None:
        if names is not None and not names & self._names:
            return
        try:
            self._poll(force=False)
        except Exception:
            log.exception("track_file: reading after a change failed")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            try:
                self._poll(force=False)
            except Exception:
                log.exception("track_file: polling failed")

    def _poll(self, *, force: bool) -> None:
        config = self._config()
        values: dict[str, int] = {}
        for name in sorted(self._core.names("file")):
            path = config.vrrp_track_files[name].file
            sig = _file_signature(path)
            if not force and name in self._sigs and self._sigs[name] == sig:
                continue
            self._sigs[name] = sig
            values[name] = read_track_file(path) if sig is not None else 0
        if values:
            self._emit(self._core.file_values(values, asyncio.get_running_loop().time()))
