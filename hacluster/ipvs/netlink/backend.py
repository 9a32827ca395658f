"""The netlink backend: the IPVS family's socket and requests, dump, apply, info, timeouts.

pyroute2 provides the socket, the family lookup and the request/reply bookkeeping; its
`IPVSService`/`IPVSDest` helpers are not used, as they carry traps (a destination
defaults to DR, `update` means delete, `from_message()` drops statistics): here every
request states all its fields, edits use the SET commands, and statistics are read from
the STATS64 attributes of the dump. Requests are packed (`packed`) and replies read from
their raw attributes (`decode`).
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Sequence
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic import ipvs as genl_ipvs

from hacluster.ipvs.backend import ApplyResult, BackendError, BackendUnavailable, Op, OpFailure
from hacluster.ipvs.model import (
    Destination,
    DestKey,
    IpvsInfo,
    ServiceEntry,
    ServiceKey,
    Stats,
    Table,
    TableStats,
    Timeouts,
)
from hacluster.ipvs.netlink.decode import dest_from, message_attrs, service_from, timeouts_from
from hacluster.ipvs.netlink.explain import explain
from hacluster.ipvs.netlink.messages import InfoMessage, IpvsMessage, PackedMessage, ReplyMessage
from hacluster.ipvs.netlink.packed import nested, packed_op, packed_service_key, packed_timeouts
from hacluster.ipvs.netlink.sync_commands import SyncDaemonCommands
from hacluster.ipvs.netlink.uapi import CMD_DEST, CMD_SERVICE, CMD_TIMEOUT_TCP, DUMP, REQ

log = logging.getLogger("hacluster.ipvs.netlink")

UNAVAILABLE_HINT = (
    "the kernel has no IPVS (the generic netlink family 'IPVS' is missing; "
    "load it with `modprobe ip_vs`, or set `dataplane: nftables` in global_defs)"
)


class NetlinkBackend(SyncDaemonCommands):
    """The kernel's IPVS table, over generic netlink.

    The socket opens on first use (in the running event loop), so constructing the
    backend never fails; a kernel without IPVS raises `BackendUnavailable` then.
    `netns` names a network namespace (as `ip netns` does) whose IPVS to drive.
    """

    def __init__(self, *, netns: str | None = None) -> None:
        self._netns = netns
        self._sock: Any = None

    @property
    def name(self) -> str:
        return "netlink"

    async def _socket(self) -> Any:
        if self._sock is not None:
            return self._sock
        sock = await self._open(ReplyMessage)
        self._sock = sock
        return sock

    async def _open(self, msg_class: type) -> Any:
        sock = genl_ipvs.AsyncIPVSSocket(**({"netns": self._netns} if self._netns else {}))
        try:
            await sock.setup_endpoint()
        except NetlinkError as exc:
            sock.close()
            if exc.code == errno.ENOENT:
                raise BackendUnavailable(UNAVAILABLE_HINT) from exc
            raise BackendError(f"cannot open the IPVS netlink socket: {exc}") from exc
        except OSError as exc:
            sock.close()
            raise BackendError(f"cannot open the IPVS netlink socket: {exc}") from exc
        # Replies on the family are decoded by our class (header only, or the info reply).
        sock.marshal.msg_map[sock.prid] = msg_class
        return sock

    async def _packed_request(self, cmd: int, attrs: bytes, flags: int) -> list[Any]:
        sock = await self._socket()
        msg = PackedMessage()
        msg["cmd"] = cmd
        msg["version"] = genl_ipvs.GENL_VERSION
        msg.attrs_bytes = attrs
        return list(await sock._do_request(msg, msg_flags=flags))

    async def _request(self, cmd: int, attrs: list[tuple[str, Any]], flags: int) -> list[Any]:
        sock = await self._socket()
        msg = IpvsMessage()
        msg["cmd"] = cmd
        msg["version"] = genl_ipvs.GENL_VERSION
        msg["attrs"] = attrs
        return list(await sock._do_request(msg, msg_flags=flags))

    async def _dump(self, with_stats: bool = True) -> tuple[Table, TableStats]:
        services = await self._request(genl_ipvs.IPVS_CMD_GET_SERVICE, [], DUMP)
        entries: dict[ServiceKey, ServiceEntry] = {}
        service_stats: dict[ServiceKey, Stats] = {}
        dest_stats: dict[tuple[ServiceKey, DestKey], Stats] = {}
        for message in services:
            payload = message_attrs(message).get(CMD_SERVICE)
            parsed = service_from(payload, with_stats) if payload is not None else None
            if parsed is None:
                continue
            service, stats = parsed
            key = service.key
            service_stats[key] = stats
            dests: dict[DestKey, Destination] = {}
            try:
                found = await self._packed_request(
                    genl_ipvs.IPVS_CMD_GET_DEST,
                    nested(CMD_SERVICE, packed_service_key(key)),
                    DUMP,
                )
            except NetlinkError as exc:
                if exc.code != errno.ESRCH:
                    raise
                del service_stats[key]  # deleted by someone since the service dump
                continue
            for dmessage in found:
                dpayload = message_attrs(dmessage).get(CMD_DEST)
                if dpayload is None:
                    continue
                dparsed = dest_from(dpayload, service.family, with_stats)
                if dparsed is None:
                    continue
                dest, dstats = dparsed
                dests[dest.key] = dest
                if with_stats:
                    dest_stats[(key, dest.key)] = dstats
            entries[key] = ServiceEntry(service, dests)
        return Table(entries), TableStats(service_stats, dest_stats)

    async def dump(self) -> Table:
        """The kernel's table (services this model cannot represent are left out)."""
        try:
            table, _ = await self._dump(with_stats=False)
        except NetlinkError as exc:
            raise BackendError(f"cannot read the IPVS table: {exc}") from exc
        return table

    async def stats(self) -> TableStats:
        """Counters (64-bit) and rates per service and destination; the kernel updates
        them about every two seconds."""
        try:
            _, stats = await self._dump()
        except NetlinkError as exc:
            raise BackendError(f"cannot read IPVS statistics: {exc}") from exc
        return stats

    async def table_and_stats(self) -> tuple[Table, TableStats]:
        """Table and statistics from one pass over the kernel's table."""
        try:
            return await self._dump()
        except NetlinkError as exc:
            raise BackendError(f"cannot read the IPVS table: {exc}") from exc

    async def apply(self, ops: Sequence[Op]) -> ApplyResult:
        """Carry out `ops` in order; a refused op is reported and the rest still tried."""
        failed: list[OpFailure] = []
        for op in ops:
            try:
                await self._apply_one(op)
            except NetlinkError as exc:
                message = explain(op, exc)
                log.warning("%s", message)
                failed.append(OpFailure(op, message))
        return ApplyResult(len(ops) - len(failed), tuple(failed))

    async def _apply_one(self, op: Op) -> None:
        cmd, flags, attrs = packed_op(op)
        await self._packed_request(cmd, attrs, flags)

    async def info(self) -> IpvsInfo:
        """IPVS version and connection hash table size (ipvsadm's header line)."""
        # The GET_INFO reply's attributes collide with ipvsmsg's, so it gets its own socket.
        sock = await self._open(InfoMessage)
        try:
            msg = InfoMessage()
            msg["cmd"] = genl_ipvs.IPVS_CMD_GET_INFO
            msg["version"] = genl_ipvs.GENL_VERSION
            msg["attrs"] = []
            replies = list(await sock._do_request(msg, msg_flags=REQ))
        except NetlinkError as exc:
            raise BackendError(f"cannot read IPVS information: {exc}") from exc
        finally:
            sock.close()
        for reply in replies:
            version = reply.get_attr("IPVS_INFO_ATTR_VERSION")
            size = reply.get_attr("IPVS_INFO_ATTR_CONN_TAB_SIZE")
            if version is not None and size is not None:
                text = f"{version >> 16}.{(version >> 8) & 0xFF}.{version & 0xFF}"
                return IpvsInfo(version=text, size=size)
        raise BackendError("the kernel sent no IPVS information")

    async def flush(self) -> None:
        """Remove every service and destination (what `ipvsadm -C` does)."""
        try:
            await self._request(genl_ipvs.IPVS_CMD_FLUSH, [], REQ)
        except NetlinkError as exc:
            raise BackendError(f"cannot flush the IPVS table: {exc}") from exc

    # -- connection timeouts (lvs_timeouts) ---------------------------------------------

    async def get_timeouts(self) -> Timeouts:
        """The connection timeouts in force (`ipvsadm -L --timeout`)."""
        try:
            replies = await self._request(genl_ipvs.IPVS_CMD_GET_CONFIG, [], REQ)
        except NetlinkError as exc:
            raise BackendError(f"cannot read the IPVS timeouts: {exc}") from exc
        for reply in replies:
            attrs = message_attrs(reply)
            if CMD_TIMEOUT_TCP in attrs:
                return timeouts_from(attrs)
        raise BackendError("the kernel sent no IPVS timeouts")

    async def set_timeouts(self, timeouts: Timeouts) -> None:
        """Set the non-zero timeouts (`ipvsadm --set`)."""
        cmd, flags, attrs = packed_timeouts(timeouts)
        if not attrs:
            return
        try:
            await self._packed_request(cmd, attrs, flags)
        except NetlinkError as exc:
            reason = os.strerror(exc.code) if exc.code else str(exc)
            raise BackendError(f"IPVS refused the timeouts ({timeouts}): {reason}") from exc

    async def close(self) -> None:
        if self._sock is not None:
            sock, self._sock = self._sock, None
            sock.close()


async def probe(netns: str | None = None) -> str | None:
    """None when the kernel's IPVS can be driven here, else a message saying why not."""
    backend = NetlinkBackend(netns=netns)
    try:
        await backend._socket()
    except BackendError as exc:
        return str(exc)
    finally:
        await backend.close()
    return None
