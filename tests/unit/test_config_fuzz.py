"""Bad input never crashes the loader: any text gives a Config or a located ConfigError."""

from __future__ import annotations

import copy
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hacluster.cli import main
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


# ---------------------------------------------------------------- check-config, FILE:LINE

SEED = int(os.environ.get("HACLUSTER_FUZZ_SEED", "20261207"))
FILES = int(os.environ.get("HACLUSTER_CONFIG_FUZZ_FILES", "400"))
EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
SUMMARY = re.compile(r"^(?P<file>.+): \d+ problems?$")

_INSERTS = [
    b"\x00", b"\x01", b"\x07", b"\x1b", b"\x7f", b"\x85", b"\xff", b"\xfe", b"\xc3", b"\xe2\x82",
    b"\xed\xa0\x80", b"\t", b"\r", b"\n", b"\n\n", b": ", b"- ", b"&a ", b"*a", b"<<: *a\n",
    b"!!python/object:os.system ", b"!!binary ", b"{", b"}", b"[", b"]", b"'", b'"', b"#",
    b"%YAML 1.1\n", b"---\n", b"...\n", b"? ", b"|", b">", b"~", b"null", b"0x", b"1e999",
    b"-1", b"256", b"\xef\xbb\xbf", b"\xe2\x80\xa8", b"\xf0\x9f\x92\xa9", b"  ", b"\\",
]


def mutate_file(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(6)
        pos = rng.randrange(len(out) + 1)
        if op == 0:
            out[pos:pos] = rng.choice(_INSERTS)
        elif op == 1 and out:
            out[min(pos, len(out) - 1)] = rng.randrange(256)
        elif op == 2:
            del out[pos : pos + rng.randint(1, 12)]
        elif op == 3:  # a line duplicated, moved or re-indented
            lines = out.split(b"\n")
            i = rng.randrange(len(lines))
            line = lines[i]
            choice = rng.randrange(3)
            if choice == 0:
                lines.insert(rng.randrange(len(lines) + 1), line)
            elif choice == 1:
                lines[i] = b" " * rng.randint(0, 9) + line.lstrip()
            else:
                lines[i] = line.replace(b": ", b":", 1)
            out = bytearray(b"\n".join(lines))
        elif op == 4:  # a value swapped for another
            value = rng.choice([b"-5", b"999999", b"yes", b"[]", b"{}", b"''", b"abc", b"1.5.3",
                                b"10.0.0.1/33", b"::g", b"MASTERS", b"0", b"300"])
            colon = out.find(b": ", pos)
            if colon >= 0:
                end = out.find(b"\n", colon)
                out[colon + 2 : end if end >= 0 else len(out)] = value
        else:
            out = out[:pos]
    return bytes(out)


def _located(line: str, file: str) -> bool:
    return bool(re.match(re.escape(file) + r":[1-9]\d*: \S", line))


def _check_config(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["check-config", "--offline", "-q", "-f", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_file_that_is_not_utf8_names_the_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"global_defs:\n  router_id: caf\xe9\n")
    code, _, err = _check_config(path, capsys)
    assert code == 1
    assert err.splitlines()[0].startswith(f"{path}:2: not UTF-8 text: byte 0xe9 at column 17")


def test_a_control_character_names_its_line_and_nothing_unlocated_is_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ctl.yaml"
    path.write_bytes(EXAMPLES[0].read_bytes().replace(b"priority:", b"prio\x01rity:", 1))
    line = EXAMPLES[0].read_bytes().split(b"priority:")[0].count(b"\n") + 1
    code, _, err = _check_config(path, capsys)
    assert code == 1
    lines = err.splitlines()
    assert lines[0].startswith(f"{path}:{line}: YAML error: unacceptable character #x0001")
    assert "<unicode string>" not in err
    assert all(_located(x, str(path)) or SUMMARY.match(x) for x in lines), err


def test_mutated_files_through_check_config_keep_the_file_line_contract(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(SEED)
    sources = [p.read_bytes() for p in EXAMPLES]
    outcomes = {0: 0, 1: 0}
    for i in range(FILES):
        path = tmp_path / f"m{i:04d}.yaml"
        data = mutate_file(rng, sources[i % len(sources)])
        path.write_bytes(data)
        code, _out, err = _check_config(path, capsys)  # an exception here is a traceback
        detail = f"seed {SEED} file {i}: {data[:400]!r}\n{err}"
        assert code in (0, 1), detail
        outcomes[code] += 1
        if code == 0:
            assert err == "", detail
            continue
        lines = err.splitlines()
        assert lines, detail
        assert SUMMARY.match(lines[-1]), detail
        for line in lines[:-1]:
            assert _located(line, str(path)), f"not FILE:LINE: {line!r}\n{detail}"
            assert "<unicode string>" not in line and "Traceback" not in line, detail
    print(f"\ncheck-config fuzz (seed {SEED}): {FILES} mutated files, "
          f"{outcomes[0]} valid, {outcomes[1]} refused with located problems")
    assert outcomes[1] > FILES // 3  # the mutations do break files


def test_mutated_files_through_the_real_command(tmp_path: Path) -> None:
    # A few through a process of their own: exit status and stderr as an operator sees them.
    rng = random.Random(SEED + 1)
    sources = [p.read_bytes() for p in EXAMPLES]
    hacluster = str(Path(sys.executable).with_name("hacluster"))
    for i in range(8):
        path = tmp_path / f"p{i}.yaml"
        path.write_bytes(mutate_file(rng, sources[i % len(sources)]))
        res = subprocess.run([hacluster, "check-config", "--offline", "-q", "-f", str(path)],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode in (0, 1), res.stderr
        assert "Traceback" not in res.stderr
        lines = res.stderr.splitlines()
        assert all(_located(x, str(path)) or SUMMARY.match(x) for x in lines), res.stderr
