"""IPVS backend over generic netlink (pyroute2): dump, apply, statistics and the sync daemon.

The only package that talks to the kernel's IPVS, a module a job: the numbers of the
kernel's interface (`uapi`), requests as attribute lists (`attrs`) and packed with struct
(`packed`), pyroute2's message classes (`messages`), replies read from their raw
attributes (`decode`), refusals in words (`explain`), the sync daemon (`sync`,
`sync_commands`) and the backend that sends and receives (`backend`). Requests that
change the table are packed with struct and replies read from their raw attributes,
because pyroute2's generic NLA objects cost milliseconds per destination (tests hold
both to pyroute2's own encoding).

Errors from the kernel for one operation become an `OpFailure` whose message names the
service (and destination) and says what the kernel refused, with a hint where one helps.
"""

from hacluster.ipvs import lean_pyroute2

# Before any module here imports pyroute2: the 17 modules used, not the 163 of the whole
# package (see `lean_pyroute2`).
lean_pyroute2.install()

from hacluster.ipvs.netlink.backend import UNAVAILABLE_HINT, NetlinkBackend, probe  # noqa: E402
from hacluster.ipvs.netlink.decode import message_attrs, timeouts_from  # noqa: E402
from hacluster.ipvs.netlink.packed import packed_op, packed_timeouts  # noqa: E402
from hacluster.ipvs.netlink.sync import SyncDaemon, SyncState  # noqa: E402

__all__ = [
    "UNAVAILABLE_HINT",
    "NetlinkBackend",
    "SyncDaemon",
    "SyncState",
    "message_attrs",
    "packed_op",
    "packed_timeouts",
    "probe",
    "timeouts_from",
]
