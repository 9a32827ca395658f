"""The constructors the VRRP role calls right after its release, compiled before it.

`vrrp.slotted` classes compile their constructor when first instantiated. In the role the
first instances come right after the release, on the way to the first advert: the
decoded file (the config classes every file has), the options, and the VRRP start path
(~6 ms of compiling, measured). `prepare_release` compiles the config classes' ones in
`hacluster run` before it forks the role (it builds them too, loading the file: once
for both processes); `prepare_vrrp_role` the rest, in the role while the supervisor
still loads and checks the file. The rest of the config model (checkers, routes,
scripts...) is compiled when a file uses it.
"""

from __future__ import annotations

import importlib

from hacluster.config import model
from vrrp.slotted import prepare

#: The modules whose @slotted classes the role builds on its start path.
START_PATH = (
    "hacluster.daemon_options", "hacluster.reload_plan", "hacluster.vrrp_status",
    "vrrp.machine", "vrrp.packet",
    "vrrp.transport", "vrrp.addresses", "vrrp.announce", "vrrp.driver", "vrrp.speaker",
)


def prepare_release() -> None:
    """Compile the constructors of the config classes every release carries."""
    prepare(model.Config, model.GlobalDefs, model.VrrpInstance, model.VirtualIpAddress)


def prepare_vrrp_role() -> None:
    """Compile the constructors of the release's config classes (if not yet) and of the
    VRRP role's start path."""
    prepare_release()
    prepare(*(importlib.import_module(name) for name in START_PATH))
