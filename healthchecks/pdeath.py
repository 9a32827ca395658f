"""Children that die with their parent: PR_SET_PDEATHSIG, as keepalived's children do.

`die_with_parent` is a `preexec_fn`: it runs in the child between fork and exec, asks
the kernel for SIGTERM when the parent (thread) that forked it exits, and closes the
race with a parent that died before the request by checking who the parent is now.
`die_with` does the same for a process that is not the parent (a zygote's child
following the supervisor), from a pidfd. Elsewhere than Linux they do nothing.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15

_prctl = None
if sys.platform.startswith("linux"):
    # The process's own symbols include libc's: no ctypes.util.find_library, which runs
    # ldconfig (about 40 ms on every start of the VRRP role).
    _libc = ctypes.CDLL(None, use_errno=True)
    _prctl = _libc.prctl


def die_with_parent(parent: int | None = None, sig: int = signal.SIGTERM) -> None:
    """Ask for `sig` when the parent exits; exit now if it already has."""
    if _prctl is None:
        return
    if _prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        return  # not fatal: the child is then only stopped by its socket closing
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def die_with(pidfd: int, sig: int = signal.SIGTERM) -> None:
    """Send this process `sig` when the process of `pidfd` exits; exit now if it has.

    PR_SET_PDEATHSIG follows the parent only; this follows any process, from a thread
    that waits on its pidfd (the signal then takes the same path as PR_SET_PDEATHSIG's).
    """
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    if poller.poll(0):
        os._exit(1)

    def watch() -> None:
        while not poller.poll():
            pass
        os.kill(os.getpid(), sig)

    threading.Thread(target=watch, name="die-with", daemon=True).start()


def set_name(name: str) -> None:
    """This process's name as `ps` and /proc/PID/comm show it (15 bytes at most)."""
    if _prctl is not None:
        _prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)
