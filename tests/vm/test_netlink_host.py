"""The netlink backend without the VM: its messages survive pyroute2's encode/decode, the
kernel's refusals read well, and a kernel without IPVS gets a clear message.

These run on the host (no `vm` marker); the kernel-facing behaviour is in test_netlink.py.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import ipaddress
from pathlib import Path

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from hacluster.ipvs.backend import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    EditDest,
    EditService,
    Op,
)
from hacluster.ipvs.model import (
    Destination,
    Forward,
    Protocol,
    Service,
    ServiceFlag,
    Stats,
    Timeouts,
)
from hacluster.ipvs.netlink import (
    NetlinkBackend,
    SyncDaemon,
    SyncState,
    message_attrs,
    packed_op,
    packed_timeouts,
    probe,
    timeouts_from,
)
from hacluster.ipvs.netlink.attrs import (
    daemon_attrs,
    dest_attrs,
    dest_key_attrs,
    netmask_attr,
    service_attrs,
    service_key_attrs,
)
from hacluster.ipvs.netlink.decode import daemon_from, dest_from, netmask_prefix, service_from
from hacluster.ipvs.netlink.explain import explain
from hacluster.ipvs.netlink.messages import IpvsMessage, PackedMessage, ReplyMessage
from hacluster.lvs_sync import SyncBackend

SERVICES = [
    Service(Protocol.TCP, ipaddress.IPv4Address("10.0.0.1"), 80, scheduler="wrr"),
    Service(Protocol.UDP, ipaddress.IPv4Address("10.0.0.2"), 53, scheduler="sh",
            flags=ServiceFlag.SCHED1 | ServiceFlag.SCHED2, timeout=300, netmask=24),
    Service(Protocol.SCTP, ipaddress.IPv6Address("fd00::1"), 3868, scheduler="mh",
            timeout=30, netmask=64),
    Service(fwmark=42, family=4, scheduler="rr", flags=ServiceFlag.ONEPACKET),
    Service(fwmark=43, family=6, scheduler="lblcr", timeout=10, netmask=112),
]  # fmt: skip
DESTS = [
    Destination(ipaddress.IPv4Address("10.0.1.1"), 8080, weight=7, forward=Forward.NAT),
    Destination(ipaddress.IPv4Address("10.0.1.2"), 0, weight=0, forward=Forward.DR,
                u_threshold=1000, l_threshold=10),
    Destination(ipaddress.IPv6Address("fd00::2"), 443, forward=Forward.TUN),
]  # fmt: skip


FIELDS = ("conns", "inpkts", "outpkts", "inbytes", "outbytes", "cps", "inpps", "outpps",
          "inbps", "outbps")  # fmt: skip


def roundtrip(attrs: list[tuple[str, object]]) -> ReplyMessage:
    """Encode with pyroute2, then receive as the backend does (header only + raw attrs)."""
    msg = IpvsMessage()
    msg["cmd"] = 1
    msg["version"] = 1
    msg["attrs"] = attrs
    msg["header"].update({"type": 33, "flags": 2, "sequence_number": 5, "pid": 6})
    msg.encode()
    back = ReplyMessage(b"padding!" + bytes(msg.data), offset=8)
    back.decode()
    assert back["header"]["sequence_number"] == 5 and back["header"]["type"] == 33
    return back


@pytest.mark.parametrize("service", SERVICES, ids=str)
def test_service_messages_survive_encode_and_decode(service: Service) -> None:
    stats = [(f"IPVS_STATS_ATTR_{name.upper()}", 1000 + i) for i, name in enumerate(FIELDS)]
    attrs = [*service_attrs(service), ("IPVS_SVC_ATTR_STATS64", {"attrs": stats})]
    msg = roundtrip([("IPVS_CMD_ATTR_SERVICE", {"attrs": attrs})])
    parsed = service_from(message_attrs(msg)[1])
    assert parsed == (service, Stats(**{name: 1000 + i for i, name in enumerate(FIELDS)}))


@pytest.mark.parametrize("dest", DESTS, ids=lambda d: f"{d.key}-{d.forward.name}")
def test_dest_messages_carry_the_forwarding_method(dest: Destination) -> None:
    attrs = dest_attrs(dest)
    # pyroute2's helpers default to DR; every request must say the method itself.
    assert ("IPVS_DEST_ATTR_FWD_METHOD", dest.forward.kernel) in attrs
    counters = [
        ("IPVS_DEST_ATTR_ACTIVE_CONNS", 3),
        ("IPVS_DEST_ATTR_INACT_CONNS", 4),
        ("IPVS_DEST_ATTR_PERSIST_CONNS", 5),
        ("IPVS_DEST_ATTR_STATS64", {"attrs": [("IPVS_STATS_ATTR_INBYTES", 1 << 40)]}),
    ]
    msg = roundtrip([("IPVS_CMD_ATTR_DEST", {"attrs": attrs + counters})])
    parsed = dest_from(message_attrs(msg)[2], 4)
    stats = Stats(inbytes=1 << 40, activeconns=3, inactconns=4, persistconns=5)
    assert parsed == (dest, stats)


def pyroute2_bytes(cmd: int, flags: int, attrs: list[tuple[str, object]]) -> bytes:
    msg = IpvsMessage()
    msg["cmd"] = cmd
    msg["version"] = 1
    msg["attrs"] = attrs
    msg["header"].update({"type": 33, "flags": flags, "sequence_number": 7, "pid": 99})
    msg.encode()
    return bytes(msg.data)


def packed_bytes(op: Op) -> tuple[int, int, bytes]:
    cmd, flags, attrs = packed_op(op)
    msg = PackedMessage()
    msg["cmd"] = cmd
    msg["version"] = 1
    msg.attrs_bytes = attrs
    msg["header"].update({"type": 33, "flags": flags, "sequence_number": 7, "pid": 99})
    msg.encode()
    return cmd, flags, bytes(msg.data)


@pytest.mark.parametrize("service", SERVICES, ids=str)
def test_packed_requests_are_what_pyroute2_would_send(service: Service) -> None:
    svc = ("IPVS_CMD_ATTR_SERVICE", {"attrs": service_attrs(service)})
    key = ("IPVS_CMD_ATTR_SERVICE", {"attrs": service_key_attrs(service.key)})
    cases: list[tuple[Op, list[tuple[str, object]]]] = [
        (AddService(service), [svc]),
        (EditService(service), [svc]),
        (DelService(service.key), [key]),
    ]
    for dest in DESTS:
        full = ("IPVS_CMD_ATTR_DEST", {"attrs": dest_attrs(dest)})
        cases += [
            (AddDest(service.key, dest), [key, full]),
            (EditDest(service.key, dest), [key, full]),
            (DelDest(service.key, dest.key),
             [key, ("IPVS_CMD_ATTR_DEST", {"attrs": dest_key_attrs(dest.key)})]),
        ]  # fmt: skip
    for op, attrs in cases:
        cmd, flags, data = packed_bytes(op)
        assert data == pyroute2_bytes(cmd, flags, attrs), op


def test_sync_daemon_messages_decode() -> None:
    daemon = SyncDaemon(SyncState.BACKUP, "eth1", syncid=9, maxlen=1400,
                        group=ipaddress.IPv4Address("239.1.1.1"), port=8850, ttl=2)  # fmt: skip
    msg = roundtrip([("IPVS_CMD_ATTR_DAEMON", {"attrs": daemon_attrs(daemon)})])
    assert daemon_from(message_attrs(msg)[3]) == daemon


def test_the_backend_has_what_the_sync_follower_calls() -> None:
    # The daemon hands its backend to lvs_sync.SyncFollower through a cast: no type
    # checker sees whether these are there.
    wanted = [n for n, v in vars(SyncBackend).items() if callable(v) and not n.startswith("_")]
    assert wanted
    for name in wanted:
        assert inspect.iscoroutinefunction(getattr(NetlinkBackend, name, None)), name


def test_netmask_encoding_round_trips_every_prefix() -> None:
    for prefix in range(33):
        assert netmask_prefix(4, netmask_attr(4, prefix)) == prefix
    for prefix in range(129):
        assert netmask_prefix(6, netmask_attr(6, prefix)) == prefix
    assert netmask_attr(4, 24) == "255.255.255.0"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"interface": ""}, "interface"),
        ({"interface": "x" * 16}, "interface"),
        ({"interface": "eth0", "syncid": 256}, "sync id"),
        ({"interface": "eth0", "port": 70000}, "port"),
    ],
)
def test_sync_daemon_rejects_bad_settings(kwargs: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        SyncDaemon(SyncState.MASTER, **kwargs)  # type: ignore[arg-type]


def test_kernel_refusals_become_operator_messages() -> None:
    web = SERVICES[0]
    bad = Service(Protocol.TCP, ipaddress.IPv4Address("10.0.0.1"), 81, scheduler="nosuch")
    cases: list[tuple[Op, int, str, str]] = [
        (AddService(bad), errno.ENOENT, "TCP 10.0.0.1:81", "scheduler 'nosuch'"),
        (EditService(web), errno.ESRCH, "TCP 10.0.0.1:80", "no such service"),
        (AddDest(web.key, DESTS[0]), errno.EEXIST, "10.0.1.1:8080", "already exists"),
        (EditDest(web.key, DESTS[1]), errno.ENOENT, "10.0.1.2:0", "no such destination"),
        (DelDest(web.key, DESTS[0].key), errno.ESRCH, "TCP 10.0.0.1:80", "no such service"),
        (AddDest(web.key, DESTS[2]), errno.EINVAL, "[fd00::2]:443", "TUN forwarding"),
    ]
    for op, code, names, hint in cases:
        message = explain(op, NetlinkError(code))
        assert names in message and hint in message, message


def test_a_kernel_without_ipvs_gets_a_clear_message() -> None:
    reason = asyncio.run(probe())
    if Path("/proc/net/ip_vs").exists():
        # This kernel has IPVS (or loaded it on demand): the backend opens.
        assert reason is None
    else:
        assert reason is not None
        assert "no IPVS" in reason and "dataplane: nftables" in reason


@pytest.mark.parametrize(("timeouts", "attrs"), [
    (Timeouts(900, 30, 60), [("IPVS_CMD_ATTR_TIMEOUT_TCP", 900),
                             ("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN", 30),
                             ("IPVS_CMD_ATTR_TIMEOUT_UDP", 60)]),
    (Timeouts(tcp=7200), [("IPVS_CMD_ATTR_TIMEOUT_TCP", 7200)]),  # 0: not sent, kept
    (Timeouts(udp=5), [("IPVS_CMD_ATTR_TIMEOUT_UDP", 5)]),
])
def test_set_timeouts_request_is_what_pyroute2_would_send(
    timeouts: Timeouts, attrs: list[tuple[str, object]]
) -> None:
    cmd, flags, packed = packed_timeouts(timeouts)
    assert cmd == 12  # IPVS_CMD_SET_CONFIG (include/uapi/linux/ip_vs.h)
    msg = PackedMessage()
    msg["cmd"] = cmd
    msg["version"] = 1
    msg.attrs_bytes = packed
    msg["header"].update({"type": 33, "flags": flags, "sequence_number": 7, "pid": 99})
    msg.encode()
    assert bytes(msg.data) == pyroute2_bytes(cmd, flags, attrs)


def test_get_timeouts_reply_decodes() -> None:
    msg = roundtrip([("IPVS_CMD_ATTR_TIMEOUT_TCP", 900), ("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN", 120),
                     ("IPVS_CMD_ATTR_TIMEOUT_UDP", 300)])
    assert timeouts_from(message_attrs(msg)) == Timeouts(900, 120, 300)
