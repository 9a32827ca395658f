"""The benchmark command runs end to end (a smoke run; its figures are not asserted)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("kind", "workers"), [("tcp", "0"), ("http", "0"), ("http", "2")], ids=str
)
def test_bench_runs_and_reports(kind: str, workers: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "healthchecks.bench", "--checks", "40", "--kind", kind,
         "--interval", "0.2", "--duration", "1", "--timeout", "5", "--workers", workers],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    done = re.search(r"checks done: (\d+) .*failures: (\d+)", out)
    assert done is not None, out
    assert int(done.group(1)) > 40 and int(done.group(2)) == 0, out
    for figure in ("start lateness: p50", "per 1000 checks", "peak RSS"):
        assert figure in out, out
    if workers != "0":
        assert f"in {workers} worker processes" in out, out
