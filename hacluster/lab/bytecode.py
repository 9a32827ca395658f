"""Compile a source tree's packages to bytecode before a benchmark starts the daemon.

An installed package has its bytecode (pip and deploy/build-deb.sh compile it); a source
tree run with PYTHONDONTWRITEBYTECODE would otherwise compile every module it imports on
every start, and a start-up figure would measure the compiler.
"""

from __future__ import annotations

import compileall
from pathlib import Path

PACKAGES = ("hacluster", "vrrp", "healthchecks")


def compile_tree(base: Path) -> None:
    """Write the bytecode of the project's packages under `base` (quietly)."""
    for package in PACKAGES:
        compileall.compile_dir(str(base / package), quiet=1)
