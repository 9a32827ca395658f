"""accept / no_accept (RFC 5798 Accept_Mode) carried out with an nftables table of our own.

keepalived's way (vrrp_nftables.c): a MASTER that is not the address owner (priority
255) and does not accept drops traffic addressed to its VIPs and excluded VIPs, and
sends none from them. Here one table, `inet NAME` (`global_defs.nftables`, default
`hacluster_vrrp`), created at start and deleted at stop (no other table is touched):

- sets `vips4` (ipv4_addr), `vips6` (ipv6_addr) and `vips6_ll` (link-local IPv6 VIPs
  with their interface: ipv6_addr . ifname, or . iface_index with `nftables_ifindex`);
- chain `in` (hook input) and chain `out` (hook output), priority `nftables_priority`
  (default -1, keepalived's): neighbour solicitations and advertisements pass (the VIP
  must stay reachable for routing), then `ip daddr @vips4 drop` and the like, with a
  counter each when `nftables_counters` is set.

The sets hold the VIPs of the non-accepting instances that are MASTER; `on_state` is
called on each transition and `reconfigure` on reload. Updates are coalesced and done by
one task, each as one `nft -f` transaction that rewrites the three sets (flush + add),
so what the kernel holds is always one consistent state. A takeover's VIPs are added to
the set at once besides, over nfnetlink in the transition's own callback (see
hacluster.nft_setelem), right after the VIPs themselves: keepalived fills its set just
before adding the VIPs; here no packet is handled in between, where one `nft` run would
leave 15-25 ms. Leaving MASTER removes the VIPs first, then the set entries (by the next
rewrite), as keepalived does.

While the table exists it is recorded in the daemon's state file (vrrp.vipstate, given
as `record`): a run killed before it could delete it leaves it behind, and the next
`hacluster run` deletes it first thing, whatever its configuration says.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from hacluster.config.model import Config, VirtualIpAddress, VrrpInstance

if TYPE_CHECKING:
    from hacluster.nft_setelem import SetElementSocket
    from vrrp.vipstate import VipRecord

log = logging.getLogger("hacluster.accept")

SETS = ("vips4", "vips6", "vips6_ll")


def blocks(inst: VrrpInstance) -> bool:
    """True when `inst` as MASTER drops traffic to its VIPs (no accept, not the owner)."""
    return not inst.accept and not inst.is_owner


def wanted(config: Config) -> bool:
    return any(blocks(i) for i in config.vrrp_instances.values())


def elements(inst: VrrpInstance) -> dict[str, set[str]]:
    """The set elements (nft syntax) `inst` adds while MASTER, by set name."""
    out: dict[str, set[str]] = {name: set() for name in SETS}
    if not blocks(inst):
        return out
    vip: VirtualIpAddress
    for vip in (*inst.virtual_ipaddress, *inst.virtual_ipaddress_excluded):
        ip = vip.ip
        if ip.version == 4:
            out["vips4"].add(str(ip))
        elif ip.is_link_local:
            out["vips6_ll"].add(f'{ip} . "{vip.dev or inst.interface}"')
        else:
            out["vips6"].add(str(ip))
    return out


def element_keys(inst: VrrpInstance, by_index: bool) -> dict[str, list[bytes]]:
    """`elements(inst)` as the kernel's key bytes (an interface that is gone is left to
    the next `nft` rewrite, which says so)."""
    from hacluster.nft_setelem import ifindex_key, ifname_key

    out: dict[str, list[bytes]] = {name: [] for name in SETS}
    if not blocks(inst):
        return out
    for vip in (*inst.virtual_ipaddress, *inst.virtual_ipaddress_excluded):
        ip = vip.ip
        if ip.version == 4:
            out["vips4"].append(ip.packed)
        elif not ip.is_link_local:
            out["vips6"].append(ip.packed)
        else:
            dev = vip.dev or inst.interface
            try:
                out["vips6_ll"].append(ip.packed + (ifindex_key(dev) if by_index
                                                    else ifname_key(dev)))
            except OSError:
                continue
    return out


def table_script(config: Config) -> str:
    """The `nft -f` text that (re)creates the table, empty sets included."""
    g = config.global_defs
    t, prio = g.nftables, g.nftables_priority
    counter = "counter " if g.nftables_counters else ""
    key = "iface_index" if g.nftables_ifindex else "ifname"
    iif, oif = ("iif", "oif") if g.nftables_ifindex else ("iifname", "oifname")
    nd = "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept"
    return "\n".join([
        f"table inet {t} {{}}",
        f"delete table inet {t}",  # a table a crashed run left: start from nothing
        f"table inet {t} {{",
        "  set vips4 { type ipv4_addr; }",
        "  set vips6 { type ipv6_addr; }",
        f"  set vips6_ll {{ type ipv6_addr . {key}; }}",
        f"  chain in {{ type filter hook input priority {prio}; policy accept;",
        f"    {nd}",
        f"    ip daddr @vips4 {counter}drop",
        f"    ip6 daddr @vips6 {counter}drop",
        f"    ip6 daddr . {iif} @vips6_ll {counter}drop",
        "  }",
        f"  chain out {{ type filter hook output priority {prio}; policy accept;",
        f"    {nd}",
        f"    ip saddr @vips4 {counter}drop",
        f"    ip6 saddr @vips6 {counter}drop",
        f"    ip6 saddr . {oif} @vips6_ll {counter}drop",
        "  }",
        "}",
        "",
    ])


def sets_script(table: str, contents: dict[str, set[str]]) -> str:
    """The `nft -f` text that makes the three sets hold exactly `contents`."""
    lines = []
    for name in SETS:
        lines.append(f"flush set inet {table} {name}")
        if contents.get(name):
            lines.append(f"add element inet {table} {name} {{ "
                         + ", ".join(sorted(contents[name])) + " }")
    return "\n".join(lines) + "\n"


def masters_elements(config: Config, masters: Iterable[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {name: set() for name in SETS}
    for name in masters:
        inst = config.vrrp_instances.get(name)
        if inst is not None:
            for key, items in elements(inst).items():
                out[key] |= items
    return out


class AcceptFirewall:
    """Keeps the table's sets equal to the VIPs of the non-accepting masters."""

    def __init__(self, config: Config, nft: str = "nft", *,
                 record: VipRecord | None = None) -> None:
        self._config = config
        self._nft = nft
        self._record = record  # the state file: the table is recorded while it exists
        self._table: str | None = None  # the table we created, while it exists
        self._masters: set[str] = set()
        self._applied: dict[str, set[str]] = {name: set() for name in SETS}
        self._changed = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._worker: asyncio.Task[None] | None = None
        self._netlink: SetElementSocket | None = None
        self.transactions = 0  # nft runs that updated the sets

    wanted = staticmethod(wanted)

    async def start(self) -> None:
        """Create the table (before any instance can be MASTER), then follow states."""
        await self._create(self._config)
        self._worker = asyncio.create_task(self._work(), name="accept-mode")
        from hacluster.nft_setelem import SetElementSocket

        try:
            self._netlink = SetElementSocket()
        except OSError as exc:
            log.warning("no_accept: no nfnetlink socket (%s): a takeover's VIPs reach the "
                        "drop set with the next nft run", exc)
            return
        asyncio.get_running_loop().add_reader(self._netlink.fileno(), self._refusals)

    def _refusals(self) -> None:
        assert self._netlink is not None
        for why in self._netlink.refusals():
            log.error("no_accept: the kernel refused a drop set update: %s", why)

    async def _create(self, config: Config) -> None:
        import shutil  # (not at import: the module is loaded by every daemon)

        if shutil.which(self._nft) is None:
            log.error("no_accept: %s not found (install nftables): traffic to the VIPs "
                      "of non-accepting masters is not dropped", self._nft)
            return
        name = config.global_defs.nftables
        self._note(name, exists=True)  # before: a crash right after leaves no trace
        ok, err = await self._run(table_script(config))
        if not ok:
            log.error("no_accept: cannot create table inet %s: %s", name, err)
            self._note(name, exists=False)  # (one transaction: nothing was changed)
            return
        self._table = name
        self._applied = {name: set() for name in SETS}
        log.info("no_accept: table inet %s ready", self._table)

    def on_state(self, name: str, new_is_master: bool) -> None:
        """An instance changed state: its VIPs are dropped while it is MASTER."""
        before = name in self._masters
        if new_is_master:
            self._masters.add(name)
        else:
            self._masters.discard(name)
        if before == new_is_master:
            return
        if new_is_master:
            self._send_elements(name)
        self._kick()

    def _send_elements(self, name: str) -> None:
        """A master's elements to the kernel now, over nfnetlink."""
        inst = self._config.vrrp_instances.get(name)
        if inst is None or not self._table or self._netlink is None:
            return
        keys = {k: v for k, v in element_keys(
            inst, self._config.global_defs.nftables_ifindex).items() if v}
        if not keys:
            return
        try:
            self._netlink.add(self._table, keys)
        except OSError as exc:
            log.error("no_accept: [%s] drop set update not sent: %s", name, exc)

    async def reconfigure(self, config: Config) -> None:
        """A reload: a renamed table is recreated; the sets follow the new accept flags."""
        old, self._config = self._config, config
        self._masters &= set(config.vrrp_instances)
        if self._table is not None and (
            config.global_defs.nftables != old.global_defs.nftables
            or table_script(config) != table_script(old)
        ):
            await self._settled()
            await self._delete()
        if self._table is None:
            await self._create(config)
        self._kick()

    async def settled(self) -> None:
        """Wait until the sets hold what the states asked so far (for tests and reload)."""
        await self._settled()

    async def _settled(self) -> None:
        while self._changed.is_set() or not self._idle.is_set():
            await self._idle.wait()
            await asyncio.sleep(0)

    async def stop(self) -> None:
        """Delete the table (masters have released their VIPs by now)."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        if self._netlink is not None:
            asyncio.get_running_loop().remove_reader(self._netlink.fileno())
            self._netlink.close()
            self._netlink = None
        await self._delete()

    async def _delete(self) -> None:
        if self._table is None:
            return
        ok, err = await self._run(f"delete table inet {self._table}\n")
        if not ok:  # (still there: it stays recorded for the next start to delete)
            log.error("no_accept: cannot delete table inet %s: %s", self._table, err)
        else:
            self._note(self._table, exists=False)
        self._table = None

    def _note(self, name: str, *, exists: bool) -> None:
        if self._record is None:
            return
        from vrrp.vipstate import RecordedTable

        if exists:
            self._record.table_added(RecordedTable("inet", name))
        else:
            self._record.table_removed(RecordedTable("inet", name))

    def _kick(self) -> None:
        self._changed.set()
        self._idle.clear()

    async def _work(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                await self._sync()
            except Exception:
                log.exception("no_accept: updating the sets failed")
            finally:
                if not self._changed.is_set():
                    self._idle.set()

    async def _sync(self) -> None:
        if self._table is None:
            return
        masters = set(self._masters)
        wanted_now = masters_elements(self._config, masters)
        if wanted_now == self._applied:
            return
        ok, err = await self._run(sets_script(self._table, wanted_now))
        if not ok:
            log.error("no_accept: cannot update table inet %s: %s", self._table, err)
            return
        # A takeover while nft ran: its netlink elements were flushed by this rewrite;
        # send them again now (the next rewrite, already asked for, settles the rest).
        for name in self._masters - masters:
            self._send_elements(name)
        self.transactions += 1
        dropped = sorted(set().union(*wanted_now.values()))
        log.info("no_accept: dropping traffic to %s", ", ".join(dropped) or "no VIP")
        self._applied = wanted_now

    async def _run(self, script: str) -> tuple[bool, str]:
        proc = await asyncio.create_subprocess_exec(
            self._nft, "-f", "-", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate(script.encode())
        return proc.returncode == 0, err.decode(errors="replace").strip()
