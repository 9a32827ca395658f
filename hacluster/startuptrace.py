"""Start-up timestamps for bench/startup.py, written only when HACLUSTER_STARTUP_TRACE names a file.

Each process on the start-up path (the supervisor, the VRRP role) appends one line per
stage it passes: wall-clock time (CLOCK_REALTIME, comparable with the kernel's receive
timestamps of adverts on the peer), pid, the CPU time the process has used (since its
exec, or its fork for a forked role: a figure other work on the machine barely
changes), stage. Without the variable `mark` costs one
comparison; the file is opened per line (O_APPEND) so that forked processes share it.
"""

from __future__ import annotations

import os
import time

_PATH = os.environ.get("HACLUSTER_STARTUP_TRACE") or None


def mark(stage: str) -> None:
    """Record that this process reached `stage` now (when tracing is asked for)."""
    if _PATH is None:
        return
    line = f"{time.time():.6f} {os.getpid()} {time.process_time():.6f} {stage}\n".encode()
    fd = os.open(_PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
