"""Bad input never crashes the loader: any text gives a Config or a located ConfigError."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hacluster.config.errors import ConfigError
from hacluster.config.loader import parse_config

EXAMPLE = (Path(__file__).resolve().parents[2] / "examples" / "director-a.yaml").read_text()
EXAMPLE_DATA: dict[str, Any] = yaml.safe_load(EXAMPLE)
DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["10.0.0.1/24", "::1", "fe80::1/64 dev eth0", "200-299", "[::1]:80", "MASTER"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += _paths(value, (*prefix, i))
    return out


PATHS = [p for p in _paths(EXAMPLE_DATA) if p]


def _replace(data: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        data = data[step]
    data[path[-1]] = value


def _check(text: str) -> None:
    try:
        parse_config(text, "fuzz.yaml")
    except ConfigError as exc:
        assert exc.problems
        lines = text.count("\n") + 1
        for problem in exc.problems:
            assert problem.file == "fuzz.yaml"
            assert 1 <= problem.line <= lines + 1, problem
            assert problem.message


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), values)
def test_any_value_anywhere_in_a_valid_file(path: tuple[Any, ...], value: Any) -> None:
    data = copy.deepcopy(EXAMPLE_DATA)
    _replace(data, path, value)
    _check(yaml.dump(data, Dumper=DUMPER))


@settings(max_examples=80, deadline=None)
@given(st.integers(min_value=0, max_value=len(EXAMPLE) - 1), st.integers(1, 8), st.text(max_size=4))
def test_damaged_text(start: int, length: int, insert: str) -> None:
    _check(EXAMPLE[:start] + insert + EXAMPLE[start + length :])


def test_self_referring_yaml_does_not_crash() -> None:
    _check("global_defs: &g\n  <<: *g\n")
    _check("vrrp_instances: &i\n  VI_1:\n    <<: *i\n")
    _check("virtual_servers: &v\n  - real_servers: *v\n")
