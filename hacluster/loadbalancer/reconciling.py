"""The reconcile loop: desired table vs. the dataplane, ops applied, drift repaired."""

from __future__ import annotations

import asyncio
import logging
import time

from hacluster.config.model import Config
from hacluster.ipvs.backend import BackendError, DelService, Op, describe, op_service
from hacluster.ipvs.memory import apply_ops
from hacluster.ipvs.model import ServiceKey, Table, Timeouts
from hacluster.ipvs.reconcile import ALL, Managed, reconcile
from hacluster.loadbalancer.evaluate import PolicyPart
from hacluster.loadbalancer.members import dest_key

log = logging.getLogger("hacluster.loadbalancer")


class ReconcilePart(PolicyPart):
    """The dataplane kept equal to the desired table: a pass now, the loop that runs one on
    every change and periodically, errors logged once and counted."""

    def request_reconcile(self) -> None:
        """Ask for a reconcile soon (coalesced with any other request)."""
        self._wake.set()

    async def reconcile(self, reason: str = "requested", *, full: bool = True) -> int:
        """Make the dataplane equal to the desired table now; the number of ops issued.

        `full` reads the whole table back and compares all of it; otherwise only the
        services that changed since the last pass are compared, against the table as
        last read or written (the next full pass catches anything else).
        """
        async with self._lock:
            dirty, self._dirty = self._dirty, set()
            previous = self._table
            self._evaluate(dirty)
            self.counters["reconciles"] += 1
            backend = self._backend
            if backend is None:
                self._table = self.desired
                self._update_metrics(None)
                return 0
            full = full or self._full_next or self._table is None
            if full:
                try:
                    base = await backend.dump()
                except Exception as exc:
                    self._backend_error("dump", exc)
                    self._dirty |= dirty  # still to be carried out
                    self._full_next = True
                    return 0
                self._table_read_at = time.monotonic()
                if self._backend_down is not None:
                    log.info("[%s] dataplane readable again", backend.name)
                    self._backend_down = None
                managed: Managed = (
                    ALL if self._flush_first else set(self._servers) | self._retired
                )
                ops = reconcile(self.desired, base, managed=managed)
                keys: set[ServiceKey] | None = None
            else:
                assert self._table is not None
                keys = dirty | self._retired
                have, wanted = self._table.entries, self._entries
                base = Table({k: have[k] for k in keys if k in have})
                want = Table({k: wanted[k] for k in keys if k in wanted})
                ops = reconcile(want, base, managed=keys)
            if self._metrics is not None:
                self._metrics.reconciled(backend.name)
            if ops:
                # Ops that only retry what the dataplane refused last time are not news.
                retry = all(describe(op) in self._failures for op in ops)
                drift = reason == "periodic" and not retry
                level = logging.DEBUG if retry else logging.WARNING if drift else logging.INFO
                log.log(level, "[%s] %s: %d operation(s)%s", backend.name, reason, len(ops),
                        " to repair drift" if drift else "")
                for op in ops:
                    log.debug("[%s] %s", op_service(op), describe(op))
                after = await self._apply(ops, base)
                if self._full_next and keys is not None:
                    self._wake.set()  # refused on a partial pass: read everything back now
            else:
                after = base
                self._full_next = False
            if after is not None:
                if keys is None:
                    self._table = after
                else:
                    assert self._table is not None
                    merged = dict(self._table.entries)
                    for k in keys:
                        merged.pop(k, None)
                    merged.update(after.entries)
                    self._table = Table(merged)
                self._flush_first = False
                self._retired = {k for k in self._retired if k in self._table.entries}
            if keys is None and not dirty and not ops and self._table is previous:
                # A full pass that read back the very table of the last one (the backend
                # parsed nothing new) and had nothing to evaluate: 10,000 real servers'
                # gauges stand as they are.
                return 0
            self._update_metrics(keys)
            return len(ops)

    async def _apply(self, ops: list[Op], base: Table) -> Table | None:
        """Apply `ops` to the dataplane holding `base`; what it holds after (None: unknown)."""
        backend = self._backend
        assert backend is not None
        self._listing = None  # the table changes: a recent listing is read again
        try:
            result = await backend.apply(ops)
        except Exception as exc:
            self._backend_error("apply", exc)
            self._full_next = True
            return None
        self.counters["ops"] += len(ops)
        self.counters["op_errors"] += len(result.failed)
        if self._metrics is not None:
            self._metrics.dataplane_applied(backend.name, ops, result)
        failing: dict[str, str] = {}
        for failure in result.failed:
            what = describe(failure.op)
            failing[what] = failure.message
            if self._failures.get(what) != failure.message:
                log.error("[%s] %s failed: %s", op_service(failure.op), what, failure.message)
            else:
                log.debug("[%s] %s failed again: %s", op_service(failure.op), what,
                          failure.message)
        self._failures = failing
        # A refused op may mean the table is not what we think: read it next time.
        self._full_next = bool(result.failed)
        failed_ids = {id(f.op) for f in result.failed}
        return apply_ops(base, [op for op in ops if id(op) not in failed_ids])[0]

    def _backend_error(self, call: str, exc: BaseException) -> None:
        backend = self._backend
        name = backend.name if backend is not None else "none"
        message = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
        self.counters["backend_errors"] += 1
        if self._metrics is not None:
            self._metrics.dataplane_error(name, call)
        if self._backend_down != message:
            log.error("[%s] %s failed: %s", name, call, message)
        self._backend_down = message

    def _update_metrics(self, keys: set[ServiceKey] | None) -> None:
        """Real-server gauges, for the services in `keys` (None: all of them)."""
        metrics = self._metrics
        if metrics is None:
            return
        table = self._table
        for skey in self._servers if keys is None else keys:
            vs = self._servers.get(skey)
            if vs is None:
                continue
            vs_name = str(vs)
            entry = table.entries.get(skey) if table is not None else None
            reals = self._members.get(skey, [])
            for real in reals:
                dest = entry.destinations.get(dest_key(vs, real.rs)) if entry else None
                metrics.real_server(vs_name, real.name, up=real.up,
                                    weight=dest.weight if dest is not None else 0)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            reason = "periodic"
            try:
                async with asyncio.timeout(self.reconcile_interval):
                    await self._wake.wait()
                reason = "health change"
                if self._coalesce > 0:
                    await asyncio.sleep(self._coalesce)
            except TimeoutError:
                pass
            self._wake.clear()
            started = loop.time()
            try:
                await self.reconcile(reason, full=reason == "periodic")
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not stop the dataplane being kept
                log.exception("reconcile (%s) failed", reason)
                self.counters["reconcile_crashes"] += 1
                self._full_next = True
            log.debug("reconcile (%s) took %.1f ms", reason, (loop.time() - started) * 1000)

    async def _flush(self) -> None:
        assert self._backend is not None
        async with self._lock:
            try:
                actual = await self._backend.dump()
            except Exception as exc:
                self._backend_error("dump", exc)
                return
            managed = set(self._servers) | self._retired
            ops: list[Op] = [DelService(k) for k in actual.entries if k in managed]
            if ops:
                await self._apply(ops, actual)

    async def _apply_timeouts(self, config: Config) -> None:
        """global_defs.lvs_timeouts, on a dataplane that has them (IPVS); logged, not fatal."""
        wanted, backend = config.global_defs.lvs_timeouts, self._backend
        if wanted is None or backend is None:
            return
        setter = getattr(backend, "set_timeouts", None)
        if setter is None:
            log.warning("[%s] lvs_timeouts does not apply to this dataplane (IPVS only)",
                        backend.name)
            return
        timeouts = Timeouts(wanted.tcp, wanted.tcpfin, wanted.udp)
        try:
            await setter(timeouts)
        except BackendError as exc:
            log.error("[%s] lvs_timeouts: %s", backend.name, exc)
            return
        log.info("[%s] lvs_timeouts set: %s (0: unchanged)", backend.name, timeouts)
