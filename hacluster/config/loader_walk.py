"""One load's state and the generic walk of YAML nodes against the model's type hints."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from hacluster.config.compose import _MERGE_TAG, _NULL_TAG, _yaml_problem
from hacluster.config.errors import Problem, line_of
from hacluster.config.loader_convert import (
    _IMMUTABLE_SCALARS,
    _NUMBERS,
    _SPECIAL_KEY_TAGS,
    _Convert,
    _converter,
    _shape,
)
from hacluster.config.loader_nodes import (
    _INVALID,
    _describe,
    _is_null,
    _join,
    _line,
    _num,
    _suggest,
)
from hacluster.config.loader_values import _BUILDERS, _GROUP_NEEDS_USER, _RUN_AS_NAME_RE


class _Walker:
    """One load: the file name, the problems so far, the line of every key path, and the
    generic walk of YAML nodes against the model (the rules of each section build on it)."""

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
        return line_of(self.lines, path, 1)

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

    # ---------------------------------------- run-as users (VRRP scripts, MISC_CHECK)

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
