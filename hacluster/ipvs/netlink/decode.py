"""IPVS replies read from their raw attributes: services, destinations, statistics, daemons.

Replies are received and framed by pyroute2, but their attributes are read here from
the raw bytes: pyroute2's lazy NLA objects cost milliseconds per destination, which a
dump of ten thousand destinations cannot afford. Tests check this parser against
messages pyroute2 encodes. Does no I/O.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
import sys
from typing import Any

from hacluster.ipvs.model import (
    Destination,
    Forward,
    IPAddress,
    Protocol,
    Service,
    ServiceFlag,
    Stats,
    Timeouts,
)
from hacluster.ipvs.netlink.sync import SyncDaemon, SyncState
from hacluster.ipvs.netlink.uapi import (
    BE16,
    CMD_TIMEOUT_TCP,
    CMD_TIMEOUT_TCP_FIN,
    CMD_TIMEOUT_UDP,
    DAEMON_GROUP,
    DAEMON_GROUP6,
    DAEMON_IFN,
    DAEMON_MAXLEN,
    DAEMON_PORT,
    DAEMON_STATE,
    DAEMON_SYNCID,
    DAEMON_TTL,
    DEST_ACTIVE,
    DEST_ADDR,
    DEST_AF,
    DEST_FWD,
    DEST_INACT,
    DEST_LTH,
    DEST_PERSIST,
    DEST_PORT,
    DEST_STATS64,
    DEST_UTH,
    DEST_WEIGHT,
    FAMILY,
    FLAGS,
    FWD_LOCALNODE,
    FWD_MASK,
    GENL_HDR,
    NLA_HDR,
    NLA_TYPE_MASK,
    NLMSG_HDR,
    SVC_ADDR,
    SVC_AF,
    SVC_FLAGS,
    SVC_FWMARK,
    SVC_NETMASK,
    SVC_PORT,
    SVC_PROTOCOL,
    SVC_SCHED,
    SVC_STATS64,
    SVC_TIMEOUT,
)

log = logging.getLogger("hacluster.ipvs.netlink")

_STATS_FIELDS = (
    "conns", "inpkts", "outpkts", "inbytes", "outbytes", "cps", "inpps", "outpps",
    "inbps", "outbps",
)  # fmt: skip
_NO_STATS = Stats()


def _attrs(buf: bytes, start: int = 0, end: int | None = None) -> dict[int, bytes]:
    """Attribute type -> payload for the netlink attributes in buf[start:end]."""
    end = len(buf) if end is None else end
    found: dict[int, bytes] = {}
    while start + NLA_HDR.size <= end:
        length, kind = NLA_HDR.unpack_from(buf, start)
        if length < NLA_HDR.size or start + length > end:
            break
        found[kind & NLA_TYPE_MASK] = buf[start + NLA_HDR.size : start + length]
        start += (length + 3) & ~3
    return found


def message_attrs(message: Any) -> dict[int, bytes]:
    """Top-level attributes of a received IPVS (generic netlink) message."""
    start = message.offset
    length = message["header"]["length"]
    raw = bytes(message.data[start : start + length])
    return _attrs(raw, NLMSG_HDR.size + GENL_HDR.size)


def _u(payload: bytes | None) -> int:
    """An unsigned native-endian integer attribute of any width (0 when absent)."""
    if not payload:
        return 0
    return int.from_bytes(payload[:8], sys.byteorder)


def _stats(payload: bytes | None, **conns: int) -> Stats:
    if not payload:
        return Stats(**conns)
    found = _attrs(payload)
    values = {name: _u(found.get(i)) for i, name in enumerate(_STATS_FIELDS, start=1)}
    return Stats(**values, **conns)


def _address(family: int, payload: bytes | None) -> IPAddress:
    # The kernel sends a union nf_inet_addr (16 bytes) whatever the family.
    raw = payload or b""
    if family == 4:
        return ipaddress.IPv4Address(raw[:4])
    return ipaddress.IPv6Address(raw[:16])


def service_from(payload: bytes, with_stats: bool = True) -> tuple[Service, Stats] | None:
    """Service and statistics (zero unless `with_stats`) from an IPVS_CMD_ATTR_SERVICE
    payload, or None for a service this model cannot represent."""
    found = _attrs(payload)
    family = FAMILY.get(_u(found.get(SVC_AF)))
    if family is None:
        return None
    flags = found.get(SVC_FLAGS, b"")
    netmask = found.get(SVC_NETMASK)
    common: dict[str, Any] = {
        "scheduler": found.get(SVC_SCHED, b"").split(b"\0", 1)[0].decode(errors="replace"),
        "flags": ServiceFlag(FLAGS.unpack(flags)[0] if len(flags) == FLAGS.size else 0),
        "timeout": _u(found.get(SVC_TIMEOUT)),
        "netmask": netmask_prefix(
            family, socket.inet_ntoa(netmask[:4]) if netmask and len(netmask) >= 4 else None
        ),
    }
    fwmark = _u(found.get(SVC_FWMARK))
    try:
        if fwmark:
            service = Service(fwmark=fwmark, family=family, **common)
        else:
            port = found.get(SVC_PORT, b"\0\0")
            service = Service(
                protocol=Protocol(_u(found.get(SVC_PROTOCOL))),
                address=_address(family, found.get(SVC_ADDR)),
                port=BE16.unpack(port[:2])[0],
                family=family,
                **common,
            )
    except ValueError as exc:  # e.g. an AH/ESP service, which ipvsadm cannot make either
        log.warning("skipping an IPVS service hacluster cannot represent: %s", exc)
        return None
    return service, _stats(found.get(SVC_STATS64)) if with_stats else _NO_STATS


def daemon_from(payload: bytes) -> SyncDaemon:
    found = _attrs(payload)
    group: IPAddress | None = None
    raw6, raw4 = found.get(DAEMON_GROUP6, b""), found.get(DAEMON_GROUP, b"")
    if len(raw6) >= 16 and any(raw6[:16]):
        group = ipaddress.IPv6Address(raw6[:16])
    elif len(raw4) >= 4 and any(raw4[:4]):
        group = ipaddress.IPv4Address(raw4[:4])
    return SyncDaemon(
        state=SyncState(_u(found.get(DAEMON_STATE))),
        interface=found.get(DAEMON_IFN, b"").split(b"\0", 1)[0].decode(errors="replace"),
        syncid=_u(found.get(DAEMON_SYNCID)),
        maxlen=_u(found.get(DAEMON_MAXLEN)),
        group=group,
        port=_u(found.get(DAEMON_PORT)),
        ttl=_u(found.get(DAEMON_TTL)),
    )


def dest_from(
    payload: bytes, service_family: int, with_stats: bool = True
) -> tuple[Destination, Stats] | None:
    """Destination and statistics (zero unless `with_stats`) from an IPVS_CMD_ATTR_DEST
    payload, or None for one this model cannot represent."""
    found = _attrs(payload)
    family = FAMILY.get(_u(found.get(DEST_AF)), service_family)
    method = _u(found.get(DEST_FWD)) & FWD_MASK
    # IP_VS_CONN_F_LOCALNODE cannot be asked for; older kernels reported a real server
    # on the director itself that way, which was configured as NAT.
    try:
        forward = Forward.NAT if method == FWD_LOCALNODE else Forward.from_kernel(method)
        dest = Destination(
            address=_address(family, found.get(DEST_ADDR)),
            port=BE16.unpack(found.get(DEST_PORT, b"\0\0")[:2])[0],
            weight=_u(found.get(DEST_WEIGHT)),
            forward=forward,
            u_threshold=_u(found.get(DEST_UTH)),
            l_threshold=_u(found.get(DEST_LTH)),
        )
    except ValueError as exc:
        log.warning("skipping an IPVS destination hacluster cannot represent: %s", exc)
        return None
    if not with_stats:
        return dest, _NO_STATS
    stats = _stats(
        found.get(DEST_STATS64),
        activeconns=_u(found.get(DEST_ACTIVE)),
        inactconns=_u(found.get(DEST_INACT)),
        persistconns=_u(found.get(DEST_PERSIST)),
    )
    return dest, stats


def netmask_prefix(family: int, value: str | None) -> int:
    if value is None:
        return 32 if family == 4 else 128
    if family == 4:
        bits = int(ipaddress.IPv4Address(value))
        prefix = bin(bits).count("1")
        return prefix if bits == (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF else 32
    prefix = int(struct.unpack("=I", socket.inet_aton(value))[0])
    return prefix if 0 <= prefix <= 128 else 128


def timeouts_from(attrs: dict[int, bytes]) -> Timeouts:
    """The timeouts of an IPVS_CMD_GET_CONFIG reply's attributes."""
    return Timeouts(
        _u(attrs.get(CMD_TIMEOUT_TCP)),
        _u(attrs.get(CMD_TIMEOUT_TCP_FIN)),
        _u(attrs.get(CMD_TIMEOUT_UDP)),
    )
