"""Compute the fewest operations that turn the actual IPVS table into the desired one.
Does no I/O.

Ownership ("managed"): every service in the desired table is hacluster's, with all of
its destinations (a destination someone added by hand to such a service is removed, a
weight changed by hand is put back). A service in the actual table but not in the
desired one is deleted only when its key is in `managed` (the daemon passes the keys
of every virtual server it has configured, including ones a reload just removed), or
when `managed=ALL`. Anything else in the kernel (another tool's services) is left alone.

Every service attribute outside its key (scheduler, flags, persistence timeout and
netmask) and every destination attribute outside its key (weight, forwarding method,
thresholds) can be changed in place by the kernel (IP_VS_CMD_SET_SERVICE / SET_DEST),
so a change is always one edit and never delete+add: existing connections survive.

Order: unwanted services are deleted first; then, service by service in desired order,
the service is added or edited, its destinations edited, added, and only then removed
(so a service is never left empty while one real server replaces another).
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from typing import Literal

from hacluster.ipvs.backend import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    EditDest,
    EditService,
    Op,
)
from hacluster.ipvs.model import ServiceEntry, ServiceKey, Table


class _All(enum.Enum):
    ALL = "all"


ALL: Literal[_All.ALL] = _All.ALL
"""`managed=ALL`: hacluster owns the whole table; anything not desired is deleted."""

Managed = Collection[ServiceKey] | Literal[_All.ALL]


def reconcile(desired: Table, actual: Table, *, managed: Managed = ()) -> list[Op]:
    """Operations that make `actual` equal `desired` on every managed service."""
    ops: list[Op] = []
    for key in actual.entries:
        if key not in desired.entries and (managed is ALL or key in managed):
            ops.append(DelService(key))
    for key, want in desired.entries.items():
        have = actual.entries.get(key)
        if have is None:
            ops.append(AddService(want.service))
            ops.extend(AddDest(key, dest) for dest in want.destinations.values())
        else:
            if have.service != want.service:
                ops.append(EditService(want.service))
            ops.extend(_dest_ops(key, want, have))
    return ops


def _dest_ops(key: ServiceKey, want: ServiceEntry, have: ServiceEntry) -> list[Op]:
    edits: list[Op] = []
    adds: list[Op] = []
    for dkey, dest in want.destinations.items():
        old = have.destinations.get(dkey)
        if old is None:
            adds.append(AddDest(key, dest))
        elif old != dest:
            edits.append(EditDest(key, dest))
    gone = [dkey for dkey in have.destinations if dkey not in want.destinations]
    dels: list[Op] = [DelDest(key, dkey) for dkey in gone]
    return edits + adds + dels
