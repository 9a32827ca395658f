"""virtual_routes / virtual_rules follow mastership; static_ipaddress / static_routes /
static_rules are set at start and removed at stop: two `hacluster run` in namespaces,
the kernel's tables read back with `ip`."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable

import pytest

from tests.integration.vrrp_director import Director, PairLab, config_yaml, instance_yaml

pytestmark = pytest.mark.netns

ROUTES = """
virtual_routes:
  - 192.0.2.0/24 via 10.9.0.254 dev eth0
  - blackhole 198.51.100.0/24 table 100
  - {to: 203.0.113.128/25, dev: eth0, metric: 7}
  - 198.19.0.0/24 via 10.9.0.253 or 10.9.0.254 dev eth0
virtual_rules:
  - from 10.9.0.100 table 100 priority 100
  - from all fwmark 7 lookup 100 priority 101
"""


def statics(me: int) -> str:
    return (
        f'static_ipaddress: ["10.9.0.{me}5/24 dev eth0"]\n'
        'static_routes: ["203.0.113.0/25 via 10.9.0.254 dev eth0", "198.18.0.0/24 '
        'nexthop via 10.9.0.253 dev eth0 weight 3 nexthop via 10.9.0.254 dev eth0"]\n'
        'static_rules: ["to 203.0.113.0/25 table 200 priority 200"]\n'
    )


def ip(d: Director, *args: str) -> str:
    res = subprocess.run(["ip", "-n", d.ns.name, *args], capture_output=True, text=True)
    if res.returncode != 0 and "table does not exist" not in res.stderr:
        raise AssertionError(f"ip {' '.join(args)}: {res.stderr}")
    return res.stdout  # (a table whose last route went no longer exists: nothing in it)


def has_virtuals(d: Director) -> bool:
    main, t100, rules = ip(d, "route"), ip(d, "route", "show", "table", "100"), ip(d, "rule")
    return ("192.0.2.0/24 via 10.9.0.254 dev eth0" in main
            and "203.0.113.128/25 dev eth0 scope link metric 7" in main
            and "198.19.0.0/24 \n\tnexthop via 10.9.0.253 dev eth0 weight 1 \n"
                "\tnexthop via 10.9.0.254 dev eth0 weight 1" in main
            and "blackhole 198.51.100.0/24" in t100
            and "100:\tfrom 10.9.0.100 lookup 100" in rules
            and "101:\tfrom all fwmark 0x7 lookup 100" in rules)


def lacks_virtuals(d: Director) -> bool:
    main, t100, rules = ip(d, "route"), ip(d, "route", "show", "table", "100"), ip(d, "rule")
    return ("192.0.2.0/24" not in main and "203.0.113.128/25" not in main
            and "198.51.100.0/24" not in t100 and "lookup 100" not in rules
            and "198.19.0.0/24" not in main)


def has_statics(d: Director, me: int) -> bool:
    return (f"10.9.0.{me}5/24" in ip(d, "addr", "show", "dev", "eth0")
            and "203.0.113.0/25 via 10.9.0.254 dev eth0" in ip(d, "route")
            and "198.18.0.0/24 \n\tnexthop via 10.9.0.253 dev eth0 weight 3 \n"
                "\tnexthop via 10.9.0.254 dev eth0 weight 1" in ip(d, "route")
            and "200:\tfrom all to 203.0.113.0/25 lookup 200" in ip(d, "rule"))


def wait(check: Callable[[], bool], d: Director, what: str, timeout: float = 5.0) -> None:
    d.wait_until(check, what, timeout, lambda: ip(d, "route") + ip(d, "rule"))


def test_routes_and_rules_follow_mastership_statics_stay(pair: PairLab) -> None:
    a = pair.director("a", statics(1) + config_yaml(instance_yaml(priority=150, extra=ROUTES)))
    b = pair.director("b", statics(2) + config_yaml(instance_yaml(priority=100, extra=ROUTES)))
    b.start()
    b.wait_state("MASTER")
    wait(lambda: has_virtuals(b), b, "virtual routes and rules added")
    assert has_statics(b, 2)
    a.start()
    a.wait_state("MASTER")  # preempts b
    b.wait_state("BACKUP")
    wait(lambda: has_virtuals(a), a, "virtual routes and rules added")
    wait(lambda: lacks_virtuals(b), b, "virtual routes and rules removed")
    assert has_statics(a, 1) and has_statics(b, 2)  # statics whatever the state

    a.proc.signal(signal.SIGTERM)  # graceful: a resigns, b takes over
    b.wait_state("MASTER")
    wait(lambda: has_virtuals(b), b, "virtual routes and rules added")
    wait(lambda: not a.proc.running(), a, "a stopped")
    assert lacks_virtuals(a)
    assert not has_statics(a, 1)  # removed on stop, as keepalived does
    assert "198.18.0.0/24" not in ip(a, "route")
    assert "10.9.0.15/24" not in ip(a, "addr", "show", "dev", "eth0")
