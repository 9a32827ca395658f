"""What changed between two configurations, for a reload that touches only that. Does no I/O.

Named things (instances, scripts, sync groups) are matched by name; virtual servers by
(protocol, address, port) or fwmark; real servers by (ip, port) within their service.
Checks have no name: a check that differs in any setting is one removed and one added,
so a running check is kept exactly when its settings are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Generic, Protocol, TypeVar

from hacluster.config.model import (
    Checker,
    Config,
    RealServer,
    VirtualServer,
    VrrpInstance,
    VrrpScript,
    VrrpSyncGroup,
    VrrpTrackFile,
    VrrpTrackProcess,
)

T = TypeVar("T")
C = TypeVar("C")


class _Named(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=_Named)


@dataclass(frozen=True, slots=True)
class Change(Generic[T]):
    """One item present in both configurations with different settings."""

    old: T
    new: T
    fields: tuple[str, ...]  # the settings that differ, in model order


@dataclass(frozen=True, slots=True)
class Section(Generic[T, C]):
    """Items of one kind, sorted into added, removed, changed and unchanged (file order)."""

    added: tuple[T, ...] = ()
    removed: tuple[T, ...] = ()
    changed: tuple[C, ...] = ()
    unchanged: tuple[T, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when nothing was added, removed or changed."""
        return not (self.added or self.removed or self.changed)


@dataclass(frozen=True, slots=True)
class RealServerChange:
    """A real server kept across the reload; `fields` excludes checks, see `checks`."""

    old: RealServer
    new: RealServer
    fields: tuple[str, ...]
    checks: Section[Checker, Change[Checker]]


@dataclass(frozen=True, slots=True)
class VirtualServerChange:
    """A virtual server kept across the reload; `fields` excludes real_servers."""

    old: VirtualServer
    new: VirtualServer
    fields: tuple[str, ...]
    real_servers: Section[RealServer, RealServerChange]


@dataclass(frozen=True, slots=True)
class ConfigDiff:
    """Everything that differs between an old and a new configuration."""

    global_defs: tuple[str, ...]  # names of the global_defs settings that differ
    vrrp_scripts: Section[VrrpScript, Change[VrrpScript]]
    vrrp_track_files: Section[VrrpTrackFile, Change[VrrpTrackFile]]
    vrrp_track_processes: Section[VrrpTrackProcess, Change[VrrpTrackProcess]]
    vrrp_instances: Section[VrrpInstance, Change[VrrpInstance]]
    vrrp_sync_groups: Section[VrrpSyncGroup, Change[VrrpSyncGroup]]
    virtual_servers: Section[VirtualServer, VirtualServerChange]
    static: tuple[str, ...] = ()  # static_ipaddress / static_routes / static_rules that differ

    @property
    def is_empty(self) -> bool:
        return not self.global_defs and not self.static and all(
            s.is_empty
            for s in (
                self.vrrp_scripts,
                self.vrrp_track_files,
                self.vrrp_track_processes,
                self.vrrp_instances,
                self.vrrp_sync_groups,
                self.virtual_servers,
            )
        )

    def summary(self) -> list[str]:
        """One human line per section that changed, for the reload log."""
        lines: list[str] = []
        if self.global_defs:
            lines.append(f"global_defs: changed {', '.join(self.global_defs)}")
        if self.static:
            lines.append(f"changed {', '.join(self.static)}")
        named: list[tuple[str, Section[Any, Change[Any]]]] = [
            ("vrrp_scripts", self.vrrp_scripts),
            ("vrrp_track_files", self.vrrp_track_files),
            ("vrrp_track_processes", self.vrrp_track_processes),
            ("vrrp_instances", self.vrrp_instances),
            ("vrrp_sync_groups", self.vrrp_sync_groups),
        ]
        for title, section in named:
            if not section.is_empty:
                lines.append(
                    f"{title}: "
                    + _describe(
                        [x.name for x in section.added],
                        [x.name for x in section.removed],
                        [f"{c.new.name} ({', '.join(c.fields)})" for c in section.changed],
                    )
                )
        vs = self.virtual_servers
        if not vs.is_empty:
            changed = []
            for c in vs.changed:
                parts = list(c.fields)
                rs = c.real_servers
                parts += [f"+rs {r}" for r in rs.added] + [f"-rs {r}" for r in rs.removed]
                for rc in rs.changed:
                    what = list(rc.fields)
                    if not rc.checks.is_empty:
                        what.append("checks")
                    parts.append(f"rs {rc.new} {'/'.join(what)}")
                changed.append(f"{c.new} ({', '.join(parts)})")
            lines.append(
                "virtual_servers: "
                + _describe([str(x) for x in vs.added], [str(x) for x in vs.removed], changed)
            )
        return lines


def diff_configs(old: Config, new: Config) -> ConfigDiff:
    """Compare two validated configurations (source_path is ignored)."""
    return ConfigDiff(
        global_defs=_changed_fields(old.global_defs, new.global_defs),
        vrrp_scripts=_named(old.vrrp_scripts, new.vrrp_scripts),
        vrrp_track_files=_named(old.vrrp_track_files, new.vrrp_track_files),
        vrrp_track_processes=_named(old.vrrp_track_processes, new.vrrp_track_processes),
        vrrp_instances=_named(old.vrrp_instances, new.vrrp_instances),
        vrrp_sync_groups=_named(old.vrrp_sync_groups, new.vrrp_sync_groups),
        virtual_servers=_keyed(
            old.virtual_servers, new.virtual_servers, lambda v: v.key, _virtual_server_change
        ),
        static=tuple(k for k in ("static_ipaddress", "static_routes", "static_rules")
                     if getattr(old, k) != getattr(new, k)),
    )


# --------------------------------------------------------------------------- internals


def _changed_fields(old: Any, new: Any, skip: Iterable[str] = ()) -> tuple[str, ...]:
    skipped = set(skip)
    return tuple(
        f.name
        for f in fields(old)
        if f.name not in skipped and getattr(old, f.name) != getattr(new, f.name)
    )


def _named(old: Mapping[str, N], new: Mapping[str, N]) -> Section[N, Change[N]]:
    return _keyed(
        old.values(),
        new.values(),
        lambda x: x.name,
        lambda a, b: Change(a, b, _changed_fields(a, b)) if a != b else None,
    )


def _keyed(
    old: Iterable[T],
    new: Iterable[T],
    key: Callable[[T], Hashable],
    change: Callable[[T, T], C | None],
) -> Section[T, C]:
    before = {key(x): x for x in old}
    after = {key(x): x for x in new}
    added, changed, unchanged = [], [], []
    for k, item in after.items():
        if k not in before:
            added.append(item)
            continue
        c = change(before[k], item)
        if c is None:
            unchanged.append(item)
        else:
            changed.append(c)
    removed = [item for k, item in before.items() if k not in after]
    return Section(tuple(added), tuple(removed), tuple(changed), tuple(unchanged))


def _checks(
    old: tuple[Checker, ...], new: tuple[Checker, ...]
) -> Section[Checker, Change[Checker]]:
    remaining = list(old)
    added: list[Checker] = []
    unchanged: list[Checker] = []
    for check in new:
        if check in remaining:
            remaining.remove(check)
            unchanged.append(check)
        else:
            added.append(check)
    return Section(tuple(added), tuple(remaining), (), tuple(unchanged))


def _real_server_change(old: RealServer, new: RealServer) -> RealServerChange | None:
    if old == new:
        return None
    return RealServerChange(
        old, new, _changed_fields(old, new, skip=("checks",)), _checks(old.checks, new.checks)
    )


def _virtual_server_change(old: VirtualServer, new: VirtualServer) -> VirtualServerChange | None:
    if old == new:
        return None
    return VirtualServerChange(
        old,
        new,
        _changed_fields(old, new, skip=("real_servers",)),
        _keyed(old.real_servers, new.real_servers, lambda r: r.key, _real_server_change),
    )


def _describe(added: list[str], removed: list[str], changed: list[str]) -> str:
    parts = []
    if added:
        parts.append("added " + ", ".join(added))
    if removed:
        parts.append("removed " + ", ".join(removed))
    if changed:
        parts.append("changed " + ", ".join(changed))
    return "; ".join(parts)
