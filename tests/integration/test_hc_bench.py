"""The benchmark command runs end to end (a smoke run; its figures are not asserted)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from healthchecks import benchtargets


@pytest.mark.parametrize(
    ("kind", "workers"), [("tcp", "0"), ("http", "0"), ("http", "2")], ids=str
)
def test_bench_runs_and_reports(kind: str, workers: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "healthchecks.bench", "--checks", "40", "--kind", kind,
         "--interval", "0.2", "--duration", "1", "--timeout", "5", "--workers", workers,
         "--target", "local"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    done = re.search(r"checks done: (\d+) .*failures: (\d+)", out)
    assert done is not None, out
    assert int(done.group(1)) > 40 and int(done.group(2)) == 0, out
    for figure in ("start lateness: p50", "per 1000 checks", "peak RSS"):
        assert figure in out, out
    if workers != "0":
        assert f"in {workers} worker processes" in out, out


@pytest.mark.netns
@pytest.mark.skipif(not benchtargets.available(), reason="needs root, nginx, ip and openssl")
@pytest.mark.parametrize("kind", ["tcp", "http", "ssl", "ssl12"])
def test_bench_against_nginx_and_haproxy(kind: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "healthchecks.bench", "--checks", "50", "--kind", kind,
         "--interval", "1", "--duration", "1", "--timeout", "5", "--target", "nginx"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    done = re.search(r"checks done: (\d+) .*failures: (\d+)", out)
    assert done is not None, out
    assert int(done.group(1)) >= 25 and int(done.group(2)) == 0, out
    assert "target=nginx" in out, out
    if benchtargets.haproxy_available():
        # HAProxy checked the same nginx, and its measurement began only once each of the
        # 50 servers had passed one of its checks (however long its first round took on
        # a loaded machine): the targets our checker found up all, HAProxy did too.
        assert "every server passed a check" in out, out
        assert re.search(r"(\d+) of 50 servers UP \(check status: ([^)]*)\)", out), out
        assert re.search(r"ratio: ([0-9.]+ us / [0-9.]+ us = [0-9.]+x|n/a)", out), out
