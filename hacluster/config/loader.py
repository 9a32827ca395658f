"""YAML → validated `Config`, collecting every problem with its file, line and key path.

The YAML is composed into nodes (which keep their line) and walked against the model's
type hints; field metadata gives bounds. Then the rules that span several keys or
sections are checked. `load_config` reads a file; `parse_config` takes text.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import ipaddress
import logging
import math
import operator
import re
import shlex
import socket
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, Field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from hacluster.config import advert_fit
from hacluster.config import model as m
from hacluster.config.errors import ConfigError, Problem

_INVALID: Any = object()  # a value that failed; its problem has been recorded
_NULL_TAG = "tag:yaml.org,2002:null"
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_VALUE_TAG = "tag:yaml.org,2002:value"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


def _compose(text: str) -> Node | None:
    """The YAML text as nodes (each with its line), by libyaml when PyYAML has it."""
    parser = _Composer(text) if _Composer is not None else yaml.SafeLoader(text)
    try:
        node: Node | None = parser.get_single_node()
        return node
    finally:
        parser.dispose()


def _c_composer() -> type[Any] | None:
    try:
        from yaml._yaml import CParser
    except ImportError:  # PyYAML built without libyaml: its own (slower) parser
        return None

    class Composer(CParser, Resolver):
        """libyaml's parser (what yaml.CSafeLoader composes with) with YAML 1.1's
        implicit tags worked out once per distinct plain scalar.

        With thousands of real servers most scalars repeat (keys, ports, timeouts), and
        PyYAML's resolver tries its regular expressions on every one: half the time of
        composing. A plain scalar's tag depends on its text alone (no path resolvers
        are registered here), so a cache gives the same tags; a test composes files
        both ways and compares.
        """

        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            Resolver.__init__(self)
            self._plain_tags: dict[str, str] = {}

        def resolve(self, kind: type[Node], value: Any, implicit: tuple[bool, bool]) -> str:
            if kind is ScalarNode and implicit[0]:
                tag = self._plain_tags.get(value)
                if tag is None:
                    if value.count(".") > 1:
                        # No YAML 1.1 implicit tag (float, int, timestamp, ...) has two
                        # dots: an address, each one different, is a string at once.
                        return _STR_TAG
                    tag = self._plain_tags[value] = Resolver.resolve(  # type: ignore[no-untyped-call]
                        self, kind, value, implicit)
                return tag
            # What Resolver.resolve answers without path resolvers: the kind's default.
            if kind is MappingNode:
                return _MAP_TAG
            if kind is SequenceNode:
                return _SEQ_TAG
            return _STR_TAG

        # Only path resolvers (yaml.add_path_resolver) descend and ascend; none here.
        def descend_resolver(self, current_node: Any, current_index: Any) -> None:
            pass

        def ascend_resolver(self) -> None:
            pass

    return Composer


_Composer = _c_composer()

CHECKER_KEYS: dict[str, type[m.CheckBase]] = {cls.KIND: cls for cls in m.CHECKER_TYPES}
_CHECKER_ORDER = {kind: i for i, kind in enumerate(CHECKER_KEYS)}
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
_DIGEST_RE = re.compile(r"^[0-9a-fA-F]{32}$")
_HOSTPORT_RE = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+))(?::(?P<port>\d+))?$")
log = logging.getLogger("hacluster.config")

_TRACK_INHERITED = ("retry", "delay_before_retry", "delay_loop", "warmup", "alpha")
_IFNAME_RE = re.compile(r"[^/\s\x00]{1,15}")  # an interface name (IFNAMSIZ - 1 bytes)
_HELO_RE = re.compile(r"[\x21-\x7e]+")
_MAX_UDP_PAYLOAD = 65507  # 65535 - IPv4 header (20) - UDP header (8)


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


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What PyYAML says is wrong, on one line and without its own position ("in
    <unicode string>, line 3, column 5"): the problem line already says where."""
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    text = " ".join(str(p) for p in parts if p)
    if isinstance(exc, yaml.reader.ReaderError):
        text = _reader_problem(exc)
    if not text:
        text = str(exc).split("\n", 1)[0]
    return " ".join(text.split())


def _reader_problem(exc: yaml.reader.ReaderError) -> str:
    char = exc.character
    code = char if isinstance(char, int) else ord(char) if char else 0
    return f"unacceptable character #x{code:04x}: {exc.reason}"


def _reader_line(text: str, exc: yaml.reader.ReaderError) -> tuple[int, int]:
    """Line and column (1-based) of a character the YAML reader refused."""
    position = max(0, min(int(exc.position), len(text)))
    line_start = text.rfind("\n", 0, position) + 1
    return text.count("\n", 0, position) + 1, position - line_start + 1


def parse_config(
    text: str, filename: str = "<string>", source_path: Path | None = None
) -> m.Config:
    """Validate YAML `text`; problems name `filename`. Raise `ConfigError` if any."""
    ctx = _Ctx(filename)
    config = ctx.load(text, source_path)
    if ctx.problems or config is None:
        raise ConfigError(ctx.problems)
    return config


def yaml_fields(cls: type[Any]) -> dict[str, Field[Any]]:
    """The YAML keys a mapping of `cls` takes, with their model fields (do not change it).

    A field named by the mapping's own key (`from_key`) or built from other keys
    (`derived`) is not a key of its own. Worked out once per class: the loader asks for
    every mapping it reads (thousands with thousands of real servers).
    """
    found = _YAML_FIELDS.get(cls)
    if found is None:
        found = _YAML_FIELDS[cls] = {
            f.metadata.get("key", f.name): f
            for f in fields(cls)
            if not f.metadata.get("from_key") and not f.metadata.get("derived")
        }
    return found


_YAML_FIELDS: dict[type[Any], dict[str, Field[Any]]] = {}


def inherited_keys(cls: type[m.CheckBase]) -> tuple[str, ...]:
    """Checker keys that, when not given, come from the real server, else the virtual server.

    FILE_CHECK has none of keepalived's checker timing: its delay_loop is how often the
    file is read, not inherited from the servers.
    """
    found = _INHERITED.get(cls)
    if found is not None:
        return found
    if cls is m.FileCheck:
        keys = ["alpha"]
    else:
        keys = list(_TRACK_INHERITED)
        if issubclass(cls, m.NetworkCheckBase):
            keys.append("connect_timeout")
        if issubclass(cls, m.HttpCheckBase):
            keys.append("virtualhost")
    found = _INHERITED[cls] = tuple(keys)
    return found


_INHERITED: dict[type[m.CheckBase], tuple[str, ...]] = {}


# --------------------------------------------------------------------------- helpers


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _num(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    assert isinstance(node, ScalarNode)
    kind = node.tag.rsplit(":", 1)[-1]
    names = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
    if node.tag == _NULL_TAG:
        return "nothing (null)"
    return f"{names.get(kind, kind)} {node.value!r}"


def _suggest(key: str, known: Iterable[str]) -> str:
    known = list(known)
    lower = {k.lower(): k for k in known}
    if key.lower() in lower:
        return f" (did you mean '{lower[key.lower()]}'?)"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(key.lower(), list(lower), n=1, cutoff=0.6)
        close = [lower[c] for c in close]
    return f" (did you mean '{close[0]}'?)" if close else ""


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _strip_none(hint: Any) -> tuple[Any, bool]:
    """(hint without None, whether None was allowed)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) != len(typing.get_args(hint)):
            inner = args[0] if len(args) == 1 else functools.reduce(operator.or_, args)
            return inner, True
    return hint, False


_Convert = Callable[["_Ctx", Node, str, Mapping[str, Any]], Any]
_CONVERTERS: dict[Any, _Convert] = {}
_IMMUTABLE_SCALARS = (bool, int, float, str)
_NUMBERS = (int, float)
_SPECIAL_KEY_TAGS = (_MERGE_TAG, _VALUE_TAG, _NULL_TAG)


def _converter(hint: Any) -> _Convert:
    """How a node becomes a value of the type `hint` (worked out once per hint)."""
    found = _CONVERTERS.get(hint)
    if found is None:
        found = _CONVERTERS[hint] = _make_converter(hint)
    return found


def _make_converter(hint: Any) -> _Convert:
    parser = _PARSERS.get(hint)
    if parser is not None:
        return lambda ctx, node, path, meta: parser(ctx, node, path)
    inner, nullable = _strip_none(hint)
    if nullable:
        convert = _converter(inner)

        def nullable_value(ctx: _Ctx, node: Node, path: str, meta: Mapping[str, Any]) -> Any:
            if _is_null(node):
                return None
            return convert(ctx, node, path, meta)

        return nullable_value
    origin = typing.get_origin(hint)
    if origin is tuple:
        item = _converter(typing.get_args(hint)[0])
        return lambda ctx, node, path, meta: ctx.sequence(item, node, path, meta)
    if origin is Literal:
        allowed = typing.get_args(hint)
        return lambda ctx, node, path, meta: ctx.literal(allowed, node, path)
    if isinstance(hint, type) and is_dataclass(hint):
        return lambda ctx, node, path, meta: ctx.build(hint, node, path)
    if hint is bool:
        return _to_bool
    if hint is int or hint is float:
        return lambda ctx, node, path, meta: ctx.number(hint, node, path, meta)
    if hint is str:
        return _to_str
    if hint is Path:
        return _to_path
    if hint in (ipaddress.IPv4Address, ipaddress.IPv6Address):
        return lambda ctx, node, path, meta: _parse_ip_of(hint, ctx, node, path)

    def mismatch(ctx: _Ctx, node: Node, path: str, meta: Mapping[str, Any]) -> Any:
        raise TypeError(f"no YAML conversion for {hint!r} at {path}")  # a model/loader mismatch

    return mismatch


def _to_bool(ctx: _Ctx, node: Node, path: str, meta: Mapping[str, Any]) -> Any:
    value = ctx.plain(node, path, "true or false")
    if value is _INVALID or isinstance(value, bool):
        return value
    return ctx.error(node, path, f"must be true or false, got {_describe(node)}")


def _to_str(ctx: _Ctx, node: Node, path: str, meta: Mapping[str, Any]) -> Any:
    if not isinstance(node, ScalarNode) or _is_null(node):
        return ctx.error(node, path, f"must be a string, got {_describe(node)}")
    return str(node.value)


def _to_path(ctx: _Ctx, node: Node, path: str, meta: Mapping[str, Any]) -> Any:
    if not isinstance(node, ScalarNode) or _is_null(node) or not str(node.value):
        return ctx.error(node, path, f"must be a file path, got {_describe(node)}")
    return Path(str(node.value))


def _parse_ip_of(hint: type, ctx: _Ctx, node: Node, path: str) -> Any:
    value = _parse_ip(ctx, node, path)
    if value is not _INVALID and not isinstance(value, hint):
        want = "IPv4" if hint is ipaddress.IPv4Address else "IPv6"
        return ctx.error(node, path, f"must be an {want} address, got {value}")
    return value


class _Shape:
    """What reading a mapping of a model class needs, worked out once per class: each
    YAML key's field name, converter and metadata, and the keys without a default."""

    __slots__ = ("keys", "required")

    def __init__(self, cls: type[Any]) -> None:
        hints = _hints(cls)
        by_key = yaml_fields(cls)
        self.keys: dict[str, tuple[str, _Convert, Mapping[str, Any]]] = {
            key: (f.name, _converter(hints[f.name]), f.metadata) for key, f in by_key.items()
        }
        self.required = tuple(
            key for key, f in by_key.items()
            if f.default is MISSING and f.default_factory is MISSING
        )


_SHAPES: dict[type[Any], _Shape] = {}


def _shape(cls: type[Any]) -> _Shape:
    found = _SHAPES.get(cls)
    if found is None:
        found = _SHAPES[cls] = _Shape(cls)
    return found


class _Ctx:
    """One load: the file name, the problems so far, and the line of every key path."""

    def __init__(self, filename: str) -> None:
        self.file = filename
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []  # what keepalived warns about and goes on
        self.lines: dict[str, int] = {}
        # The valid items of lists that had invalid ones, so that rules spanning a list
        # (one family per instance, ...) still report on what could be read.
        self.partial: dict[str, list[Any]] = {}
        self.names = _Names(set(), set(), set())
        self.group_members: dict[str, list[str]] = {}
        self.server_keys: dict[str, Any] = {}  # path → identity, also of invalid entries
        self.priority_changes_given: set[str] = set()  # instances with their own setting
        self.constructor = yaml.constructor.SafeConstructor()
        self.scalars: dict[tuple[str, str], Any] = {}

    # ---------------------------------------------------------------- reporting

    def error(self, where: Node | int, path: str, message: str) -> Any:
        line = where if isinstance(where, int) else _line(where)
        self.problems.append(Problem(self.file, line, path, message))
        return _INVALID

    def line_of(self, path: str) -> int:
        while path:
            if path in self.lines:
                return self.lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return 1

    def at(self, path: str, message: str) -> None:
        self.error(self.line_of(path), path, message)

    # ---------------------------------------------------------------- YAML nodes

    def scalar(self, node: ScalarNode, path: str) -> Any:
        # A scalar's value depends on its tag and text alone: each distinct one is
        # constructed once (thousands of real servers repeat the same ports and timeouts).
        key = (node.tag, node.value)
        value = self.scalars.get(key, _INVALID)
        if value is not _INVALID:
            return value
        try:
            value = self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            return self.error(node, path, f"cannot read value: {_yaml_problem(exc)}")
        if value is None or type(value) in _IMMUTABLE_SCALARS:
            self.scalars[key] = value
        return value

    def mapping(
        self, node: Node, path: str, what: str = "a mapping"
    ) -> list[tuple[str, Node]] | None:
        """The (key, value) pairs of a mapping node, merge keys applied; None if not a mapping."""
        if not isinstance(node, MappingNode):
            self.error(node, path, f"must be {what}, got {_describe(node)}")
            return None
        # Distinct plain names as keys (the common case): what merged_mapping does, in a
        # pass that records nothing until it knows it may.
        pairs: dict[str, Node] = {}
        for key_node, value in node.value:
            if (type(key_node) is not ScalarNode or key_node.tag in _SPECIAL_KEY_TAGS
                    or key_node.value in pairs):
                return self.merged_mapping(node, path)
            pairs[key_node.value] = value
        lines = self.lines
        prefix = f"{path}." if path else ""
        for key_node, _value in node.value:
            lines.setdefault(prefix + key_node.value, key_node.start_mark.line + 1)
        return list(pairs.items())

    def merged_mapping(self, node: MappingNode, path: str) -> list[tuple[str, Node]] | None:
        """`mapping` for one with merge keys (<<), '=' keys or keys that are not names."""
        seen: dict[str, int] = {}
        for key_node, _value in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            if not isinstance(key_node, ScalarNode) or key_node.tag == _NULL_TAG:
                self.error(key_node, path, f"keys must be names, got {_describe(key_node)}")
                continue
            key = str(key_node.value)
            if key in seen:
                self.error(
                    key_node, _join(path, key), f"duplicate key (first given on line {seen[key]})"
                )
            seen[key] = _line(key_node)
        try:
            self.constructor.flatten_mapping(node)
        except RecursionError:
            self.error(node, path, "merge keys (<<) refer to themselves")
            return None
        except yaml.YAMLError as exc:
            self.error(node, path, f"bad merge key: {_yaml_problem(exc)}")
            return None
        pairs: dict[str, tuple[str, Node]] = {}
        for key_node, value in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag != _NULL_TAG:
                key = str(key_node.value)
                pairs[key] = (key, value)  # later wins: explicit keys come after merged ones
                self.lines.setdefault(_join(path, key), _line(key_node))
        return list(pairs.values())

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

    def group_priority_changes(self, instances: dict[str, Any], groups: Mapping[str, Any]) -> None:
        """A sync group's notify_priority_changes is the default of its members that do
        not set their own (keepalived's rule; without either, the global one)."""
        for group in groups.values():
            if group is _INVALID or group.notify_priority_changes is None:
                continue
            for name in group.group:
                inst = instances.get(name)
                if (inst is not None and inst is not _INVALID
                        and name not in self.priority_changes_given):
                    instances[name] = dataclasses.replace(
                        inst, notify_priority_changes=group.notify_priority_changes)

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

    # ---------------------------------------------------------------- generic walking

    def read(
        self, cls: type[Any], node: Node, path: str, skip: Iterable[str] = ()
    ) -> tuple[dict[str, Any], dict[str, Node], bool] | None:
        """Convert the keys of a mapping node against `cls`'s fields.

        Returns (values given, their nodes, all fine) or None when the node is not a
        mapping. Keys in `skip` are left to the caller. Missing required keys are
        reported on the line of the mapping's own key.
        """
        pairs = self.mapping(node, path)
        if pairs is None:
            return None
        shape = _shape(cls)
        by_key = shape.keys
        values: dict[str, Any] = {}
        given: dict[str, Node] = {}
        ok = True
        prefix = f"{path}." if path else ""
        for key, value_node in pairs:
            kpath = prefix + key
            if key in skip:
                given[key] = value_node
                continue
            found = by_key.get(key)
            if found is None:
                hint = _suggest(key, [*by_key, *skip])
                self.error(self.lines[kpath], kpath, f"unknown key{hint}")
                ok = False
                continue
            name, convert, meta = found
            value = convert(self, value_node, kpath, meta)
            given[key] = value_node
            if value is _INVALID:
                ok = False
            else:
                values[name] = value
        for key in shape.required:
            if key not in given:
                line = self.lines.get(path, _line(node))
                self.error(line, prefix + key, "required key is missing")
                ok = False
        return values, given, ok

    def build(
        self, cls: type[Any], node: Node, path: str, inject: Mapping[str, Any] | None = None
    ) -> Any:
        custom = _BUILDERS.get(cls)
        if custom is not None:
            return custom(self, node, path)
        read = self.read(cls, node, path)
        if read is None or not read[2]:
            return _INVALID
        return cls(**read[0], **(inject or {}))

    def convert(self, hint: Any, node: Node, path: str, meta: Mapping[str, Any]) -> Any:
        return _converter(hint)(self, node, path, meta)

    def sequence(self, convert: _Convert, node: Node, path: str, meta: Mapping[str, Any]) -> Any:
        """A list of values, each through `convert`, as a tuple."""
        if _is_null(node):
            return ()  # `key:` with nothing after it: an empty list
        if not isinstance(node, SequenceNode):
            return self.error(node, path, f"must be a list, got {_describe(node)}")
        items = []
        ok = True
        for i, item in enumerate(node.value):
            ipath = f"{path}[{i}]"
            self.lines[ipath] = _line(item)
            value = convert(self, item, ipath, meta)
            ok = ok and value is not _INVALID
            items.append(value)
        if ok:
            return tuple(items)
        self.partial[path] = [item for item in items if item is not _INVALID]
        return _INVALID

    def plain(self, node: Node, path: str, what: str) -> Any:
        if not isinstance(node, ScalarNode):
            return self.error(node, path, f"must be {what}, got {_describe(node)}")
        return self.scalar(node, path)

    def number(self, hint: type, node: Node, path: str, meta: Mapping[str, Any]) -> Any:
        if isinstance(node, ScalarNode):
            value = self.scalar(node, path)
            if value is _INVALID:
                return value
            if type(value) is int and hint is int:  # the common case, in one test
                low, high = meta.get("min"), meta.get("max")
                if (low is None or value >= low) and (high is None or value <= high):
                    return value
        else:
            value = None
        want = "a whole number" if hint is int else "a number"
        if not isinstance(node, ScalarNode) or isinstance(value, bool) or not isinstance(
                value, _NUMBERS):
            return self.error(node, path, f"must be {want}, got {_describe(node)}")
        if hint is int and not isinstance(value, int):
            if not value.is_integer():
                return self.error(node, path, f"must be a whole number, got {_num(value)}")
            value = int(value)
        if isinstance(value, float) and not math.isfinite(value):
            return self.error(node, path, f"must be a finite number, got {node.value}")
        low, high = meta.get("min"), meta.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"{'' if low is None else _num(low)}..{'' if high is None else _num(high)}"
            return self.error(node, path, f"must be {bounds}, got {_num(value)}")
        return float(value) if hint is float else value

    def literal(self, allowed: tuple[Any, ...], node: Node, path: str) -> Any:
        choices = " | ".join(str(a) for a in allowed)
        value = self.plain(node, path, f"one of {choices}")
        if value is _INVALID:
            return value
        for option in allowed:
            if type(option) is type(value) and option == value:
                return option
            if (
                isinstance(option, str)
                and isinstance(value, str | int | float)
                and not isinstance(value, bool)
                and str(value).lower() == option.lower()
            ):
                return option
        return self.error(node, path, f"must be one of {choices}, got {_describe(node)}")

    # ---------------------------------------------------------------- run-as users

    def check_run_as(self, path: str, values: Mapping[str, Any]) -> bool:
        """`user` and `group` beside a script: names, and a group only with a user."""
        ok = True
        for key in ("user", "group"):
            name = values.get(key)
            if name is not None and not _RUN_AS_NAME_RE.match(name):
                what = "a group name" if key == "group" else "a user name"
                self.at(_join(path, key), f"must be {what} (no spaces or ':'), got {name!r}")
                ok = False
        if values.get("group") is not None and values.get("user") is None:
            self.at(_join(path, "group"), _GROUP_NEEDS_USER)
            ok = False
        return ok

    def vrrp_script(self, node: Node, path: str, name: str) -> Any:
        read = self.read(m.VrrpScript, node, path)
        if read is None:
            return _INVALID
        values, _given, ok = read
        ok = self.check_run_as(path, values) and ok
        if not ok:
            return _INVALID
        return m.VrrpScript(name=name, **values)

    def check_strict(self, path: str, values: dict[str, Any], given: Mapping[str, Any]) -> bool:
        """vrrp_strict / strict_mode (keepalived's vrrp_complete_instance): what keepalived
        refuses or resets is refused here, naming the key; what it enforces is set (no
        advert answers a lower-priority master, no lower-priority GARP repeats, accept
        only for the address owner)."""
        owner = values.get("priority", 100) == 255
        refused = {
            "unicast_peers": bool(values.get("unicast_peers")),
            "authentication": values.get("authentication") is not None,
            "preempt_delay": bool(values.get("preempt_delay")),
            "higher_prio_send_advert": bool(values.get("higher_prio_send_advert")),
            "lower_prio_no_advert": "lower_prio_no_advert" in given
                                    and not values["lower_prio_no_advert"],
            "accept": "accept" in given and values.get("accept") and not owner
                      and values["version"] == 2,
            "garp_lower_prio_repeat": bool(values.get("garp_lower_prio_repeat"))
                                      and "garp_lower_prio_repeat" in given,
            "garp_lower_prio_delay": bool(values.get("garp_lower_prio_delay"))
                                     and "garp_lower_prio_delay" in given,
            "vmac_xmit_base": bool(values.get("vmac_xmit_base")),
        }
        ok = True
        for key, bad in refused.items():
            if bad:
                self.at(_join(path, key), "not allowed in strict mode (vrrp_strict / "
                        "strict_mode: RFC 3768/5798 compliance, as keepalived)")
                ok = False
        if "state" in given and (values.get("state") == "MASTER") != owner:
            self.at(_join(path, "state"), "strict mode: MASTER exactly when priority is 255 "
                    "(the address owner)")
            ok = False
        if not values.get("virtual_ipaddress"):
            self.at(_join(path, "virtual_ipaddress"), "strict mode needs at least one VIP")
            ok = False
        values["lower_prio_no_advert"] = True
        values.setdefault("garp_lower_prio_repeat", 0)
        values.setdefault("garp_lower_prio_delay", 0)
        if "accept" not in given:
            values["accept"] = owner
        return ok

    def fit_advert(self, values: dict[str, Any], vips: list[m.VirtualIpAddress], family: int,
                   version: int, vpath: str) -> None:
        """VIPs beyond what one advert carries at the interface's MTU go to the excluded
        list, with a warning (keepalived's rule; see advert_fit)."""
        interface = values.get("interface", "")
        mtu = advert_fit.interface_mtu(interface) if interface else None
        most = advert_fit.capacity(family, version, mtu or advert_fit.DEFAULT_MTU)
        if len(vips) <= most:
            return
        values["virtual_ipaddress"] = tuple(vips[:most])
        values["virtual_ipaddress_excluded"] = (
            *values.get("virtual_ipaddress_excluded", ()), *vips[most:])
        self.warnings.append(Problem(self.file, self.lines.get(vpath, 0), vpath,
                                     advert_fit.message(len(vips), most, interface, mtu)))

    def track_process(self, node: Node, path: str, name: str) -> Any:
        read = self.read(m.VrrpTrackProcess, node, path)
        if read is None:
            return _INVALID
        values, given, ok = read
        quorum, quorum_max = values.get("quorum", 1), values.get("quorum_max")
        if quorum_max is not None and quorum_max < quorum:
            if quorum_max == 0 and "quorum" not in given:
                values["quorum"] = 0  # keepalived: quorum_max 0 alone means "none may run"
            else:
                self.at(_join(path, "quorum_max"), f"{quorum_max} is below quorum {quorum}")
                ok = False
        if not ok:
            return _INVALID
        return m.VrrpTrackProcess(name=name, **values)

    # ---------------------------------------------------------------- VRRP instances

    def instance(self, node: Node, path: str, name: str, g: m.GlobalDefs) -> Any:
        read = self.read(m.VrrpInstance, node, path)
        if read is None:
            return _INVALID
        values, _given, ok = read
        if "notify_priority_changes" in _given:
            self.priority_changes_given.add(name)
        ok = self.check_tracking(path, values) and ok
        vpath = _join(path, "virtual_ipaddress")
        vips: list[m.VirtualIpAddress] = list(
            values.get("virtual_ipaddress", self.partial.get(vpath, ()))
        )
        family = vips[0].family if vips else None
        if not vips and vpath not in self.partial:
            # keepalived's rule: VRRPv2 over IPv4 may run without VIPs, v3 and IPv6 not
            own = [values.get("unicast_src_ip"), values.get("mcast_src_ip"),
                   *(p.ip for p in values.get("unicast_peers", ()))]
            family = next((ip.version for ip in own if ip is not None), None)
            wanted = values.get("version", 3 if family == 6 else g.vrrp_version)
            if wanted == 3 or family == 6:
                self.at(vpath, "must list at least one address under VRRPv3 or IPv6 "
                        "(keepalived's rule; VRRPv2 over IPv4 may run without)")
                ok = False
        for i, vip in enumerate(vips[1:], start=1):
            if vip.family != family:
                self.at(
                    f"{path}.virtual_ipaddress[{i}]",
                    f"{vip.ip} is IPv{vip.family} but the instance's first address is "
                    f"IPv{family}; one instance carries one family "
                    "(use virtual_ipaddress_excluded for others)",
                )
                ok = False

        version = values.get("version")
        if version is None:
            version = 3 if family == 6 else g.vrrp_version
        elif version == 2 and family == 6:
            self.at(_join(path, "version"), "VRRPv2 is IPv4 only; IPv6 instances need version 3")
            ok = False
        values["version"] = version

        if "advert_int" in values:
            adv = values["advert_int"]
            apath = _join(path, "advert_int")
            if version == 2 and (not float(adv).is_integer() or not 1 <= adv <= 255):
                self.at(apath, f"VRRPv2 allows whole seconds 1..255, got {_num(adv)}")
                ok = False
            elif version == 3 and (
                not 0.01 <= adv <= 40.95 or abs(adv * 100 - round(adv * 100)) > 1e-6
            ):
                self.at(apath, f"VRRPv3 allows 0.01..40.95 in steps of 0.01, got {_num(adv)}")
                ok = False
            else:
                values["advert_int"] = round(adv, 2)

        if values.get("authentication") is not None and version == 3:
            self.at(_join(path, "authentication"), "VRRPv3 has no authentication (v2 only)")
            ok = False
        if len(vips) >= advert_fit.ALWAYS_FIT and family is not None and ok:
            self.fit_advert(values, vips, family, version, vpath)
        if values.get("nopreempt") and values.get("state") == "MASTER":
            self.at(_join(path, "nopreempt"), "needs state BACKUP (keepalived's rule)")
            ok = False

        if family is not None:
            for key in ("unicast_src_ip", "mcast_src_ip"):
                ip = values.get(key)
                if ip is not None and ip.version != family:
                    self.at(
                        _join(path, key),
                        f"{ip} is IPv{ip.version} but the virtual addresses are IPv{family}",
                    )
                    ok = False
            dst = values.get("mcast_dst_ip")
            if dst is not None and (dst.version != family or not dst.is_multicast):
                self.at(
                    _join(path, "mcast_dst_ip"),
                    f"must be an IPv{family} multicast address, got {dst}",
                )
                ok = False
        src = values.get("unicast_src_ip")
        peer_family = src.version if src is not None else family
        seen_peers: set[m.IPAddress] = set()
        ppath = _join(path, "unicast_peers")
        for i, peer in enumerate(values.get("unicast_peers", self.partial.get(ppath, ()))):
            ppath = f"{path}.unicast_peers[{i}]"
            if peer_family is not None and peer.ip.version != peer_family:
                source = "unicast_src_ip is" if src is not None else "the virtual addresses are"
                self.at(
                    ppath, f"{peer.ip} is IPv{peer.ip.version} but {source} IPv{peer_family}"
                )
                ok = False
            if peer.ip in seen_peers:
                self.at(ppath, f"{peer.ip} is listed twice")
                ok = False
            if src is not None and peer.ip == src:
                self.at(ppath, f"{peer.ip} is this director's own unicast_src_ip")
                ok = False
            if (
                peer.min_ttl is not None
                and peer.max_ttl is not None
                and peer.min_ttl > peer.max_ttl
            ):
                self.at(ppath, f"min_ttl {peer.min_ttl} is above max_ttl {peer.max_ttl}")
                ok = False
            seen_peers.add(peer.ip)

        for key, gkey in (
            ("garp_master_delay", "vrrp_garp_master_delay"),
            ("garp_master_repeat", "vrrp_garp_master_repeat"),
            ("garp_master_refresh", "vrrp_garp_master_refresh"),
            ("garp_master_refresh_repeat", "vrrp_garp_master_refresh_repeat"),
            ("down_timer_adverts", "vrrp_down_timer_adverts"),
            ("checksum_pseudo_header", "vrrp_checksum_pseudo_header"),
            ("lower_prio_no_advert", "vrrp_lower_prio_no_advert"),
            ("higher_prio_send_advert", "vrrp_higher_prio_send_advert"),
            ("strict_mode", "vrrp_strict"),
            ("skip_check_adv_addr", "vrrp_skip_check_adv_addr"),
            ("notify_priority_changes", "vrrp_notify_priority_changes"),
        ):
            values.setdefault(key, getattr(g, gkey))
        # keepalived: "Specifying min_ttl or max_ttl turns on check_unicast_src"
        values.setdefault("check_unicast_src", g.vrrp_check_unicast_src or any(
            p.min_ttl is not None or p.max_ttl is not None
            for p in values.get("unicast_peers", ())))
        if values["strict_mode"]:
            ok = self.check_strict(path, values, _given) and ok
        for key in ("vmac_interface", "vmac_xmit_base"):
            if values.get(key) and not values.get("use_vmac"):
                # keepalived: "vmac_xmit_base is only valid with a vmac"
                self.at(_join(path, key), "only used with use_vmac")
                ok = False
        vmac_name = values.get("vmac_interface")
        if vmac_name is not None and not 0 < len(vmac_name) < _IFNAMSIZ:
            self.at(_join(path, "vmac_interface"), f"1 to {_IFNAMSIZ - 1} characters")
            ok = False
        # keepalived: an instance's garp_lower_prio_* default to the global ones, and those
        # to the global vrrp_garp_master_* (not to the instance's garp_master_*).
        values.setdefault(
            "garp_lower_prio_delay",
            g.vrrp_garp_lower_prio_delay
            if g.vrrp_garp_lower_prio_delay is not None
            else g.vrrp_garp_master_delay,
        )
        values.setdefault(
            "garp_lower_prio_repeat",
            g.vrrp_garp_lower_prio_repeat
            if g.vrrp_garp_lower_prio_repeat is not None
            else g.vrrp_garp_master_repeat,
        )
        if not ok:
            return _INVALID
        return m.VrrpInstance(name=name, **values)

    # ---------------------------------------------------------------- virtual servers

    def virtual_server(self, node: Node, path: str) -> Any:
        read = self.read(m.VirtualServer, node, path, skip=("real_servers", "sorry_server"))
        if read is None:
            return _INVALID
        values, given, ok = read
        if (sorry_node := given.get("sorry_server")) is not None and not _is_null(sorry_node):
            parsed = _parse_hostport(self, sorry_node, _join(path, "sorry_server"))
            if parsed is _INVALID:
                ok = False
            else:
                values["sorry_server"] = parsed
        ip, port = values.get("ip"), values.get("port")
        if "ip" in given and "fwmark" in given:
            self.at(path, "give either ip (with port) or fwmark, not both")
            ok = False
        elif "ip" not in given and "fwmark" not in given:
            self.error(node, path, "needs ip and port, or fwmark")
            ok = False
        if ip is not None and "port" not in given and not values.get("persistence_timeout"):
            self.error(
                node, _join(path, "port"),
                "required with ip (only a persistent service may omit it: persistence_timeout)",
            )
            ok = False
        if "fwmark" in given and "port" in given and "ip" not in given:
            self.at(_join(path, "port"), "a fwmark service has no port")
            ok = False
        if "ip_family" in given and "fwmark" not in given:
            self.at(_join(path, "ip_family"), "only for fwmark services (ip gives the family)")
            ok = False
        vport = port or 0
        if "fwmark" in values:
            self.server_keys[path] = (values.get("protocol", "TCP"), "FWM", values["fwmark"])
        elif ip is not None:
            self.server_keys[path] = (values.get("protocol", "TCP"), ip, vport)
        family = ip.version if ip is not None else None
        if family is None and values.get("ip_family") is not None:
            family = 6 if values["ip_family"] == "inet6" else 4
        lb_kind: str = values.get("lb_kind", "NAT")
        sorry = values.get("sorry_server")
        if sorry is not None:
            if sorry.port == 0 and vport:
                sorry = m.HostPort(sorry.host, vport)
                values["sorry_server"] = sorry
            sorry_kind = values.get("sorry_server_lb_kind") or lb_kind
            if family is not None and sorry.host.version != family and sorry_kind != "TUN":
                self.at(
                    _join(path, "sorry_server"),
                    f"{sorry.host} is IPv{sorry.host.version} but the service is IPv{family} "
                    "(only TUN may mix families)",
                )
                ok = False

        reals: list[m.RealServer] = []
        rs_node = given.get("real_servers")
        if rs_node is not None and not _is_null(rs_node):
            if not isinstance(rs_node, SequenceNode):
                got = _describe(rs_node)
                self.error(rs_node, _join(path, "real_servers"), f"must be a list, got {got}")
                ok = False
            else:
                seen: dict[tuple[m.IPAddress, int], int] = {}
                for i, item in enumerate(rs_node.value):
                    rpath = f"{path}.real_servers[{i}]"
                    self.lines[rpath] = _line(item)
                    rs = self.real_server(item, rpath, values, vport)
                    key = self.server_keys.get(rpath)
                    if key is not None:
                        if key in seen:
                            where = f"real_servers[{seen[key]}]"
                            self.at(rpath, f"{m.HostPort(*key)} is already {where}")
                            ok = False
                            continue
                        seen[key] = i
                    if rs is _INVALID:
                        ok = False
                        continue
                    kind = rs.lb_kind or lb_kind
                    if family is not None and rs.family != family and kind != "TUN":
                        self.at(
                            _join(rpath, "ip"),
                            f"{rs.ip} is IPv{rs.family} but the service is IPv{family} "
                            "(only TUN may mix families)",
                        )
                        ok = False
                    if kind in ("DR", "TUN") and port and rs.port != port:
                        self.at(
                            _join(rpath, "port"),
                            f"{kind} cannot change the port: must be the virtual port {port} "
                            f"(got {rs.port})",
                        )
                        ok = False
                    reals.append(rs)
        if not ok:
            return _INVALID
        return m.VirtualServer(**values, real_servers=tuple(reals))

    def real_server(self, node: Node, path: str, vs: Mapping[str, Any], vport: int) -> Any:
        read = self.read(m.RealServer, node, path, skip=CHECKER_KEYS)
        if read is None:
            return _INVALID
        values, given, ok = read
        values.setdefault("port", vport)
        if "ip" in values:
            self.server_keys[path] = (values["ip"], values["port"])
        checks: list[m.Checker] = []
        kinds = [kind for kind in given if kind in CHECKER_KEYS]
        if len(kinds) > 1:
            kinds.sort(key=_CHECKER_ORDER.__getitem__)  # checks in CHECKER_KEYS' order
        for kind in kinds:
            cls = CHECKER_KEYS[kind]
            cnode = given[kind]
            cpath = _join(path, kind)
            if isinstance(cnode, SequenceNode):
                items = [(f"{cpath}[{i}]", n) for i, n in enumerate(cnode.value)]
                if not items:
                    self.error(cnode, cpath, "an empty list: give a check or remove the key")
                    ok = False
            elif isinstance(cnode, MappingNode) or _is_null(cnode):
                items = [(cpath, cnode)]
            else:
                self.error(
                    cnode, cpath, f"must be a mapping or a list of mappings, got {_describe(cnode)}"
                )
                ok = False
                continue
            for ipath, inode in items:
                self.lines.setdefault(ipath, _line(inode))
                if _is_null(inode):
                    inode = MappingNode(_MAP_TAG, [], inode.start_mark, inode.end_mark)
                check = self.checker(cls, inode, ipath, values, vs)
                if check is _INVALID:
                    ok = False
                else:
                    checks.append(check)
        if not ok:
            return _INVALID
        return m.RealServer(**values, checks=tuple(checks))

    def checker(
        self,
        cls: type[m.CheckBase],
        node: Node,
        path: str,
        rs: Mapping[str, Any],
        vs: Mapping[str, Any],
    ) -> Any:
        read = self.read(cls, node, path)
        if read is None:
            return _INVALID
        values, _given, ok = read
        for key in inherited_keys(cls):
            if key in values:
                continue
            for level in (rs, vs):
                if level.get(key) is not None:
                    values[key] = level[key]
                    break
        if "delay_loop" not in values and cls is not m.FileCheck:
            values["delay_loop"] = 60.0
        if cls is m.DnsCheck and "delay_before_retry" not in values:
            values["delay_before_retry"] = values["delay_loop"]  # keepalived's DNS_CHECK default
        if cls is m.MiscCheck:
            ok = self.check_run_as(path, values) and ok
        if cls is m.FileCheck:
            name = values.get("track_file")
            if name is not None and name not in self.names.track_files:
                hint = _suggest(name, self.names.track_files)
                self.at(_join(path, "track_file"), f"no vrrp_track_file named '{name}'{hint}")
                ok = False
        ok = self.check_checker_values(cls, path, values, rs) and ok
        if issubclass(cls, m.HttpCheckBase) and "url" in values and not values["url"]:
            self.at(_join(path, "url"), "must list at least one url")
            ok = False
        elif issubclass(cls, m.HttpCheckBase) and "url" not in values and ok:
            self.error(node, _join(path, "url"), "required key is missing")
            ok = False
        if (
            issubclass(cls, m.NetworkCheckBase)
            and cls is not m.PingCheck
            and values.get("connect_port") is None
            and not rs.get("port")
        ):
            self.error(
                node, _join(path, "connect_port"),
                "required: the real server has no port to check",
            )
            ok = False
        if not ok:
            return _INVALID
        return cls(**values)

    def check_checker_values(
        self, cls: type[m.CheckBase], path: str, values: Mapping[str, Any],
        rs: Mapping[str, Any],
    ) -> bool:
        """What the checker's parameters (`healthchecks.params`) would refuse, refused
        here with the key: the checks are planned only once VRRP runs, and a file this
        loader accepts must plan (a test plans whatever it accepts)."""
        ok = True
        if issubclass(cls, m.NetworkCheckBase):
            bindto = values.get("bindto")
            target = values.get("connect_ip")
            if target is None:
                target = rs.get("ip")
            if bindto is not None and target is not None and bindto.version != target.version:
                self.at(_join(path, "bindto"), f"{bindto} is IPv{bindto.version} but the "
                        f"check connects to {target} (IPv{target.version})")
                ok = False
            bind_if = values.get("bind_if")
            if bind_if is not None and not _IFNAME_RE.fullmatch(bind_if):
                self.at(_join(path, "bind_if"), f"not an interface name: {bind_if!r}")
                ok = False
        if cls is m.UdpCheck and values.get("payload") is not None:
            from healthchecks.params import parse_hex

            try:
                data, _mask = parse_hex(values["payload"], wildcards=False)
            except ValueError as exc:
                self.at(_join(path, "payload"), str(exc))
                ok = False
            else:
                if len(data) > _MAX_UDP_PAYLOAD:
                    self.at(_join(path, "payload"),
                            f"{len(data)} bytes: at most {_MAX_UDP_PAYLOAD} fit a datagram")
                    ok = False
        if cls is m.SmtpCheck:
            helo = values.get("helo_name")
            if helo is not None and not _HELO_RE.fullmatch(helo):
                self.at(_join(path, "helo_name"),
                        f"must be printable ASCII without spaces, got {helo!r}")
                ok = False
        if cls is m.DnsCheck and "name" in values:
            from healthchecks.dnswire import encode_name

            try:
                encode_name(values["name"])
            except ValueError as exc:  # UnicodeError too: a label IDNA cannot encode
                self.at(_join(path, "name"), str(exc).removeprefix("name: "))
                ok = False
        return ok

    # ---------------------------------------------------------------- cross-section rules

    def check_tracking(self, path: str, values: Mapping[str, Any]) -> bool:
        """track_script / track_file entries must name a defined script or file."""
        ok = True
        for key, defined, what in (
            ("track_script", self.names.scripts, "vrrp_script"),
            ("track_file", self.names.track_files, "vrrp_track_file"),
            ("track_process", self.names.track_processes, "vrrp_track_process"),
        ):
            kpath = _join(path, key)
            for i, ref in enumerate(values.get(key, self.partial.get(kpath, ()))):
                if ref.name not in defined:
                    hint = _suggest(ref.name, defined)
                    self.at(f"{kpath}[{i}]", f"no {what} named '{ref.name}'{hint}")
                    ok = False
        return ok

    def sync_group(self, node: Node, path: str, name: str) -> Any:
        read = self.read(m.VrrpSyncGroup, node, path)
        if read is None:
            return _INVALID
        values, _given, ok = read
        ok = self.check_tracking(path, values) and ok
        gpath = _join(path, "group")
        members = list(values.get("group", self.partial.get(gpath, ())))
        self.group_members[name] = members
        for i, member in enumerate(members):
            if member not in self.names.instances:
                self.at(
                    f"{gpath}[{i}]",
                    f"no vrrp_instance named '{member}'{_suggest(member, self.names.instances)}",
                )
                ok = False
        if not ok:
            return _INVALID
        if len(members) == 1:  # keepalived warns and runs it
            self.warnings.append(Problem(
                self.file, self.lines.get(gpath, 0), gpath,
                f"only one instance ({members[0]}): it moves alone, as keepalived runs it "
                "(\"this probably isn't what you want\")"))
        return m.VrrpSyncGroup(name=name, **values)

    def check_sync_groups(self) -> None:
        member_of: dict[str, str] = {}
        for gname, members in self.group_members.items():
            gpath = f"vrrp_sync_groups.{gname}.group"
            if not members:
                self.at(gpath, "must list at least one instance")
            for i, member in enumerate(members):
                if member in member_of:
                    where = member_of[member]
                    if where == gname:
                        self.at(f"{gpath}[{i}]", f"'{member}' is listed twice")
                    else:
                        self.at(
                            f"{gpath}[{i}]",
                            f"'{member}' is already in sync group '{where}' "
                            "(an instance belongs to one group)",
                        )
                    continue
                member_of[member] = gname

    def check_instances_together(self, instances: Mapping[str, m.VrrpInstance]) -> None:
        by_router: dict[tuple[str, int, int], list[m.VrrpInstance]] = {}
        vip_owner: dict[m.IPAddress, str] = {}
        for name, inst in instances.items():
            key = (inst.interface, inst.family, inst.virtual_router_id)
            for other in by_router.get(key, []):
                if _same_channel(inst, other):
                    self.at(
                        f"vrrp_instances.{name}.virtual_router_id",
                        f"{inst.virtual_router_id} is already used by '{other.name}' on "
                        f"{inst.interface} (IPv{inst.family})",
                    )
                    break
            by_router.setdefault(key, []).append(inst)
            all_vips = (
                [("virtual_ipaddress", i, v) for i, v in enumerate(inst.virtual_ipaddress)]
                + [
                    ("virtual_ipaddress_excluded", i, v)
                    for i, v in enumerate(inst.virtual_ipaddress_excluded)
                ]
            )
            for key_name, i, vip in all_vips:
                first = vip_owner.get(vip.ip)
                if first is not None:
                    self.at(
                        f"vrrp_instances.{name}.{key_name}[{i}]",
                        f"{vip.ip} is already a virtual address of '{first}'",
                    )
                else:
                    vip_owner[vip.ip] = name

    def check_virtual_servers_together(self) -> None:
        seen: dict[Any, str] = {}
        for path, key in self.server_keys.items():
            if ".real_servers[" in path:
                continue
            if key in seen:
                proto, where, what = key
                label = f"fwmark {what}" if where == "FWM" else str(m.HostPort(where, what))
                self.at(path, f"{label}/{proto} is already {seen[key]}")
            else:
                seen[key] = path


class _Names:
    """Names defined in the file, whether or not their settings were valid."""

    def __init__(
        self, scripts: set[str], track_files: set[str], instances: set[str],
        track_processes: set[str] | None = None,
    ) -> None:
        self.scripts = scripts
        self.track_files = track_files
        self.track_processes = track_processes or set()
        self.instances = instances


def _same_channel(a: m.VrrpInstance, b: m.VrrpInstance) -> bool:
    """Whether two instances with one VRID would hear each other's adverts (keepalived's rule)."""
    if a.is_unicast != b.is_unicast:
        return False
    if a.is_unicast:
        return bool({p.ip for p in a.unicast_peers} & {p.ip for p in b.unicast_peers})
    return a.mcast_dst_ip == b.mcast_dst_ip


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL_TAG


# --------------------------------------------------------------------------- value parsers


def _text(ctx: _Ctx, node: Node, path: str, what: str) -> Any:
    if not isinstance(node, ScalarNode) or _is_null(node):
        return ctx.error(node, path, f"must be {what}, got {_describe(node)}")
    return str(node.value).strip()


def _convert(ctx: _Ctx, node: Node, path: str, what: str, convert: Callable[[str], Any]) -> Any:
    """The scalar's text through `convert`; a ValueError from it says the text is not `what`."""
    text = _text(ctx, node, path, what)
    if text is _INVALID:
        return text
    try:
        return convert(text)
    except ValueError:
        return ctx.error(node, path, f"not {what}: {text!r}")


def ip_address(text: str) -> m.IPAddress:
    """`ipaddress.ip_address(text)`, with dotted-quad IPv4 read by the C library.

    Reading thousands of real servers' addresses was a tenth of loading them; glibc's
    inet_pton takes exactly the IPv4 text ipaddress takes (four decimal octets up to
    255, no leading zeros) at a fifth of the cost. Anything else (IPv6, a mistake)
    goes to ipaddress, whose ValueError names the problem. A test compares both.
    """
    try:
        return ipaddress.IPv4Address(socket.inet_pton(socket.AF_INET, text))
    except (OSError, ValueError):
        return ipaddress.ip_address(text)


def _parse_ip(ctx: _Ctx, node: Node, path: str) -> Any:
    # `_convert(ctx, node, path, "an IP address", ip_address)`, in one call: every real
    # server has an address.
    if type(node) is ScalarNode and node.tag != _NULL_TAG:
        text = node.value.strip()
        try:
            return ip_address(text)
        except ValueError:
            return ctx.error(node, path, f"not an IP address: {text!r}")
    return _convert(ctx, node, path, "an IP address", ip_address)


def _parse_interface(ctx: _Ctx, node: Node, path: str) -> Any:
    return _convert(ctx, node, path, "an address IP[/prefix]", ipaddress.ip_interface)


def _parse_hostport(ctx: _Ctx, node: Node, path: str) -> Any:
    text = _text(ctx, node, path, "IP:PORT or [IPv6]:PORT")
    if text is _INVALID:
        return text
    match = _HOSTPORT_RE.match(text)
    host = None
    if match is not None:
        try:
            host = ipaddress.ip_address(match["v6"] or match["host"])
        except ValueError:
            host = None
    if match is None or host is None or (match["host"] and host.version == 6):
        # a bare IPv6 address without brackets and port is still unambiguous
        try:
            bare = ipaddress.ip_address(text)
        except ValueError:
            return ctx.error(node, path, f"must be IP:PORT or [IPv6]:PORT, got {text!r}")
        return m.HostPort(bare, 0)
    port = int(match["port"]) if match["port"] else 0
    if match["v6"] and host.version != 6:
        return ctx.error(node, path, f"brackets are for IPv6 addresses, got {text!r}")
    if not 0 <= port <= 65535:
        return ctx.error(node, path, f"port must be 1..65535, got {port}")
    return m.HostPort(host, port)


def _parse_listen(ctx: _Ctx, node: Node, path: str) -> Any:
    value = _parse_hostport(ctx, node, path)
    if value is not _INVALID and value.port == 0:
        return ctx.error(node, path, f"needs a port: IP:PORT or [IPv6]:PORT, got {node.value!r}")
    return value


_SMTP_SERVER_RE = re.compile(
    r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^\s:\[\]]+))(?:(?::|\s+)(?P<port>\d+))?$"
)
_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?"
                          r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$")


def _parse_smtp_server(ctx: _Ctx, node: Node, path: str) -> Any:
    """`HOST`, `HOST:PORT`, `[IPv6]:PORT`, keepalived's `HOST PORT`, or {host, port}."""
    if isinstance(node, MappingNode):
        read = ctx.read(m.SmtpServer, node, path)
        if read is None or not read[2]:
            return _INVALID
        host = read[0]["host"]
        if not _is_host(host):
            return ctx.error(node, path, f"host: not an IP address or host name: {host!r}")
        return m.SmtpServer(**read[0])
    text = _text(ctx, node, path, "HOST[:PORT] (an IP address or host name)")
    if text is _INVALID:
        return text
    match = _SMTP_SERVER_RE.match(text)
    host = None
    port = 25
    if match is not None:
        host = match["v6"] or match["host"]
        port = int(match["port"]) if match["port"] else 25
    else:
        with_colons = text.rsplit(None, 1)
        try:  # a bare IPv6 address, perhaps followed by a port
            host = str(ipaddress.ip_address(with_colons[0]))
            port = int(with_colons[1]) if len(with_colons) == 2 else 25
        except ValueError:
            host = None
    bracketed_v4 = match is not None and match["v6"] and ":" not in (host or "")
    if host is None or not _is_host(host) or bracketed_v4:
        return ctx.error(node, path, f"must be HOST[:PORT] or [IPv6]:PORT, got {text!r}")
    if not 1 <= port <= 65535:
        return ctx.error(node, path, f"port must be 1..65535, got {port}")
    return m.SmtpServer(host, port)


def _is_host(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return bool(_HOSTNAME_RE.match(text))
    return True


def _parse_reply_pattern(ctx: _Ctx, node: Node, path: str) -> Any:
    """UDP_CHECK's require_reply: true/false, or a hex pattern (x: any nibble)."""
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:bool":
        return ctx.scalar(node, path)
    text = _text(ctx, node, path, "true, false or a hex pattern")
    if text is _INVALID:
        return text
    from healthchecks.params import parse_hex

    try:
        parse_hex(text, wildcards=True)
    except ValueError as exc:
        return ctx.error(node, path, str(exc))
    return text


def _parse_command(ctx: _Ctx, node: Node, path: str) -> Any:
    if isinstance(node, MappingNode):
        # The {script, user, group} form is for notify commands; elsewhere the user and
        # group are keys next to the command, so a mapping here would not be honoured.
        parent = path.rsplit(".", 1)[0] if "." in path else path
        return ctx.error(
            node, path,
            "must be a command line or a list, got a mapping (the script/user/group form "
            f"is for notify_* and quorum_* keys; here set {parent}.user and "
            f"{parent}.group)",
        )
    if isinstance(node, SequenceNode):
        argv: list[str] = []
        for i, item in enumerate(node.value):
            arg = _text(ctx, item, f"{path}[{i}]", "a string")
            if arg is _INVALID:
                return arg
            argv.append(str(item.value))
        if not argv or not argv[0]:
            return ctx.error(node, path, "must name a program to run")
        return m.Command(tuple(argv), shlex.join(argv))
    text = _text(ctx, node, path, "a command line")
    if text is _INVALID:
        return text
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        return ctx.error(node, path, f"cannot split into arguments: {exc}")
    if not argv:
        return ctx.error(node, path, "must name a program to run")
    return m.Command(tuple(argv), text)


_NOTIFY_KEYS = ("script", "user", "group")


def _parse_notify_command(ctx: _Ctx, node: Node, path: str) -> Any:
    """A notify command: a command line, a list, or {script, user, group}."""
    if not isinstance(node, MappingNode):
        cmd = _parse_command(ctx, node, path)
        if cmd is _INVALID:
            return cmd
        return m.NotifyCommand(cmd.argv, cmd.text)
    pairs = ctx.mapping(node, path)
    if pairs is None:
        return _INVALID
    given: dict[str, Node] = {}
    ok = True
    for key, value in pairs:
        kpath = _join(path, key)
        if key not in _NOTIFY_KEYS:
            ctx.error(ctx.lines[kpath], kpath, f"unknown key{_suggest(key, _NOTIFY_KEYS)}")
            ok = False
            continue
        given[key] = value
    if "script" not in given:
        ctx.error(ctx.lines.get(path, _line(node)), _join(path, "script"),
                  "required key is missing (the command to run)")
        return _INVALID
    cmd = _parse_command(ctx, given["script"], _join(path, "script"))
    names: dict[str, str | None] = {"user": None, "group": None}
    for key in ("user", "group"):
        value_node = given.get(key)
        if value_node is None or _is_null(value_node):
            continue
        name = _parse_run_as_name(ctx, value_node, _join(path, key))
        if name is _INVALID:
            ok = False
        else:
            names[key] = name
    if names["group"] is not None and names["user"] is None:
        ctx.at(_join(path, "group"), _GROUP_NEEDS_USER)
        ok = False
    if cmd is _INVALID or not ok:
        return _INVALID
    return m.NotifyCommand(cmd.argv, cmd.text, names["user"], names["group"])


_GROUP_NEEDS_USER = "only with user: give the user the script runs as too"
_RUN_AS_NAME_RE = re.compile(r"^[^\s:]+$")


def _parse_run_as_name(ctx: _Ctx, node: Node, path: str) -> Any:
    """A user or group name to run a script as (looked up when scripts are prepared)."""
    what = "a group name" if path.endswith("group") else "a user name"
    text = _text(ctx, node, path, what)
    if text is _INVALID:
        return text
    if not _RUN_AS_NAME_RE.match(text):
        return ctx.error(node, path, f"must be {what} (no spaces or ':'), got {text!r}")
    return text


_VIP_OPTIONS = ("dev", "scope", "label")
_VIP_FLAGS = ("no_track",)


def _parse_vip(ctx: _Ctx, node: Node, path: str) -> Any:
    if isinstance(node, MappingNode):
        read = ctx.read(m.VirtualIpAddress, node, path)
        if read is None or not read[2]:
            return _INVALID
        return _finish_vip(ctx, node, path, m.VirtualIpAddress(**read[0]))
    text = _text(ctx, node, path, "'IP[/prefix] [dev IFACE]' or a mapping")
    if text is _INVALID:
        return text
    words = text.split()
    if not words:
        return ctx.error(node, path, "empty address")
    try:
        address = ipaddress.ip_interface(words[0])
    except ValueError:
        return ctx.error(node, path, f"not an address IP[/prefix]: {words[0]!r}")
    options: dict[str, Any] = {}
    rest = words[1:]
    while rest:
        word = rest.pop(0)
        if word in _VIP_FLAGS:
            options[word] = True
        elif word in _VIP_OPTIONS:
            if not rest:
                return ctx.error(node, path, f"'{word}' needs a value")
            options[word] = rest.pop(0)
        else:
            known = (*_VIP_OPTIONS, *_VIP_FLAGS)
            return ctx.error(
                node, path,
                f"unknown option '{word}' (known: {', '.join(known)}){_suggest(word, known)}",
            )
    scope = options.get("scope")
    allowed_scopes = typing.get_args(_strip_none(_hints(m.VirtualIpAddress)["scope"])[0])
    if scope is not None and scope not in allowed_scopes:
        return ctx.error(
            node, path, f"scope must be one of {' | '.join(allowed_scopes)}, got {scope!r}"
        )
    return _finish_vip(ctx, node, path, m.VirtualIpAddress(address, **options))


_ROUTE_TYPES = ("blackhole", "unreachable", "prohibit", "throw")
_ROUTE_WORDS = {"via": "via", "gw": "via", "dev": "dev", "src": "src", "scope": "scope",
                "table": "table", "metric": "metric", "preference": "metric",
                "protocol": "protocol", "proto": "protocol", "to": "to"}
_RULE_WORDS = {"from": "from", "to": "to", "fwmark": "fwmark", "iif": "iif", "oif": "oif",
               "table": "table", "lookup": "table", "priority": "priority",
               "preference": "priority", "pref": "priority", "prio": "priority"}
# /etc/iproute2/rt_protos
_RT_PROTOS = {"redirect": 1, "kernel": 2, "boot": 3, "static": 4, "ra": 9, "dhcp": 16,
              "bird": 12, "zebra": 11, "keepalived": 18}


def _route_or_rule(cls: type[Any]) -> Callable[[_Ctx, Node, str], Any]:
    """Text in `ip route` / `ip rule` words (keepalived's virtual_routes / virtual_rules),
    or a mapping: read as the same mapping, errors on the text's line."""
    words_of = _ROUTE_WORDS if cls is m.Route else _RULE_WORDS

    def parse(ctx: _Ctx, node: Node, path: str) -> Any:
        if isinstance(node, ScalarNode) and not _is_null(node):
            words = str(node.value).split()
            given: dict[str, Any] = {}
            while words:
                word = words.pop(0)
                if cls is m.Route and word in ("or", "nexthop"):
                    hops = _nexthop_words(word, words, given)
                    if isinstance(hops, str):
                        return ctx.error(node, path, hops)
                    given["nexthops"] = hops
                    continue
                if word == "no_track":
                    given["no_track"] = "true"
                elif cls is m.Route and word in _ROUTE_TYPES and "type" not in given:
                    given["type"] = word
                elif word in words_of and words:
                    value = words.pop(0)
                    if words_of[word] == "protocol" and value in _RT_PROTOS:
                        value = str(_RT_PROTOS[value])
                    if cls is m.Rule and value == "all" and word in ("from", "to"):
                        continue
                    given[words_of[word]] = value
                elif cls is m.Route and "to" not in given and word not in words_of:
                    given["to"] = word
                else:
                    known = sorted(words_of)
                    return ctx.error(node, path, f"unknown or incomplete word '{word}' "
                                     f"(known: {', '.join(known)}){_suggest(word, known)}")
            if given.get("to") == "default":
                hops = given.get("nexthops") or [{}]
                six = ":" in given.get("via", hops[0].get("via", ""))
                given["to"] = "::/0" if six else "0.0.0.0/0"
            node = _synthetic_mapping(node, given)
        if not isinstance(node, MappingNode):
            return ctx.error(node, path, f"must be text or a mapping, got {_describe(node)}")
        read = ctx.read(cls, node, path)
        if read is None or not read[2]:
            return _INVALID
        value = cls(**read[0])
        families = {a.version for a in _addresses_of(value)}
        if len(families) > 1:
            return ctx.error(node, path, "mixes IPv4 and IPv6 addresses")
        if isinstance(value, m.Route) and value.nexthops:
            if value.via is not None:
                return ctx.error(node, path, "give via or nexthops, not both")
            if value.type != "unicast":
                return ctx.error(node, path, f"a {value.type} route has no nexthops")
            if any(hop.via is None and hop.dev is None and value.dev is None
                   for hop in value.nexthops):
                return ctx.error(node, path, "each nexthop needs via or dev")
        return value

    return parse


_NEXTHOP_WORDS = {"via": "via", "gw": "via", "dev": "dev", "weight": "weight"}


def _nexthop_words(
    word: str, words: list[str], given: dict[str, Any]
) -> list[dict[str, str]] | str:
    """A multipath route's text, as keepalived reads it: `via A or B` (two nexthops, A
    and B), or `nexthop via A [dev X] [weight N] [onlink] nexthop ...` to the end of the
    line. The words are taken from `words`; a problem is returned as text."""
    if "nexthops" in given:
        return f"'{word}' after the route's nexthops (keepalived: \"trailing nonsense\")"
    if word == "or":
        if "via" not in given or not words:
            return "'or GATEWAY' needs 'via GATEWAY' before it"
        first = given.pop("via")
        return [{"via": first}, {"via": words.pop(0)}]
    hops: list[dict[str, str]] = []
    while True:
        hop: dict[str, str] = {}
        while words and words[0] != "nexthop":
            key = words.pop(0)
            if key == "onlink":
                hop["onlink"] = "true"
            elif key in _NEXTHOP_WORDS and words:
                hop[_NEXTHOP_WORDS[key]] = words.pop(0)
            else:
                return (f"unknown or incomplete word '{key}' in a nexthop (known: dev, "
                        "onlink, via, weight; nothing may follow the nexthops)")
        if not hop:
            return "an empty 'nexthop'"
        hops.append(hop)
        if not words:
            return hops
        words.pop(0)  # the next "nexthop"


def _addresses_of(value: Any) -> list[Any]:
    keys = ("to", "via", "src") if isinstance(value, m.Route) else ("from_", "to")
    found = [a for a in (getattr(value, k) for k in keys) if a is not None]
    if isinstance(value, m.Route):
        found += [hop.via for hop in value.nexthops if hop.via is not None]
    return found


def _synthetic_mapping(node: Node, given: Mapping[str, Any]) -> MappingNode:
    """A mapping node of plain scalars (or lists of such mappings), marked at `node` (so
    errors name its line)."""
    def scalar(text: str) -> ScalarNode:
        tag: str = yaml.resolver.Resolver().resolve(  # type: ignore[no-untyped-call]
            ScalarNode, text, (True, False))
        return ScalarNode(tag, text, node.start_mark, node.end_mark)

    def value(v: Any) -> Node:
        if isinstance(v, list):
            return SequenceNode("tag:yaml.org,2002:seq",
                                [_synthetic_mapping(node, item) for item in v],
                                node.start_mark, node.end_mark)
        return scalar(v)

    pairs: list[tuple[Node, Node]] = [(scalar(k), value(v)) for k, v in given.items()]
    return MappingNode("tag:yaml.org,2002:map", pairs, node.start_mark, node.end_mark)


def _finish_vip(ctx: _Ctx, node: Node, path: str, vip: m.VirtualIpAddress) -> Any:
    ip = vip.ip
    if ip.is_multicast or ip.is_unspecified or ip.is_loopback:
        return ctx.error(node, path, f"{ip} cannot be a virtual address")
    if vip.label is not None:
        if vip.family != 4:
            return ctx.error(node, path, "label: only IPv4 addresses carry a label")
        if not 0 < len(vip.label) < _IFNAMSIZ:
            return ctx.error(
                node, path, f"label: 1 to {_IFNAMSIZ - 1} characters, got {vip.label!r}"
            )
    return vip


_IFNAMSIZ = 16  # linux/if.h: a label is an interface name, NUL included


def _named_or_mapping(cls: type[Any], key: str) -> Callable[[_Ctx, Node, str], Any]:
    def parse(ctx: _Ctx, node: Node, path: str) -> Any:
        if isinstance(node, MappingNode):
            return ctx.build(cls, node, path)
        if key == "ip":
            value = _parse_ip(ctx, node, path)
        else:
            value = _text(ctx, node, path, f"a name or a mapping with '{key}'")
        if value is _INVALID:
            return value
        return cls(**{key: value})

    return parse


def _build_track(cls: type[Any]) -> Callable[[_Ctx, Node, str], Any]:
    def build(ctx: _Ctx, node: Node, path: str) -> Any:
        read = ctx.read(cls, node, path)
        if read is None or not read[2]:
            return _INVALID
        return cls(**read[0])

    return build


def _parse_status_codes(ctx: _Ctx, node: Node, path: str) -> Any:
    """200, "200-299", [200, 301], or keepalived's "200-299 400-499 503"."""
    items: list[tuple[Node, str]] = []
    if isinstance(node, SequenceNode):
        if not node.value:
            return ctx.error(node, path, "must list at least one status code")
        for i, item in enumerate(node.value):
            text = _text(ctx, item, f"{path}[{i}]", "a status code or range")
            if text is _INVALID:
                return text
            items.extend((item, word) for word in text.split())
    else:
        text = _text(ctx, node, path, "a status code, a range like 200-299, or a list")
        if text is _INVALID:
            return text
        items.extend((node, word) for word in text.split())
    if not items:
        return ctx.error(node, path, "must list at least one status code")
    ranges: list[m.StatusCodeRange] = []
    for item, word in items:
        first, sep, last = word.partition("-")
        if not first.isdigit() or (sep and not last.isdigit()):
            return ctx.error(item, path, f"not a status code or range: {word!r}")
        lo, hi = int(first), int(last) if sep else int(first)
        if not (100 <= lo <= 599 and 100 <= hi <= 599):
            return ctx.error(item, path, f"status codes are 100..599, got {word}")
        if lo > hi:
            return ctx.error(item, path, f"range {word} runs backwards")
        ranges.append(m.StatusCodeRange(lo, hi))
    return tuple(ranges)


def _build_url(ctx: _Ctx, node: Node, path: str) -> Any:
    read = ctx.read(m.UrlCheck, node, path)
    if read is None:
        return _INVALID
    values, _given, ok = read
    digest = values.get("digest")
    if digest is not None:
        if not _DIGEST_RE.match(digest):
            ctx.at(_join(path, "digest"), f"must be an MD5 digest (32 hex digits), got {digest!r}")
            ok = False
        else:
            values["digest"] = digest.lower()
    if "path" in values and not values["path"].startswith("/"):
        got = f", got {values['path']!r}" if values["path"] else ""
        ctx.at(_join(path, "path"), f"must start with '/'{got}")
        ok = False
    regex = values.get("regex")
    if regex is not None:
        try:
            # The checker matches the body's bytes: the pattern is compiled as bytes.
            re.compile(regex.encode())
        except re.error as exc:
            ctx.at(_join(path, "regex"), f"not a valid regular expression: {exc}")
            ok = False
    elif values.get("regex_no_match"):
        ctx.at(_join(path, "regex_no_match"), "only used with regex")
        ok = False
    if not ok:
        return _INVALID
    return m.UrlCheck(**values)


def _build_auth(ctx: _Ctx, node: Node, path: str) -> Any:
    read = ctx.read(m.Authentication, node, path)
    if read is None:
        return _INVALID
    values, _given, ok = read
    password = values.get("auth_pass")
    if password is not None and not 1 <= len(password.encode()) <= 8:
        ctx.at(
            _join(path, "auth_pass"),
            f"must be 1..8 bytes (VRRPv2 carries 8), got {len(password.encode())}",
        )
        ok = False
    if not ok:
        return _INVALID
    return m.Authentication(**values)


_FIFO_KEYS = ("notify_fifo", "vrrp_notify_fifo", "lvs_notify_fifo")


def _build_global(ctx: _Ctx, node: Node, path: str) -> Any:
    read = ctx.read(m.GlobalDefs, node, path)
    if read is None:
        return _INVALID
    values, _given, ok = read
    if values.get("api_token") is not None and values.get("api_listen") is None:
        ctx.at(_join(path, "api_token"), "only used with api_listen")
        ok = False
    fifos: dict[Path, str] = {}
    for key in _FIFO_KEYS:
        fifo = values.get(key)
        if values.get(f"{key}_script") is not None and fifo is None:
            ctx.at(_join(path, f"{key}_script"), f"only used with {key}")
            ok = False
        for word in ("user", "group"):
            if values.get(f"{key}_{word}") is not None and fifo is None:
                ctx.at(_join(path, f"{key}_{word}"), f"only used with {key}")
                ok = False
            name = values.get(f"{key}_{word}")
            if name is not None and not _RUN_AS_NAME_RE.match(name):
                ctx.at(_join(path, f"{key}_{word}"), f"must be a {word} name (no spaces or "
                       f"':'), got {name!r}")
                ok = False
        if values.get(f"{key}_group") is not None and values.get(f"{key}_user") is None:
            ctx.at(_join(path, f"{key}_group"), f"only with {key}_user")
            ok = False
        if fifo is None:
            continue
        if fifo in fifos:  # keepalived refuses one FIFO under two names too
            ctx.at(_join(path, key), f"{fifo} is already {fifos[fifo]}")
            ok = False
        fifos[fifo] = key
    table = values.get("nftables")
    if table is not None and not _NFT_TABLE_RE.match(table):
        ctx.at(_join(path, "nftables"), f"must be an nftables table name (a letter, then "
               f"letters, digits or _, at most 64), got {table!r}")
        ok = False
    elif table == "hacluster":
        ctx.at(_join(path, "nftables"), "'hacluster' is the nftables dataplane's table")
        ok = False
    if not ok:
        return _INVALID
    return m.GlobalDefs(**values)


_NFT_TABLE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


_PARSERS: dict[Any, Callable[[_Ctx, Node, str], Any]] = {
    m.IPAddress: _parse_ip,
    m.IPInterface: _parse_interface,
    m.HostPort: _parse_listen,
    m.Command: _parse_command,
    m.NotifyCommand: _parse_notify_command,
    m.VirtualIpAddress: _parse_vip,
    m.Route: _route_or_rule(m.Route),
    m.Rule: _route_or_rule(m.Rule),
    m.SmtpServer: _parse_smtp_server,
    bool | str: _parse_reply_pattern,
    m.TrackInterface: _named_or_mapping(m.TrackInterface, "name"),
    m.TrackScript: _named_or_mapping(m.TrackScript, "name"),
    m.TrackFile: _named_or_mapping(m.TrackFile, "name"),
    m.TrackProcess: _named_or_mapping(m.TrackProcess, "name"),
    m.UnicastPeer: _named_or_mapping(m.UnicastPeer, "ip"),
    tuple[m.StatusCodeRange, ...]: _parse_status_codes,
}

_BUILDERS: dict[type, Callable[[_Ctx, Node, str], Any]] = {
    m.TrackInterface: _build_track(m.TrackInterface),
    m.TrackScript: _build_track(m.TrackScript),
    m.TrackFile: _build_track(m.TrackFile),
    m.TrackProcess: _build_track(m.TrackProcess),
    m.UnicastPeer: _build_track(m.UnicastPeer),
    m.UrlCheck: _build_url,
    m.Authentication: _build_auth,
    m.GlobalDefs: _build_global,
}
