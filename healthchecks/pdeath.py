"""Children that die with their parent: PR_SET_PDEATHSIG, as keepalived's children do.

`die_with_parent` is a `preexec_fn`: it runs in the child between fork and exec, asks
the kernel for SIGTERM when the parent (thread) that forked it exits, and closes the
race with a parent that died before the request by checking who the parent is now.
Elsewhere than Linux it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1

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
