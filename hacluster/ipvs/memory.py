"""In-memory IPVS backend for unit tests and `--dry-run`: kernel-like rules, counted operations.
Does no I/O."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from hacluster.ipvs.backend import (
    AddDest,
    AddService,
    ApplyResult,
    DelDest,
    DelService,
    EditDest,
    EditService,
    Op,
    OpFailure,
)
from hacluster.ipvs.model import (
    Destination,
    DestKey,
    Service,
    ServiceEntry,
    ServiceKey,
    Stats,
    Table,
    TableStats,
    Timeouts,
)

_OP_NAMES: dict[type, str] = {
    AddService: "add_service",
    EditService: "edit_service",
    DelService: "del_service",
    AddDest: "add_dest",
    EditDest: "edit_dest",
    DelDest: "del_dest",
}


def op_name(op: Op) -> str:
    """Short snake_case name of an operation's kind (`add_dest`, ...)."""
    return _OP_NAMES[type(op)]


class _Work:
    """A mutable copy of a table that refuses what the kernel would refuse."""

    def __init__(self, table: Table) -> None:
        self.services: dict[ServiceKey, Service] = {}
        self.dests: dict[ServiceKey, dict[DestKey, Destination]] = {}
        for entry in table:
            self.services[entry.service.key] = entry.service
            self.dests[entry.service.key] = dict(entry.destinations)

    def do(self, op: Op) -> str | None:
        """Apply one op; returns an error message (as the kernel's) or None."""
        match op:
            case AddService(service=s):
                if s.key in self.services:
                    return f"{s.key}: service already exists"
                self.services[s.key] = s
                self.dests[s.key] = {}
            case EditService(service=s):
                if s.key not in self.services:
                    return f"{s.key}: no such service"
                self.services[s.key] = s
            case DelService(key=k):
                if k not in self.services:
                    return f"{k}: no such service"
                del self.services[k]
                del self.dests[k]
            case AddDest(service=k, dest=d):
                if k not in self.services:
                    return f"{k}: no such service"
                if d.key in self.dests[k]:
                    return f"{k}: destination {d.key} already exists"
                self.dests[k][d.key] = d
            case EditDest(service=k, dest=d):
                if k not in self.services:
                    return f"{k}: no such service"
                if d.key not in self.dests[k]:
                    return f"{k}: no such destination {d.key}"
                self.dests[k][d.key] = d
            case DelDest(service=k, key=dk):
                if k not in self.services:
                    return f"{k}: no such service"
                if dk not in self.dests[k]:
                    return f"{k}: no such destination {dk}"
                del self.dests[k][dk]
        return None

    def table(self) -> Table:
        return Table(
            {k: ServiceEntry(s, dict(self.dests[k])) for k, s in self.services.items()}
        )


def apply_ops(table: Table, ops: Sequence[Op]) -> tuple[Table, ApplyResult]:
    """The table after `ops`, and which ops the kernel would have refused."""
    work = _Work(table)
    failed: list[OpFailure] = []
    for op in ops:
        error = work.do(op)
        if error is not None:
            failed.append(OpFailure(op, error))
    return work.table(), ApplyResult(len(ops) - len(failed), tuple(failed))


class MemoryBackend:
    """A table held in memory; `counts` tallies the operations applied, by kind."""

    def __init__(self, table: Table | None = None, *, name: str = "memory") -> None:
        self._table = table if table is not None else Table()
        self._name = name
        self.counts: Counter[str] = Counter()
        self.transactions = 0
        self.timeouts = Timeouts(900, 120, 300)  # the kernel's defaults

    async def get_timeouts(self) -> Timeouts:
        return self.timeouts

    async def set_timeouts(self, timeouts: Timeouts) -> None:
        """As the kernel: a 0 leaves that timeout unchanged."""
        old = self.timeouts
        self.timeouts = Timeouts(timeouts.tcp or old.tcp, timeouts.tcpfin or old.tcpfin,
                                 timeouts.udp or old.udp)

    @property
    def name(self) -> str:
        return self._name

    @property
    def table(self) -> Table:
        return self._table

    async def dump(self) -> Table:
        return self._table

    async def apply(self, ops: Sequence[Op]) -> ApplyResult:
        self._table, result = apply_ops(self._table, ops)
        self.transactions += 1
        failed = {id(f.op) for f in result.failed}
        self.counts.update(op_name(op) for op in ops if id(op) not in failed)
        return result

    async def stats(self) -> TableStats:
        return TableStats(
            {entry.service.key: Stats() for entry in self._table},
            {
                (entry.service.key, dkey): Stats()
                for entry in self._table
                for dkey in entry.destinations
            },
        )

    async def close(self) -> None:
        return None
