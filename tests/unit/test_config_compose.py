"""The loader's fast paths give what the libraries they stand in for give."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from hacluster.config.errors import ConfigError
from hacluster.config.loader import _compose, ip_address, parse_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))

TRICKY = """\
base: &base {delay_loop: 2, retry: 3}
merged:
  <<: *base
  retry: 4
  =: value key
list: [1, 1.5, 0x1f, 0o17, 017, 1_000, 1:30, .inf, -.Inf, .NaN, ~, null, Null, true, yes, On,
       off, No, 2001-12-14, 2001-12-14t21:59:43.10-05:00, "quoted 1", 'single', !!str 12]
empty: ""
folded: >
  two
  lines
literal: |
  keep
   this
? complex key
: value
nested: {a: [b, {c: d}], e: !!binary aGVsbG8=}
octets: [10.0.0.1, 10.0.0.01, "10.0.0.1", 10.0.0.1/24, "::1", fe80--1]
v6: ::1
"""


def _tree(node: Node | None) -> Any:
    """Everything a node carries that the loader reads: kind, tag, value, marks, style."""
    if node is None:
        return None
    marks = (node.start_mark.line, node.start_mark.column,
             node.end_mark.line, node.end_mark.column)
    if isinstance(node, ScalarNode):
        return ("scalar", node.tag, node.value, node.style, marks)
    if isinstance(node, SequenceNode):
        return ("seq", node.tag, [_tree(n) for n in node.value], node.flow_style, marks)
    assert isinstance(node, MappingNode)
    return ("map", node.tag, [(_tree(k), _tree(v)) for k, v in node.value],
            node.flow_style, marks)


def _pyyaml(text: str) -> Any:
    return _tree(yaml.compose(text, Loader=yaml.CSafeLoader))


def _same(text: str) -> None:
    assert _tree(_compose(text)) == _pyyaml(text)


def _servers(n: int) -> str:
    lines = ["virtual_servers:", "  - ip: 10.83.0.100", "    port: 80", "    real_servers:"]
    lines += [f"      - {{ip: 10.84.{i // 250}.{i % 250 + 1}, port: 80, "
              f"TCP_CHECK: {{connect_timeout: 1}}}}" for i in range(n)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("text", [TRICKY, _servers(300), *(p.read_text() for p in EXAMPLES)],
                         ids=["tricky", "servers", *(p.name for p in EXAMPLES)])
def test_composing_gives_pyyamls_nodes(text: str) -> None:
    _same(text)


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats()
    | st.text(max_size=12) | st.sampled_from(["0x10", "1:20", "yes", "~", "1e3", "10.0.0.1"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(yaml_values, st.booleans())
def test_composing_any_document_gives_pyyamls_nodes(data: Any, flow: bool) -> None:
    _same(yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True))


@pytest.mark.parametrize("text", ["a: [1, 2\n", "a: b: c\n", "- a\nb: c\n", "a: *nothing\n",
                                  "a: 1\n---\nb: 2\n", "a: \x07\n"])
def test_composing_bad_yaml_fails_as_pyyaml_does(text: str) -> None:
    with pytest.raises(yaml.YAMLError) as ours:
        _compose(text)
    with pytest.raises(yaml.YAMLError) as theirs:
        yaml.compose(text, Loader=yaml.CSafeLoader)
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)


def test_repeated_scalars_keep_their_values() -> None:
    # The scalar cache is keyed by tag and text: the same text under another tag, and
    # values that compare equal across types, stay apart.
    config = parse_config(
        "global_defs: {vrrp_garp_master_delay: 1, vrrp_garp_master_repeat: 1}\n"
        "virtual_servers:\n"
        "  - {ip: 10.0.0.1, port: 80, delay_loop: 1, ha_suspend: true, real_servers: [\n"
        "      {ip: 10.0.0.2, port: 80, weight: 1, TCP_CHECK: {connect_timeout: 1}},\n"
        "      {ip: 10.0.0.3, port: 80, weight: 1, TCP_CHECK: {connect_timeout: 1.0}}]}\n"
    )
    vs = config.virtual_servers[0]
    assert vs.delay_loop == 1.0 and isinstance(vs.delay_loop, float)
    assert [rs.weight for rs in vs.real_servers] == [1, 1]
    assert all(type(rs.weight) is int for rs in vs.real_servers)
    assert vs.ha_suspend is True
    with pytest.raises(ConfigError) as exc:
        parse_config("virtual_servers:\n  - {ip: 10.0.0.1, port: 80, ha_suspend: 1}\n")
    assert "must be true or false" in str(exc.value)


ADDRESSES = [
    "10.0.0.1", "0.0.0.0", "255.255.255.255", "256.0.0.1", "1.2.3", "1.2.3.4.5", "01.2.3.4",
    "1.2.3.04", "1.2.3.0", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4\x00", "1..2.3", "1.2.3.", "",
    "\u0661.2.3.4", "1.2.3.4/32", "::1", "::ffff:1.2.3.4", "fe80::1%eth0", "1.2.3.4%eth0",
    "0x1.2.3.4", "+1.2.3.4", "1.2.3.-4", "1.2.3.4\n", "999.1.1.1", "0000.1.1.1",
]


def _outcome(parse: Any, text: str) -> Any:
    try:
        value = parse(text)
    except ValueError:
        return ValueError
    return type(value), value


@pytest.mark.parametrize("text", ADDRESSES)
def test_ip_address_reads_as_ipaddress_does(text: str) -> None:
    assert _outcome(ip_address, text) == _outcome(ipaddress.ip_address, text)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(
    st.text(alphabet="0123456789.", max_size=16),
    st.lists(st.integers(0, 300).map(str) | st.sampled_from(["00", "01", "007", ""]),
             min_size=3, max_size=5).map(".".join),
    st.ip_addresses().map(str),
    st.text(max_size=16),
))
def test_any_text_reads_as_ipaddress_does(text: str) -> None:
    assert _outcome(ip_address, text) == _outcome(ipaddress.ip_address, text)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.text(alphabet="0123456789-+:_eExXbBoOinfaINFnNtTzZ .", max_size=5),
                min_size=3, max_size=5).map(".".join))
def test_plain_scalars_with_dots_get_pyyamls_tags(text: str) -> None:
    # Composed as a plain scalar where YAML allows it (else PyYAML and the loader both
    # fail the same way, which the other tests cover).
    document = f"k: {text}\n"
    try:
        theirs = _pyyaml(document)
    except yaml.YAMLError:
        return
    assert _tree(_compose(document)) == theirs
