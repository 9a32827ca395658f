"""Record VRRP adverts, gratuitous ARPs and neighbour advertisements with kernel timestamps.

tcpdump runs in an observer namespace and writes a nanosecond pcap (flushed per packet);
the file is read incrementally and the few header fields measured are read directly.
Timestamps are the kernel's receive times on the observer's interface (wall-clock
based, so only differences between frames of one capture are meaningful).
"""

from __future__ import annotations

import ipaddress
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hacluster.lab.netns import Lab, LabError, LabProcess, Netns

# VRRP, ARP, and ICMPv6 neighbour advertisements (type 136, no extension headers).
CAPTURE_FILTER = "arp or (ip proto 112) or (ip6 proto 112) or (icmp6 and ip6[40] == 136)"

_PCAP_NS_MAGIC = 0xA1B23C4D
_PCAP_US_MAGIC = 0xA1B2C3D4


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured frame of interest."""

    time: float  # kernel receive timestamp, seconds (ns resolution)
    kind: str  # "vrrp" | "arp" | "na"
    src_mac: str
    src: str  # IP source of the packet (ARP: sender protocol address)
    ttl: int | None = None  # IPv4 TTL / IPv6 hop limit
    version: int | None = None  # VRRP version
    vrid: int | None = None
    priority: int | None = None
    advert_int: float | None = None  # seconds (v2: whole seconds; v3: centiseconds / 100)
    addresses: tuple[str, ...] = ()  # VRRP address list
    target: str | None = None  # ARP target / NA target address
    gratuitous: bool = False  # ARP with sender == target, or unsolicited NA

    @property
    def is_advert(self) -> bool:
        return self.kind == "vrrp"


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def _dissect(ts: float, data: bytes) -> Frame | None:
    """The fields we measure, read straight from the headers.

    Only a handful of fixed offsets are needed, and at 10 ms adverts a capture sees
    hundreds of frames a second: a full scapy dissection (~1 ms a frame on a busy
    machine) would fall behind. Anything unexpected is simply not a frame of interest.
    """
    if len(data) < 14:
        return None
    mac = _mac(data[6:12])
    ethertype = int.from_bytes(data[12:14], "big")
    off = 14
    if ethertype == 0x8100 and len(data) >= 18:  # one VLAN tag
        ethertype = int.from_bytes(data[16:18], "big")
        off = 18
    if ethertype == 0x0806:
        if len(data) < off + 28:
            return None
        psrc = str(ipaddress.IPv4Address(data[off + 14 : off + 18]))
        pdst = str(ipaddress.IPv4Address(data[off + 24 : off + 28]))
        return Frame(ts, "arp", mac, psrc, target=pdst, gratuitous=psrc == pdst)
    if ethertype == 0x0800:
        if len(data) < off + 20:
            return None
        ihl = (data[off] & 0x0F) * 4
        ttl, proto = data[off + 8], data[off + 9]
        src = str(ipaddress.IPv4Address(data[off + 12 : off + 16]))
        payload = data[off + ihl :]
        return _vrrp(ts, mac, src, ttl, payload, 4) if proto == 112 else None
    if ethertype == 0x86DD:
        if len(data) < off + 40:
            return None
        nh, hlim = data[off + 6], data[off + 7]
        src = str(ipaddress.IPv6Address(data[off + 8 : off + 24]))
        payload = data[off + 40 :]
        if nh == 112:
            return _vrrp(ts, mac, src, hlim, payload, 6)
        if nh == 58 and len(payload) >= 24 and payload[0] == 136:
            solicited = bool(payload[4] & 0x40)
            target = str(ipaddress.IPv6Address(payload[8:24]))
            return Frame(ts, "na", mac, src, ttl=hlim, target=target, gratuitous=not solicited)
    return None


def _vrrp(ts: float, mac: str, src: str, ttl: int, payload: bytes, family: int) -> Frame | None:
    if len(payload) < 8:
        return None
    version = payload[0] >> 4
    vrid, priority, count = payload[1], payload[2], payload[3]
    if version == 3:
        interval = (int.from_bytes(payload[4:6], "big") & 0x0FFF) / 100.0
    elif version == 2:
        interval = float(payload[5])
    else:
        return None
    size = 4 if family == 4 else 16
    raw = payload[8 : 8 + count * size]
    addresses = tuple(
        str(ipaddress.IPv4Address(raw[i : i + 4]) if size == 4
            else ipaddress.IPv6Address(raw[i : i + 16]))
        for i in range(0, len(raw) - size + 1, size)
    )
    return Frame(ts, "vrrp", mac, src, ttl=ttl, version=version, vrid=vrid,
                 priority=priority, advert_int=interval, addresses=addresses)


class Capture:
    """tcpdump on an interface of an observer namespace, read as `Frame`s."""

    def __init__(self, lab: Lab, netns: Netns, interface: str, *, name: str = "cap",
                 bpf: str = CAPTURE_FILTER) -> None:
        self.lab = lab
        self.netns = netns
        self.interface = interface
        self.path: Path = lab.workdir / f"{name}-{netns.role}-{interface}.pcap"
        self.bpf = bpf
        self.process: LabProcess | None = None
        self._frames: list[Frame] = []
        self._offset = 0
        self._ns_resolution = True
        self._endian = "<"

    def start(self, timeout: float = 5.0) -> None:
        """Start tcpdump and wait until it listens."""
        # --immediate-mode: without it libpcap hands packets over in blocks, up to ~0.5 s late.
        argv = ["tcpdump", "-i", self.interface, "-n", "-U", "--immediate-mode", "-s", "512",
                "-Z", "root", "--time-stamp-precision=nano", "-w", str(self.path), self.bpf]
        self.process = self.lab.start(self.netns, argv, log_name=self.path.stem)
        deadline = time.monotonic() + timeout
        while "listening on" not in self.process.output():
            if not self.process.running():
                raise LabError(f"tcpdump exited: {self.process.output().strip()}")
            if time.monotonic() > deadline:
                raise LabError(f"tcpdump not listening after {timeout}s")
            time.sleep(0.01)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(2.0)
        self.poll()

    def poll(self) -> list[Frame]:
        """Read what tcpdump wrote since the last call; return all frames so far."""
        if not self.path.exists():
            return self._frames
        with self.path.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        pos = 0
        if self._offset == 0:
            if len(data) < 24:
                return self._frames
            magic_le = struct.unpack("<I", data[:4])[0]
            magic_be = struct.unpack(">I", data[:4])[0]
            if magic_le in (_PCAP_NS_MAGIC, _PCAP_US_MAGIC):
                self._endian, magic = "<", magic_le
            elif magic_be in (_PCAP_NS_MAGIC, _PCAP_US_MAGIC):
                self._endian, magic = ">", magic_be
            else:
                raise LabError(f"{self.path}: not a pcap file")
            self._ns_resolution = magic == _PCAP_NS_MAGIC
            pos = 24
        divisor = 1e9 if self._ns_resolution else 1e6
        header = struct.Struct(self._endian + "IIII")
        while pos + 16 <= len(data):
            sec, frac, caplen, _len = header.unpack_from(data, pos)
            if pos + 16 + caplen > len(data):
                break  # a record still being written
            frame = _dissect(sec + frac / divisor, data[pos + 16 : pos + 16 + caplen])
            if frame is not None:
                self._frames.append(frame)
            pos += 16 + caplen
        self._offset += pos
        return self._frames

    def frames(self) -> list[Frame]:
        return list(self.poll())

    def mark(self) -> int:
        """An index into the frame list: frames captured from now on come after it."""
        return len(self.poll())

    def wait_for(self, predicate: Callable[[Frame], bool], timeout: float, *,
                 since: int = 0) -> Frame:
        """The first frame at index >= `since` matching `predicate`, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        checked = since
        while True:
            frames = self.poll()
            for frame in frames[checked:]:
                if predicate(frame):
                    return frame
            checked = max(checked, len(frames))
            if time.monotonic() > deadline:
                raise LabError(f"no matching frame within {timeout}s on {self.netns}:"
                               f"{self.interface} ({len(frames) - since} new frames)")
            time.sleep(0.005)

    def adverts(self, *, vrid: int | None = None, src: str | None = None,
                since: int = 0) -> list[Frame]:
        """VRRP adverts captured at index >= `since`, optionally filtered."""
        return [f for f in self.poll()[since:] if f.kind == "vrrp"
                and (vrid is None or f.vrid == vrid) and (src is None or f.src == src)]
