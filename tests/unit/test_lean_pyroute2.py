"""The IPVS backend imports pyroute2's netlink modules without the whole package, and the
whole package is still there for any other user (each case in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

LEAN = """
import sys
import hacluster.ipvs.netlink.backend
from hacluster.ipvs import lean_pyroute2
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "pyroute2")
print(len(loaded), lean_pyroute2.whole())
"""

WHOLE_LATER = """
import hacluster.ipvs.netlink.backend
from pyroute2 import AsyncIPRoute, IPVS
import pyroute2
import pyroute2.iproute.linux
from hacluster.ipvs import lean_pyroute2
assert AsyncIPRoute is pyroute2.iproute.linux.AsyncIPRoute
assert pyroute2.IPVS is IPVS and pyroute2.__version__
print(lean_pyroute2.whole())
"""

WHOLE_FIRST = """
import pyroute2
import hacluster.ipvs.netlink.backend
from hacluster.ipvs import lean_pyroute2
print(lean_pyroute2.whole(), hacluster.ipvs.netlink.backend.NetlinkError is pyroute2.NetlinkError)
"""


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_the_backend_imports_only_the_netlink_modules() -> None:
    count, whole = _run(LEAN).split()
    assert int(count) < 40  # 17 with pyroute2 0.9.7; the whole package is 160+
    assert whole == "False"


def test_a_later_user_of_the_package_gets_all_of_it() -> None:
    assert _run(WHOLE_LATER) == "True"


def test_a_package_imported_first_is_used_as_it_is() -> None:
    assert _run(WHOLE_FIRST) == "True True"
