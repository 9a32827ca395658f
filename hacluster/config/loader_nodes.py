"""The loader's small helpers: a node's line and description, key paths, hints, the failed value."""

from __future__ import annotations

import functools
import operator
import types
import typing
from collections.abc import Iterable
from dataclasses import Field, fields
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from hacluster.config.compose import _NULL_TAG

_INVALID: Any = object()  # a value that failed; its problem has been recorded


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
    import difflib  # only for a file with an unknown key (~1 ms on every start otherwise)

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



def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL_TAG
