"""The load balancer's part of `GET /v1/status`, kept encoded and rebuilt in the background.

With 10,000 real servers that part is megabytes of JSON: built per request it held every
request for seconds and the supervisor's loop for tens of milliseconds at a time. Here it
is built from memory only (the health the checks reported, and the table as the reconcile
loop last read back and wrote it: no dataplane read per request), a few milliseconds of
work between two yields to the event loop, and a request is answered at once from the
latest one built, which says how old it is. While somebody asks (for `keep_warm`
seconds after a request), a new one is built whenever the latest is `max_age` old; a
request finding none younger than `wait_after` (nobody asked for a while) waits for the
next build rather than show something that old. When the API starts one is built
(`prime`), not more: with nobody asking, 10,000 real servers' status rebuilt every second
was most of what an otherwise idle balancer did.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from hacluster.config.model import HostPort
from hacluster.ipvs.listing import destinations, ordered
from hacluster.ipvs.model import ServiceEntry, Table
from hacluster.loadbalancer import LoadBalancer

SLICE_SECONDS = 0.004
"""Work done between two yields to the event loop while building."""


@dataclass(frozen=True)
class Snapshot:
    """The load balancer's status as JSON text (encoded once: it is relayed as bytes), as
    of `built_at` (time.monotonic())."""

    built_at: float
    virtual_servers: bytes  # the `virtual_servers` array
    ipvs: bytes  # the `ipvs` rows: the table as reconcile knows it
    table_read_at: float | None  # when that table was last read back whole


def service_name(entry: ServiceEntry) -> str:
    """A service as `ipvs_rows` names it: 10.0.0.1:80/TCP, FWM 1/TCP."""
    s = entry.service
    protocol = s.protocol.name if s.protocol else None
    if s.fwmark:
        return f"FWM {s.fwmark}" + (f"/{protocol}" if protocol else "")
    assert s.address is not None
    return f"{HostPort(s.address, s.port)}/{protocol}"


def table_pieces(table: Table | None) -> Iterator[str]:
    """`ipvs_rows(to_json(table))` as JSON text, a piece per row (no connection
    counters: they exist only in a read-back, `GET /v1/ipvs`)."""
    yield "["
    first = True
    for entry in ordered(table) if table is not None else []:
        name = service_name(entry)
        scheduler = entry.service.scheduler
        dests = destinations(entry)
        rows = [{"service": name, "scheduler": scheduler, "destination": None,
                 "forward": None, "weight": None}] if not dests else (
            {"service": name, "scheduler": scheduler,
             "destination": str(HostPort(d.address, d.port)), "forward": d.forward.name,
             "weight": d.weight} for d in dests)
        for row in rows:
            text = json.dumps({**row, "active_conns": None, "inactive_conns": None})
            yield text if first else ", " + text
            first = False
    yield "]"


async def join_sliced(pieces: Iterator[str]) -> bytes:
    """The pieces joined and encoded, yielding to the event loop every `SLICE_SECONDS` of
    work. Written into one buffer as they come: a list of the pieces, joined, then
    encoded, held the megabytes of a 10,000-server status three times over at its peak
    (the pieces, the text, the bytes), and a process's heap keeps its peak."""
    out = io.BytesIO()
    deadline = time.monotonic() + SLICE_SECONDS
    for piece in pieces:
        out.write(piece.encode())
        if time.monotonic() >= deadline:
            await asyncio.sleep(0)
            deadline = time.monotonic() + SLICE_SECONDS
    return out.getvalue()


class StatusSnapshots:
    """The latest `Snapshot` of a load balancer, rebuilt when asked for and stale."""

    def __init__(self, lb: LoadBalancer, max_age: float = 1.0, wait_after: float = 10.0,
                 keep_warm: float = 30.0) -> None:
        self._lb = lb
        self._max_age = max_age
        self._wait_after = wait_after
        self._keep_warm = keep_warm
        self._warm_until = 0.0
        self._warmer: asyncio.Task[None] | None = None
        self._latest: Snapshot | None = None
        self._building: asyncio.Task[Snapshot] | None = None
        self._generation = 0
        self._table_text: tuple[Table | None, bytes] | None = None  # (table, its rows)
        #: Told of each snapshot built (the balancer role hands it to the supervisor).
        self.on_built: Callable[[Snapshot], None] | None = None

    def prepare(self) -> None:
        """Start building one now, if none is being built."""
        if self._building is None or self._building.done():
            self._building = asyncio.get_running_loop().create_task(
                self._build(self._generation), name="status-snapshot")

    def prime(self) -> None:
        """Build one now (the API started) and keep it for `wait_after` seconds, for a
        first request; nothing more is built until somebody asks."""
        self.prepare()
        self._start_warmer()

    def keep_warm(self) -> None:
        """Keep building for `keep_warm` seconds from now (a request)."""
        self._warm_until = time.monotonic() + self._keep_warm
        self._start_warmer()

    def _start_warmer(self) -> None:
        if self._warmer is None or self._warmer.done():
            self._warmer = asyncio.get_running_loop().create_task(
                self._warm(), name="status-snapshot-warm")

    async def _warm(self) -> None:
        while True:
            now = time.monotonic()
            latest, building = self._latest, self._building
            if now < self._warm_until:
                if latest is None or now - latest.built_at >= self._max_age:
                    self.prepare()
                    assert self._building is not None
                    with contextlib.suppress(Exception):
                        await asyncio.shield(self._building)
            elif building is not None and not building.done():
                pass  # (what it builds is kept for `wait_after`, like any other)
            elif now >= self._warm_until + self._wait_after and (
                    latest is None or now - latest.built_at >= self._wait_after):
                # Nobody asks any more, and a request would wait for a new build now
                # anyway: the megabytes of the latest need not be kept meanwhile.
                self._latest = None
                self._table_text = None
                return
            await asyncio.sleep(self._max_age / 4)

    async def latest(self) -> Snapshot:
        """The latest snapshot at once; a stale one starts the next build in the
        background, and one older than `wait_after` (or none) is waited for."""
        self.keep_warm()
        latest = self._latest
        age = None if latest is None else time.monotonic() - latest.built_at
        if age is None or age > self._max_age:
            self.prepare()
        if latest is None or age is None or age > self._wait_after:
            assert self._building is not None
            return await asyncio.shield(self._building)
        return latest

    def invalidate(self) -> None:
        """Forget the latest (a change made through the API): the next request waits for
        a snapshot built after it, so a client reads its own change."""
        self._latest = None
        self._building = None  # one under way may have read the state before the change
        self._generation += 1

    async def close(self) -> None:
        """Stop building; wait for a build under way (a request may be waiting for it)."""
        self._warm_until = 0.0
        building, self._building = self._building, None
        if building is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(building)

    async def _build(self, generation: int) -> Snapshot:
        lb = self._lb
        await lb.refresh(self._max_age)  # the checks' counters from the worker processes
        built_at = time.monotonic()
        table, read_at = lb.table, lb.table_read_at
        virtual_servers = await join_sliced(lb.status_pieces())
        # A table is immutable, and its rows say nothing that ages: encoded once.
        if self._table_text is None or self._table_text[0] is not table:
            self._table_text = (table, await join_sliced(table_pieces(table)))
        ipvs = self._table_text[1]
        snapshot = Snapshot(built_at, virtual_servers, ipvs, read_at)
        if generation == self._generation:
            self._latest = snapshot
            if self.on_built is not None:
                self.on_built(snapshot)
        return snapshot
