"""What the load balancer reports: status rows (whole, a virtual server, in pieces), listings."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

from hacluster.config.model import VirtualServer
from hacluster.ipvs.listing import to_json
from hacluster.ipvs.model import ServiceEntry, ServiceKey, Table, TableStats
from hacluster.loadbalancer.members import Check, Real, dest_key
from hacluster.loadbalancer.state import BalancerState

STATUS_PIECE = 20
"""Real servers a piece of `LoadBalancer.status_pieces`."""


def server_reason(reason: str, checks: list[dict[str, Any]]) -> str:
    """Why a real server is up or down now: its checks' latest reasons once any has run
    (the reason of its last up/down change otherwise: "not checked yet", "no checks")."""
    ran = [c for c in checks if c.get("age_seconds") is not None or c.get("runs")]
    if not ran:
        return reason
    return "; ".join(f"{c['checker']}: {c['reason']}" for c in ran)


class StatusPart(BalancerState):
    """Status rows of virtual servers, real servers and checks, and the dataplane's listing."""

    def summary(self) -> list[dict[str, Any]]:
        """Each virtual server's quorum and how many of its real servers are up (cheap:
        no checks, no table)."""
        rows = []
        for skey, vs in self._servers.items():
            reals = self._members.get(skey, [])
            quorum_up = self._quorum.get(skey)
            rows.append({
                "name": str(vs),
                "quorum_up": bool(quorum_up),
                "sorry_server_active": vs.sorry_server is not None and quorum_up is False,
                "real_servers_up": sum(1 for r in reals if r.up),
                "real_servers": len(reals),
            })
        return rows

    def status(self, *, table: bool = True) -> dict[str, Any]:
        """Virtual servers with their real servers and checks, the table, and counters.

        `virtual_servers` rows have the shape of `hacluster.api.VirtualServerStatus`;
        `ipvs` is the dataplane's table as last read or written (`listing.to_json`;
        None with `table` false, as the API reads the table itself).
        """
        now = time.monotonic()
        current = self._table
        rows = [self._row(skey, vs, current, now) for skey, vs in self._servers.items()]
        return {
            "virtual_servers": rows,
            "dataplane": self._backend.name if self._backend is not None else "none",
            "dataplane_error": self._backend_down,
            "ipvs": to_json(current) if current is not None and table else None,
            "counters": dict(self.counters),
        }

    def virtual_server_row(self, name: str) -> dict[str, Any] | None:
        """The `status()` row of the virtual server named `name` (None: no such one)."""
        now = time.monotonic()
        current = self._table
        for skey, vs in self._servers.items():
            if str(vs) == name:
                return self._row(skey, vs, current, now)
        return None

    def status_pieces(self) -> Iterator[str]:
        """The `virtual_servers` of `status()` as JSON text (`json.dumps`'s), a piece per
        `STATUS_PIECE` real servers, for a caller that yields to the event loop between
        pieces. Walks a copy of the membership: a reload between two pieces does no harm."""
        now = time.monotonic()
        current = self._table
        yield "["
        for index, (skey, vs) in enumerate(list(self._servers.items())):
            entry = current.entries.get(skey) if current is not None else None
            head = json.dumps(self._service_row(skey, vs))
            yield ("" if index == 0 else ", ") + head[:-1] + ', "real_servers": ['
            reals = list(self._members.get(skey, []))
            for start in range(0, len(reals), STATUS_PIECE):
                # A few rows a dumps() call: one call a row spent much on the call itself.
                text = json.dumps([self._real_row(vs, real, entry, now)
                                   for real in reals[start:start + STATUS_PIECE]])[1:-1]
                yield text if start == 0 else ", " + text
            yield "]}"
        yield "]"

    def _row(
        self, skey: ServiceKey, vs: VirtualServer, current: Table | None, now: float
    ) -> dict[str, Any]:
        """A virtual server's status row, with its real servers'."""
        entry = current.entries.get(skey) if current is not None else None
        row = self._service_row(skey, vs)
        row["real_servers"] = [self._real_row(vs, real, entry, now)
                               for real in self._members.get(skey, [])]
        return row

    def _service_row(self, skey: ServiceKey, vs: VirtualServer) -> dict[str, Any]:
        """A virtual server's status row, without its real servers."""
        quorum_up = self._quorum.get(skey)
        sorry = vs.sorry_server
        return {
            "name": str(vs),
            "lb_algo": vs.lb_algo,
            "lb_kind": vs.lb_kind,
            "quorum": vs.quorum,
            "quorum_up": bool(quorum_up),
            "sorry_server": str(sorry) if sorry is not None else None,
            "sorry_server_active": sorry is not None and quorum_up is False,
        }

    def _real_row(self, vs: VirtualServer, real: Real, entry: ServiceEntry | None,
                  now: float) -> dict[str, Any]:
        dest = entry.destinations.get(dest_key(vs, real.rs)) if entry else None
        checks = [self._check_row(c, now) for c in real.checks]
        return {
            "name": real.name,
            "up": real.up,
            "weight": real.rs.weight,
            "effective_weight": dest.weight if dest is not None else None,
            "drained": real.key in self._drained,
            "reason": server_reason(real.reason, checks),
            "checks": checks,
        }

    def _check_row(self, check: Check, now: float) -> dict[str, Any]:
        last = check.checker.last
        row: dict[str, Any] = {
            "checker": check.plan.kind,
            "ok": last.ok if last is not None else None,
            "reason": last.reason if last is not None else "not checked yet",
            "age_seconds": round(now - last.at, 3) if last is not None else None,
            "duration_seconds": round(last.duration, 6) if last is not None else None,
        }
        try:
            st = self._runner.status(check.check_id)
        except KeyError:  # stopped
            return row
        counters = self._sharded.counters(check.check_id) if self._sharded else None
        if counters is not None and counters.last_ok is not None:
            row.update(ok=counters.last_ok, age_seconds=round(counters.last_age or 0.0, 3),
                       duration_seconds=round(counters.last_duration or 0.0, 6))
        # The tracker's view: its state, and the reason of its last result (which also
        # covers a run the runner gave up on, which the checker never reported).
        row.update(up=st.up, reason=st.reason, last_failure=st.last_failure, runs=st.runs,
                   failures=st.failures)
        if row["ok"] is None and st.runs == 0:
            row["ok"] = st.up
        return row

    async def recent_ipvs(self, max_age: float = 1.0) -> dict[str, Any]:
        """The dataplane's table as last listed, at once: read again in the background
        when the listing is older than `max_age` (reading 10,000 destinations back from
        nftables takes seconds; a status page asked for twice a second need not wait)."""
        loop = asyncio.get_running_loop()
        cached = self._listing
        stale = cached is None or loop.time() - cached[0] > max_age
        if stale and (self._listing_task is None or self._listing_task.done()):
            self._listing_task = loop.create_task(self._list_again(), name="ipvs-listing")
        if cached is None:
            assert self._listing_task is not None
            return await asyncio.shield(self._listing_task)
        return cached[1]

    async def _list_again(self) -> dict[str, Any]:
        listing = await self.ipvs()
        self._listing = (asyncio.get_running_loop().time(), listing)
        return listing

    async def ipvs(self, *, stats: bool = True) -> dict[str, Any]:
        """The dataplane's table read now (with statistics), as `listing.to_json` gives it."""
        if self._backend is None:
            return {"services": []}
        table = await self._backend.dump()
        table_stats = await self._backend.stats() if stats else TableStats()
        # The listing's first line (IPVS version, table size) where the backend knows it.
        info_fn = getattr(self._backend, "info", None)
        info = await info_fn() if info_fn is not None else None
        return to_json(table, table_stats, info=info)


def servers_of(status: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """`status()["virtual_servers"]` as {"VS RS": real server row}, for tests and tools."""
    out: dict[str, dict[str, Any]] = {}
    for vs in status.get("virtual_servers", []):
        for rs in vs.get("real_servers", []):
            out[f"{vs['name']} {rs['name']}"] = rs
    return out
