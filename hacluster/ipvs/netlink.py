"""IPVS backend over generic netlink (pyroute2): dump, apply, statistics and the sync daemon.

The only module that talks to the kernel's IPVS. pyroute2 provides the socket, the family
lookup and the request/reply bookkeeping; its `IPVSService`/`IPVSDest` helpers are not
used, as they carry traps (a destination defaults to DR, `update` means delete,
`from_message()` drops statistics): here every request states all its fields, edits use
the SET commands, and statistics are read from the STATS64 attributes of the dump.
Requests that change the table are packed with struct and replies read from their raw
attributes, because pyroute2's generic NLA objects cost milliseconds per destination
(see "fast encoding" and "decoding" below; tests hold both to pyroute2's own encoding).

Errors from the kernel for one operation become an `OpFailure` whose message names the
service (and destination) and says what the kernel refused, with a hint where one helps.
"""

from __future__ import annotations

import enum
import errno
import ipaddress
import logging
import os
import socket
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hacluster.ipvs import lean_pyroute2

lean_pyroute2.install()  # the 17 modules used here, not the 163 of the whole package

from pyroute2.netlink import (  # noqa: E402
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_EXCL,
    NLM_F_REQUEST,
    genlmsg,
    nla,
)
from pyroute2.netlink.exceptions import NetlinkError  # noqa: E402
from pyroute2.netlink.generic import ipvs as genl_ipvs  # noqa: E402

from hacluster.ipvs.backend import (  # noqa: E402
    AddDest,
    AddService,
    ApplyResult,
    BackendError,
    BackendUnavailable,
    DelDest,
    DelService,
    EditDest,
    EditService,
    Op,
    OpFailure,
    describe,
)
from hacluster.ipvs.model import (  # noqa: E402
    Destination,
    DestKey,
    Forward,
    IPAddress,
    IpvsInfo,
    Protocol,
    Service,
    ServiceEntry,
    ServiceFlag,
    ServiceKey,
    Stats,
    Table,
    TableStats,
    Timeouts,
)

log = logging.getLogger(__name__)

_AF = {4: socket.AF_INET, 6: socket.AF_INET6}
_FAMILY: dict[int, int] = {int(socket.AF_INET): 4, int(socket.AF_INET6): 6}
_FWD_MASK = 0x7
_FWD_LOCALNODE = 1  # IP_VS_CONN_F_LOCALNODE: the kernel's mark for a local real server
_REQ = NLM_F_REQUEST | NLM_F_ACK
_CREATE = _REQ | NLM_F_CREATE | NLM_F_EXCL
_DUMP = NLM_F_REQUEST | NLM_F_DUMP
_ALL_FLAGS = 0xFFFFFFFF

UNAVAILABLE_HINT = (
    "the kernel has no IPVS (the generic netlink family 'IPVS' is missing; "
    "load it with `modprobe ip_vs`, or set `dataplane: nftables` in global_defs)"
)


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


class _daemon(nla):  # type: ignore[misc]  # pyroute2 is untyped
    nla_map = (
        ("IPVS_DAEMON_ATTR_UNSPEC", "none"),
        ("IPVS_DAEMON_ATTR_STATE", "uint32"),
        ("IPVS_DAEMON_ATTR_MCAST_IFN", "asciiz"),
        ("IPVS_DAEMON_ATTR_SYNC_ID", "uint32"),
        ("IPVS_DAEMON_ATTR_SYNC_MAXLEN", "uint16"),
        ("IPVS_DAEMON_ATTR_MCAST_GROUP", "ip4addr"),
        ("IPVS_DAEMON_ATTR_MCAST_GROUP6", "ip6addr"),
        ("IPVS_DAEMON_ATTR_MCAST_PORT", "uint16"),
        ("IPVS_DAEMON_ATTR_MCAST_TTL", "uint8"),
    )


class _ipvsmsg(genl_ipvs.ipvsmsg):  # type: ignore[misc]
    """pyroute2's IPVS message with the sync-daemon attribute decoded (it has it as hex)."""

    nla_map = (
        ("IPVS_CMD_ATTR_UNSPEC", "none"),
        ("IPVS_CMD_ATTR_SERVICE", "service"),
        ("IPVS_CMD_ATTR_DEST", "dest"),
        ("IPVS_CMD_ATTR_DAEMON", "daemon"),
        ("IPVS_CMD_ATTR_TIMEOUT_TCP", "uint32"),
        ("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN", "uint32"),
        ("IPVS_CMD_ATTR_TIMEOUT_UDP", "uint32"),
    )
    daemon = _daemon


class _infomsg(genlmsg):  # type: ignore[misc]
    """Reply to IPVS_CMD_GET_INFO: its top-level attributes are not ipvsmsg's."""

    nla_map = (
        ("IPVS_INFO_ATTR_UNSPEC", "none"),
        ("IPVS_INFO_ATTR_VERSION", "uint32"),
        ("IPVS_INFO_ATTR_CONN_TAB_SIZE", "uint32"),
    )


# -- encoding ------------------------------------------------------------------------


def _netmask_attr(family: int, prefix: int) -> str:
    """IPVS_SVC_ATTR_NETMASK as pyroute2's ip4addr wants it.

    IPv4: the mask itself. IPv6: the kernel reads the prefix length as a host-order u32
    in the same 4 bytes (what ipvsadm sends), so those bytes are written as a dotted quad.
    """
    if family == 4:
        return str(ipaddress.IPv4Network(f"0.0.0.0/{prefix}").netmask)
    return socket.inet_ntoa(struct.pack("=I", prefix))


def _netmask_prefix(family: int, value: str | None) -> int:
    if value is None:
        return 32 if family == 4 else 128
    if family == 4:
        bits = int(ipaddress.IPv4Address(value))
        prefix = bin(bits).count("1")
        return prefix if bits == (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF else 32
    prefix = int(struct.unpack("=I", socket.inet_aton(value))[0])
    return prefix if 0 <= prefix <= 128 else 128


def _service_key_attrs(key: ServiceKey) -> list[tuple[str, Any]]:
    attrs: list[tuple[str, Any]] = [("IPVS_SVC_ATTR_AF", _AF[key.family])]
    if key.fwmark:
        attrs.append(("IPVS_SVC_ATTR_FWMARK", key.fwmark))
    else:
        assert key.protocol is not None and key.address is not None
        attrs += [
            ("IPVS_SVC_ATTR_PROTOCOL", key.protocol.value),
            ("IPVS_SVC_ATTR_ADDR", str(key.address)),
            ("IPVS_SVC_ATTR_PORT", key.port),
        ]
    return attrs


# The full service and destination forms below are what `packed_op` reproduces byte for
# byte (tests compare the two); requests are sent packed.
def _service_attrs(service: Service) -> list[tuple[str, Any]]:
    return [
        *_service_key_attrs(service.key),
        ("IPVS_SVC_ATTR_SCHED_NAME", service.scheduler),
        ("IPVS_SVC_ATTR_FLAGS", {"flags": service.kernel_flags, "mask": _ALL_FLAGS}),
        ("IPVS_SVC_ATTR_TIMEOUT", service.timeout),
        ("IPVS_SVC_ATTR_NETMASK", _netmask_attr(service.family, service.netmask)),
    ]


def _dest_key_attrs(key: DestKey) -> list[tuple[str, Any]]:
    return [
        ("IPVS_DEST_ATTR_ADDR_FAMILY", _AF[key.address.version]),
        ("IPVS_DEST_ATTR_ADDR", str(key.address)),
        ("IPVS_DEST_ATTR_PORT", key.port),
    ]


def _dest_attrs(dest: Destination) -> list[tuple[str, Any]]:
    # The forwarding method goes in every request, edits included: the kernel takes a
    # missing one as "unchanged" on no command, and pyroute2's helpers would send DR.
    return [
        *_dest_key_attrs(dest.key),
        ("IPVS_DEST_ATTR_FWD_METHOD", dest.forward.kernel),
        ("IPVS_DEST_ATTR_WEIGHT", dest.weight),
        ("IPVS_DEST_ATTR_U_THRESH", dest.u_threshold),
        ("IPVS_DEST_ATTR_L_THRESH", dest.l_threshold),
    ]


def _daemon_attrs(daemon: SyncDaemon) -> list[tuple[str, Any]]:
    attrs: list[tuple[str, Any]] = [
        ("IPVS_DAEMON_ATTR_STATE", int(daemon.state)),
        ("IPVS_DAEMON_ATTR_MCAST_IFN", daemon.interface),
        ("IPVS_DAEMON_ATTR_SYNC_ID", daemon.syncid),
    ]
    if daemon.maxlen:
        attrs.append(("IPVS_DAEMON_ATTR_SYNC_MAXLEN", daemon.maxlen))
    if isinstance(daemon.group, ipaddress.IPv4Address):
        attrs.append(("IPVS_DAEMON_ATTR_MCAST_GROUP", str(daemon.group)))
    elif isinstance(daemon.group, ipaddress.IPv6Address):
        attrs.append(("IPVS_DAEMON_ATTR_MCAST_GROUP6", str(daemon.group)))
    if daemon.port:
        attrs.append(("IPVS_DAEMON_ATTR_MCAST_PORT", daemon.port))
    if daemon.ttl:
        attrs.append(("IPVS_DAEMON_ATTR_MCAST_TTL", daemon.ttl))
    return attrs


# -- fast encoding -------------------------------------------------------------------
#
# pyroute2's generic encoder costs about a thousand Python calls per IPVS request, which
# dominates a reconcile of thousands of destinations. Requests that change the table are
# therefore packed here with struct, to the same bytes pyroute2 produces (a test checks
# that), and sent through pyroute2's socket as usual; replies are decoded by pyroute2.

_NLA_HDR = struct.Struct("=HH")
_NLMSG_HDR = struct.Struct("=IHHII")
_GENL_HDR = struct.Struct("=BBH")
_U16 = struct.Struct("=H")
_U32 = struct.Struct("=I")
_BE16 = struct.Struct(">H")
_FLAGS = struct.Struct("=II")
# Attribute numbers (include/uapi/linux/ip_vs.h).
_CMD_SERVICE, _CMD_DEST = 1, 2
_SVC_AF, _SVC_PROTOCOL, _SVC_ADDR, _SVC_PORT, _SVC_FWMARK = 1, 2, 3, 4, 5
_SVC_SCHED, _SVC_FLAGS, _SVC_TIMEOUT, _SVC_NETMASK = 6, 7, 8, 9
_DEST_ADDR, _DEST_PORT, _DEST_FWD, _DEST_WEIGHT, _DEST_UTH, _DEST_LTH = 1, 2, 3, 4, 5, 6
_DEST_AF = 11


def _nla(kind: int, payload: bytes) -> bytes:
    size = _NLA_HDR.size + len(payload)
    return _NLA_HDR.pack(size, kind) + payload + b"\0" * (-size % 4)


def _packed_service_key(key: ServiceKey) -> bytes:
    parts = [_nla(_SVC_AF, _U16.pack(_AF[key.family]))]
    if key.fwmark:
        parts.append(_nla(_SVC_FWMARK, _U32.pack(key.fwmark)))
    else:
        assert key.protocol is not None and key.address is not None
        parts += [
            _nla(_SVC_PROTOCOL, _U16.pack(key.protocol.value)),
            _nla(_SVC_ADDR, key.address.packed),
            _nla(_SVC_PORT, _BE16.pack(key.port)),
        ]
    return b"".join(parts)


def _packed_service(service: Service) -> bytes:
    return b"".join(
        (
            _packed_service_key(service.key),
            _nla(_SVC_SCHED, service.scheduler.encode() + b"\0"),
            _nla(_SVC_FLAGS, _FLAGS.pack(service.kernel_flags, _ALL_FLAGS)),
            _nla(_SVC_TIMEOUT, _U32.pack(service.timeout)),
            _nla(
                _SVC_NETMASK,
                socket.inet_aton(_netmask_attr(service.family, service.netmask)),
            ),
        )
    )


def _packed_dest_key(key: DestKey) -> bytes:
    return b"".join(
        (
            _nla(_DEST_AF, _U16.pack(_AF[key.address.version])),
            _nla(_DEST_ADDR, key.address.packed),
            _nla(_DEST_PORT, _BE16.pack(key.port)),
        )
    )


def _packed_dest(dest: Destination) -> bytes:
    return b"".join(
        (
            _packed_dest_key(dest.key),
            _nla(_DEST_FWD, _U32.pack(dest.forward.kernel)),
            _nla(_DEST_WEIGHT, _U32.pack(dest.weight)),
            _nla(_DEST_UTH, _U32.pack(dest.u_threshold)),
            _nla(_DEST_LTH, _U32.pack(dest.l_threshold)),
        )
    )


def _nested(kind: int, payload: bytes) -> bytes:
    # Without NLA_F_NESTED, as pyroute2 and ipvsadm send it (IPVS parses either way).
    return _nla(kind, payload)


def packed_op(op: Op) -> tuple[int, int, bytes]:
    """(IPVS command, netlink flags, attributes) of the request that carries out `op`."""
    c = genl_ipvs
    match op:
        case AddService(service=s):
            return c.IPVS_CMD_NEW_SERVICE, _CREATE, _nested(_CMD_SERVICE, _packed_service(s))
        case EditService(service=s):
            return c.IPVS_CMD_SET_SERVICE, _REQ, _nested(_CMD_SERVICE, _packed_service(s))
        case DelService(key=k):
            return c.IPVS_CMD_DEL_SERVICE, _REQ, _nested(_CMD_SERVICE, _packed_service_key(k))
        case AddDest(service=k, dest=d):
            attrs = _nested(_CMD_SERVICE, _packed_service_key(k)) + _nested(
                _CMD_DEST, _packed_dest(d)
            )
            return c.IPVS_CMD_NEW_DEST, _CREATE, attrs
        case EditDest(service=k, dest=d):
            attrs = _nested(_CMD_SERVICE, _packed_service_key(k)) + _nested(
                _CMD_DEST, _packed_dest(d)
            )
            return c.IPVS_CMD_SET_DEST, _REQ, attrs
        case DelDest(service=k, key=dk):
            attrs = _nested(_CMD_SERVICE, _packed_service_key(k)) + _nested(
                _CMD_DEST, _packed_dest_key(dk)
            )
            return c.IPVS_CMD_DEL_DEST, _REQ, attrs
    raise TypeError(f"not an IPVS operation: {op!r}")


_CMD_TIMEOUT_TCP, _CMD_TIMEOUT_TCP_FIN, _CMD_TIMEOUT_UDP = 4, 5, 6


def packed_timeouts(timeouts: Timeouts) -> tuple[int, int, bytes]:
    """The IPVS_CMD_SET_CONFIG request of `ipvsadm --set TCP TCPFIN UDP`: only the
    non-zero timeouts are sent (the kernel keeps the others, as for a 0)."""
    attrs = b"".join(
        _nla(kind, _U32.pack(value))
        for kind, value in (
            (_CMD_TIMEOUT_TCP, timeouts.tcp),
            (_CMD_TIMEOUT_TCP_FIN, timeouts.tcpfin),
            (_CMD_TIMEOUT_UDP, timeouts.udp),
        )
        if value
    )
    return genl_ipvs.IPVS_CMD_SET_CONFIG, _REQ, attrs


def timeouts_from(attrs: dict[int, bytes]) -> Timeouts:
    """The timeouts of an IPVS_CMD_GET_CONFIG reply's attributes."""
    return Timeouts(
        _u(attrs.get(_CMD_TIMEOUT_TCP)),
        _u(attrs.get(_CMD_TIMEOUT_TCP_FIN)),
        _u(attrs.get(_CMD_TIMEOUT_UDP)),
    )


class _packedmsg(_ipvsmsg):
    """A request whose attributes were packed by `packed_op`; pyroute2 fills the header."""

    attrs_bytes = b""

    def encode(self) -> None:
        header = self["header"]
        body = _GENL_HDR.pack(self["cmd"], self["version"], 0) + self.attrs_bytes
        self.data = bytearray(
            _NLMSG_HDR.pack(
                _NLMSG_HDR.size + len(body),
                header["type"],
                header["flags"],
                header["sequence_number"],
                header["pid"],
            )
            + body
        )


# -- decoding ------------------------------------------------------------------------
#
# Replies are received and framed by pyroute2, but their attributes are read here from
# the raw bytes: pyroute2's lazy NLA objects cost milliseconds per destination, which a
# dump of ten thousand destinations cannot afford. Tests check this parser against
# messages pyroute2 encodes.

_U64 = struct.Struct("=Q")
# Attribute numbers (include/uapi/linux/ip_vs.h), continued.
_SVC_STATS64 = 12
_DEST_ACTIVE, _DEST_INACT, _DEST_PERSIST, _DEST_STATS64 = 7, 8, 9, 12
_STATS_FIELDS = (
    "conns", "inpkts", "outpkts", "inbytes", "outbytes", "cps", "inpps", "outpps",
    "inbps", "outbps",
)  # fmt: skip
_NLA_TYPE_MASK = 0x3FFF
_NO_STATS = Stats()
_CMD_DAEMON = 3
_DAEMON_STATE, _DAEMON_IFN, _DAEMON_SYNCID, _DAEMON_MAXLEN = 1, 2, 3, 4
_DAEMON_GROUP, _DAEMON_GROUP6, _DAEMON_PORT, _DAEMON_TTL = 5, 6, 7, 8


class _replymsg(_ipvsmsg):
    """Replies on the IPVS family: only the netlink header is decoded (what pyroute2's
    socket needs to route them); `message_attrs` reads the attributes."""

    def decode(self) -> None:
        length, kind, flags, seq, pid = _NLMSG_HDR.unpack_from(self.data, self.offset)
        self["header"] = {
            "length": length,
            "type": kind,
            "flags": flags,
            "sequence_number": seq,
            "pid": pid,
        }
        self.decoded = True


def _attrs(buf: bytes, start: int = 0, end: int | None = None) -> dict[int, bytes]:
    """Attribute type -> payload for the netlink attributes in buf[start:end]."""
    end = len(buf) if end is None else end
    found: dict[int, bytes] = {}
    while start + _NLA_HDR.size <= end:
        length, kind = _NLA_HDR.unpack_from(buf, start)
        if length < _NLA_HDR.size or start + length > end:
            break
        found[kind & _NLA_TYPE_MASK] = buf[start + _NLA_HDR.size : start + length]
        start += (length + 3) & ~3
    return found


def message_attrs(message: Any) -> dict[int, bytes]:
    """Top-level attributes of a received IPVS (generic netlink) message."""
    start = message.offset
    length = message["header"]["length"]
    raw = bytes(message.data[start : start + length])
    return _attrs(raw, _NLMSG_HDR.size + _GENL_HDR.size)


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


def _service_from(payload: bytes, with_stats: bool = True) -> tuple[Service, Stats] | None:
    """Service and statistics (zero unless `with_stats`) from an IPVS_CMD_ATTR_SERVICE
    payload, or None for a service this model cannot represent."""
    found = _attrs(payload)
    family = _FAMILY.get(_u(found.get(_SVC_AF)))
    if family is None:
        return None
    flags = found.get(_SVC_FLAGS, b"")
    netmask = found.get(_SVC_NETMASK)
    common: dict[str, Any] = {
        "scheduler": found.get(_SVC_SCHED, b"").split(b"\0", 1)[0].decode(errors="replace"),
        "flags": ServiceFlag(_FLAGS.unpack(flags)[0] if len(flags) == _FLAGS.size else 0),
        "timeout": _u(found.get(_SVC_TIMEOUT)),
        "netmask": _netmask_prefix(
            family, socket.inet_ntoa(netmask[:4]) if netmask and len(netmask) >= 4 else None
        ),
    }
    fwmark = _u(found.get(_SVC_FWMARK))
    try:
        if fwmark:
            service = Service(fwmark=fwmark, family=family, **common)
        else:
            port = found.get(_SVC_PORT, b"\0\0")
            service = Service(
                protocol=Protocol(_u(found.get(_SVC_PROTOCOL))),
                address=_address(family, found.get(_SVC_ADDR)),
                port=_BE16.unpack(port[:2])[0],
                family=family,
                **common,
            )
    except ValueError as exc:  # e.g. an AH/ESP service, which ipvsadm cannot make either
        log.warning("skipping an IPVS service hacluster cannot represent: %s", exc)
        return None
    return service, _stats(found.get(_SVC_STATS64)) if with_stats else _NO_STATS


def _daemon_from(payload: bytes) -> SyncDaemon:
    found = _attrs(payload)
    group: IPAddress | None = None
    raw6, raw4 = found.get(_DAEMON_GROUP6, b""), found.get(_DAEMON_GROUP, b"")
    if len(raw6) >= 16 and any(raw6[:16]):
        group = ipaddress.IPv6Address(raw6[:16])
    elif len(raw4) >= 4 and any(raw4[:4]):
        group = ipaddress.IPv4Address(raw4[:4])
    return SyncDaemon(
        state=SyncState(_u(found.get(_DAEMON_STATE))),
        interface=found.get(_DAEMON_IFN, b"").split(b"\0", 1)[0].decode(errors="replace"),
        syncid=_u(found.get(_DAEMON_SYNCID)),
        maxlen=_u(found.get(_DAEMON_MAXLEN)),
        group=group,
        port=_u(found.get(_DAEMON_PORT)),
        ttl=_u(found.get(_DAEMON_TTL)),
    )


def _dest_from(
    payload: bytes, service_family: int, with_stats: bool = True
) -> tuple[Destination, Stats] | None:
    """Destination and statistics (zero unless `with_stats`) from an IPVS_CMD_ATTR_DEST
    payload, or None for one this model cannot represent."""
    found = _attrs(payload)
    family = _FAMILY.get(_u(found.get(_DEST_AF)), service_family)
    method = _u(found.get(_DEST_FWD)) & _FWD_MASK
    # IP_VS_CONN_F_LOCALNODE cannot be asked for; older kernels reported a real server
    # on the director itself that way, which was configured as NAT.
    try:
        forward = Forward.NAT if method == _FWD_LOCALNODE else Forward.from_kernel(method)
        dest = Destination(
            address=_address(family, found.get(_DEST_ADDR)),
            port=_BE16.unpack(found.get(_DEST_PORT, b"\0\0")[:2])[0],
            weight=_u(found.get(_DEST_WEIGHT)),
            forward=forward,
            u_threshold=_u(found.get(_DEST_UTH)),
            l_threshold=_u(found.get(_DEST_LTH)),
        )
    except ValueError as exc:
        log.warning("skipping an IPVS destination hacluster cannot represent: %s", exc)
        return None
    if not with_stats:
        return dest, _NO_STATS
    stats = _stats(
        found.get(_DEST_STATS64),
        activeconns=_u(found.get(_DEST_ACTIVE)),
        inactconns=_u(found.get(_DEST_INACT)),
        persistconns=_u(found.get(_DEST_PERSIST)),
    )
    return dest, stats


# -- errors --------------------------------------------------------------------------


def _explain(op: Op, exc: NetlinkError) -> str:
    """An operator-facing message for a kernel refusal of `op`."""
    code = exc.code
    reason = os.strerror(code) if code else str(exc)
    hint = ""
    match op:
        case AddService(service=s) | EditService(service=s):
            what = f"service {s.key}"
            if code == errno.ENOENT:
                hint = (
                    f"scheduler {s.scheduler!r} is not available in this kernel "
                    f"(no ip_vs_{s.scheduler} module?)"
                )
            elif code == errno.EEXIST:
                hint = "it already exists"
            elif code == errno.ESRCH:
                hint = "no such service"
            elif code == errno.EINVAL:
                hint = "the kernel refused its attributes (flags, netmask or timeout)"
        case DelService(key=k):
            what = f"service {k}"
            if code == errno.ESRCH:
                hint = "no such service"
        case AddDest(service=k, dest=d) | EditDest(service=k, dest=d):
            what = f"service {k} destination {d.key}"
            if code == errno.ESRCH:
                hint = "no such service"
            elif code == errno.EEXIST:
                hint = "the destination already exists"
            elif code == errno.ENOENT:
                hint = "no such destination"
            elif code == errno.EINVAL:
                hint = (
                    f"the kernel refused {d.forward.name} forwarding, weight {d.weight} "
                    "or the thresholds for this destination"
                )
        case DelDest(service=k, key=dk):
            what = f"service {k} destination {dk}"
            if code == errno.ESRCH:
                hint = "no such service"
            elif code == errno.ENOENT:
                hint = "no such destination"
    kind = describe(op).split(" ", 1)[0]
    if hint:
        return f"{what}: IPVS refused {kind}: {hint} ({reason})"
    return f"{what}: IPVS refused {kind}: {reason}"


# -- the backend ---------------------------------------------------------------------


class NetlinkBackend:
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
        sock = await self._open(_replymsg)
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
        msg = _packedmsg()
        msg["cmd"] = cmd
        msg["version"] = genl_ipvs.GENL_VERSION
        msg.attrs_bytes = attrs
        return list(await sock._do_request(msg, msg_flags=flags))

    async def _request(self, cmd: int, attrs: list[tuple[str, Any]], flags: int) -> list[Any]:
        sock = await self._socket()
        msg = _ipvsmsg()
        msg["cmd"] = cmd
        msg["version"] = genl_ipvs.GENL_VERSION
        msg["attrs"] = attrs
        return list(await sock._do_request(msg, msg_flags=flags))

    async def _dump(self, with_stats: bool = True) -> tuple[Table, TableStats]:
        services = await self._request(genl_ipvs.IPVS_CMD_GET_SERVICE, [], _DUMP)
        entries: dict[ServiceKey, ServiceEntry] = {}
        service_stats: dict[ServiceKey, Stats] = {}
        dest_stats: dict[tuple[ServiceKey, DestKey], Stats] = {}
        for message in services:
            payload = message_attrs(message).get(_CMD_SERVICE)
            parsed = _service_from(payload, with_stats) if payload is not None else None
            if parsed is None:
                continue
            service, stats = parsed
            key = service.key
            service_stats[key] = stats
            dests: dict[DestKey, Destination] = {}
            try:
                found = await self._packed_request(
                    genl_ipvs.IPVS_CMD_GET_DEST,
                    _nested(_CMD_SERVICE, _packed_service_key(key)),
                    _DUMP,
                )
            except NetlinkError as exc:
                if exc.code != errno.ESRCH:
                    raise
                del service_stats[key]  # deleted by someone since the service dump
                continue
            for dmessage in found:
                dpayload = message_attrs(dmessage).get(_CMD_DEST)
                if dpayload is None:
                    continue
                dparsed = _dest_from(dpayload, service.family, with_stats)
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
                message = _explain(op, exc)
                log.warning("%s", message)
                failed.append(OpFailure(op, message))
        return ApplyResult(len(ops) - len(failed), tuple(failed))

    async def _apply_one(self, op: Op) -> None:
        cmd, flags, attrs = packed_op(op)
        await self._packed_request(cmd, attrs, flags)

    async def info(self) -> IpvsInfo:
        """IPVS version and connection hash table size (ipvsadm's header line)."""
        # The GET_INFO reply's attributes collide with ipvsmsg's, so it gets its own socket.
        sock = await self._open(_infomsg)
        try:
            msg = _infomsg()
            msg["cmd"] = genl_ipvs.IPVS_CMD_GET_INFO
            msg["version"] = genl_ipvs.GENL_VERSION
            msg["attrs"] = []
            replies = list(await sock._do_request(msg, msg_flags=_REQ))
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
            await self._request(genl_ipvs.IPVS_CMD_FLUSH, [], _REQ)
        except NetlinkError as exc:
            raise BackendError(f"cannot flush the IPVS table: {exc}") from exc

    # -- connection timeouts (lvs_timeouts) ---------------------------------------------

    async def get_timeouts(self) -> Timeouts:
        """The connection timeouts in force (`ipvsadm -L --timeout`)."""
        try:
            replies = await self._request(genl_ipvs.IPVS_CMD_GET_CONFIG, [], _REQ)
        except NetlinkError as exc:
            raise BackendError(f"cannot read the IPVS timeouts: {exc}") from exc
        for reply in replies:
            attrs = message_attrs(reply)
            if _CMD_TIMEOUT_TCP in attrs:
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

    # -- connection sync daemon ------------------------------------------------------

    async def sync_daemons(self) -> list[SyncDaemon]:
        """The sync daemons the kernel runs now (at most one master and one backup)."""
        try:
            found = await self._request(genl_ipvs.IPVS_CMD_GET_DAEMON, [], _DUMP)
        except NetlinkError as exc:
            raise BackendError(f"cannot read the IPVS sync daemons: {exc}") from exc
        daemons: list[SyncDaemon] = []
        for message in found:
            payload = message_attrs(message).get(_CMD_DAEMON)
            if payload is not None:
                daemons.append(_daemon_from(payload))
        return daemons

    async def start_sync_daemon(self, daemon: SyncDaemon) -> None:
        """Start a master or backup sync daemon."""
        attrs = [("IPVS_CMD_ATTR_DAEMON", {"attrs": _daemon_attrs(daemon)})]
        try:
            await self._request(genl_ipvs.IPVS_CMD_NEW_DAEMON, attrs, _REQ)
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
            await self._request(genl_ipvs.IPVS_CMD_DEL_DAEMON, attrs, _REQ)
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

    async def close(self) -> None:
        if self._sock is not None:
            sock, self._sock = self._sock, None
            sock.close()


def _same_daemon(running: SyncDaemon, wanted: SyncDaemon) -> bool:
    """Whether a running daemon matches what is wanted (zeros mean kernel defaults)."""
    if (running.interface, running.syncid) != (wanted.interface, wanted.syncid):
        return False
    for field in ("maxlen", "port", "ttl", "group"):
        value = getattr(wanted, field)
        if value and getattr(running, field) != value:
            return False
    return True


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
