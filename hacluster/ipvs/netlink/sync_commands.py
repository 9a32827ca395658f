"""The netlink backend's connection-sync daemon commands: list, start, stop, follow a role.

What `ipvsadm --start-daemon` / `--stop-daemon` do, and keeping the daemon that a VRRP
role asks for (master while MASTER, backup otherwise).
"""

from __future__ import annotations

import errno
import os
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic import ipvs as genl_ipvs

from hacluster.ipvs.backend import BackendError
from hacluster.ipvs.netlink.attrs import daemon_attrs
from hacluster.ipvs.netlink.decode import daemon_from, message_attrs
from hacluster.ipvs.netlink.sync import SyncDaemon, SyncState
from hacluster.ipvs.netlink.uapi import CMD_DAEMON, DUMP, REQ


class SyncDaemonCommands:
    """The sync-daemon half of `NetlinkBackend` (a mixin: its requests go through the
    backend's socket)."""

    async def _request(self, cmd: int, attrs: list[tuple[str, Any]], flags: int) -> list[Any]:
        raise NotImplementedError


    async def sync_daemons(self) -> list[SyncDaemon]:
        """The sync daemons the kernel runs now (at most one master and one backup)."""
        try:
            found = await self._request(genl_ipvs.IPVS_CMD_GET_DAEMON, [], DUMP)
        except NetlinkError as exc:
            raise BackendError(f"cannot read the IPVS sync daemons: {exc}") from exc
        daemons: list[SyncDaemon] = []
        for message in found:
            payload = message_attrs(message).get(CMD_DAEMON)
            if payload is not None:
                daemons.append(daemon_from(payload))
        return daemons

    async def start_sync_daemon(self, daemon: SyncDaemon) -> None:
        """Start a master or backup sync daemon."""
        attrs = [("IPVS_CMD_ATTR_DAEMON", {"attrs": daemon_attrs(daemon)})]
        try:
            await self._request(genl_ipvs.IPVS_CMD_NEW_DAEMON, attrs, REQ)
        except NetlinkError as exc:
            reason = os.strerror(exc.code) if exc.code else str(exc)
            hint = ""
            if exc.code == errno.EEXIST:
                hint = f": a {daemon.state.name.lower()} sync daemon is already running"
            elif exc.code in (errno.ENODEV, errno.EADDRNOTAVAIL):
                hint = f": interface {daemon.interface} is missing or cannot multicast"
            raise BackendError(
                f"IPVS refused to start the {daemon.state.name.lower()} sync daemon on "
                f"{daemon.interface} (syncid {daemon.syncid}): {reason}{hint}"
            ) from exc

    async def stop_sync_daemon(self, state: SyncState) -> bool:
        """Stop the master or backup sync daemon; False if none was running."""
        attrs = [("IPVS_CMD_ATTR_DAEMON", {"attrs": [("IPVS_DAEMON_ATTR_STATE", int(state))]})]
        try:
            await self._request(genl_ipvs.IPVS_CMD_DEL_DAEMON, attrs, REQ)
        except NetlinkError as exc:
            if exc.code == errno.ESRCH:
                return False
            raise BackendError(
                f"IPVS refused to stop the {state.name.lower()} sync daemon: {exc}"
            ) from exc
        return True

    async def follow_sync_role(self, daemon: SyncDaemon) -> None:
        """Run exactly the sync daemon `daemon` describes: the other role is stopped and
        a running one with other settings restarted (VRRP MASTER -> master daemon,
        BACKUP -> backup daemon)."""
        other = SyncState.BACKUP if daemon.state == SyncState.MASTER else SyncState.MASTER
        running = {d.state: d for d in await self.sync_daemons()}
        if other in running:
            await self.stop_sync_daemon(other)
        current = running.get(daemon.state)
        if current is not None and _same_daemon(current, daemon):
            return
        if current is not None:
            await self.stop_sync_daemon(daemon.state)
        await self.start_sync_daemon(daemon)


def _same_daemon(running: SyncDaemon, wanted: SyncDaemon) -> bool:
    """Whether a running daemon matches what is wanted (zeros mean kernel defaults)."""
    if (running.interface, running.syncid) != (wanted.interface, wanted.syncid):
        return False
    for field in ("maxlen", "port", "ttl", "group"):
        value = getattr(wanted, field)
        if value and getattr(running, field) != value:
            return False
    return True
