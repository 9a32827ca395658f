"""YAML text → nodes that keep their line (libyaml, tags cached); PyYAML errors on one line."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

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
