"""StatusSnapshots: the load balancer's status kept encoded, against real checks of real
local listeners and the memory backend; its text must say what `LoadBalancer.status()`
and `ipvs_rows(to_json(table))` say."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hacluster.apitypes import ipvs_rows
from hacluster.ipvs.listing import to_json
from hacluster.loadbalancer import status as lb_status
from hacluster.status_snapshot import StatusSnapshots, join_sliced, table_pieces
from tests.unit.test_loadbalancer import VS, Recording, Tcp, make_config, running, wait_until


@pytest.fixture
async def listeners() -> AsyncIterator[list[Tcp]]:
    servers = [Tcp() for _ in range(2)]
    for s in servers:
        await s.start()
    yield servers
    for s in servers:
        await s.stop()


def _without_ages(rows: Any) -> Any:
    """Status rows with the fields that move with the clock taken out."""
    if isinstance(rows, list):
        return [_without_ages(r) for r in rows]
    if isinstance(rows, dict):
        return {k: _without_ages(v) for k, v in rows.items()
                if k not in ("age_seconds", "duration_seconds")}
    return rows


@pytest.mark.parametrize("piece", [1, 20])
async def test_snapshot_says_what_status_says(
    tmp_path: Path, listeners: list[Tcp], piece: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lb_status, "STATUS_PIECE", piece)
    a, b = listeners
    config = make_config(tmp_path, [a.rs(5), b.rs(1)])
    backend = Recording()
    lb, notifier = await running(config, backend)
    try:
        await b.stop()
        await wait_until(lambda: backend.weights() == {a.name: 5})
        pieces = "".join(lb.status_pieces())  # no await between the two: same state
        status = lb.status()
        assert _without_ages(json.loads(pieces)) == _without_ages(status["virtual_servers"])
        table = lb.table
        assert table is not None
        want = [{**r, "active_conns": None, "inactive_conns": None}
                for r in ipvs_rows(to_json(table))]
        got = json.loads(await join_sliced(table_pieces(table)))
        assert got == want and [r["destination"] for r in got] == [a.name]
    finally:
        await lb.stop()
        await notifier.close()


async def test_snapshot_is_kept_fresh_and_shows_api_changes(
    tmp_path: Path, listeners: list[Tcp]
) -> None:
    a, b = listeners
    config = make_config(tmp_path, [a.rs(5), b.rs(1)])
    lb, notifier = await running(config, Recording())
    snapshots = StatusSnapshots(lb, max_age=0.2)
    try:
        await wait_until(lambda: lb.server_up(VS, b.name))
        first = await snapshots.latest()
        assert first.table_read_at is not None

        def up(text: str) -> dict[str, bool]:
            return {r["name"]: r["up"] for r in json.loads(text)[0]["real_servers"]}

        assert up(first.virtual_servers) == {a.name: True, b.name: True}
        await b.stop()
        await wait_until(lambda: not lb.server_up(VS, b.name))
        # Kept fresh while asked for: a later snapshot shows the change.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 3
        later = await snapshots.latest()

        def dests(text: str) -> list[str]:
            return [r["destination"] for r in json.loads(text)]

        while (up(later.virtual_servers)[b.name] or dests(later.ipvs) != [a.name]) \
                and loop.time() < deadline:
            await asyncio.sleep(0.05)
            later = await snapshots.latest()
        assert later.built_at > first.built_at
        assert up(later.virtual_servers) == {a.name: True, b.name: False}
        assert dests(later.ipvs) == [a.name]
        # A change made through the API: the next request waits for a snapshot after it.
        await lb.drain(VS, a.name)
        snapshots.invalidate()
        drained = await snapshots.latest()
        assert drained.built_at > later.built_at
        assert json.loads(drained.virtual_servers)[0]["real_servers"][0]["drained"] is True
    finally:
        await snapshots.close()
        await lb.stop()
        await notifier.close()


async def test_snapshots_are_handed_on_while_asked_for_then_let_go(
    tmp_path: Path, listeners: list[Tcp]
) -> None:
    a, b = listeners
    config = make_config(tmp_path, [a.rs(5), b.rs(1)])
    lb, notifier = await running(config, Recording())
    snapshots = StatusSnapshots(lb, max_age=0.1, wait_after=0.3, keep_warm=0.4)
    built: list[float] = []
    snapshots.on_built = lambda snap: built.append(snap.built_at)
    try:
        first = await snapshots.latest()
        await asyncio.sleep(0.35)
        # Built again while warm, each one handed on as it is built.
        assert len(built) >= 3 and built[0] == first.built_at
        assert built == sorted(built)
        # Nobody asks: after keep_warm and wait_after, nothing is built or kept.
        await asyncio.sleep(1.0)
        count = len(built)
        assert snapshots._latest is None
        await asyncio.sleep(0.3)
        assert len(built) == count
        # The next request waits for a new one, and warms up again.
        again = await snapshots.latest()
        assert again.built_at > built[-2] and len(built) == count + 1
    finally:
        await snapshots.close()
        await lb.stop()
        await notifier.close()


async def test_one_snapshot_is_built_when_the_api_starts_and_no_more_unasked(
    tmp_path: Path, listeners: list[Tcp]
) -> None:
    a, b = listeners
    config = make_config(tmp_path, [a.rs(5), b.rs(1)])
    lb, notifier = await running(config, Recording())
    snapshots = StatusSnapshots(lb, max_age=0.1, wait_after=0.3, keep_warm=0.4)
    built: list[float] = []
    snapshots.on_built = lambda snap: built.append(snap.built_at)
    try:
        snapshots.prime()
        await asyncio.sleep(0.2)
        # One built, and a first request within `wait_after` is answered with it.
        assert len(built) == 1
        assert snapshots._latest is not None and snapshots._latest.built_at == built[0]
        # Nobody asks: none more is built, and the one built is let go.
        await asyncio.sleep(0.6)
        assert len(built) == 1 and snapshots._latest is None
        # A request waits for a new one and warms up as before.
        again = await snapshots.latest()
        assert again.built_at > built[0]
    finally:
        await snapshots.close()
        await lb.stop()
        await notifier.close()
