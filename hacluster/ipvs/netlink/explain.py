"""Kernel refusals of IPVS operations, in words an operator can act on. Does no I/O."""

from __future__ import annotations

import errno
import os

from pyroute2.netlink.exceptions import NetlinkError

from hacluster.ipvs.backend import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    EditDest,
    EditService,
    Op,
    describe,
)

NO_SERVICE = "no such service"
NO_DEST = "no such destination"


def explain(op: Op, exc: NetlinkError) -> str:
    """An operator-facing message for a kernel refusal of `op`."""
    code = exc.code
    reason = os.strerror(code) if code else str(exc)
    what, hints = _subject(op)
    hint = hints.get(code, "")
    kind = describe(op).split(" ", 1)[0]
    if hint:
        return f"{what}: IPVS refused {kind}: {hint} ({reason})"
    return f"{what}: IPVS refused {kind}: {reason}"


def _subject(op: Op) -> tuple[str, dict[int, str]]:
    """What `op` concerns, and a hint for each errno the kernel answers it with."""
    match op:
        case AddService(service=s) | EditService(service=s):
            return f"service {s.key}", {
                errno.ENOENT: f"scheduler {s.scheduler!r} is not available in this kernel "
                f"(no ip_vs_{s.scheduler} module?)",
                errno.EEXIST: "it already exists",
                errno.ESRCH: NO_SERVICE,
                errno.EINVAL: "the kernel refused its attributes (flags, netmask or timeout)",
            }
        case DelService(key=k):
            return f"service {k}", {errno.ESRCH: NO_SERVICE}
        case AddDest(service=k, dest=d) | EditDest(service=k, dest=d):
            return f"service {k} destination {d.key}", {
                errno.ESRCH: NO_SERVICE,
                errno.EEXIST: "the destination already exists",
                errno.ENOENT: NO_DEST,
                errno.EINVAL: f"the kernel refused {d.forward.name} forwarding, weight "
                f"{d.weight} or the thresholds for this destination",
            }
        case DelDest(service=k, key=dk):
            return f"service {k} destination {dk}", {errno.ESRCH: NO_SERVICE, errno.ENOENT: NO_DEST}
    raise TypeError(f"not an IPVS operation: {op!r}")
