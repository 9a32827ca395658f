"""How a node becomes a value of a type hint: converters worked out once per hint and class."""

from __future__ import annotations

import ipaddress
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from yaml.nodes import Node, ScalarNode

from hacluster.config.compose import _MERGE_TAG, _NULL_TAG, _VALUE_TAG
from hacluster.config.loader_nodes import (
    _INVALID,
    _describe,
    _hints,
    _is_null,
    _strip_none,
    yaml_fields,
)
from hacluster.config.loader_values import _PARSERS, _parse_ip

if TYPE_CHECKING:
    from hacluster.config.loader_walk import _Walker


_Convert = Callable[["_Walker", Node, str, Mapping[str, Any]], Any]
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

        def nullable_value(ctx: _Walker, node: Node, path: str, meta: Mapping[str, Any]) -> Any:
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

    def mismatch(ctx: _Walker, node: Node, path: str, meta: Mapping[str, Any]) -> Any:
        raise TypeError(f"no YAML conversion for {hint!r} at {path}")  # a model/loader mismatch

    return mismatch


def _to_bool(ctx: _Walker, node: Node, path: str, meta: Mapping[str, Any]) -> Any:
    value = ctx.plain(node, path, "true or false")
    if value is _INVALID or isinstance(value, bool):
        return value
    return ctx.error(node, path, f"must be true or false, got {_describe(node)}")


def _to_str(ctx: _Walker, node: Node, path: str, meta: Mapping[str, Any]) -> Any:
    if not isinstance(node, ScalarNode) or _is_null(node):
        return ctx.error(node, path, f"must be a string, got {_describe(node)}")
    return str(node.value)


def _to_path(ctx: _Walker, node: Node, path: str, meta: Mapping[str, Any]) -> Any:
    if not isinstance(node, ScalarNode) or _is_null(node) or not str(node.value):
        return ctx.error(node, path, f"must be a file path, got {_describe(node)}")
    return Path(str(node.value))


def _parse_ip_of(hint: type, ctx: _Walker, node: Node, path: str) -> Any:
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
