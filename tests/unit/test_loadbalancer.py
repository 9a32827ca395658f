"""LoadBalancer: real checks against real local servers, the memory backend, the real Notifier.

Every server here is a real listener on 127.0.0.1 started by the test (aiohttp for
HTTP_GET, asyncio for TCP_CHECK, /bin/sh for MISC_CHECK); notifications are read back
from the Notifier's JSON event log. Checks run every 0.1 s, so each test takes well
under two seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from ipaddress import IPv4Address, ip_address
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from hacluster.api import UnknownRealServer, UnknownVirtualServer
from hacluster.config.loader import parse_config
from hacluster.config.model import Config
from hacluster.ipvs.backend import (
    AddDest,
    AddService,
    ApplyResult,
    BackendError,
    DelDest,
    DelService,
    EditDest,
    Op,
    OpFailure,
)
from hacluster.ipvs.memory import MemoryBackend
from hacluster.ipvs.model import Destination, DestKey, Protocol, Service, ServiceKey, Table
from hacluster.loadbalancer import LoadBalancer, LoadBalancerError, servers_of
from hacluster.metrics import Metrics
from hacluster.notify import Notifier

VIP = "10.99.0.100"
VS = f"{VIP}:80/TCP"
SKEY = ServiceKey(4, Protocol.TCP, IPv4Address(VIP), 80)
FAST = {"delay_loop": 0.1, "connect_timeout": 0.5, "retry": 0, "delay_before_retry": 0.05,
        "warmup": 0}
MISC_FAST = {k: v for k, v in FAST.items() if k != "connect_timeout"}
LOCAL = IPv4Address("127.0.0.1")


class Web:
    """A real HTTP server on 127.0.0.1: GET /health answers `status`."""

    def __init__(self) -> None:
        self.status = 200
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def health(_: web.Request) -> web.Response:
            return web.Response(status=self.status, text="ok\n")

        app = web.Application()
        app.router.add_get("/health", health)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True).start()
        self.port = runner.addresses[0][1]
        self._runner = runner

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def name(self) -> str:
        return f"127.0.0.1:{self.port}"

    def rs(self, weight: int = 1, **extra: Any) -> dict[str, Any]:
        return {"ip": "127.0.0.1", "port": self.port, "weight": weight,
                "HTTP_GET": {"url": [{"path": "/health"}], **FAST}, **extra}


class Tcp:
    """A real TCP listener on 127.0.0.1 that can be closed (refused) and reopened."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        async def handle(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.close()

        self._server = await asyncio.start_server(handle, "127.0.0.1", self.port,
                                                  reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def name(self) -> str:
        return f"127.0.0.1:{self.port}"

    def rs(self, weight: int = 1, **extra: Any) -> dict[str, Any]:
        return {"ip": "127.0.0.1", "port": self.port, "weight": weight,
                "TCP_CHECK": dict(FAST), **extra}


class Recording(MemoryBackend):
    """The memory backend, keeping every batch of operations it was given."""

    def __init__(self, table: Table | None = None) -> None:
        super().__init__(table)
        self.batches: list[list[Op]] = []
        self.fail_dump: str | None = None

    async def dump(self) -> Table:
        if self.fail_dump is not None:
            raise BackendError(self.fail_dump)
        return await super().dump()

    async def apply(self, ops: Sequence[Op]) -> ApplyResult:
        self.batches.append(list(ops))
        return await super().apply(ops)

    def ops(self) -> list[Op]:
        return [op for batch in self.batches for op in batch]

    def weights(self, key: ServiceKey = SKEY) -> dict[str, int]:
        entry = self.table.entries.get(key)
        if entry is None:
            return {}
        return {str(k): d.weight for k, d in entry.destinations.items()}


def make_config(
    tmp_path: Path,
    real_servers: list[dict[str, Any]],
    vs: dict[str, Any] | None = None,
    global_defs: dict[str, Any] | None = None,
    extra_vs: list[dict[str, Any]] | None = None,
) -> Config:
    doc = {
        "global_defs": {"dataplane": "none", "event_log": str(tmp_path / "events.jsonl"),
                        **(global_defs or {})},
        "virtual_servers": [
            {"ip": VIP, "port": 80, "protocol": "TCP", "lb_algo": "wrr", "lb_kind": "NAT",
             "real_servers": real_servers, **(vs or {})},
            *(extra_vs or []),
        ],
    }
    return parse_config(yaml.safe_dump(doc, sort_keys=False), "test.yaml")


def events(tmp_path: Path) -> list[tuple[str, str, str]]:
    path = tmp_path / "events.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        e = json.loads(line)
        out.append((e["kind"], e["name"], e["state"]))
    return out


async def wait_until(pred: Callable[[], object], timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def webs() -> AsyncIterator[list[Web]]:
    servers = [Web() for _ in range(4)]
    for s in servers:
        await s.start()
    yield servers
    for s in servers:
        await s.stop()


@pytest.fixture
async def tcps() -> AsyncIterator[list[Tcp]]:
    servers = [Tcp() for _ in range(2)]
    for s in servers:
        await s.start()
    yield servers
    for s in servers:
        await s.stop()


async def running(
    config: Config, backend: Recording | None, **kwargs: Any
) -> tuple[LoadBalancer, Notifier]:
    notifier = Notifier(config)
    lb = LoadBalancer(config, backend, notifier, **kwargs)
    await lb.start()
    return lb, notifier


# --------------------------------------------------------------------------- health


async def test_server_down_is_removed_and_comes_back(tmp_path: Path, webs: list[Web]) -> None:
    a, b = webs[0], webs[1]
    config = make_config(tmp_path, [a.rs(3), b.rs(2)])
    backend = Recording()
    lb, notifier = await running(config, backend)
    try:
        assert backend.weights() == {a.name: 3, b.name: 2}
        # Up from the start, so never changed: its reason is its checks', once they ran.
        await wait_until(lambda: servers_of(lb.status())[f"{VS} {b.name}"]["checks"][0]
                         ["age_seconds"] is not None)
        row = servers_of(lb.status())[f"{VS} {b.name}"]
        print(row)
        assert row["up"] is True and row["reason"] == f"HTTP_GET: {row['checks'][0]['reason']}"
        assert "not checked yet" not in row["reason"]
        a.status = 503
        await wait_until(lambda: a.name not in backend.weights())
        assert backend.weights() == {b.name: 2}
        row = servers_of(lb.status())[f"{VS} {a.name}"]
        assert row["up"] is False and row["effective_weight"] is None
        assert "503" in row["checks"][0]["reason"]
        a.status = 200
        await wait_until(lambda: backend.weights() == {a.name: 3, b.name: 2})
        row = servers_of(lb.status())[f"{VS} {a.name}"]
        assert row["up"] is True and row["effective_weight"] == 3
        assert row["checks"][0]["ok"] is True and row["checks"][0]["age_seconds"] is not None
        # The whole server going away (refused) takes it out too.
        await b.stop()
        await wait_until(lambda: b.name not in backend.weights())
        assert "refused" in servers_of(lb.status())[f"{VS} {b.name}"]["reason"]
    finally:
        await lb.stop()
        await notifier.close()
    rs_events = [e for e in events(tmp_path) if e[0] == "real_server"]
    assert rs_events == [
        ("real_server", f"{a.name} of {VS}", "DOWN"),
        ("real_server", f"{a.name} of {VS}", "UP"),
        ("real_server", f"{b.name} of {VS}", "DOWN"),
    ]


async def test_inhibit_on_failure_keeps_weight_zero(tmp_path: Path, tcps: list[Tcp]) -> None:
    a, b = tcps
    config = make_config(tmp_path, [a.rs(5, inhibit_on_failure=True), b.rs(1)])
    backend = Recording()
    lb, notifier = await running(config, backend)
    try:
        assert backend.weights() == {a.name: 5, b.name: 1}
        await a.stop()
        await wait_until(lambda: backend.weights().get(a.name) == 0)
        # Weight 0 is an edit of the destination, never a delete (connections survive).
        assert not any(isinstance(op, DelDest) for op in backend.ops())
        await a.start()
        await wait_until(lambda: backend.weights().get(a.name) == 5)
        assert [type(op) for op in backend.ops()[-1:]] == [EditDest]
    finally:
        await lb.stop()
        await notifier.close()


async def test_quorum_and_sorry_server_notify_in_order(tmp_path: Path, webs: list[Web]) -> None:
    a, b = webs[0], webs[1]
    config = make_config(tmp_path, [a.rs(1), b.rs(1)],
                         vs={"quorum": 2, "sorry_server": "192.0.2.9:8080"})
    backend = Recording()
    lb, notifier = await running(config, backend)
    try:
        assert backend.weights() == {a.name: 1, b.name: 1}
        a.status = 500
        await wait_until(lambda: backend.weights() == {"192.0.2.9:8080": 1})
        vs_row = lb.status()["virtual_servers"][0]
        assert vs_row["quorum_up"] is False and vs_row["sorry_server_active"] is True
        a.status = 200
        await wait_until(lambda: backend.weights() == {a.name: 1, b.name: 1})
        assert lb.status()["virtual_servers"][0]["sorry_server_active"] is False
    finally:
        await lb.stop()
        await notifier.close()
    assert events(tmp_path) == [
        ("quorum", VS, "UP"),  # the initial state
        ("real_server", f"{a.name} of {VS}", "DOWN"),
        ("quorum", VS, "DOWN"),
        ("real_server", f"{a.name} of {VS}", "UP"),
        ("quorum", VS, "UP"),
    ]


async def test_misc_dynamic_weight_and_alpha(tmp_path: Path, tcps: list[Tcp]) -> None:
    script = tmp_path / "weight.sh"
    script.write_text("#!/bin/sh\nexit \"$(cat \"$0.code\")\"\n")
    script.chmod(0o755)
    (tmp_path / "weight.sh.code").write_text("9\n")
    misc = {"ip": "127.0.0.2", "port": 80, "weight": 1, "alpha": True,
            "MISC_CHECK": {"misc_path": str(script), "misc_dynamic": True, **MISC_FAST}}
    config = make_config(tmp_path, [misc, tcps[0].rs(1)])
    backend = Recording()
    lb, notifier = await running(config, backend, reconcile_interval=60)
    try:
        # alpha: not in the table until its first check passed; then exit 9 -> weight 7.
        assert "127.0.0.2:80" not in backend.weights()
        await wait_until(lambda: backend.weights().get("127.0.0.2:80") == 7)
        (tmp_path / "weight.sh.code").write_text("4\n")
        await wait_until(lambda: backend.weights().get("127.0.0.2:80") == 2)
        (tmp_path / "weight.sh.code").write_text("1\n")
        await wait_until(lambda: "127.0.0.2:80" not in backend.weights())
        assert servers_of(lb.status())[f"{VS} 127.0.0.2:80"]["reason"] == "MISC_CHECK: exit 1"
    finally:
        await lb.stop()
        await notifier.close()
    names = [(e[1].split()[0], e[2]) for e in events(tmp_path) if e[0] == "real_server"]
    assert names == [("127.0.0.2:80", "UP"), ("127.0.0.2:80", "DOWN")]


async def test_periodic_passes_that_find_all_as_it_was_leave_the_gauges(
    tmp_path: Path, tcps: list[Tcp]
) -> None:
    """10,000 real servers' gauges are not set again by every periodic pass that read
    back the same table; a health change or a repaired drift still sets them."""
    a, b = tcps
    config = make_config(tmp_path, [a.rs(2), b.rs(1)])
    backend = Recording()
    metrics = Metrics(process=False)
    sets: list[tuple[str, bool, int]] = []
    real_server = metrics.real_server

    def counted(vs: str, rs: str, *, up: bool, weight: int) -> None:
        sets.append((rs, up, weight))
        real_server(vs, rs, up=up, weight=weight)

    metrics.real_server = counted  # type: ignore[method-assign]
    lb = LoadBalancer(config, backend, None, metrics=metrics, reconcile_interval=0.05)
    await lb.start()
    get = metrics.registry.get_sample_value
    try:
        await wait_until(lambda: backend.weights() == {a.name: 2, b.name: 1})
        passes = lb.counters["reconciles"]
        await wait_until(lambda: lb.counters["reconciles"] >= passes + 2)
        sets.clear()
        await wait_until(lambda: lb.counters["reconciles"] >= passes + 5)
        assert sets == []
        await b.stop()
        await wait_until(lambda: b.name not in backend.weights())
        assert get("hacluster_real_server_up",
                   {"virtual_server": VS, "real_server": b.name}) == 0
        assert (b.name, False, 0) in sets
        # Drift: the dataplane changed by hand is put right, and the gauges set again.
        sets.clear()
        await MemoryBackend.apply(backend, [EditDest(SKEY, Destination(LOCAL, a.port, 9))])
        await wait_until(lambda: backend.weights() == {a.name: 2})
        await wait_until(lambda: (a.name, True, 2) in sets)
        labels = {"virtual_server": VS, "real_server": a.name}
        assert get("hacluster_real_server_weight", labels) == 2
    finally:
        await lb.stop()


async def test_metrics_count_checks_and_servers(tmp_path: Path, tcps: list[Tcp]) -> None:
    a, b = tcps
    config = make_config(tmp_path, [a.rs(2), b.rs(1)])
    backend = Recording()
    metrics = Metrics(process=False)
    lb = LoadBalancer(config, backend, None, metrics=metrics)
    await lb.start()
    try:
        await b.stop()
        await wait_until(lambda: b.name not in backend.weights())
        get = metrics.registry.get_sample_value
        assert (get("hacluster_checks_total", {"checker": "TCP_CHECK", "result": "success"})
                or 0) >= 1
        assert (get("hacluster_checks_total", {"checker": "TCP_CHECK", "result": "failure"})
                or 0) >= 1
        labels = {"virtual_server": VS, "real_server": a.name}
        assert get("hacluster_real_server_up", labels) == 1
        assert get("hacluster_real_server_weight", labels) == 2
        labels["real_server"] = b.name
        assert get("hacluster_real_server_up", labels) == 0
        assert (get("hacluster_dataplane_operations_total",
                    {"backend": "memory", "op": "del_dest"}) or 0) == 1
    finally:
        await lb.stop()


# --------------------------------------------------------------------------- drain


async def test_drain_sets_weight_zero_and_survives_reload(tmp_path: Path, webs: list[Web]) -> None:
    a, b = webs[0], webs[1]
    config = make_config(tmp_path, [a.rs(3), b.rs(2)])
    backend = Recording()
    lb, notifier = await running(config, backend)
    try:
        await lb.drain(f"{VIP}:80", a.name)  # the API's short spelling: TCP implied
        assert backend.weights() == {a.name: 0, b.name: 2}
        assert lb.drained(VS, a.name) and lb.server_up(VS, a.name)
        assert servers_of(lb.status())[f"{VS} {a.name}"]["drained"] is True
        # A reload that changes the weights keeps the drain.
        await lb.reconfigure(make_config(tmp_path, [a.rs(4), b.rs(1)]))
        assert backend.weights() == {a.name: 0, b.name: 1}
        # The periodic pass does not undo it either.
        await lb.reconcile("periodic")
        assert backend.weights() == {a.name: 0, b.name: 1}
        await lb.undrain(VS, a.name)
        assert backend.weights() == {a.name: 4, b.name: 1}
        with pytest.raises(UnknownRealServer):
            await lb.drain(VS, "127.0.0.1:1")
        with pytest.raises(UnknownVirtualServer):
            await lb.drain("10.1.1.1:80", a.name)
    finally:
        await lb.stop()
        await notifier.close()


# --------------------------------------------------------------------------- reload


def _touches(op: Op, name: str) -> bool:
    match op:
        case AddDest(dest=d) | EditDest(dest=d):
            return str(d.key) == name
        case DelDest(key=k):
            return str(k) == name
    return False


async def test_reload_touches_only_what_changed(tmp_path: Path, webs: list[Web]) -> None:
    a, b, c, d = webs
    c.status = 503  # c is down before the reload and must stay down (no flap)
    old = make_config(tmp_path, [a.rs(1), b.rs(1), c.rs(1)])
    backend = Recording()
    lb, notifier = await running(old, backend)
    try:
        await wait_until(lambda: c.name not in backend.weights())
        runs_before = servers_of(lb.status())[f"{VS} {a.name}"]["checks"][0]["runs"]
        assert runs_before >= 1
        batches = len(backend.batches)
        slower = {**FAST, "connect_timeout": 0.4}
        c_changed = {**c.rs(1), "HTTP_GET": {"url": [{"path": "/health"}], **slower}}
        new = make_config(tmp_path, [a.rs(1), b.rs(5), c_changed, d.rs(2)])
        await lb.reconfigure(new)
        reload_ops = [op for batch in backend.batches[batches:] for op in batch]
        assert not [op for op in reload_ops if _touches(op, a.name)]  # unchanged: untouched
        assert not [op for op in reload_ops if _touches(op, c.name)]  # down, still down
        assert [type(op) for op in reload_ops if _touches(op, b.name)] == [EditDest]
        assert [type(op) for op in reload_ops if _touches(op, d.name)] == [AddDest]
        assert backend.weights() == {a.name: 1, b.name: 5, d.name: 2}
        # a's check kept running (its run count continues); c's check was replaced.
        await asyncio.sleep(0.25)
        status = servers_of(lb.status())
        assert status[f"{VS} {a.name}"]["checks"][0]["runs"] > runs_before
        assert status[f"{VS} {c.name}"]["up"] is False
        # A real server removed from the configuration leaves the table.
        await lb.reconfigure(make_config(tmp_path, [a.rs(1), d.rs(2)]))
        assert backend.weights() == {a.name: 1, d.name: 2}
        assert [type(op) for op in backend.batches[-1]] == [DelDest]
    finally:
        await lb.stop()
        await notifier.close()
    assert [e for e in events(tmp_path) if e[0] == "real_server"] == [
        ("real_server", f"{c.name} of {VS}", "DOWN"),
    ]


async def test_reload_adds_and_removes_virtual_servers(tmp_path: Path, tcps: list[Tcp]) -> None:
    a, b = tcps
    other = {"ip": "10.99.0.101", "port": 443, "protocol": "TCP", "lb_algo": "rr",
             "real_servers": [b.rs(1)]}
    config = make_config(tmp_path, [a.rs(1)])
    backend = Recording()
    lb, notifier = await running(config, backend)
    try:
        await lb.reconfigure(make_config(tmp_path, [a.rs(1)], extra_vs=[other]))
        key2 = ServiceKey(4, Protocol.TCP, IPv4Address("10.99.0.101"), 443)
        assert backend.weights(key2) == {b.name: 1}
        assert [type(op) for op in backend.batches[-1]] == [AddService, AddDest]
        # Scheduler change: one edit of the service, destinations untouched.
        await lb.reconfigure(make_config(tmp_path, [a.rs(1)], vs={"lb_algo": "rr"},
                                         extra_vs=[other]))
        assert [type(op).__name__ for op in backend.batches[-1]] == ["EditService"]
        await lb.reconfigure(make_config(tmp_path, [a.rs(1)], vs={"lb_algo": "rr"}))
        assert key2 not in backend.table.entries
        assert backend.batches[-1] == [DelService(key2)]
    finally:
        await lb.stop()
        await notifier.close()


async def test_bad_reload_is_refused_and_nothing_changes(tmp_path: Path, tcps: list[Tcp]) -> None:
    a, b = tcps
    config = make_config(tmp_path, [a.rs(1), b.rs(1)])
    backend = Recording()
    lb, notifier = await running(config, backend)
    try:
        bad = make_config(tmp_path, [a.rs(1), {"ip": "127.0.0.9", "port": 1, "MISC_CHECK": {
            "misc_path": "/nonexistent/probe --flag", **MISC_FAST}}])
        with pytest.raises(LoadBalancerError, match="nonexistent"):
            await lb.reconfigure(bad)
        assert lb.config is config
        assert backend.weights() == {a.name: 1, b.name: 1}
    finally:
        await lb.stop()
        await notifier.close()


# --------------------------------------------------------------------------- reconcile


async def test_periodic_reconcile_repairs_drift(tmp_path: Path, tcps: list[Tcp]) -> None:
    a, b = tcps
    config = make_config(tmp_path, [a.rs(3), b.rs(2)],
                         global_defs={"reconcile_interval": 0.2})
    backend = Recording()
    lb, notifier = await running(config, backend)
    foreign = Service(Protocol.UDP, ip_address("10.50.0.1"), 53)
    try:
        assert backend.weights() == {a.name: 3, b.name: 2}
        # Someone types ipvsadm: deletes a, changes b's weight, adds a stranger to our
        # service, and adds a service of their own.
        await MemoryBackend.apply(backend, [
            DelDest(SKEY, DestKey(LOCAL, a.port)),
            EditDest(SKEY, Destination(LOCAL, b.port, 9)),
            AddDest(SKEY, Destination(ip_address("192.0.2.1"), 80, 1)),
            AddService(foreign),
        ])
        await wait_until(lambda: backend.weights() == {a.name: 3, b.name: 2}, timeout=2)
        assert foreign.key in backend.table.entries  # not ours: left alone
        assert lb.counters["reconciles"] >= 2
    finally:
        await lb.stop(flush=True)
        await notifier.close()
    # Flushing at stop removes our service and leaves the stranger's.
    assert list(backend.table.entries) == [foreign.key]


async def test_restart_after_crash_duplicates_nothing(tmp_path: Path, tcps: list[Tcp]) -> None:
    a, b = tcps
    config = make_config(tmp_path, [a.rs(3), b.rs(2)])
    # What the crashed run left: our service with a, b, and a server since removed.
    leftover = Table.of([(Service(Protocol.TCP, IPv4Address(VIP), 80, scheduler="wrr"), [
        Destination(LOCAL, a.port, 3), Destination(LOCAL, b.port, 2),
        Destination(ip_address("192.0.2.7"), 80, 1),
    ])])
    backend = Recording(leftover)
    lb, notifier = await running(config, backend)
    try:
        assert backend.ops() == [DelDest(SKEY, DestKey(ip_address("192.0.2.7"), 80))]
        assert backend.weights() == {a.name: 3, b.name: 2}
    finally:
        await lb.stop(flush=False)
        await notifier.close()
    assert backend.weights() == {a.name: 3, b.name: 2}  # left as configured


async def test_lvs_flush_at_start_owns_the_whole_table(tmp_path: Path, tcps: list[Tcp]) -> None:
    foreign = Service(Protocol.UDP, ip_address("10.50.0.1"), 53)
    backend = Recording(Table.of([(foreign, [])]))
    config = make_config(tmp_path, [tcps[0].rs(1)], global_defs={"lvs_flush": True,
                                                                 "lvs_flush_on_stop": True})
    lb, notifier = await running(config, backend)
    try:
        assert list(backend.table.entries) == [SKEY]
    finally:
        await lb.stop()  # lvs_flush_on_stop from the config
        await notifier.close()
    assert len(backend.table) == 0


async def test_burst_of_changes_is_one_reconcile(tmp_path: Path, tcps: list[Tcp]) -> None:
    config = make_config(tmp_path, [tcps[0].rs(1)])
    lb = LoadBalancer(config, Recording(), None, reconcile_interval=60, coalesce=0.05)
    await lb.start()
    try:
        await asyncio.sleep(0.3)  # let the first checks settle
        before = lb.counters["reconciles"]
        for _ in range(50):
            lb.request_reconcile()
            await asyncio.sleep(0)
        await asyncio.sleep(0.3)
        assert lb.counters["reconciles"] == before + 1
    finally:
        await lb.stop()


async def test_backend_errors_are_logged_and_counted(
    tmp_path: Path, tcps: list[Tcp], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = tcps
    config = make_config(tmp_path, [a.rs(1), b.rs(1)], global_defs={"reconcile_interval": 0.1})
    backend = Recording()
    backend.fail_dump = "netlink socket closed"
    caplog.set_level(logging.INFO, logger="hacluster.loadbalancer")
    lb, notifier = await running(config, backend)
    try:
        assert len(backend.table) == 0
        await wait_until(lambda: lb.counters["backend_errors"] >= 3)
        assert lb.status()["dataplane_error"] == "netlink socket closed"
        # Logged once per outage, not once per pass.
        assert sum("netlink socket closed" in r.getMessage() for r in caplog.records) == 1
        backend.fail_dump = None
        await wait_until(lambda: backend.weights() == {a.name: 1, b.name: 1})
        assert lb.status()["dataplane_error"] is None
    finally:
        await lb.stop()
        await notifier.close()


async def test_refused_operations_name_the_service(
    tmp_path: Path, tcps: list[Tcp], caplog: pytest.LogCaptureFixture
) -> None:
    class Refusing(Recording):
        async def apply(self, ops: Sequence[Op]) -> ApplyResult:
            self.batches.append(list(ops))
            failed = tuple(OpFailure(op, "Invalid argument") for op in ops
                           if isinstance(op, AddDest) and op.dest.port == tcps[1].port)
            good = [op for op in ops if all(op is not f.op for f in failed)]
            await MemoryBackend.apply(self, good)
            return ApplyResult(len(good), failed)

    a, b = tcps
    config = make_config(tmp_path, [a.rs(1), b.rs(1)], global_defs={"reconcile_interval": 0.1})
    backend = Refusing()
    caplog.set_level(logging.INFO, logger="hacluster.loadbalancer")
    lb = LoadBalancer(config, backend, None)
    await lb.start()
    try:
        await wait_until(lambda: len(backend.batches) >= 3)  # retried on every pass
        assert backend.weights() == {a.name: 1}
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1  # the same failure is logged once
        assert str(SKEY) in errors[0] and "Invalid argument" in errors[0]
        assert lb.counters["op_errors"] >= 3
    finally:
        await lb.stop()


async def test_no_dataplane_still_checks_and_notifies(tmp_path: Path, tcps: list[Tcp]) -> None:
    a, b = tcps
    config = make_config(tmp_path, [a.rs(1), b.rs(1)])
    lb, notifier = await running(config, None)
    try:
        await b.stop()
        await wait_until(lambda: not lb.server_up(VS, b.name))
        assert lb.status()["dataplane"] == "none"
        assert await lb.ipvs() == {"services": []}
    finally:
        await lb.stop()
        await notifier.close()
    assert ("real_server", f"{b.name} of {VS}", "DOWN") in events(tmp_path)


async def test_omega_reports_down_at_removal_and_stop(tmp_path: Path, tcps: list[Tcp]) -> None:
    a, b = tcps
    config = make_config(tmp_path, [a.rs(1), b.rs(1)], vs={"omega": True})
    lb, notifier = await running(config, Recording())
    try:
        await lb.reconfigure(make_config(tmp_path, [a.rs(1)], vs={"omega": True}))
    finally:
        await lb.stop()
        await notifier.close()
    assert events(tmp_path) == [
        ("quorum", VS, "UP"),
        ("real_server", f"{b.name} of {VS}", "DOWN"),  # removed by the reload
        ("real_server", f"{a.name} of {VS}", "DOWN"),  # at stop
        ("quorum", VS, "DOWN"),
    ]


async def test_changed_check_of_a_live_server_does_not_flap(
    tmp_path: Path, webs: list[Web]
) -> None:
    a = webs[0]
    config = make_config(tmp_path, [a.rs(2, alpha=True)])
    backend = Recording()
    lb, notifier = await running(config, backend)
    try:
        await wait_until(lambda: backend.weights() == {a.name: 2})  # alpha: after a pass
        batches = len(backend.batches)
        # Same server, different check (alpha, still set, must not take it down again).
        other = {**a.rs(2, alpha=True), "HTTP_GET": {"url": [{"path": "/health"}],
                                                     **FAST, "connect_timeout": 0.3}}
        await lb.reconfigure(make_config(tmp_path, [other]))
        await asyncio.sleep(0.3)
        assert backend.batches[batches:] == []
        assert lb.server_up(VS, a.name)
        assert servers_of(lb.status())[f"{VS} {a.name}"]["checks"][0]["runs"] >= 1
    finally:
        await lb.stop()
        await notifier.close()
    assert [e for e in events(tmp_path) if e[0] == "real_server"] == [
        ("real_server", f"{a.name} of {VS}", "UP"),
    ]


async def test_partial_pass_on_a_stale_table_falls_back_to_a_full_one(
    tmp_path: Path, tcps: list[Tcp], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = tcps
    config = make_config(tmp_path, [a.rs(1), b.rs(1)])
    backend = Recording()
    lb, notifier = await running(config, backend, reconcile_interval=60)
    try:
        # Someone deletes our whole service by hand; the next periodic pass is a minute away.
        await MemoryBackend.apply(backend, [DelService(SKEY)])
        await b.stop()  # a health change: its partial pass is refused (no such service)...
        # ...and a full pass at once puts the service back, without b.
        await wait_until(lambda: backend.weights() == {a.name: 1})
        assert any("no such service" in r.getMessage() for r in caplog.records)
        full_passes = [batch for batch in backend.batches if isinstance(batch[0], AddService)]
        assert len(full_passes) == 2  # the start, and the repair
    finally:
        await lb.stop()
        await notifier.close()


async def test_reload_before_start_and_start_once(tmp_path: Path, tcps: list[Tcp]) -> None:
    a, b = tcps
    backend = Recording()
    lb = LoadBalancer(make_config(tmp_path, [a.rs(1)]), backend, None)
    await lb.reconfigure(make_config(tmp_path, [a.rs(1), b.rs(4)]))
    await lb.start()
    try:
        assert backend.weights() == {a.name: 1, b.name: 4}
    finally:
        await lb.stop()
    with pytest.raises(RuntimeError, match="starts once"):
        await lb.start()


def test_backend_for_follows_the_dataplane_setting(tmp_path: Path) -> None:
    from hacluster.ipvs.nftables import NftablesBackend
    from hacluster.loadbalancer import backend_for

    assert backend_for(make_config(tmp_path, [])) is None  # dataplane: none
    nft = backend_for(make_config(tmp_path, [], global_defs={"dataplane": "nftables"}))
    assert isinstance(nft, NftablesBackend) and nft.name == "nftables"


async def test_a_notifier_set_later_reports_the_changes_from_then_on(
    tmp_path: Path, tcps: list[Tcp]
) -> None:
    a, b = tcps
    config = make_config(tmp_path, [a.rs(1), b.rs(1)])
    lb = LoadBalancer(config, Recording(), None)  # a reload may bring notify scripts later
    notifier = Notifier(config)
    await lb.start()
    try:
        await b.stop()
        await wait_until(lambda: not lb.server_up(VS, b.name))
        lb.set_notifier(notifier)
        await b.start()  # the same port again
        await wait_until(lambda: lb.server_up(VS, b.name))
        lb.set_notifier(None)
        await a.stop()
        await wait_until(lambda: not lb.server_up(VS, a.name))
    finally:
        await lb.stop()
        await notifier.close()
    assert events(tmp_path) == [("real_server", f"{b.name} of {VS}", "UP")]
