"""fifo_write_vrrp_states_on_reload: the lines written after a reload (instances in file
order, then sync groups), and the keyword in the loader and import. The daemon doing it
on SIGHUP: tests/integration/test_alerts.py."""

from __future__ import annotations

from hacluster.alert_outputs import state_events
from hacluster.alerts import fifo_line
from hacluster.config.keepalived_import import import_keepalived_text
from hacluster.config.loader import parse_config
from vrrp.machine import State

CONFIG = """
global_defs: {fifo_write_vrrp_states_on_reload: true, vrrp_notify_fifo: /run/v.fifo}
vrrp_instances:
  VI_2: {interface: eth0, virtual_router_id: 2, virtual_ipaddress: [10.0.0.2/24]}
  VI_1: {interface: eth0, virtual_router_id: 1, virtual_ipaddress: [10.0.0.1/24]}
  VI_3: {interface: eth0, virtual_router_id: 3, virtual_ipaddress: [10.0.0.3/24]}
vrrp_sync_groups:
  G1: {group: [VI_1, VI_3]}
"""


def test_lines_for_every_instance_then_every_group() -> None:
    config = parse_config(CONFIG, "t.yaml")
    assert config.global_defs.fifo_write_vrrp_states_on_reload
    events = state_events(
        config,
        {"VI_1": (State.MASTER, 150), "VI_2": (State.FAULT, 90), "VI_3": (State.MASTER, 100)},
        {"G1": State.MASTER},
    )
    assert [fifo_line(e)[1] for e in events] == [
        'INSTANCE "VI_2" FAULT 90\n',
        'INSTANCE "VI_1" MASTER 150\n',
        'INSTANCE "VI_3" MASTER 100\n',
        'GROUP "G1" MASTER 0\n',
    ]
    assert all(fifo_line(e)[0] == "vrrp" for e in events)


def test_import_takes_the_flag_whatever_follows_it() -> None:
    # keepalived 2.2.7 sets it even when written `fifo_write_vrrp_states_on_reload no`
    result = import_keepalived_text(
        "global_defs {\n fifo_write_vrrp_states_on_reload no\n}\n", "k.conf")
    assert result.data["global_defs"]["fifo_write_vrrp_states_on_reload"] is True
