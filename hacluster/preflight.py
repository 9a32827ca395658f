"""One preflight for `run`, reload and `check-config`: what a loaded configuration cannot do.

The loader has checked the file against itself; this checks it against what will carry it
out: the dataplane's limits (nftables does NAT with rr/wrr/sh only, ...), that every
script exists, is executable by its user and passes script security, that users and
groups exist, that interfaces exist (an instance's, its addresses', routes', nexthops'
and rules') and the kernel has the dataplane. Each finding is
`FILE:LINE: key: message` like the loader's; those that depend on the machine the
check runs on (scripts, users, interfaces, kernel features) say so, and
`check-config --offline` leaves them out so a file can be checked on a build host.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hacluster.config.errors import Problem, line_of
from hacluster.config.model import (
    Config,
    MiscCheck,
    Route,
    Rule,
    VirtualIpAddress,
    VirtualServer,
)
from vrrp.slotted import slotted

#: Marks a finding that depends on this machine (and that --offline leaves out).
MACHINE_MARK = "[this machine] "


@slotted(frozen=True)
class Finding:
    """One thing the configuration cannot do: where, and whether it is this machine's."""

    problem: Problem
    machine: bool

    def __str__(self) -> str:
        return str(self.problem)


class _Locator:
    """The line of a key path, else of its nearest parent the file gives."""

    def __init__(self, config: Config, lines: Mapping[str, int]) -> None:
        self.file = str(config.source_path) if config.source_path else "<config>"
        self.lines = lines

    def line(self, path: str) -> int:
        return line_of(self.lines, path, 0)

    def finding(self, path: str, message: str, *, machine: bool) -> Finding:
        text = MACHINE_MARK + message if machine else message
        return Finding(Problem(self.file, self.line(path), path, text), machine)


def preflight(
    config: Config, lines: Mapping[str, int] | None = None, *, offline: bool = False
) -> list[Finding]:
    """Every finding for `config` (whose key lines are `lines`), in file order; with
    `offline` only those that do not depend on this machine."""
    at = _Locator(config, lines or {})
    found = list(_dataplane_limits(config, at))
    if not offline:
        found += _kernel(config, at)
        found += _interfaces(config, at)
        found += _notify_scripts(config, at)
        found += _vrrp_scripts(config, at)
        found += _fifo_owners(config, at)
    found += _checks(config, at, offline=offline)
    found.sort(key=lambda f: (f.problem.line, f.problem.key_path, f.problem.message))
    return found


def _split(text: str, default: str) -> tuple[str, str]:
    """`key.path: message` (as the script helpers word their errors) -> (key, message)."""
    head, sep, rest = text.partition(": ")
    if sep and head and " " not in head and ("." in head or "[" in head):
        return head, rest
    return default, text


# --------------------------------------------------------------------------- dataplane


def _dataplane_limits(config: Config, at: _Locator) -> Iterable[Finding]:
    """What the configured dataplane cannot carry out, per virtual server."""
    dataplane = config.global_defs.dataplane
    suspect = [(i, vs) for i, vs in enumerate(config.virtual_servers)
               if may_refuse(dataplane, vs)]
    if not suspect:
        return  # (nor import the dataplane: `hacluster run` waits for this)
    from hacluster.ipvs.dataplane import config_problems

    for i, vs in suspect:
        try:
            problems = config_problems(dataplane, [vs])
        except ValueError as exc:
            yield at.finding("global_defs.dataplane", str(exc), machine=False)
            return
        for text in problems:
            key = f"virtual_servers[{i}]"
            if "scheduler" in text:
                key += ".lb_algo"
            elif "lb_kind" in text:
                key += ".lb_kind"
            elif "persistence" in text:
                key += ".persistence_timeout"
            yield at.finding(key, text, machine=False)


#: The schedulers and the weight total the nftables dataplane carries out
#: (`hacluster.ipvs.nftables.SCHEDULERS`, `_MAX_SLOTS`; a test holds them equal).
NFT_SCHEDULERS = ("rr", "wrr", "sh")
NFT_MAX_WEIGHT = 0xFFFFFFFF


def may_refuse(dataplane: str, vs: VirtualServer) -> bool:
    """False only when `config_problems(dataplane, [vs])` is certainly empty.

    Read off the configuration, so that a file with thousands of real servers that the
    dataplane can carry out is checked without building its table (and without
    importing the dataplane) before VRRP starts; a virtual server this cannot clear
    goes through `config_problems`, whose words the findings keep. A property test
    holds it to `config_problems` (never False where that finds something).
    """
    if dataplane == "none":
        return False
    if dataplane not in ("ipvs", "nftables"):
        return True
    fwmark = vs.fwmark is not None
    reals = vs.real_servers
    # Two entries IPVS sees as one: the loader refuses a real server given twice, but
    # one with port 0 takes the virtual port, which another may give.
    if not fwmark and any(rs.port == 0 for rs in reals):
        return True
    if dataplane == "ipvs":
        return False
    # nftables' limits (`hacluster.ipvs.nftables.check_entry`), on the table with every
    # real server and the sorry server present.
    if vs.lb_algo not in NFT_SCHEDULERS or vs.persistence_timeout or vs.ops:
        return True
    family, kind = vs.family, vs.lb_kind
    for rs in reals:
        if ((rs.lb_kind or kind) != "NAT" or rs.uthreshold or rs.lthreshold
                or rs.ip.version != family or (fwmark and rs.port)):
            return True
    sorry = vs.sorry_server
    if sorry is not None:
        port = sorry.port or (vs.port or 0)
        if ((vs.sorry_server_lb_kind or kind) != "NAT" or sorry.host.version != family
                or bool(port) == fwmark):
            return True
    return sum(rs.weight for rs in reals) + 1 > NFT_MAX_WEIGHT


def ipvs_in_kernel(modules: Path = Path("/lib/modules")) -> bool:
    """Whether this kernel has IPVS: loaded, built in, or a module it can load."""
    if os.path.exists("/proc/net/ip_vs") or os.path.isdir("/sys/module/ip_vs"):
        return True
    import platform

    release = modules / platform.release()
    for index in ("modules.builtin", "modules.dep"):
        try:
            text = (release / index).read_text()
        except OSError:
            continue
        if "/ip_vs.ko" in text:
            return True
    return False


def _kernel(config: Config, at: _Locator) -> list[Finding]:
    return _accept_mode(config, at) + _dataplane_kernel(config, at)


def _accept_mode(config: Config, at: _Locator) -> list[Finding]:
    # (accept_mode, with its asyncio, only for a file where an instance may not accept)
    if all(inst.accept for inst in config.vrrp_instances.values()):
        return []
    import shutil

    from hacluster import accept_mode

    if not accept_mode.wanted(config) or shutil.which("nft") is not None:
        return []
    name = next(n for n, i in config.vrrp_instances.items() if accept_mode.blocks(i))
    return [at.finding(f"vrrp_instances.{name}.accept", "nft not found: no_accept needs "
                       "nftables (install it)", machine=True)]


def _dataplane_kernel(config: Config, at: _Locator) -> list[Finding]:
    if not config.virtual_servers:
        return []
    import shutil

    dataplane = config.global_defs.dataplane
    if dataplane == "ipvs" and not ipvs_in_kernel():
        return [at.finding("global_defs.dataplane",
                           "this kernel has no IPVS (module ip_vs not found); "
                           "dataplane: nftables needs none", machine=True)]
    if dataplane == "nftables" and shutil.which("nft") is None:
        return [at.finding("global_defs.dataplane", "nft not found: install nftables",
                           machine=True)]
    return []


# --------------------------------------------------------------------------- interfaces


def interface_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def _interfaces(config: Config, at: _Locator) -> list[Finding]:
    found = []
    for name, inst in config.vrrp_instances.items():
        path = f"vrrp_instances.{name}"
        if not interface_exists(inst.interface):
            found.append(at.finding(f"{path}.interface",
                                    f"no interface {inst.interface!r}", machine=True))
        for key, vips in (("virtual_ipaddress", inst.virtual_ipaddress),
                          ("virtual_ipaddress_excluded", inst.virtual_ipaddress_excluded)):
            found += _address_devs(at, f"{path}.{key}", vips)
        found += _route_devs(at, f"{path}.virtual_routes", inst.virtual_routes)
        found += _rule_devs(at, f"{path}.virtual_rules", inst.virtual_rules)
    found += _address_devs(at, "static_ipaddress", config.static_ipaddress)
    found += _route_devs(at, "static_routes", config.static_routes)
    found += _rule_devs(at, "static_rules", config.static_rules)
    return found


def _address_devs(at: _Locator, path: str, vips: Iterable[VirtualIpAddress]) -> list[Finding]:
    return [at.finding(f"{path}[{j}]", f"no interface {vip.dev!r}", machine=True)
            for j, vip in enumerate(vips)
            if vip.dev is not None and not interface_exists(vip.dev)]


def _route_devs(at: _Locator, path: str, routes: Iterable[Route]) -> list[Finding]:
    """A route's dev and its nexthops' devs must exist: keepalived refuses the file
    otherwise ("interface X for VROUTE nexthop doesn't exist", then "Non-existent
    interface specified in configuration", at `-t` and at start alike)."""
    found = []
    for j, route in enumerate(routes):
        where = f"{path}[{j}]"
        if route.dev is not None and not interface_exists(route.dev):
            found.append(at.finding(f"{where}.dev", f"no interface {route.dev!r} for route "
                                    f"{route.to.network}", machine=True))
        for k, hop in enumerate(route.nexthops):
            if hop.dev is not None and not interface_exists(hop.dev):
                found.append(at.finding(
                    f"{where}.nexthops[{k}].dev",
                    f"no interface {hop.dev!r} for route {route.to.network} ({hop})",
                    machine=True))
    return found


def _rule_devs(at: _Locator, path: str, rules: Iterable[Rule]) -> list[Finding]:
    """A rule's iif and oif must exist (keepalived: "interface X for rule doesn't exist")."""
    return [at.finding(f"{path}[{j}].{key}", f"no interface {dev!r} for the rule's {key}",
                       machine=True)
            for j, rule in enumerate(rules)
            for key, dev in (("iif", rule.iif), ("oif", rule.oif))
            if dev is not None and not interface_exists(dev)]


# --------------------------------------------------------------------------- scripts


def _notify_scripts(config: Config, at: _Locator) -> list[Finding]:
    if not _has_commands(config):
        return []  # (nor import the notifier)
    from hacluster import scripts
    from hacluster.notify import notify_commands, prepare_command

    found = []
    for where, cmd in notify_commands(config):
        try:
            prepare_command(cmd, config, where)
        except scripts.ScriptError as exc:
            key, message = _split(str(exc), where)
            found.append(at.finding(key, message, machine=True))
    return found


def _has_commands(config: Config) -> bool:
    """Whether any instance, sync group, virtual or real server holds a command (a
    notify_* or quorum_* key, whatever its name): without one there is nothing for
    `notify_commands` to find."""
    holders: list[Any] = [*config.vrrp_instances.values(), *config.vrrp_sync_groups.values()]
    holders += config.virtual_servers
    if any(_holds_command(h) for h in holders):
        return True
    return any(_holds_command(rs) for vs in config.virtual_servers for rs in vs.real_servers)


def _holds_command(holder: Any) -> bool:
    names = _COMMAND_FIELDS.get(type(holder))
    if names is None:
        hints = typing.get_type_hints(type(holder))
        names = _COMMAND_FIELDS[type(holder)] = tuple(
            f.name for f in dataclasses.fields(holder) if "Command" in str(hints[f.name])
        )
    return any(getattr(holder, name) is not None for name in names)


_COMMAND_FIELDS: dict[type, tuple[str, ...]] = {}


def _fifo_owners(config: Config, at: _Locator) -> list[Finding]:
    found = []
    g = config.global_defs
    for key in ("notify_fifo", "vrrp_notify_fifo", "lvs_notify_fifo"):
        user = getattr(g, f"{key}_user")
        if user is None:
            continue
        from hacluster import scripts

        try:
            scripts.resolve_named(user, getattr(g, f"{key}_group"),
                                  f"global_defs.{key}_user", f"global_defs.{key}_group")
        except scripts.ScriptError as exc:
            where, message = _split(str(exc), f"global_defs.{key}_user")
            found.append(at.finding(where, message, machine=True))
    return found


def _vrrp_scripts(config: Config, at: _Locator) -> list[Finding]:
    if not config.vrrp_scripts:
        return []  # nothing to track (the loader refuses a track_script naming none)
    from hacluster import scripts
    from hacluster.tracking import plan_watches, prepare_scripts

    found = []
    used = sorted({w.name for w in plan_watches(config) if w.kind == "script"})
    for name in used:
        try:
            prepare_scripts(config, [name])
        except scripts.ScriptError as exc:
            key, message = _split(str(exc), f"vrrp_scripts.{name}")
            found.append(at.finding(key, message, machine=True))
    return found


def _checks(config: Config, at: _Locator, *, offline: bool) -> list[Finding]:
    """MISC_CHECK programs pass the script checks.

    Each check's settings were checked by the loader, which refuses what the checkers'
    parameters would; the checks are planned (lowered for the check workers) only after
    the VRRP role runs, never here.
    """
    if offline:
        return []
    misc = [
        (i, j, check)
        for i, vs in enumerate(config.virtual_servers)
        for j, rs in enumerate(vs.real_servers)
        for check in rs.checks
        if isinstance(check, MiscCheck)
    ]
    if not misc:
        return []
    from hacluster import scripts

    found = []
    g = config.global_defs
    seen: dict[tuple[int, int], int] = {}
    for i, j, check in misc:
        n = seen[i, j] = seen.get((i, j), -1) + 1
        key = f"virtual_servers[{i}].real_servers[{j}].{check.KIND}"
        if f"{key}[{n}]" in at.lines:
            key = f"{key}[{n}]"
        # As the checker runs it (hacluster.loadbalancer.secure_check): as its own
        # user and group, else global_defs.script_user's.
        user = check.user if check.user is not None else g.script_user
        group = check.group if check.user is not None else None
        try:
            scripts.prepare(check.misc_path.argv, user=user, group=group,
                            security=g.enable_script_security, what=key)
        except scripts.ScriptError as exc:
            k, message = _split(str(exc), key)
            found.append(at.finding(k, message, machine=True))
    return found
