"""pyroute2 message classes of the IPVS family: requests, packed requests, replies.

pyroute2 frames and routes the messages; `PackedMessage` sends attributes packed by
`hacluster.ipvs.netlink.packed`, and `ReplyMessage` decodes only the netlink header of a
reply (`hacluster.ipvs.netlink.decode` reads its attributes).
"""

from __future__ import annotations

from pyroute2.netlink import genlmsg, nla
from pyroute2.netlink.generic import ipvs as genl_ipvs

from hacluster.ipvs.netlink.uapi import GENL_HDR, NLMSG_HDR


class DaemonAttrs(nla):  # type: ignore[misc]  # pyroute2 is untyped
    """The sync-daemon attribute's nested attributes (IPVS_DAEMON_ATTR_*)."""

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


class IpvsMessage(genl_ipvs.ipvsmsg):  # type: ignore[misc]
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
    daemon = DaemonAttrs


class InfoMessage(genlmsg):  # type: ignore[misc]
    """Reply to IPVS_CMD_GET_INFO: its top-level attributes are not ipvsmsg's."""

    nla_map = (
        ("IPVS_INFO_ATTR_UNSPEC", "none"),
        ("IPVS_INFO_ATTR_VERSION", "uint32"),
        ("IPVS_INFO_ATTR_CONN_TAB_SIZE", "uint32"),
    )


class PackedMessage(IpvsMessage):
    """A request whose attributes were packed by `packed_op`; pyroute2 fills the header."""

    attrs_bytes = b""

    def encode(self) -> None:
        header = self["header"]
        body = GENL_HDR.pack(self["cmd"], self["version"], 0) + self.attrs_bytes
        self.data = bytearray(
            NLMSG_HDR.pack(
                NLMSG_HDR.size + len(body),
                header["type"],
                header["flags"],
                header["sequence_number"],
                header["pid"],
            )
            + body
        )


class ReplyMessage(IpvsMessage):
    """Replies on the IPVS family: only the netlink header is decoded (what pyroute2's
    socket needs to route them); `message_attrs` reads the attributes."""

    def decode(self) -> None:
        length, kind, flags, seq, pid = NLMSG_HDR.unpack_from(self.data, self.offset)
        self["header"] = {
            "length": length,
            "type": kind,
            "flags": flags,
            "sequence_number": seq,
            "pid": pid,
        }
        self.decoded = True

