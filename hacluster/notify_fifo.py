"""keepalived's notify FIFOs: one line per event written to a named pipe a reader follows.

As keepalived (core/notify.c): the FIFO is created when missing (mode 0644), given
to the configured owner (`notify_fifo FILE user [group]`: chown right after creation;
an existing FIFO keeps its owner), and removed at stop only if it was created here; an
existing path that is not a FIFO (of ours or of that owner) is refused. The optional
``*_notify_fifo_script`` is started before the FIFO is opened,
with the FIFO's path as its last argument, and runs for as long as the daemon does.
The FIFO is opened read-write and non-blocking, so opening never waits for a reader
and a reader that falls behind costs a dropped line (counted, logged once), never a
stalled event loop. A line (< PIPE_BUF) is written in one piece.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from pathlib import Path

from hacluster import scripts

log = logging.getLogger("hacluster.notify")

_FIFO_MODE = 0o644  # S_IRUSR | S_IWUSR | S_IRGRP | S_IROTH, as keepalived
#: How long a reader script may take to finish on its own once the FIFO is closed.
READER_GRACE = 2.0


class FifoError(Exception):
    """The FIFO cannot be used (the message names it)."""


class NotifyFifo:
    """One FIFO and its reader script, if any."""

    def __init__(self, path: Path, script: scripts.Script | None = None, *, what: str = "",
                 owner: scripts.RunAs | None = None) -> None:
        self.path = path
        self.owner = owner
        self.script = script
        self.what = what or "notify_fifo"
        self.written = 0
        self.dropped = 0
        self._fd: int | None = None
        self._created = False
        self._reader: asyncio.Task[scripts.ScriptResult] | None = None
        self._full_warned = False

    def open(self) -> None:
        """Create (if missing) and open the FIFO, and start the reader; FifoError if not."""
        try:
            os.mkfifo(self.path, _FIFO_MODE)
            self._created = True
            if self.owner is not None:
                os.chown(self.path, self.owner.uid, self.owner.gid, follow_symlinks=False)
        except FileExistsError:
            pass
        except OSError as exc:
            raise FifoError(f"{self.what}: cannot create {self.path}: {exc.strerror}") from None
        if self.script is not None:
            self._reader = asyncio.get_running_loop().create_task(
                scripts.run(self.script, timeout=float("inf"), extra_args=(str(self.path),)),
                name=f"fifo-reader {self.path}",
            )
            self._reader.add_done_callback(self._reader_ended)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError as exc:
            self._forget_created()
            raise FifoError(f"{self.what}: cannot open {self.path}: {exc.strerror}") from None
        st = os.fstat(fd)
        owners = {os.geteuid(), *(() if self.owner is None else (self.owner.uid,))}
        if not stat.S_ISFIFO(st.st_mode) or st.st_uid not in owners:
            os.close(fd)
            raise FifoError(f"{self.what}: {self.path} is not a FIFO of ours; not used")
        self._fd = fd
        log.info("%s: writing events to %s", self.what, self.path)

    def write(self, line: str) -> None:
        """Write one line; a full pipe drops it (keepalived ignores EAGAIN as well)."""
        if self._fd is None:
            return
        try:
            os.write(self._fd, line.encode())
        except BlockingIOError:
            self.dropped += 1
            if not self._full_warned:
                log.warning("%s %s: the reader is not keeping up; lines are dropped",
                            self.what, self.path)
                self._full_warned = True
            return
        except OSError as exc:
            self.dropped += 1
            log.error("%s %s: write failed: %s", self.what, self.path, exc.strerror)
            return
        self.written += 1
        self._full_warned = False

    async def close(self) -> None:
        """Remove a FIFO created here, close it; the reader sees end of file and exits
        (or is stopped after READER_GRACE)."""
        self._forget_created()  # first, so a reader that loops cannot reopen it
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        reader, self._reader = self._reader, None
        if reader is None:
            return
        done, _ = await asyncio.wait({reader}, timeout=READER_GRACE)
        if not done:
            reader.cancel()  # scripts.run kills its process group
        with contextlib.suppress(asyncio.CancelledError):
            result = await reader
            if not result.ok and result.signal is None and done:
                log.info("%s reader %s ended: %s", self.what, self.script, result.describe())

    def _reader_ended(self, task: asyncio.Task[scripts.ScriptResult]) -> None:
        if task.cancelled() or self._fd is None:
            return  # stopped by close()
        exc = task.exception()
        outcome = str(exc) if exc is not None else task.result().describe()
        log.warning("%s: the reader %s ended while the FIFO is open: %s",
                    self.what, self.script, outcome)

    def _forget_created(self) -> None:
        if self._created:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            self._created = False
