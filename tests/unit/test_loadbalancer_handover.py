"""A restarted balancer's checks start as its predecessor handed them over (no dataplane).

Without a handover a real server starts up (or down, with alpha): a server that was down
would come up, and one with alpha that had come up would go down, each a flap and a
dataplane operation. `on_health` hears each server's checks' states as they change.
Real TCP checks on loopback: 127.0.0.2 listens, 127.0.0.1 and 127.0.0.3 refuse.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import yaml

from hacluster.config.loader import parse_config
from hacluster.config.model import Config
from hacluster.loadbalancer import Handed, LoadBalancer, servers_of


def config(port: int) -> Config:
    check = {"TCP_CHECK": {"connect_timeout": 1, "retry": 0}}
    doc = {
        "global_defs": {"dataplane": "none"},
        "virtual_servers": [{
            "ip": "10.0.0.1", "port": 80, "protocol": "TCP", "delay_loop": 0.2,
            "real_servers": [
                {"ip": "127.0.0.1", "port": 9, **check},
                {"ip": "127.0.0.2", "port": port, "alpha": True, **check},
                {"ip": "127.0.0.3", "port": 9, **check},
            ],
        }],
    }
    return parse_config(yaml.safe_dump(doc), "t.yaml")


async def test_handed_states_are_where_the_checks_start() -> None:
    listener = socket.create_server(("127.0.0.2", 0))
    port = listener.getsockname()[1]
    heard: list[tuple[str, str, Any]] = []
    vs = "10.0.0.1:80/TCP"
    handed = {
        (vs, "127.0.0.1:9"): Handed((False,), "TCP_CHECK: connection refused"),
        (vs, f"127.0.0.2:{port}"): Handed((True,), "TCP_CHECK: ok"),
        # 127.0.0.3 not handed: it never changed, so it starts as configured (up)
    }
    lb = LoadBalancer(config(port), None, handed=handed,
                      on_health=lambda v, rs, state: heard.append((v, rs, state)))
    await lb.start()
    try:
        rows = servers_of(lb.status())
        assert rows[f"{vs} 127.0.0.1:9"]["up"] is False
        assert rows[f"{vs} 127.0.0.2:{port}"]["up"] is True  # alpha, but it had come up
        entry = next(iter(lb.desired.entries.values()))
        assert "127.0.0.1" not in {str(d.address) for d in entry.destinations.values()}
        # 127.0.0.3 started up and its check takes it down: heard, ready to hand on.
        for _ in range(100):
            if any(rs == "127.0.0.3:9" for _, rs, _ in heard):
                break
            await asyncio.sleep(0.05)
        (change,) = [state for _, rs, state in heard if rs == "127.0.0.3:9"]
        assert change.ups == (False,)
        # The handed servers kept their states through their checks' runs: no flap.
        await asyncio.sleep(0.5)
        assert not [rs for _, rs, _ in heard if rs != "127.0.0.3:9"]
        assert lb.counters["real_server_up"] == 0
        assert lb.counters["real_server_down"] == 1
    finally:
        await lb.stop()
        listener.close()
