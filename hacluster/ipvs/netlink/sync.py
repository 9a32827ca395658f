"""The IPVS connection-sync daemon as a value: its role and settings. Does no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from hacluster.ipvs.model import IPAddress


class SyncState(enum.IntEnum):
    """Role of an IPVS connection-sync daemon (IP_VS_STATE_*)."""

    MASTER = 1
    BACKUP = 2


@dataclass(frozen=True, slots=True)
class SyncDaemon:
    """An `lvs_sync_daemon`: the kernel thread that sends (master) or receives (backup)
    connection state so that a takeover keeps established connections."""

    state: SyncState
    interface: str
    syncid: int = 0
    maxlen: int = 0  # sync message size; 0 = the kernel's default (from the MTU)
    group: IPAddress | None = None  # multicast group; None = 224.0.0.81
    port: int = 0  # 0 = the kernel's default, 8848
    ttl: int = 0  # 0 = the kernel's default, 1

    def __post_init__(self) -> None:
        if not self.interface or len(self.interface.encode()) > 15:
            raise ValueError(f"bad sync daemon interface {self.interface!r}")
        if not 0 <= self.syncid <= 255:
            raise ValueError(f"sync id {self.syncid} out of range 0..255")
        if not 0 <= self.port <= 65535 or not 0 <= self.ttl <= 255:
            raise ValueError("sync daemon port or ttl out of range")
        if not 0 <= self.maxlen <= 65535:
            raise ValueError(f"sync maxlen {self.maxlen} out of range")
