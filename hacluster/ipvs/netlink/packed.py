"""IPVS requests packed with struct: the fast encoding of the requests that change the table.

pyroute2's generic encoder costs about a thousand Python calls per IPVS request, which
dominates a reconcile of thousands of destinations. Requests that change the table are
therefore packed here with struct, to the same bytes pyroute2 produces (a test checks
that), and sent through pyroute2's socket as usual. Does no I/O.
"""

from __future__ import annotations

import socket

from pyroute2.netlink.generic import ipvs as genl_ipvs

from hacluster.ipvs.backend import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    EditDest,
    EditService,
    Op,
)
from hacluster.ipvs.model import Destination, DestKey, Service, ServiceKey, Timeouts
from hacluster.ipvs.netlink.attrs import netmask_attr
from hacluster.ipvs.netlink.uapi import (
    AF,
    ALL_FLAGS,
    BE16,
    CMD_DEST,
    CMD_SERVICE,
    CMD_TIMEOUT_TCP,
    CMD_TIMEOUT_TCP_FIN,
    CMD_TIMEOUT_UDP,
    CREATE,
    DEST_ADDR,
    DEST_AF,
    DEST_FWD,
    DEST_LTH,
    DEST_PORT,
    DEST_UTH,
    DEST_WEIGHT,
    FLAGS,
    NLA_HDR,
    REQ,
    SVC_ADDR,
    SVC_AF,
    SVC_FLAGS,
    SVC_FWMARK,
    SVC_NETMASK,
    SVC_PORT,
    SVC_PROTOCOL,
    SVC_SCHED,
    SVC_TIMEOUT,
    U16,
    U32,
)


def _nla(kind: int, payload: bytes) -> bytes:
    size = NLA_HDR.size + len(payload)
    return NLA_HDR.pack(size, kind) + payload + b"\0" * (-size % 4)


def packed_service_key(key: ServiceKey) -> bytes:
    parts = [_nla(SVC_AF, U16.pack(AF[key.family]))]
    if key.fwmark:
        parts.append(_nla(SVC_FWMARK, U32.pack(key.fwmark)))
    else:
        assert key.protocol is not None and key.address is not None
        parts += [
            _nla(SVC_PROTOCOL, U16.pack(key.protocol.value)),
            _nla(SVC_ADDR, key.address.packed),
            _nla(SVC_PORT, BE16.pack(key.port)),
        ]
    return b"".join(parts)


def _packed_service(service: Service) -> bytes:
    return b"".join(
        (
            packed_service_key(service.key),
            _nla(SVC_SCHED, service.scheduler.encode() + b"\0"),
            _nla(SVC_FLAGS, FLAGS.pack(service.kernel_flags, ALL_FLAGS)),
            _nla(SVC_TIMEOUT, U32.pack(service.timeout)),
            _nla(
                SVC_NETMASK,
                socket.inet_aton(netmask_attr(service.family, service.netmask)),
            ),
        )
    )


def _packed_dest_key(key: DestKey) -> bytes:
    return b"".join(
        (
            _nla(DEST_AF, U16.pack(AF[key.address.version])),
            _nla(DEST_ADDR, key.address.packed),
            _nla(DEST_PORT, BE16.pack(key.port)),
        )
    )


def _packed_dest(dest: Destination) -> bytes:
    return b"".join(
        (
            _packed_dest_key(dest.key),
            _nla(DEST_FWD, U32.pack(dest.forward.kernel)),
            _nla(DEST_WEIGHT, U32.pack(dest.weight)),
            _nla(DEST_UTH, U32.pack(dest.u_threshold)),
            _nla(DEST_LTH, U32.pack(dest.l_threshold)),
        )
    )


def nested(kind: int, payload: bytes) -> bytes:
    # Without NLA_F_NESTED, as pyroute2 and ipvsadm send it (IPVS parses either way).
    return _nla(kind, payload)


def packed_op(op: Op) -> tuple[int, int, bytes]:
    """(IPVS command, netlink flags, attributes) of the request that carries out `op`."""
    c = genl_ipvs
    match op:
        case AddService(service=s):
            return c.IPVS_CMD_NEW_SERVICE, CREATE, nested(CMD_SERVICE, _packed_service(s))
        case EditService(service=s):
            return c.IPVS_CMD_SET_SERVICE, REQ, nested(CMD_SERVICE, _packed_service(s))
        case DelService(key=k):
            return c.IPVS_CMD_DEL_SERVICE, REQ, nested(CMD_SERVICE, packed_service_key(k))
        case AddDest(service=k, dest=d):
            attrs = nested(CMD_SERVICE, packed_service_key(k)) + nested(
                CMD_DEST, _packed_dest(d)
            )
            return c.IPVS_CMD_NEW_DEST, CREATE, attrs
        case EditDest(service=k, dest=d):
            attrs = nested(CMD_SERVICE, packed_service_key(k)) + nested(
                CMD_DEST, _packed_dest(d)
            )
            return c.IPVS_CMD_SET_DEST, REQ, attrs
        case DelDest(service=k, key=dk):
            attrs = nested(CMD_SERVICE, packed_service_key(k)) + nested(
                CMD_DEST, _packed_dest_key(dk)
            )
            return c.IPVS_CMD_DEL_DEST, REQ, attrs
    raise TypeError(f"not an IPVS operation: {op!r}")


def packed_timeouts(timeouts: Timeouts) -> tuple[int, int, bytes]:
    """The IPVS_CMD_SET_CONFIG request of `ipvsadm --set TCP TCPFIN UDP`: only the
    non-zero timeouts are sent (the kernel keeps the others, as for a 0)."""
    attrs = b"".join(
        _nla(kind, U32.pack(value))
        for kind, value in (
            (CMD_TIMEOUT_TCP, timeouts.tcp),
            (CMD_TIMEOUT_TCP_FIN, timeouts.tcpfin),
            (CMD_TIMEOUT_UDP, timeouts.udp),
        )
        if value
    )
    return genl_ipvs.IPVS_CMD_SET_CONFIG, REQ, attrs
