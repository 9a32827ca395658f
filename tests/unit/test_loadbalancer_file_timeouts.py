"""FILE_CHECK and lvs_timeouts through the LoadBalancer: real files, the memory backend."""

from __future__ import annotations

from pathlib import Path

import yaml

from hacluster.config.loader import parse_config
from hacluster.config.model import Config
from hacluster.ipvs.model import Timeouts
from tests.unit.test_loadbalancer import Recording, events, running, wait_until

VIP = "10.99.0.100"


def config(tmp_path: Path, file_check: dict[str, object], **global_defs: object) -> Config:
    doc = {
        "global_defs": {"dataplane": "none", "event_log": str(tmp_path / "events.jsonl"),
                        **global_defs},
        "vrrp_track_files": {"maint": {"file": str(tmp_path / "maint"), "weight": 2}},
        "virtual_servers": [{
            "ip": VIP, "port": 80, "protocol": "TCP", "lb_algo": "wrr",
            "real_servers": [
                {"ip": "10.0.0.11", "port": 80, "weight": 10,
                 "FILE_CHECK": {"track_file": "maint", "delay_loop": 0.05, **file_check}},
                {"ip": "10.0.0.12", "port": 80, "weight": 10},
            ],
        }],
    }
    return parse_config(yaml.safe_dump(doc, sort_keys=False), "test.yaml")


async def test_file_check_weight_follows_the_file(tmp_path: Path) -> None:
    path = tmp_path / "maint"
    path.write_text("0\n")
    backend = Recording()
    lb, _ = await running(config(tmp_path, {}), backend)
    try:
        await wait_until(lambda: backend.weights() == {"10.0.0.11:80": 10, "10.0.0.12:80": 10})
        path.write_text("3\n")  # the track file's own weight 2: 10 + 3 x 2
        await wait_until(lambda: backend.weights().get("10.0.0.11:80") == 16)
        path.write_text("-20\n")  # never below 0
        await wait_until(lambda: backend.weights().get("10.0.0.11:80") == 0)
    finally:
        await lb.stop()


async def test_file_check_weight_zero_takes_the_server_out(tmp_path: Path) -> None:
    path = tmp_path / "maint"
    backend = Recording()
    lb, notifier = await running(config(tmp_path, {"weight": 0}), backend)
    try:
        await wait_until(lambda: "10.0.0.11:80" in backend.weights())
        path.write_text("1\n")
        await wait_until(lambda: "10.0.0.11:80" not in backend.weights())
        await notifier.drain()
        assert ("real_server", f"10.0.0.11:80 of {VIP}:80/TCP", "DOWN") in events(tmp_path)
        path.unlink()  # a missing file reads as 0: up again
        await wait_until(lambda: backend.weights().get("10.0.0.11:80") == 10)
    finally:
        await lb.stop()


async def test_lvs_timeouts_are_applied_at_start_and_on_reload(tmp_path: Path) -> None:
    backend = Recording()
    first = config(tmp_path, {}, lvs_timeouts={"tcp": 7200, "udp": 60})
    lb, _ = await running(first, backend)
    try:
        assert backend.timeouts == Timeouts(7200, 120, 60)  # tcpfin kept
        await lb.reconfigure(config(tmp_path, {}, lvs_timeouts={"tcpfin": 30}))
        assert backend.timeouts == Timeouts(7200, 30, 60)
    finally:
        await lb.stop()
