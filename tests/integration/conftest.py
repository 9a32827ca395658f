"""Fixtures for integration tests: namespace labs (prefixes hck, hcw) removed even on failure."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from hacluster.lab.netns import Lab, sweep
from tests.integration.vrrp_director import PREFIX as PAIR_PREFIX
from tests.integration.vrrp_director import PairLab

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


@pytest.fixture(scope="session")
def _sweep_hcw() -> None:
    if os.geteuid() == 0 and shutil.which("ip"):
        sweep(PAIR_PREFIX)


@pytest.fixture
def pair(_sweep_hcw: None) -> Iterator[PairLab]:
    """Directors a and b and an observer on one bridge (see vrrp_director)."""
    with Lab(PAIR_PREFIX) as lab:
        sw = lab.namespace("sw")
        lab.bridge(sw)
        a, b, obs = lab.namespace("a"), lab.namespace("b"), lab.namespace("obs")
        lab.attach(a, "eth0", sw, "br0", ["10.9.0.1/24", "fd00:9::1/64"])
        lab.attach(b, "eth0", sw, "br0", ["10.9.0.2/24", "fd00:9::2/64"])
        lab.attach(obs, "eth0", sw, "br0", ["10.9.0.3/24", "fd00:9::3/64"])
        yield PairLab(lab, a, b, obs)
