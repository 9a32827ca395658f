"""The balancer's reload plan carried out by the LoadBalancer, with real local listeners.

Real listeners on 127.0.0.1, the memory backend, notifications read back from the event log.
"""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address
from pathlib import Path

from hacluster.ipvs.model import Protocol, ServiceKey
from hacluster.loadbalancer import servers_of
from tests.unit.test_loadbalancer import (
    VS,
    Recording,
    Tcp,
    Web,
    events,
    make_config,
    running,
    tcps,  # noqa: F401  (fixture)
    wait_until,
    webs,  # noqa: F401  (fixture)
)

OTHER = ServiceKey(4, Protocol.TCP, IPv4Address("10.99.0.101"), 443)
OTHER_VS = "10.99.0.101:443/TCP"


def other(*real_servers: dict[str, object]) -> dict[str, object]:
    return {"ip": "10.99.0.101", "port": 443, "protocol": "TCP", "lb_algo": "rr",
            "real_servers": list(real_servers)}


async def test_a_down_server_moved_to_another_service_stays_down(
    tmp_path: Path, webs: list[Web]  # noqa: F811
) -> None:
    a, b, c, _ = webs
    c.status = 503
    old = make_config(tmp_path, [a.rs(1), c.rs(1)], extra_vs=[other(b.rs(1))])
    backend = Recording()
    lb, notifier = await running(old, backend)
    try:
        await wait_until(lambda: c.name not in backend.weights())
        runs = servers_of(lb.status())[f"{OTHER_VS} {b.name}"]["checks"][0]["runs"]
        batches = len(backend.batches)
        await lb.reconfigure(make_config(tmp_path, [a.rs(1)], extra_vs=[other(b.rs(1), c.rs(1))]))
        await asyncio.sleep(0.3)  # its checks run in the new service meanwhile: still down
        reload_ops = [op for batch in backend.batches[batches:] for op in batch]
        assert reload_ops == [], reload_ops  # it was in neither table: nothing to do
        status = servers_of(lb.status())
        assert status[f"{OTHER_VS} {c.name}"]["up"] is False
        assert f"{VS} {c.name}" not in status
        assert backend.weights(OTHER) == {b.name: 1}
        # b, untouched, kept its check running
        assert status[f"{OTHER_VS} {b.name}"]["checks"][0]["runs"] > runs
        c.status = 200
        await wait_until(lambda: backend.weights(OTHER) == {b.name: 1, c.name: 1})
    finally:
        await lb.stop()
        await notifier.close()
    # One DOWN at the start and one UP once it answers: the move itself is no news.
    assert [e for e in events(tmp_path) if e[0] == "real_server"] == [
        ("real_server", f"{c.name} of {VS}", "DOWN"),
        ("real_server", f"{c.name} of {OTHER_VS}", "UP"),
    ]


async def test_a_scheduler_change_edits_one_service_and_restarts_no_check(
    tmp_path: Path, tcps: list[Tcp]  # noqa: F811
) -> None:
    a, b = tcps
    old = make_config(tmp_path, [a.rs(1)], extra_vs=[other(b.rs(1))])
    backend = Recording()
    lb, notifier = await running(old, backend)
    try:
        await wait_until(lambda: backend.weights(OTHER) == {b.name: 1})
        await asyncio.sleep(0.25)
        runs = {k: r["checks"][0]["runs"] for k, r in servers_of(lb.status()).items()}
        assert all(runs.values())
        batches = len(backend.batches)
        await lb.reconfigure(make_config(tmp_path, [a.rs(1)], vs={"lb_algo": "rr"},
                                         extra_vs=[other(b.rs(1))]))
        reload_ops = [op for batch in backend.batches[batches:] for op in batch]
        assert [(type(op).__name__, str(op.service.key.port)) for op in reload_ops] == [
            ("EditService", "80")]
        # every check kept running: a restarted one would count its runs from 0 again
        after = {k: r["checks"][0]["runs"] for k, r in servers_of(lb.status()).items()}
        assert after.keys() == runs.keys()
        assert all(after[k] >= runs[k] for k in runs), (runs, after)
    finally:
        await lb.stop()
        await notifier.close()
