"""What `hacluster run`'s command line adds to the configuration: `DaemonOptions`.

Apart from the daemon so that `hacluster run` can release its VRRP role before it
imports the rest of the daemon.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from vrrp.slotted import slotted

if TYPE_CHECKING:
    from hacluster.config.model import Config
    from hacluster.single_instance import Locks


@slotted(frozen=True)
class DaemonOptions:
    """Command-line choices that are not part of the configuration file."""

    log_format: str = "human"  # human | json
    log_level: str = "info"
    status_file: Path | None = None
    config_file: Path | None = None  # read again on reload (None: reload refused)
    control_socket: Path | None = None  # overrides global_defs.control_socket
    vip_state_file: Path | None = None  # VIPs added are recorded here (vrrp.vipstate)
    leftovers: tuple[tuple[str, str], ...] = ()  # (level, line) logged at start
    locks: Locks | None = None  # single-instance locks, extended to new instances on reload
    # "all": everything in this process; "supervisor": VRRP in a role process of its
    # own (hacluster.roles.vrrp), the rest here; "vrrp": that role's process.
    role: str = "all"


def with_overrides(config: Config, options: DaemonOptions) -> Config:
    """`config` with the command line's overrides applied (--control-socket)."""
    if options.control_socket is None:
        return config
    g = dataclasses.replace(config.global_defs, control_socket=options.control_socket)
    return dataclasses.replace(config, global_defs=g)
