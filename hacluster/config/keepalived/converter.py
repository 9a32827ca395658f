"""The statement tree into hacluster's YAML data, noting each keyword left out. No I/O."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hacluster.config.keepalived.global_defs import _GLOBAL
from hacluster.config.keepalived.handlers import Handler
from hacluster.config.keepalived.marks import _Origin
from hacluster.config.keepalived.server_sections import _ServerSections
from hacluster.config.keepalived.statements import Statement
from hacluster.config.keepalived.vrrp import (
    _INSTANCE,
    _SCRIPT,
    _SYNC_GROUP,
    _TRACK_FILE,
    _TRACK_PROCESS,
    _route_list,
    _vip_list,
)
from hacluster.config.keepalived.vrrp_sections import _VrrpSections


class _Converter(_VrrpSections, _ServerSections):
    """Walks the statements and builds the YAML data, noting what it leaves out."""

    def run(self, statements: tuple[Statement, ...]) -> dict[str, Any]:
        for stmt in statements:  # groups may be used before they are defined
            if stmt.keyword == "virtual_server_group" and stmt.args:
                self.vs_groups[stmt.args[0]] = stmt
        for stmt in statements:
            kw = stmt.keyword
            if kw == "global_defs":
                self.walk(self.block(stmt, kw), _GLOBAL, self.global_defs, kw)
                self.mark(self.global_defs, stmt, kw)
            elif kw == "vrrp_script":
                self.named(stmt, self.scripts, _SCRIPT, self.finish_script)
            elif kw in ("track_file", "vrrp_track_file"):
                self.named(stmt, self.track_files, _TRACK_FILE, self.finish_track_file)
            elif kw == "vrrp_track_process":
                self.named(stmt, self.track_processes, _TRACK_PROCESS,
                           self.finish_track_process)
            elif kw == "vrrp_instance":
                self.named(stmt, self.instances, _INSTANCE, self.finish_instance)
            elif kw == "vrrp_sync_group":
                self.named(stmt, self.groups, _SYNC_GROUP, self.finish_group)
            elif kw in ("static_ipaddress", "static_routes", "static_rules"):
                handler = _vip_list(kw) if kw == "static_ipaddress" else _route_list(kw)
                handler(self, stmt, self.statics, kw)
            elif kw == "virtual_server":
                self.virtual_server(stmt)
            elif kw == "virtual_server_group":
                if not stmt.args:
                    self.skip(stmt, kw, "needs a name; not carried over")
                elif stmt.block is None:
                    self.skip(stmt, kw, "needs a { } block; not carried over")
            else:
                self.unhandled(stmt, kw)
        self.apply_min_garp()
        self.note_sync_group_weights()
        for name, stmt in self.vs_groups.items():
            if name not in self.used_vs_groups:
                self.skip(stmt, "virtual_server_group",
                          f"{name} is used by no virtual_server; left out", same=True)
        for key, section in (
            ("global_defs", self.global_defs),
            ("vrrp_scripts", self.scripts),
            ("vrrp_track_files", self.track_files),
            ("vrrp_track_processes", self.track_processes),
            ("vrrp_instances", self.instances),
            ("vrrp_sync_groups", self.groups),
            ("virtual_servers", self.servers),
            *self.statics.items(),
        ):
            if section:
                self.data[key] = section
        return self.data

    def named(
        self,
        stmt: Statement,
        section: dict[str, Any],
        table: dict[str, Handler],
        finish: Callable[[Statement, dict[str, Any], str], bool],
    ) -> None:
        kw = stmt.keyword
        if not stmt.args:
            self.skip(stmt, kw, "needs a name; not carried over")
            return
        name = stmt.args[0]
        if len(stmt.args) > 1:
            self.skip(stmt, kw, f"extra words ignored: {' '.join(stmt.args[1:])!r}",
                      same=True)
        if name in section:
            first = self.origins[(id(section[name]), None)]
            where = f"{first.file}:{first.line}"
            if first.file == stmt.file:
                where = f"line {first.line}"
            self.skip(stmt, kw, f"{name} is already defined on {where}; not carried over")
            return
        if stmt.block is None:
            self.skip(stmt, kw, f"{name} has no {{ }} block; not carried over")
            return
        target: dict[str, Any] = {}
        self.walk(stmt.block, table, target, kw)
        if finish(stmt, target, kw):
            section[name] = target
            self.mark(target, stmt, kw)
            self.origins[(id(section), name)] = _Origin(stmt.file, stmt.line, kw)
