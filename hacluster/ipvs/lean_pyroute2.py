"""pyroute2's netlink modules imported without the package's `__init__`, which imports all of it.

`import pyroute2.netlink.generic.ipvs` runs `pyroute2/__init__.py` first, and that
imports every part of the library (IPDB, NDB, iproute, conntrack, ethtool, nl80211...):
163 modules, where the IPVS backend needs 17. That costs ~170 ms on a director and, in
the QEMU guest of the VM tests (Python ~30x slower), seconds of the balancer's start
before the IPVS table is written. `install()` registers the package as an empty module
first, so that importing a submodule runs only that submodule and what it imports; the
first use of a name the `__init__` would have defined (`from pyroute2 import
AsyncIPRoute` elsewhere in the process) runs the real `__init__` then, in the same
module, so every other user of pyroute2 sees the whole package as usual.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

_lock = threading.Lock()


def install() -> None:
    """Make the next `import pyroute2.X` import X without the whole package (nothing
    when pyroute2 is imported already or cannot be found)."""
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader
    done = [False]

    def whole_package(name: str) -> Any:
        # Module __getattr__ (PEP 562): only names not defined yet come here.
        if name.startswith("__") or done[0]:
            raise AttributeError(f"module 'pyroute2' has no attribute {name!r}")
        if importlib.util.find_spec(f"pyroute2.{name}") is not None:
            # `from pyroute2 import config`: a submodule, imported alone.
            return importlib.import_module(f"pyroute2.{name}")
        with _lock:
            if not done[0]:
                done[0] = True
                loader.exec_module(module)
        try:
            return module.__dict__[name]
        except KeyError:
            raise AttributeError(f"module 'pyroute2' has no attribute {name!r}") from None

    module.__dict__["__getattr__"] = whole_package
    sys.modules["pyroute2"] = module


def whole(module: ModuleType | None = None) -> bool:
    """Whether the package's `__init__` has run (for tests)."""
    package = module or sys.modules.get("pyroute2")
    return package is not None and "IPRoute" in package.__dict__
