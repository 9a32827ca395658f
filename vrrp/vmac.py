"""VRRP virtual MAC interfaces (keepalived's use_vmac): a macvlan per instance, over rtnetlink.

RFC 5798 7.3: a virtual router answers with the virtual MAC 00:00:5e:00:01:VRID
(IPv6: 00:00:5e:00:02:VRID), so a failover changes no neighbour entry. As keepalived
does, each instance gets a macvlan in private mode on its interface with that MAC
(default name ``vrrp.VRID``, ``vrrp6.VRID`` for IPv6); the VIPs go on it, and the
adverts are sent from it unless ``vmac_xmit_base`` (then the base interface sends and
receives them). The sysctls keepalived sets come with it: on the macvlan
arp_ignore=1, accept_local=1, rp_filter=0, promote_secondaries=1 and no IPv6 address
of its own (an IPv6 one gets the base's link-local); on the base interface
arp_ignore=1, arp_filter=1, arp_announce=2 (put back as they were when the last macvlan
on it goes), and net.ipv4.conf.all.rp_filter=0 while any macvlan exists (put back
after). Sysctls are written under /proc/sys, which shows the network namespace of the process.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("vrrp.vmac")

_SYS = Path("/proc/sys/net")
_VMAC_SYSCTLS = {"arp_ignore": "1", "accept_local": "1", "rp_filter": "0",
                 "promote_secondaries": "1"}
# arp_announce=2 beyond keepalived's two: the base then never sends an ARP request with
# a VIP as sender address (replies from a VIP leave by the base's route), which would
# teach the neighbours the base's MAC for the VIP instead of the virtual one.
_IFA_F_NODAD = 0x02
_BASE_SYSCTLS = {"arp_ignore": "1", "arp_filter": "1", "arp_announce": "2"}


def virtual_mac(vrid: int, family: int) -> str:
    """RFC 5798 7.3: 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6."""
    if not 1 <= vrid <= 255:
        raise ValueError(f"VRID {vrid} out of 1..255")
    return f"00:00:5e:00:0{1 if family == 4 else 2}:{vrid:02x}"


def default_name(vrid: int, family: int) -> str:
    return f"vrrp{'' if family == 4 else '6'}.{vrid}"


@dataclass(frozen=True, slots=True)
class VmacSpec:
    """One instance's virtual MAC interface."""

    base: str
    vrid: int
    family: int = 4
    name: str | None = None  # None: vrrp.VRID / vrrp6.VRID

    @property
    def ifname(self) -> str:
        return self.name or default_name(self.vrid, self.family)

    @property
    def mac(self) -> str:
        return virtual_mac(self.vrid, self.family)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        log.warning("cannot set %s to %s: %s", path, value, exc.strerror or exc)


class Vmacs:
    """Creates, configures and removes the macvlans of a set of instances."""

    def __init__(self) -> None:
        self._made: dict[str, VmacSpec] = {}
        self._base_saved: dict[str, dict[str, str | None]] = {}
        self._all_rp_filter: str | None = None

    @property
    def interfaces(self) -> dict[str, VmacSpec]:
        return dict(self._made)

    async def ensure(self, specs: list[VmacSpec]) -> list[tuple[VmacSpec, str]]:
        """Make every macvlan (an existing one of the name is replaced); the failures."""
        from pyroute2 import AsyncIPRoute

        failed: list[tuple[VmacSpec, str]] = []
        ipr = AsyncIPRoute()
        try:
            for spec in specs:
                try:
                    await self._make(ipr, spec)
                except Exception as exc:  # a missing base, no macvlan support, ...
                    failed.append((spec, str(exc)))
        finally:
            ipr.close()
        return failed

    async def _make(self, ipr: Any, spec: VmacSpec) -> None:
        base_index = socket.if_nametoindex(spec.base)
        with contextlib.suppress(OSError):
            old = socket.if_nametoindex(spec.ifname)
            await ipr.link("del", index=old)  # a leftover of an earlier run
        await ipr.link("add", ifname=spec.ifname, kind="macvlan", link=base_index,
                       macvlan_mode="private", address=spec.mac)
        index = socket.if_nametoindex(spec.ifname)
        conf6 = _SYS / "ipv6/conf" / spec.ifname
        _write(conf6 / "addr_gen_mode", "1")  # no link-local of its own: it sends nothing
        if spec.family == 4:
            _write(conf6 / "disable_ipv6", "1")
        for key, value in _VMAC_SYSCTLS.items():
            _write(_SYS / "ipv4/conf" / spec.ifname / key, value)
        if spec.base not in self._base_saved:
            conf = _SYS / "ipv4/conf" / spec.base
            self._base_saved[spec.base] = {k: _read(conf / k) for k in _BASE_SYSCTLS}
            for key, value in _BASE_SYSCTLS.items():
                _write(conf / key, value)
        if self._all_rp_filter is None:
            self._all_rp_filter = _read(_SYS / "ipv4/conf/all/rp_filter") or "0"
            _write(_SYS / "ipv4/conf/all/rp_filter", "0")
        await ipr.link("set", index=index, state="up")
        if spec.family == 6:
            # keepalived's way: the base's link-local on the macvlan too (no DAD: it is
            # the base's), so adverts can leave the macvlan from that source address
            from vrrp.transport import interface_source

            ll = interface_source(spec.base, 6)
            if ll is not None:
                await ipr.addr("add", index=index, address=str(ll), prefixlen=64,
                               flags=_IFA_F_NODAD)
        self._made[spec.ifname] = spec
        log.info("vmac %s on %s with MAC %s (macvlan, private)", spec.ifname, spec.base,
                 spec.mac)

    async def remove_unused(self, wanted: set[str]) -> None:
        """Delete the macvlans made here whose name is not in `wanted` (after a reload)."""
        from pyroute2 import AsyncIPRoute

        gone = [name for name in self._made if name not in wanted]
        if not gone:
            return
        ipr = AsyncIPRoute()
        try:
            for name in gone:
                with contextlib.suppress(Exception):
                    await ipr.link("del", index=socket.if_nametoindex(name))
                spec = self._made.pop(name)
                log.info("vmac %s on %s removed", name, spec.base)
        finally:
            ipr.close()
        if not self._made:
            await self.remove_all()  # the sysctls back as they were

    async def remove_all(self) -> None:
        """Delete every macvlan made here and put the sysctls back."""
        from pyroute2 import AsyncIPRoute

        ipr = AsyncIPRoute()
        try:
            for name in list(self._made):
                with contextlib.suppress(Exception):
                    await ipr.link("del", index=socket.if_nametoindex(name))
                del self._made[name]
        finally:
            ipr.close()
        for base, saved in self._base_saved.items():
            for key, value in saved.items():
                if value is not None:
                    _write(_SYS / "ipv4/conf" / base / key, value)
        self._base_saved.clear()
        if self._all_rp_filter is not None:
            _write(_SYS / "ipv4/conf/all/rp_filter", self._all_rp_filter)
            self._all_rp_filter = None
