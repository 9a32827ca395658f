"""A lab of one namespace whose veth pair has both ends in it (eth0 addressed, eth1 not)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

import pytest

from hacluster.lab.netns import Lab, Netns, sweep


@contextlib.contextmanager
def looped_namespace(prefix: str, name: str, address: str) -> Iterator[tuple[Lab, Netns]]:
    """The lab (prefix `prefix`, leftovers swept first) and its namespace `name`, with
    eth0 (`address`) and eth1 the two ends of one veth pair; all removed afterwards."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("needs root and iproute2 (netns marker)")
    sweep(prefix)
    with Lab(prefix) as lab:
        ns = lab.namespace(name)
        lab.veth(ns, "eth0", ns, "eth1")
        lab.add_address(ns, "eth0", address)
        yield lab, ns
