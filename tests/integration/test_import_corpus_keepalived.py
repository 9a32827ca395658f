"""keepalived 2.2.7 itself on the import corpus: each file says what `keepalived -t` makes of it.

Every file of tests/data/keepalived/corpus carries a `keepalived -t: clean` line, or
one `keepalived -t: warns: MESSAGE` line per message keepalived prints for it. This
runs the real keepalived on each (in a namespace with the interfaces the files name)
and holds the files to what they say, so the corpus stays valid keepalived input.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.keepalived_check import keepalived_check

pytestmark = pytest.mark.keepalived

CORPUS = sorted((Path(__file__).resolve().parents[1] / "data/keepalived/corpus").glob("*.conf"))
_WHERE_RE = re.compile(r"^\((?:[^)]*: )?Line \d+\) ")


def declared(path: Path) -> list[str] | None:
    """The warnings the file declares; None for `clean`."""
    warns = []
    for line in path.read_text().splitlines():
        match = re.match(r"^[#!] keepalived -t: (clean|warns: (.+))$", line)
        if match and match[1] == "clean":
            return None
        if match:
            warns.append(match[2])
    return warns


def test_keepalived_makes_of_each_file_what_it_says() -> None:
    assert len(CORPUS) >= 30
    for verdict in keepalived_check(CORPUS, prefix="kcorp"):
        name = verdict.path.name
        said = declared(verdict.path)
        printed = []
        for line in verdict.output.splitlines():
            line = _WHERE_RE.sub("", line)
            if line not in printed:
                printed.append(line)
        if said is None:
            assert (verdict.returncode, printed) == (0, []), name
        else:
            assert verdict.returncode != 0, name
            assert printed == said, name
