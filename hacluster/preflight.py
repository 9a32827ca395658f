"""One preflight for `run`, reload and `check-config`: what a loaded configuration cannot do.

The loader has checked the file against itself; this checks it against what will carry it
out: the dataplane's limits (nftables does NAT with rr/wrr/sh only, ...), that every
script exists, is executable by its user and passes script security, that users and
groups exist, that interfaces exist and the kernel has the dataplane. Each finding is
`FILE:LINE: key: message` like the loader's; those that depend on the machine the
check runs on (scripts, users, interfaces, kernel features) say so, and
`check-config --offline` leaves them out so a file can be checked on a build host.
"""

from __future__ import annotations

import os
import platform
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from hacluster.config.errors import Problem
from hacluster.config.model import Config

#: Marks a finding that depends on this machine (and that --offline leaves out).
MACHINE_MARK = "[this machine] "


@dataclass(frozen=True, slots=True)
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
        while path:
            if path in self.lines:
                return self.lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return 0

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
    if not config.virtual_servers:
        return  # (nor import the dataplane: a VRRP-only `hacluster run` waits for this)
    from hacluster.ipvs.dataplane import config_problems

    dataplane = config.global_defs.dataplane
    for i, vs in enumerate(config.virtual_servers):
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


def ipvs_in_kernel(modules: Path = Path("/lib/modules")) -> bool:
    """Whether this kernel has IPVS: loaded, built in, or a module it can load."""
    if os.path.exists("/proc/net/ip_vs") or os.path.isdir("/sys/module/ip_vs"):
        return True
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
    from hacluster import accept_mode

    if accept_mode.wanted(config) and shutil.which("nft") is None:
        name = next(n for n, i in config.vrrp_instances.items() if accept_mode.blocks(i))
        return [at.finding(f"vrrp_instances.{name}.accept", "nft not found: no_accept "
                           "needs nftables (install it)", machine=True)]
    if not config.virtual_servers:
        return []
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
            for j, vip in enumerate(vips):
                if vip.dev is not None and not interface_exists(vip.dev):
                    found.append(at.finding(f"{path}.{key}[{j}]",
                                            f"no interface {vip.dev!r}", machine=True))
    return found


# --------------------------------------------------------------------------- scripts


def _notify_scripts(config: Config, at: _Locator) -> list[Finding]:
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


def _fifo_owners(config: Config, at: _Locator) -> list[Finding]:
    from hacluster import scripts

    found = []
    g = config.global_defs
    for key in ("notify_fifo", "vrrp_notify_fifo", "lvs_notify_fifo"):
        user = getattr(g, f"{key}_user")
        if user is None:
            continue
        try:
            scripts.resolve_named(user, getattr(g, f"{key}_group"),
                                  f"global_defs.{key}_user", f"global_defs.{key}_group")
        except scripts.ScriptError as exc:
            where, message = _split(str(exc), f"global_defs.{key}_user")
            found.append(at.finding(where, message, machine=True))
    return found


def _vrrp_scripts(config: Config, at: _Locator) -> list[Finding]:
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
    """Every health check can be planned; MISC_CHECK programs pass the script checks."""
    if not config.virtual_servers:
        return []  # (nor import the load balancer)
    from hacluster.config.lower import CheckConfigError, plan, where
    from hacluster.loadbalancer import secure_check

    found = []
    g = config.global_defs
    for i, vs in enumerate(config.virtual_servers):
        for j, rs in enumerate(vs.real_servers):
            kinds: dict[str, int] = {}
            for check in rs.checks:
                n = kinds[check.KIND] = kinds.get(check.KIND, -1) + 1
                key = f"virtual_servers[{i}].real_servers[{j}].{check.KIND}"
                if f"{key}[{n}]" in at.lines:
                    key = f"{key}[{n}]"
                try:
                    planned = plan(check, vs, rs, g)
                except CheckConfigError as exc:
                    prefix = where(vs, rs, check) + ": "
                    found.append(at.finding(key, str(exc).removeprefix(prefix), machine=False))
                    continue
                if offline:
                    continue
                try:
                    secure_check(planned, config, key)
                except CheckConfigError as exc:
                    k, message = _split(str(exc), key)
                    found.append(at.finding(k, message, machine=True))
    return found
