"""Directory watches over Linux inotify: a callback as soon as a file in them changes."""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import os
import struct
from collections.abc import Callable, Iterable
from pathlib import Path

log = logging.getLogger(__name__)

# linux/inotify.h
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x1000000
# A file counts as changed once its writer closed it, or when it is renamed in or out or
# deleted: never on a creation or a single write, which would show a half-written file.
_MASK = (
    IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF
    | IN_ONLYDIR
)  # fmt: skip
_EVENT = struct.Struct("=iIII")  # wd, mask, cookie, len; then len bytes of name

_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


class DirectoryWatch:
    """Watches directories; calls ``on_change(names)`` with the file names that changed.

    A directory that does not exist is not watched (the caller's own polling covers it);
    an overflowed event queue reports ``None`` for "anything may have changed".
    """

    def __init__(self, on_change: Callable[[set[str] | None], None]) -> None:
        self._on_change = on_change
        self._fd = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watched: dict[int, Path] = {}

    @property
    def directories(self) -> list[Path]:
        return sorted(self._watched.values())

    def watch(self, directories: Iterable[Path]) -> None:
        """Watch exactly these directories (the earlier set is replaced)."""
        self.close()
        wanted = sorted(set(directories))
        if not wanted:
            return
        lib = _lib()
        fd = lib.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            log.warning("inotify unavailable (%s): track files are polled only",
                        os.strerror(ctypes.get_errno()))
            return
        self._fd = fd
        for directory in wanted:
            wd = lib.inotify_add_watch(fd, os.fsencode(directory), _MASK)
            if wd < 0:
                code = ctypes.get_errno()
                if code != errno.ENOENT:
                    log.warning("cannot watch %s: %s", directory, os.strerror(code))
                continue
            self._watched[wd] = directory
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(fd, self._readable)

    def close(self) -> None:
        if self._fd >= 0:
            if self._loop is not None:
                self._loop.remove_reader(self._fd)
            os.close(self._fd)
        self._fd = -1
        self._loop = None
        self._watched = {}

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            log.warning("inotify read failed (%s): track files are polled only", exc)
            self.close()
            return
        names: set[str] | None = set()
        offset = 0
        while offset + _EVENT.size <= len(data):
            wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
            raw = data[offset + _EVENT.size : offset + _EVENT.size + length]
            offset += _EVENT.size + length
            if mask & IN_Q_OVERFLOW:
                names = None
            elif mask & IN_IGNORED:
                self._watched.pop(wd, None)  # the directory went away
            elif names is not None and raw:
                names.add(os.fsdecode(raw.split(b"\0", 1)[0]))
        if names is None or names:
            self._on_change(names)
