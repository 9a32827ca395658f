"""keepalived.conf import of damaged input: a clear syntax error or YAML that loads, no crash."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hacluster.cli import main
from hacluster.config.keepalived_import import (
    KeepalivedSyntaxError,
    _split_line,
    _split_quoted_line,
    import_keepalived_text,
)
from hacluster.config.loader import parse_config

DATA = Path(__file__).resolve().parents[1] / "data" / "keepalived"
SAMPLES_DIR = Path("/usr/share/doc/keepalived/samples")


def corpus() -> list[str]:
    files = [*DATA.rglob("*.conf"), *sorted(SAMPLES_DIR.glob("keepalived.conf.*"))]
    return [p.read_text(errors="replace") for p in files if p.suffix != ".gz"]


CORPUS = corpus()
WORDS = [
    "{", "}", "\"", "'", "#", "!", "@main", "$X=1", "$X", "include", "vrrp_instance",
    "virtual_server", "real_server", "HTTP_GET", "url", "path", "/", "digest", "status_code",
    "virtual_ipaddress", "10.0.0.1/24", "fd00::1", "dev", "eth0", "priority", "255", "-1",
    "0.5", "weight", "track_script", "authentication", "auth_type", "PASS", "AH", "group",
    "fwmark", "80", "interface", "virtual_router_id", "vrrp_script", "script", "/bin/true",
    "vrrp_sync_group", "unicast_peer", "sorry_server", "lb_kind", "TUN", "nopreempt",
    "state", "MASTER", "notify", "virtual_server_group", "10.0.0.1-300", "\\", "\n",
]


def check_never_crashes(text: str) -> None:
    try:
        result = import_keepalived_text(text, "fuzz.conf", base=DATA, config_id="main")
    except KeepalivedSyntaxError as exc:
        assert exc.file == "fuzz.conf" or exc.file.startswith(str(DATA))
        assert exc.line >= 0 and exc.message
        return
    parse_config(result.yaml_text, "fuzz.yaml")  # the output always loads
    for note in result.skipped:
        assert note.line >= 0 and note.keyword and note.message


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(CORPUS),
    st.lists(st.tuples(st.integers(0, 200), st.sampled_from(["drop", "dup", "word"]),
                       st.sampled_from(WORDS)), max_size=6),
)
def test_damaged_real_files(text: str, edits: list[tuple[int, str, str]]) -> None:
    lines = text.splitlines()
    for index, action, word in edits:
        if not lines:
            break
        i = index % len(lines)
        if action == "drop":
            del lines[i]
        elif action == "dup":
            lines.insert(i, lines[i])
        else:
            parts = lines[i].split()
            parts.insert(index % (len(parts) + 1), word)
            lines[i] = " ".join(parts)
    check_never_crashes("\n".join(lines))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=60))
def test_word_salad(words: list[str]) -> None:
    check_never_crashes(" ".join(words))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    check_never_crashes(text)


def test_stdin_is_read(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b"global_defs {\n  router_id from-stdin\n}\nbogus\n"))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["import-keepalived", "-"]) == 0
    out, err = capsys.readouterr()
    assert parse_config(out).global_defs.router_id == "from-stdin"
    assert err == "<stdin>:4: bogus: unknown keyword; ignored, as keepalived does\n"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab1.{}#! \t\u00a0/-_@$\n\x0b")), max_size=40))
def test_fast_lexer_matches_the_careful_one(line: str) -> None:
    # lines without quotes or backslashes take a regex path; it must split the same way
    assert [(t.text, t.kind) for t in _split_line(line, "f", 1)] == [
        (t.text, t.kind) for t in _split_quoted_line(line, "f", 1)
    ]
