"""IPVS requests as pyroute2 attribute lists: services, destinations, sync daemons.

The full service and destination forms are what `hacluster.ipvs.netlink.packed`
reproduces byte for byte (tests compare the two); the daemon form is sent as is.
Does no I/O.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from typing import Any

from hacluster.ipvs.model import Destination, DestKey, Service, ServiceKey
from hacluster.ipvs.netlink.sync import SyncDaemon
from hacluster.ipvs.netlink.uapi import AF, ALL_FLAGS


def netmask_attr(family: int, prefix: int) -> str:
    """IPVS_SVC_ATTR_NETMASK as pyroute2's ip4addr wants it.

    IPv4: the mask itself. IPv6: the kernel reads the prefix length as a host-order u32
    in the same 4 bytes (what ipvsadm sends), so those bytes are written as a dotted quad.
    """
    if family == 4:
        return str(ipaddress.IPv4Network(f"0.0.0.0/{prefix}").netmask)
    return socket.inet_ntoa(struct.pack("=I", prefix))


def service_key_attrs(key: ServiceKey) -> list[tuple[str, Any]]:
    attrs: list[tuple[str, Any]] = [("IPVS_SVC_ATTR_AF", AF[key.family])]
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
def service_attrs(service: Service) -> list[tuple[str, Any]]:
    return [
        *service_key_attrs(service.key),
        ("IPVS_SVC_ATTR_SCHED_NAME", service.scheduler),
        ("IPVS_SVC_ATTR_FLAGS", {"flags": service.kernel_flags, "mask": ALL_FLAGS}),
        ("IPVS_SVC_ATTR_TIMEOUT", service.timeout),
        ("IPVS_SVC_ATTR_NETMASK", netmask_attr(service.family, service.netmask)),
    ]


def dest_key_attrs(key: DestKey) -> list[tuple[str, Any]]:
    return [
        ("IPVS_DEST_ATTR_ADDR_FAMILY", AF[key.address.version]),
        ("IPVS_DEST_ATTR_ADDR", str(key.address)),
        ("IPVS_DEST_ATTR_PORT", key.port),
    ]


def dest_attrs(dest: Destination) -> list[tuple[str, Any]]:
    # The forwarding method goes in every request, edits included: the kernel takes a
    # missing one as "unchanged" on no command, and pyroute2's helpers would send DR.
    return [
        *dest_key_attrs(dest.key),
        ("IPVS_DEST_ATTR_FWD_METHOD", dest.forward.kernel),
        ("IPVS_DEST_ATTR_WEIGHT", dest.weight),
        ("IPVS_DEST_ATTR_U_THRESH", dest.u_threshold),
        ("IPVS_DEST_ATTR_L_THRESH", dest.l_threshold),
    ]


def daemon_attrs(daemon: SyncDaemon) -> list[tuple[str, Any]]:
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

