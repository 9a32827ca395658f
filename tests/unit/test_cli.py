"""The command line dispatches to subcommands, rejects unknown ones, and tells its version."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from hacluster.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_unknown_subcommand_exits_with_usage() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2


def test_version_comes_from_the_package_metadata() -> None:
    """`hacluster --version` prints the version pyproject.toml gives, and exits 0."""
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    res = subprocess.run(
        [sys.executable, "-m", "hacluster.cli", "--version"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    print(res.stdout, end="")
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"hacluster {declared}\n"
