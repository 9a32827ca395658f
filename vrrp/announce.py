"""Gratuitous ARP and unsolicited neighbour advertisements for VIPs of a new master."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from vrrp import frames
from vrrp.addresses import Vip
from vrrp.slotted import slotted

log = logging.getLogger("vrrp.announce")


@slotted(frozen=True)
class AnnounceParams:
    """keepalived's garp_master_* knobs (the same ones drive IPv6 neighbour adverts)."""

    delay: float = 5.0  # garp_master_delay: second burst this long after the first; 0 = none
    repeat: int = 5  # garp_master_repeat: frames per VIP in each burst
    refresh: float = 0.0  # garp_master_refresh: repeat a burst this often while master; 0 = off
    refresh_repeat: int = 1  # garp_master_refresh_repeat
    interval: float = 0.0  # garp_interval: pause between frames of one burst
    # A master heard a lower-priority advert (keepalived's garp_lower_prio_*): this many
    # frames per VIP at once and again after lower_prio_delay; 0 frames = none, 0 s = once.
    lower_prio_repeat: int = 5
    lower_prio_delay: float = 5.0


def interface_mac(dev: str) -> str:
    with open(f"/sys/class/net/{dev}/address") as f:
        return f.read().strip()


def _ipv6_forwarding(dev: str) -> bool:
    try:
        with open(f"/proc/sys/net/ipv6/conf/{dev}/forwarding") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def build_frame(vip: Vip, mac: str, router: bool = False) -> bytes:
    """One announcement frame for ``vip`` from ``mac`` (`vrrp.frames`).

    IPv4: ARP request "who-has VIP tell VIP" to broadcast, as keepalived sends it.
    IPv6: unsolicited NA (RFC 4861 7.2.6) to all-nodes, override set, solicited clear.
    """
    ip = vip.address.ip
    if isinstance(ip, ipaddress.IPv4Address):
        return frames.gratuitous_arp(ip, mac)
    return frames.unsolicited_na(ip, mac, router)


class FrameSender(Protocol):
    """Sends frames on interfaces and says their hardware addresses (FrameSockets)."""

    def send(self, dev: str, frame: bytes) -> bool: ...

    def mac(self, dev: str) -> str: ...


class FrameSockets:
    """AF_PACKET sockets, one per interface, shared by all announcers of a process."""

    def __init__(self) -> None:
        self._socks: dict[str, socket.socket] = {}
        self.counts: Counter[str] = Counter()

    def _socket(self, dev: str) -> socket.socket:
        sock = self._socks.get(dev)
        if sock is None:
            # Protocol 0: a send-only socket; the kernel queues nothing to it.
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            try:
                sock.setblocking(False)
                sock.bind((dev, 0))
            except OSError:
                sock.close()
                raise
            self._socks[dev] = sock
        return sock

    def mac(self, dev: str) -> str:
        """The interface's hardware address now (one getsockname: the kernel reads it
        from the device at each call), as ``aa:bb:cc:dd:ee:ff``."""
        for _ in range(2):
            try:
                addr = self._socket(dev).getsockname()[4]
            except OSError:
                break
            if addr:
                return ":".join(f"{b:02x}" for b in addr)
            self._drop(dev)  # bound to an interface since removed: bind afresh
        return interface_mac(dev)  # raises OSError if there is no such interface

    def _drop(self, dev: str) -> None:
        sock = self._socks.pop(dev, None)
        if sock is not None:
            sock.close()

    def send(self, dev: str, frame: bytes) -> bool:
        try:
            self._socket(dev).send(frame)
        except OSError as exc:
            if exc.errno in (errno.ENXIO, errno.ENODEV):
                self._drop(dev)  # the interface went: the next send binds afresh
            self.counts["send_error"] += 1
            log.warning("cannot send an announcement on %s: %s", dev, exc)
            return False
        return True

    def close(self) -> None:
        for sock in self._socks.values():
            sock.close()
        self._socks.clear()


class Announcer:
    """Announces one instance's VIPs while it is master: a burst at once, a second burst
    after ``delay``, then a refresh burst every ``refresh`` seconds until stopped.

    `reannounce` adds keepalived's answer to a lower-priority advert heard as master:
    ``lower_prio_repeat`` frames at once and again ``lower_prio_delay`` later, beside
    the schedule above (which it leaves running)."""

    def __init__(self, name: str, params: AnnounceParams, sockets: FrameSender) -> None:
        self.name = name
        self.params = params
        self.sockets = sockets
        self.counts: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None
        self._lower_task: asyncio.Task[None] | None = None
        self._cache: tuple[tuple[tuple[Vip, ...], tuple[str, ...]],
                           list[tuple[Vip, bytes]]] | None = None

    @property
    def active(self) -> bool:
        return self._task is not None and not self._task.done()

    async def prepare(self, vips: Sequence[Vip]) -> None:
        """Build the frames for ``vips`` ahead of time, so that a takeover sends its first
        burst without building anything."""
        if not vips:
            return
        try:
            await self._frames(tuple(vips))
        except (OSError, ValueError) as exc:
            log.warning("[%s] cannot prepare announcements yet: %s", self.name, exc)

    def _macs(self, vips: tuple[Vip, ...]) -> tuple[str, ...]:
        return tuple(self.sockets.mac(v.dev) for v in vips)

    async def _frames(self, vips: tuple[Vip, ...]) -> list[tuple[Vip, bytes]]:
        macs = self._macs(vips)
        key = (vips, macs)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        built = []
        for vip, mac in zip(vips, macs, strict=True):
            router = vip.address.version == 6 and _ipv6_forwarding(vip.dev)
            built.append((vip, build_frame(vip, mac, router)))
        self._cache = (key, built)
        return built

    def _cached(self, vips: tuple[Vip, ...]) -> list[tuple[Vip, bytes]] | None:
        if self._cache is None or self._cache[0][0] != vips:
            return None
        try:
            macs = self._macs(vips)
        except OSError:
            return None
        return self._cache[1] if self._cache[0][1] == macs else None

    def start(self, vips: Sequence[Vip]) -> None:
        """Begin announcing ``vips`` (restarts the schedule if already running).

        With frames prepared, the first burst goes out before this returns.
        """
        self.stop()
        if not vips:
            return
        key = tuple(vips)
        frames = self._cached(key)
        if frames is not None and self.params.interval > 0 and self.params.repeat > 1:
            frames = None  # a paced burst is sent by the task
        if frames is not None:
            sent = self._send_burst(frames, self.params.repeat, None)
            # Logged once the takeover's callback is done, so it waits for nothing.
            asyncio.get_running_loop().call_soon(self._log, frames, sent, "")
        self._task = asyncio.get_running_loop().create_task(
            self._run(key, first_sent=frames is not None), name=f"announce-{self.name}"
        )

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._lower_task is not None:
            self._lower_task.cancel()
            self._lower_task = None

    def reannounce(self, vips: Sequence[Vip]) -> None:
        """A lower-priority advert was heard as master: a burst now (when the frames are
        ready), and one more after ``lower_prio_delay``. Another lower advert before that
        sends its own burst at once and moves the later one (one pending at a time)."""
        p = self.params
        if not vips or p.lower_prio_repeat <= 0:
            return
        if self._lower_task is not None:
            self._lower_task.cancel()
        key = tuple(vips)
        frames = self._cached(key)
        if frames is not None and p.interval > 0 and p.lower_prio_repeat > 1:
            frames = None  # a paced burst is sent by the task
        if frames is not None:
            self._send_burst(frames, p.lower_prio_repeat, " (lower priority advert heard)")
        self._lower_task = asyncio.get_running_loop().create_task(
            self._run_lower(key, first_sent=frames is not None), name=f"reannounce-{self.name}"
        )

    async def _run_lower(self, vips: tuple[Vip, ...], first_sent: bool) -> None:
        p = self.params
        await self._two_bursts(vips, first_sent, p.lower_prio_repeat, p.lower_prio_delay,
                               " (lower priority advert heard)", " (garp_lower_prio_delay)")

    async def _run(self, vips: tuple[Vip, ...], first_sent: bool) -> None:
        p = self.params
        frames = await self._two_bursts(vips, first_sent, p.repeat, p.delay, "",
                                        " (garp_master_delay)")
        if frames is not None and p.refresh > 0:
            while True:
                await asyncio.sleep(p.refresh)
                await self._burst(frames, p.refresh_repeat, " (refresh)")

    async def _two_bursts(
        self, vips: tuple[Vip, ...], first_sent: bool, repeat: int, delay: float,
        why_first: str, why_delayed: str,
    ) -> list[tuple[Vip, bytes]] | None:
        """A burst now (unless the caller sent it already) and one more after `delay`;
        the frames, or None when they cannot be built (logged)."""
        try:
            frames = await self._frames(vips)
        except (OSError, ValueError) as exc:
            log.error("[%s] cannot build announcements: %s", self.name, exc)
            return None
        if not first_sent:
            await self._burst(frames, repeat, why_first)
        if delay > 0:
            await asyncio.sleep(delay)
            await self._burst(frames, repeat, why_delayed)
        return frames

    async def _burst(self, frames: list[tuple[Vip, bytes]], repeat: int, why: str) -> None:
        if self.params.interval <= 0:
            self._send_burst(frames, repeat, why)
            return
        sent: Counter[str] = Counter()
        for i in range(repeat):
            sent += self._send_burst(frames, 1, None)
            if i + 1 < repeat:
                await asyncio.sleep(self.params.interval)
        self._log(frames, sent, why)

    def _send_burst(
        self, frames: list[tuple[Vip, bytes]], repeat: int, why: str | None
    ) -> Counter[str]:
        sent: Counter[str] = Counter()
        for _ in range(repeat):
            for vip, frame in frames:
                kind = "garp" if vip.address.version == 4 else "na"
                if self.sockets.send(vip.dev, frame):
                    sent[kind] += 1
        self.counts.update(sent)
        if why is not None:
            self._log(frames, sent, why)
        return sent

    def _log(self, frames: list[tuple[Vip, bytes]], sent: Counter[str], why: str) -> None:
        addrs = ", ".join(str(v.address.ip) for v, _ in frames)
        log.info(
            "[%s] sent %d gratuitous ARP(s) and %d neighbour advert(s) for %s%s",
            self.name, sent["garp"], sent["na"], addrs, why,
        )
