"""Fixtures for integration tests: namespace labs (prefix hck) removed even on failure."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from hacluster.lab.netns import Lab, sweep

LAB_PREFIX = "hck"


@pytest.fixture(scope="session", autouse=True)
def _sweep_hck_leftovers() -> None:
    # Namespaces a crashed earlier run of this prefix left behind (their pid is gone).
    if os.geteuid() == 0 and shutil.which("ip"):
        sweep(LAB_PREFIX)


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A fresh lab; every namespace and process in it is removed after the test."""
    with Lab(LAB_PREFIX) as the_lab:
        yield the_lab

