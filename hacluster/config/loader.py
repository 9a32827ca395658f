"""YAML → validated `Config`, collecting every problem with its file, line and key path.

The YAML is composed into nodes (which keep their line) and walked against the model's
type hints; field metadata gives bounds. Then the rules that span several keys or
sections are checked. `load_config` reads a file; `parse_config` takes text.

This module is the public API and the walk of the file's sections; the parts:
compose (YAML text → nodes), loader_nodes (small helpers), loader_values (value
parsers), loader_convert (type hint → converter), loader_walk (one load's state and
the generic walk), loader_vrrp and loader_servers (each section's rules).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from hacluster.config import model as m
from hacluster.config.compose import _NULL_TAG, _reader_line, _yaml_problem
from hacluster.config.compose import _compose as _compose
from hacluster.config.errors import ConfigError, Problem
from hacluster.config.loader_nodes import _INVALID, _describe, _is_null, _join, _line, _suggest
from hacluster.config.loader_nodes import _hints as _hints
from hacluster.config.loader_nodes import _num as _num
from hacluster.config.loader_nodes import _strip_none as _strip_none
from hacluster.config.loader_nodes import yaml_fields as yaml_fields
from hacluster.config.loader_servers import CHECKER_KEYS as CHECKER_KEYS
from hacluster.config.loader_servers import _ServerRules
from hacluster.config.loader_servers import inherited_keys as inherited_keys
from hacluster.config.loader_values import _NOTIFY_KEYS as _NOTIFY_KEYS
from hacluster.config.loader_values import ip_address as ip_address
from hacluster.config.loader_vrrp import _VrrpRules
from hacluster.config.loader_walk import _Names

_SECTIONS = (
    "global_defs",
    "vrrp_scripts",
    "vrrp_track_files",
    "vrrp_track_processes",
    "vrrp_instances",
    "vrrp_sync_groups",
    "virtual_servers",
    "static_ipaddress",
    "static_routes",
    "static_rules",
)
_NAME_RE = re.compile(r"^[^\s/]+$")
log = logging.getLogger("hacluster.config")

# --------------------------------------------------------------------------- public API


def load_config(path: str | Path) -> m.Config:
    """Read and validate the YAML file at `path`; raise `ConfigError` listing every problem."""
    return load_config_located(path)[0]


def load_config_located(path: str | Path) -> tuple[m.Config, Mapping[str, int]]:
    """`load_config`, and the line of every key path the file gives (for later checks
    that report `FILE:LINE: key: message`, such as the preflight)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([Problem(str(path), 0, "", "no such file")]) from None
    except IsADirectoryError:
        raise ConfigError([Problem(str(path), 0, "", "is a directory, not a file")]) from None
    except OSError as exc:
        raise ConfigError([Problem(str(path), 0, "", f"cannot read: {exc.strerror}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([_not_utf8(str(path), data, exc)]) from None
    ctx = _Ctx(str(path))
    config = ctx.load(text, path)
    if ctx.problems or config is None:
        raise ConfigError(ctx.problems)
    for warning in ctx.warnings:  # keepalived warns and goes on: so does the loader
        log.warning("%s", warning)
    return config, ctx.lines


def _not_utf8(file: str, data: bytes, exc: UnicodeDecodeError) -> Problem:
    """The first byte that is not UTF-8, by line and column (columns count bytes)."""
    line_start = data.rfind(b"\n", 0, exc.start) + 1
    line = data.count(b"\n", 0, exc.start) + 1
    column = exc.start - line_start + 1
    return Problem(file, line, "", f"not UTF-8 text: byte 0x{data[exc.start]:02x} at column "
                                   f"{column} ({exc.reason})")


def parse_config(
    text: str, filename: str = "<string>", source_path: Path | None = None
) -> m.Config:
    """Validate YAML `text`; problems name `filename`. Raise `ConfigError` if any."""
    ctx = _Ctx(filename)
    config = ctx.load(text, source_path)
    if ctx.problems or config is None:
        raise ConfigError(ctx.problems)
    return config



class _Ctx(_VrrpRules, _ServerRules):
    """One load: the walk of the file's sections, each by the rules of its part."""

    # ---------------------------------------------------------------- the file

    def load(self, text: str, source_path: Path | None) -> m.Config | None:
        if not text.strip():
            self.error(1, "", "file is empty")
            return None
        try:
            root = _compose(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = int(mark.line) + 1 if mark is not None else 1
            self.error(line, "", f"YAML syntax error: {_yaml_problem(exc)}")
            return None
        except yaml.reader.ReaderError as exc:  # a character YAML does not allow
            line, column = _reader_line(text, exc)
            self.error(line, "", f"YAML error: {_yaml_problem(exc)} (column {column})")
            return None
        except yaml.YAMLError as exc:
            self.error(1, "", f"YAML error: {_yaml_problem(exc)}")
            return None
        if root is None or (isinstance(root, ScalarNode) and root.tag == _NULL_TAG):
            self.error(1, "", "file is empty")
            return None
        pairs = self.mapping(root, "", "a mapping of sections (global_defs, vrrp_instances, ...)")
        if pairs is None:
            return None
        nodes: dict[str, Node] = {}
        for key, value in pairs:
            if key not in _SECTIONS:
                self.error(
                    self.lines[key], key, f"unknown section{_suggest(key, _SECTIONS)}"
                )
                continue
            nodes[key] = value

        self.names = _Names(
            scripts=set(self.defined_names(nodes, "vrrp_scripts")),
            track_files=set(self.defined_names(nodes, "vrrp_track_files")),
            track_processes=set(self.defined_names(nodes, "vrrp_track_processes")),
            instances=set(self.defined_names(nodes, "vrrp_instances")),
        )
        global_defs = m.GlobalDefs()
        if (node := nodes.get("global_defs")) is not None and not _is_null(node):
            built = self.build(m.GlobalDefs, node, "global_defs")
            if built is not _INVALID:
                global_defs = built
        scripts = self.named(nodes, "vrrp_scripts", m.VrrpScript, self.vrrp_script)
        track_files = self.named(nodes, "vrrp_track_files", m.VrrpTrackFile)
        track_processes = self.named(
            nodes, "vrrp_track_processes", m.VrrpTrackProcess, self.track_process
        )
        instances = self.named(
            nodes,
            "vrrp_instances",
            m.VrrpInstance,
            lambda n, p, name: self.instance(n, p, name, global_defs),
        )
        groups = self.named(nodes, "vrrp_sync_groups", m.VrrpSyncGroup, self.sync_group)
        servers: list[m.VirtualServer] = []
        if (node := nodes.get("virtual_servers")) is not None and not _is_null(node):
            if not isinstance(node, SequenceNode):
                self.error(node, "virtual_servers", f"must be a list, got {_describe(node)}")
            else:
                for i, item in enumerate(node.value):
                    path = f"virtual_servers[{i}]"
                    self.lines[path] = _line(item)
                    vs = self.virtual_server(item, path)
                    if vs is not _INVALID:
                        servers.append(vs)

        sync = global_defs.lvs_sync_daemon
        if sync is not None and sync.group is not None and not sync.group.is_multicast:
            self.at("global_defs.lvs_sync_daemon.group", f"{sync.group} is not a multicast address")
        if (
            sync is not None
            and sync.instance is not None
            and sync.instance not in self.names.instances
        ):
            self.at(
                "global_defs.lvs_sync_daemon.instance",
                f"no vrrp_instance named '{sync.instance}'"
                f"{_suggest(sync.instance, self.names.instances)}",
            )
        statics = {
            key: self.convert(_hints(m.Config)[key], nodes[key], key, {})
            for key in ("static_ipaddress", "static_routes", "static_rules") if key in nodes
        }
        for i, vip in enumerate(statics.get("static_ipaddress") or ()):
            if vip is not _INVALID and vip.dev is None:  # no instance to lend its interface
                self.at(f"static_ipaddress[{i}]", "needs 'dev IFACE'")
        self.check_instances_together(instances)
        self.check_sync_groups()
        self.group_priority_changes(instances, groups)
        self.check_virtual_servers_together()
        if self.problems:
            return None
        return m.Config(
            source_path=source_path,
            global_defs=global_defs,
            vrrp_scripts=m.frozen_map(scripts),
            vrrp_track_files=m.frozen_map(track_files),
            vrrp_track_processes=m.frozen_map(track_processes),
            vrrp_instances=m.frozen_map(instances),
            vrrp_sync_groups=m.frozen_map(groups),
            virtual_servers=tuple(servers),
            **statics,
        )

    def defined_names(self, nodes: Mapping[str, Node], section: str) -> list[str]:
        node = nodes.get(section)
        if not isinstance(node, MappingNode):
            return []
        return [str(k.value) for k, _ in node.value if isinstance(k, ScalarNode)]

    def named(
        self,
        nodes: Mapping[str, Node],
        section: str,
        cls: type[Any],
        builder: Callable[[Node, str, str], Any] | None = None,
    ) -> dict[str, Any]:
        """A section that maps names to objects (vrrp_instances, vrrp_scripts, ...)."""
        out: dict[str, Any] = {}
        node = nodes.get(section)
        if node is None or _is_null(node):
            return out
        pairs = self.mapping(node, section, "a mapping of names to settings")
        for name, value in pairs or ():
            path = _join(section, name)
            if not _NAME_RE.match(name):
                self.error(self.lines[path], path, "names must be non-empty, without spaces or '/'")
                continue
            if builder is not None:
                built = builder(value, path, name)
            else:
                built = self.build(cls, value, path, inject={"name": name})
            if built is not _INVALID:
                out[name] = built
        return out
