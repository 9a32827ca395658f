"""Raw IP-protocol-112 sockets: one per interface and family, shared by its VRRP instances."""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from vrrp import packet
from vrrp.record import Record, setfield
from vrrp.slotted import slotted

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger("vrrp.transport")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Linux constants the socket module does not export (linux/in.h).
IP_PKTINFO = 8
IP_MULTICAST_ALL = 49
IPV6_MULTICAST_ALL = 29

VRRP_PROTO = packet.VRRP_PROTO
MCAST_V4 = packet.VRRP_MCAST_V4
MCAST_V6 = packet.VRRP_MCAST_V6
# RFC 5798 5.1.1.3 / 5.1.2.3: sent with TTL / hop limit 255, received ones must carry 255.
VRRP_TTL = packet.VRRP_TTL

_RECV_BUFSIZE = 8192  # the largest advert: 255 IPv6 addresses, 4088 bytes + IP header
_ANC_BUFSIZE = socket.CMSG_SPACE(4) + socket.CMSG_SPACE(20) + socket.CMSG_SPACE(16) + 64
#: Linux's SO_TIMESTAMPNS (= SCM_TIMESTAMPNS): the kernel stamps each datagram on arrival
#: (CLOCK_REALTIME, struct timespec), so timers count from arrival, not from when this
#: process got round to reading it.
SO_TIMESTAMPNS = 35
#: A stamp older than this is not believed (a clock step): the packet counts as new.
_MAX_AGE = 1.0
# At most this many datagrams are read per wake-up so one busy socket cannot starve the loop.
_DRAIN_LIMIT = 64
_LOG_EVERY = 10.0  # seconds between log lines for one kind of dropped packet


class TransportError(Exception):
    """A socket could not be opened or configured (bad interface, no privileges)."""


class ReceivedAdvert(Record):
    """An advertisement that passed every check, with where it came from.

    A `Record`, not a frozen dataclass: a measured start-up cost (vrrp/record.py)."""

    __match_args__ = ("advert", "src", "dst", "ttl", "checksum", "age")
    __slots__ = __match_args__
    advert: packet.Advert
    src: IPAddress
    dst: IPAddress
    ttl: int
    checksum: packet.ChecksumVariant
    age: float  # seconds between its arrival (kernel stamp) and its handling

    def __init__(self, advert: packet.Advert, src: IPAddress, dst: IPAddress, ttl: int,
                 checksum: packet.ChecksumVariant, age: float = 0.0) -> None:
        setfield(self, "advert", advert)
        setfield(self, "src", src)
        setfield(self, "dst", dst)
        setfield(self, "ttl", ttl)
        setfield(self, "checksum", checksum)
        setfield(self, "age", age)


@slotted(frozen=True)
class Peer:
    """A unicast peer and the TTL / hop-limit range accepted from it (keepalived's
    per-peer ``min_ttl``/``max_ttl``; default any)."""

    ip: IPAddress
    min_ttl: int = 0
    max_ttl: int = 255


@slotted(frozen=True)
class Binding:
    """What one instance sends and accepts on its interface.

    Multicast mode (no ``peers``): adverts go to ``group`` (default 224.0.0.18 /
    ff02::12, joined on the interface) and must arrive with TTL / hop limit 255
    (RFC 5798 5.1.1.3, 5.1.2.3), anything less is dropped.

    Unicast mode (``peers`` given): adverts go to each peer with TTL ``unicast_ttl``, the
    group is not joined for this instance, and adverts are accepted only from the
    peers, with the TTL checked against each peer's ``min_ttl``..``max_ttl`` (default
    any, as keepalived): keepalived itself sends unicast IPv6 adverts with hop limit 64,
    so insisting on 255 there would refuse a keepalived peer. Set ``min_ttl: 255`` on a
    peer to get the strict check back. With ``check_unicast_src`` off (keepalived's
    default) a unicast advert from an address that is not a peer is accepted too.

    ``vips`` (when given) are checked against every advert's addresses, as keepalived
    does (RFC 5798 7.1 "MAY"): the count and each VIP must match, else the advert is
    dropped; ``skip_check_adv_addr`` skips that for adverts from the same source as the
    last accepted one.
    """

    vrid: int
    version: int
    family: int  # 4 or 6
    unicast_src: IPAddress | None = None
    peers: tuple[Peer, ...] = ()
    group: IPAddress | None = None
    unicast_ttl: int = VRRP_TTL
    auth_type: int = 0
    auth_pass: str = ""
    # v2 requires the received interval to equal ours (RFC 3768 7.1); v3 backups learn it.
    advert_int: float = 1.0
    pseudo_header: bool = True
    accept_no_pseudo: bool = True
    check_unicast_src: bool = True
    vips: tuple[IPAddress, ...] | None = None  # None: addresses not checked
    skip_check_adv_addr: bool = False

    @property
    def unicast(self) -> bool:
        return bool(self.peers)

    def peer(self, ip: IPAddress) -> Peer | None:
        for p in self.peers:
            if p.ip == ip:
                return p
        return None

    def multicast_group(self) -> IPAddress:
        if self.group is not None:
            return self.group
        return MCAST_V4 if self.family == 4 else MCAST_V6


AdvertHandler = Callable[[ReceivedAdvert], None]


class _RateLimitedLog:
    """Logs the first drop of each reason, then at most one summary per interval."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def drop(self, reason: str, detail: str) -> None:
        now = time.monotonic()
        last = self._last.get(reason)
        if last is not None and now - last < _LOG_EVERY:
            self._suppressed[reason] += 1
            return
        self._last[reason] = now
        more = self._suppressed.pop(reason, 0)
        extra = f" ({more} more since last report)" if more else ""
        log.warning("%s dropped advert: %s: %s%s", self._prefix, reason, detail, extra)


def _ipv4_primary(ifname: str) -> ipaddress.IPv4Address | None:
    """The interface's primary IPv4 address (SIOCGIFADDR returns the primary one)."""
    import fcntl

    siocgifaddr = 0x8915
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            res = fcntl.ioctl(s.fileno(), siocgifaddr, struct.pack("256s", ifname.encode()[:15]))
        except OSError:
            return None
    return ipaddress.IPv4Address(res[20:24])


def _ipv6_link_local(ifname: str) -> ipaddress.IPv6Address | None:
    """The interface's link-local IPv6 address, skipping tentative (DAD) ones."""
    try:
        with open("/proc/net/if_inet6") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or parts[5] != ifname:
            continue
        scope, flags = int(parts[3], 16), int(parts[4], 16)
        if scope == 0x20 and not flags & 0x40:  # IFA_F_TENTATIVE
            return ipaddress.IPv6Address(bytes.fromhex(parts[0]))
    return None


def interface_source(ifname: str, family: int) -> IPAddress | None:
    """Where our adverts on ``ifname`` come from: IPv4 primary address, IPv6 link-local."""
    return _ipv4_primary(ifname) if family == 4 else _ipv6_link_local(ifname)


class Endpoint:
    """One instance's view of its channel: sends its adverts, receives those for its VRID."""

    def __init__(self, channel: Channel, binding: Binding, handler: AdvertHandler) -> None:
        self.channel = channel
        self.binding = binding
        self.handler = handler
        self._source: IPAddress | None = binding.unicast_src
        self.refresh_source()
        self.sent = 0
        self.received = 0
        self.last_src: IPAddress | None = None  # source of the last advert accepted

    @property
    def source(self) -> IPAddress | None:
        """The address our adverts carry: the configured one, or the interface's as last
        read (`refresh_source`, on address changes); None while it has none."""
        return self._source

    @property
    def follows_interface(self) -> bool:
        """True when the source is the interface's own address (no configured source)."""
        return self.binding.unicast_src is None

    def refresh_source(self) -> IPAddress | None:
        """Read the interface's address again (after an address change) and use it."""
        if self.follows_interface:
            self._source = interface_source(self.channel.ifname, self.binding.family)
        return self._source

    def destinations(self) -> tuple[IPAddress, ...]:
        if self.binding.unicast:
            return tuple(p.ip for p in self.binding.peers)
        return (self.binding.multicast_group(),)

    def send(self, advert: packet.Advert) -> None:
        """Encode and send ``advert`` to the multicast group or to every unicast peer."""
        src = self.source
        if src is None:
            self.channel.count("no_source")
            self.channel.rlog.drop(
                "no_source", f"{self.channel.ifname} has no usable address to send from"
            )
            return
        for dst in self.destinations():
            data = packet.encode(advert, src, dst, pseudo_header=self.binding.pseudo_header)
            ttl = self.binding.unicast_ttl if self.binding.unicast else VRRP_TTL
            if self.channel.sendto(data, src, dst, ttl):
                self.sent += 1

    def close(self) -> None:
        self.channel.unregister(self)


class Channel:
    """A raw VRRP socket bound to one interface and family, dispatching adverts by VRID."""

    def __init__(self, ifname: str, family: int, loop: asyncio.AbstractEventLoop) -> None:
        self.ifname = ifname
        self.family = family
        self.loop = loop
        self.rlog = _RateLimitedLog(f"[{ifname}/v{'4' if family == 4 else '6'}]")
        self.counts: Counter[str] = Counter()
        self._endpoints: dict[int, Endpoint] = {}
        self._joined: set[IPAddress] = set()
        try:
            self.ifindex = socket.if_nametoindex(ifname)
        except OSError as exc:
            raise TransportError(f"interface {ifname!r} not found") from exc
        self.sock = self._open()
        loop.add_reader(self.sock.fileno(), self._on_readable)

    def _open(self) -> socket.socket:
        af = socket.AF_INET if self.family == 4 else socket.AF_INET6
        try:
            sock = socket.socket(af, socket.SOCK_RAW, VRRP_PROTO)
        except OSError as exc:
            raise TransportError(f"cannot open raw VRRP socket: {exc.strerror}") from exc
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.ifname.encode())
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            if self.family == 4:
                ip = socket.IPPROTO_IP
                sock.setsockopt(ip, socket.IP_TTL, VRRP_TTL)
                sock.setsockopt(ip, socket.IP_MULTICAST_TTL, VRRP_TTL)
                sock.setsockopt(ip, socket.IP_MULTICAST_LOOP, 0)
                # Only groups joined on this socket, not every group joined on the host.
                sock.setsockopt(ip, IP_MULTICAST_ALL, 0)
                mreqn = struct.pack("=4s4si", b"\0" * 4, b"\0" * 4, self.ifindex)
                sock.setsockopt(ip, socket.IP_MULTICAST_IF, mreqn)
            else:
                ip6 = socket.IPPROTO_IPV6
                sock.setsockopt(ip6, socket.IPV6_UNICAST_HOPS, VRRP_TTL)
                sock.setsockopt(ip6, socket.IPV6_MULTICAST_HOPS, VRRP_TTL)
                sock.setsockopt(ip6, socket.IPV6_MULTICAST_LOOP, 0)
                sock.setsockopt(ip6, IPV6_MULTICAST_ALL, 0)
                sock.setsockopt(ip6, socket.IPV6_MULTICAST_IF, self.ifindex)
                sock.setsockopt(ip6, socket.IPV6_RECVHOPLIMIT, 1)
                sock.setsockopt(ip6, socket.IPV6_RECVPKTINFO, 1)
        except OSError as exc:
            sock.close()
            raise TransportError(f"cannot configure VRRP socket on {self.ifname}: {exc}") from exc
        return sock

    def _join(self, group: IPAddress) -> None:
        if group in self._joined:
            return
        try:
            if self.family == 4:
                mreqn = struct.pack("=4s4si", group.packed, b"\0" * 4, self.ifindex)
                self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
            else:
                mreq6 = group.packed + struct.pack("=I", self.ifindex)
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq6)
        except OSError as exc:
            raise TransportError(f"cannot join {group} on {self.ifname}: {exc}") from exc
        self._joined.add(group)

    # -- registration ---------------------------------------------------------------

    def register(self, binding: Binding, handler: AdvertHandler) -> Endpoint:
        if binding.family != self.family:
            raise TransportError(f"VRID {binding.vrid}: family {binding.family} on a "
                                 f"v{self.family} channel")
        if binding.vrid in self._endpoints:
            raise TransportError(f"VRID {binding.vrid} is already in use on {self.ifname} "
                                 f"(IPv{self.family})")
        if not binding.unicast:
            self._join(binding.multicast_group())
        endpoint = Endpoint(self, binding, handler)
        self._endpoints[binding.vrid] = endpoint
        return endpoint

    def unregister(self, endpoint: Endpoint) -> None:
        if self._endpoints.get(endpoint.binding.vrid) is endpoint:
            del self._endpoints[endpoint.binding.vrid]

    @property
    def empty(self) -> bool:
        return not self._endpoints

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()

    def count(self, reason: str) -> None:
        self.counts[reason] += 1

    # -- sending --------------------------------------------------------------------

    def sendto(self, data: bytes, src: IPAddress, dst: IPAddress, ttl: int = VRRP_TTL) -> bool:
        try:
            if self.family == 4:
                pktinfo = struct.pack("=i4s4s", self.ifindex, src.packed, b"\0" * 4)
                anc = [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)]
                if ttl != VRRP_TTL:
                    anc.append((socket.IPPROTO_IP, socket.IP_TTL, struct.pack("=i", ttl)))
                self.sock.sendmsg([data], anc, 0, (str(dst), 0))
            else:
                pktinfo = src.packed + struct.pack("=I", self.ifindex)
                anc = [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)]
                if ttl != VRRP_TTL:
                    anc.append((socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT, struct.pack("=i", ttl)))
                self.sock.sendmsg([data], anc, 0, (str(dst), 0, 0, self.ifindex))
        except OSError as exc:
            self.count("send_error")
            reason = errno.errorcode.get(exc.errno or 0, "error")
            self.rlog.drop("send_error", f"sending to {dst} from {src} failed: {reason}")
            return False
        self.count("sent")
        return True

    # -- receiving ------------------------------------------------------------------

    def _on_readable(self) -> None:
        for _ in range(_DRAIN_LIMIT):
            try:
                data, ancdata, _flags, addr = self.sock.recvmsg(_RECV_BUFSIZE, _ANC_BUFSIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.count("recv_error")
                self.rlog.drop("recv_error", str(exc))
                return
            try:
                self.receive(data, ancdata, addr)
            except Exception:  # a bug must not take the socket's reader down with it
                self.count("internal_error")
                log.exception("[%s] error handling a received advert", self.ifname)

    def receive(
        self,
        data: bytes,
        ancdata: Iterable[tuple[int, int, bytes]],
        addr: tuple[object, ...],
    ) -> None:
        """Check one received datagram and hand it to the instance owning its VRID."""
        self.count("received")
        parsed = self._split(data, ancdata, addr)
        if parsed is None:
            return
        payload, src, dst, ttl = parsed
        try:
            decoded = packet.decode(payload, src, dst)
        except packet.DecodeError as exc:
            self._drop(exc.reason.value, f"from {src}: {exc}")
            return
        advert = decoded.advert
        endpoint = self._endpoints.get(advert.vrid)
        if endpoint is None:
            self._drop("unknown_vrid", f"VRID {advert.vrid} from {src}")
            return
        b = endpoint.binding
        if b.unicast:
            peer = b.peer(src)
            if peer is None and b.check_unicast_src:
                self._drop("unknown_peer", f"VRID {advert.vrid} from {src}, not a unicast peer")
                return
            if peer is not None and not peer.min_ttl <= ttl <= peer.max_ttl:
                self._drop("ttl", f"VRID {advert.vrid} from {src} with TTL {ttl}")
                return
        elif ttl != VRRP_TTL:
            self._drop("ttl", f"VRID {advert.vrid} from {src} with TTL {ttl}, not 255")
            return
        if advert.version != b.version:
            self._drop(
                "version_mismatch",
                f"VRID {advert.vrid} from {src}: version {advert.version}, ours {b.version}",
            )
            return
        if (
            decoded.checksum is packet.ChecksumVariant.V3_NO_PSEUDO
            and not b.accept_no_pseudo
        ):
            self._drop("bad_checksum", f"VRID {advert.vrid} from {src}: no pseudo-header")
            return
        if advert.version == 2:
            try:
                packet.check_auth(advert, b.auth_type, b.auth_pass)
            except packet.DecodeError as exc:
                self._drop("auth", f"VRID {advert.vrid} from {src}: {exc}")
                return
            if abs(advert.max_advert_int - b.advert_int) > 1e-9:
                self._drop(
                    "interval_mismatch",
                    f"VRID {advert.vrid} from {src}: interval {advert.max_advert_int:g}s, "
                    f"ours {b.advert_int:g}s",
                )
                return
        if (
            b.vips is not None
            and not (b.skip_check_adv_addr and src == endpoint.last_src)
            and (len(advert.addresses) != len(b.vips) or not set(b.vips) <= set(advert.addresses))
        ):
            self._drop("address_mismatch", f"VRID {advert.vrid} from {src}: addresses "
                       f"{', '.join(map(str, advert.addresses)) or 'none'}, ours "
                       f"{', '.join(map(str, b.vips)) or 'none'}")
            return
        endpoint.last_src = src
        endpoint.received += 1
        self.count("accepted")
        endpoint.handler(ReceivedAdvert(advert, src, dst, ttl, decoded.checksum,
                                        arrival_age(ancdata)))

    def _drop(self, reason: str, detail: str) -> None:
        self.count(reason)
        self.rlog.drop(reason, detail)

    def _split(
        self,
        data: bytes,
        ancdata: Iterable[tuple[int, int, bytes]],
        addr: tuple[object, ...],
    ) -> tuple[bytes, IPAddress, IPAddress, int] | None:
        """Payload, source, destination and TTL of a datagram, or None (counted) if short."""
        if self.family == 4:
            # IPv4 raw sockets deliver the IP header: TTL and addresses are read from it.
            if len(data) < 20 or data[0] >> 4 != 4:
                self._drop("truncated", f"{len(data)} bytes, no IPv4 header")
                return None
            ihl = (data[0] & 0x0F) * 4
            total = int.from_bytes(data[2:4], "big")
            if ihl < 20 or len(data) < ihl:
                self._drop("truncated", "bad IPv4 header length")
                return None
            end = total if ihl <= total <= len(data) else len(data)
            src4 = ipaddress.IPv4Address(data[12:16])
            dst4 = ipaddress.IPv4Address(data[16:20])
            return data[ihl:end], src4, dst4, data[8]
        ttl = -1
        dst6: ipaddress.IPv6Address | None = None
        for level, ctype, cdata in ancdata:
            if level != socket.IPPROTO_IPV6:
                continue
            if ctype == socket.IPV6_HOPLIMIT and len(cdata) >= 4:
                ttl = struct.unpack("=i", cdata[:4])[0]
            elif ctype == socket.IPV6_PKTINFO and len(cdata) >= 16:
                dst6 = ipaddress.IPv6Address(cdata[:16])
        if ttl < 0 or dst6 is None:
            self._drop("no_ancillary", "hop limit or destination missing")
            return None
        src6 = ipaddress.IPv6Address(str(addr[0]).split("%", 1)[0])
        return data, src6, dst6, ttl


def arrival_age(ancdata: Iterable[tuple[int, int, bytes]], now: float | None = None) -> float:
    """Seconds since the kernel stamped the datagram (SO_TIMESTAMPNS), 0 without a stamp;
    `now` is the wall-clock time (default: now)."""
    for level, ctype, cdata in ancdata:
        if level == socket.SOL_SOCKET and ctype == SO_TIMESTAMPNS and len(cdata) >= 16:
            sec, nsec = struct.unpack("=qq", cdata[:16])
            age = (time.time() if now is None else now) - (sec + nsec / 1e9)
            return age if 0.0 <= age <= _MAX_AGE else 0.0
    return 0.0


class Transport:
    """All VRRP channels of a process, opened on demand, one per interface and family."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._channels: dict[tuple[str, int], Channel] = {}

    def register(self, ifname: str, binding: Binding, handler: AdvertHandler) -> Endpoint:
        key = (ifname, binding.family)
        channel = self._channels.get(key)
        if channel is None:
            channel = Channel(ifname, binding.family, self.loop)
            self._channels[key] = channel
        return channel.register(binding, handler)

    def stats(self) -> dict[str, dict[str, int]]:
        """Counters per channel, keyed ``IFNAME/4`` or ``IFNAME/6``."""
        return {f"{i}/{f}": dict(c.counts) for (i, f), c in self._channels.items()}

    def totals(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for channel in self._channels.values():
            total.update(channel.counts)
        return dict(total)

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()
