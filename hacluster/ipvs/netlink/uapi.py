"""Numbers and layouts of IPVS over generic netlink: flags, headers, attribute numbers.

From include/uapi/linux/ip_vs.h and the netlink headers. Does no I/O.
"""

from __future__ import annotations

import socket
import struct

from pyroute2.netlink import (
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_EXCL,
    NLM_F_REQUEST,
)

AF = {4: socket.AF_INET, 6: socket.AF_INET6}
FAMILY: dict[int, int] = {int(socket.AF_INET): 4, int(socket.AF_INET6): 6}
FWD_MASK = 0x7
FWD_LOCALNODE = 1  # IP_VS_CONN_F_LOCALNODE: the kernel's mark for a local real server
REQ = NLM_F_REQUEST | NLM_F_ACK
CREATE = REQ | NLM_F_CREATE | NLM_F_EXCL
DUMP = NLM_F_REQUEST | NLM_F_DUMP
ALL_FLAGS = 0xFFFFFFFF

NLA_HDR = struct.Struct("=HH")
NLMSG_HDR = struct.Struct("=IHHII")
GENL_HDR = struct.Struct("=BBH")
U16 = struct.Struct("=H")
U32 = struct.Struct("=I")
BE16 = struct.Struct(">H")
FLAGS = struct.Struct("=II")
NLA_TYPE_MASK = 0x3FFF

# Attribute numbers (include/uapi/linux/ip_vs.h).
CMD_SERVICE, CMD_DEST, CMD_DAEMON = 1, 2, 3
CMD_TIMEOUT_TCP, CMD_TIMEOUT_TCP_FIN, CMD_TIMEOUT_UDP = 4, 5, 6
SVC_AF, SVC_PROTOCOL, SVC_ADDR, SVC_PORT, SVC_FWMARK = 1, 2, 3, 4, 5
SVC_SCHED, SVC_FLAGS, SVC_TIMEOUT, SVC_NETMASK = 6, 7, 8, 9
SVC_STATS64 = 12
DEST_ADDR, DEST_PORT, DEST_FWD, DEST_WEIGHT, DEST_UTH, DEST_LTH = 1, 2, 3, 4, 5, 6
DEST_ACTIVE, DEST_INACT, DEST_PERSIST = 7, 8, 9
DEST_AF, DEST_STATS64 = 11, 12
DAEMON_STATE, DAEMON_IFN, DAEMON_SYNCID, DAEMON_MAXLEN = 1, 2, 3, 4
DAEMON_GROUP, DAEMON_GROUP6, DAEMON_PORT, DAEMON_TTL = 5, 6, 7, 8
