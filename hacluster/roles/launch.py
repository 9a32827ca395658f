"""Forking a role's process and releasing it, without asyncio: `hacluster run`'s first steps.

`hacluster run` forks the VRRP role before it reads the file, so that the role imports
what it runs while the supervisor loads and checks the file, and releases it with the
accepted file (`hacluster.roles.vrrp` has the role's side and the supervisor's handle,
`VrrpRole`, which adopts what was forked here). Only what both processes need is
imported before the fork (the config model, to decode the release); asyncio, the
channel and the daemon are imported by the role after the fork and by the supervisor
after the release, so none of them delays the release.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import socket
from typing import TYPE_CHECKING

from hacluster.roles.codec import CODEC

if TYPE_CHECKING:
    from hacluster.config.model import Config
    from hacluster.daemon_options import DaemonOptions


@dataclasses.dataclass(slots=True)
class Forked:
    """A role's process, forked and waiting for its release on `sock`."""

    pid: int
    sock: socket.socket
    released: bool = False


def fork_vrrp_role() -> Forked:
    """Fork the VRRP role's process: it prepares, then waits for `release`."""
    ours, theirs = socket.socketpair()
    gc.collect()
    # Frozen already (settled after start-up, healthchecks.gcsettle): stays frozen.
    settled = gc.get_freeze_count() > 0
    gc.freeze()  # what the parent has built stays shared with the child's pages
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child
        ours.close()
        code = 1
        try:
            from hacluster.roles.vrrp import run_child

            code = run_child(theirs, parent)
        finally:
            os._exit(code)
    if not settled:
        gc.unfreeze()
    theirs.close()
    return Forked(pid, ours)


def vrrp_config(config: Config) -> Config:
    """What the VRRP role is given: everything but the virtual servers."""
    return dataclasses.replace(config, virtual_servers=())


def release_frame(config: Config, options: DaemonOptions) -> bytes:
    """The release message: the file the supervisor accepted, less what the role does
    not run, and the daemon's options."""
    fields = tuple(getattr(options, f.name) for f in dataclasses.fields(options))
    return CODEC.frame(("release", vrrp_config(config), fields))


def release(forked: Forked, config: Config, options: DaemonOptions) -> None:
    """Let the forked role run `config` (accepted by the supervisor) with `options`."""
    forked.sock.sendall(release_frame(config, options))
    forked.released = True


def abandon(forked: Forked) -> None:
    """The file was refused: the role, never released, exits unseen (its channel closed)."""
    if forked.released:
        return
    forked.sock.close()
    with contextlib.suppress(ChildProcessError):
        os.waitpid(forked.pid, 0)
