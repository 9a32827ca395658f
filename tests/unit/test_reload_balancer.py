"""plan_balancer_reload as timelines: what each reload keeps, restarts, moves (no root).

A configuration, the servers as they run, a new configuration, and what the reload keeps,
restarts, moves and evaluates again.
"""

from __future__ import annotations

import ast
import dataclasses
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import yaml

from hacluster.config import lower
from hacluster.config.diff import diff_configs
from hacluster.config.loader import parse_config
from hacluster.config.model import Config
from hacluster.ipvs.model import Protocol, ServiceKey
from hacluster.policy import HealthKey
from hacluster.reload_balancer import (
    CHECK_RS_FIELDS,
    CHECK_VS_FIELDS,
    BalancerPlan,
    lower_checks,
    plan_balancer_reload,
)
from hacluster.reload_checks import RunningServer, ServerChecks, match_checks

WEB = ServiceKey(4, Protocol.TCP, IPv4Address("10.0.0.100"), 80)
API = ServiceKey(4, Protocol.TCP, IPv4Address("10.0.0.100"), 8080)


def tcp(**extra: Any) -> dict[str, Any]:
    return {"TCP_CHECK": {"delay_loop": 2, **extra}}


def http(path: str = "/health", **extra: Any) -> dict[str, Any]:
    return {"HTTP_GET": {"url": [{"path": path}], "delay_loop": 2, **extra}}


def rs(last: int, *checks: dict[str, Any], weight: int = 1) -> dict[str, Any]:
    out: dict[str, Any] = {"ip": f"10.0.1.{last}", "port": 80, "weight": weight}
    for c in checks:
        out.update(c)
    return out


def conf(web: list[dict[str, Any]], api: list[dict[str, Any]] | None = None,
         web_algo: str = "wrr", track_file: str | None = None, **web_vs: Any) -> Config:
    servers = [{"ip": "10.0.0.100", "port": 80, "lb_algo": web_algo, "lb_kind": "NAT",
                "real_servers": web, **web_vs}]
    if api is not None:
        servers.append({"ip": "10.0.0.100", "port": 8080, "lb_algo": "wrr", "lb_kind": "NAT",
                        "real_servers": api})
    doc: dict[str, Any] = {"virtual_servers": servers}
    if track_file is not None:
        doc["vrrp_track_files"] = {"w": {"file": track_file}}
    return parse_config(yaml.safe_dump(doc, sort_keys=False), "t.yaml")


def key(service: ServiceKey, last: int) -> HealthKey:
    return (service, (IPv4Address(f"10.0.1.{last}"), 80))


def run(config: Config, down: frozenset[HealthKey] = frozenset()) -> dict[HealthKey, RunningServer]:
    """The servers of `config` as a load balancer runs them, those in `down` down."""
    empty = conf([])
    checks = lower_checks(config, diff_configs(empty, config), {})
    return {k: RunningServer(k not in down, plans) for k, plans in checks.items()}


def test_the_same_file_keeps_everything_and_evaluates_nothing() -> None:
    old = conf([rs(1, tcp()), rs(2, http())], [rs(3, tcp())])
    plan = plan_balancer_reload(old, conf([rs(1, tcp()), rs(2, http())], [rs(3, tcp())]),
                                run(old))
    assert plan == BalancerPlan(services_kept=(WEB, API), checks=plan.checks)
    assert plan.checks.kept == (key(WEB, 1), key(WEB, 2), key(API, 3))
    assert not (plan.checks.changed or plan.checks.added or plan.checks.removed)
    assert plan.touched == frozenset()


def test_a_timeline_of_reloads() -> None:
    """One director's evening: each step's plan, then the servers as they run after it."""
    old = conf([rs(1, tcp(), http()), rs(2, http())], [rs(3, tcp())])
    running = run(old, down=frozenset({key(WEB, 2)}))

    # 1. a weight changes: the service is evaluated again, every check keeps running
    new = conf([rs(1, tcp(), http(), weight=5), rs(2, http())], [rs(3, tcp())])
    plan = plan_balancer_reload(old, new, running)
    assert (plan.services_changed, plan.services_kept) == ((WEB,), (API,))
    assert plan.checks.kept == (key(WEB, 1), key(WEB, 2), key(API, 3))
    assert not plan.checks.changed and not plan.servers_added and not plan.servers_removed

    # 2. one setting of one check changes: only that check restarts, in the server's state
    old, new = new, conf([rs(1, tcp(), http("/ready"), weight=5), rs(2, http())],
                         [rs(3, tcp())])
    plan = plan_balancer_reload(old, new, running)
    # (the model keeps a server's checks in kind order: HTTP_GET, then TCP_CHECK)
    assert plan.checks.changed == (ServerChecks(key(WEB, 1), kept=((1, 1),), added=(0,),
                                                removed=(0,), up=True),)
    assert plan.checks.kept == (key(WEB, 2), key(API, 3))
    running[key(WEB, 1)] = RunningServer(True, run(new)[key(WEB, 1)].checks)

    # 3. the down server's check changes too: its new check starts down (no flap)
    old, new = new, conf([rs(1, tcp(), http("/ready"), weight=5), rs(2, http("/ready"))],
                         [rs(3, tcp())])
    plan = plan_balancer_reload(old, new, running)
    (change,) = plan.checks.changed
    assert (change.server, change.added, change.removed, change.up) == (
        key(WEB, 2), (0,), (0,), False)
    running[key(WEB, 2)] = RunningServer(False, run(new)[key(WEB, 2)].checks)

    # 4. the down server moves to the other service with the same checks: it carries
    # its health over; both services are evaluated again, nothing else restarts
    old, new = new, conf([rs(1, tcp(), http("/ready"), weight=5)],
                         [rs(3, tcp()), rs(2, http("/ready"))])
    plan = plan_balancer_reload(old, new, running)
    assert plan.servers_removed == (key(WEB, 2),) and plan.servers_added == (key(API, 2),)
    assert plan.moved == {key(API, 2): key(WEB, 2)}
    assert plan.checks.carried == {key(API, 2): False}
    assert plan.checks.start_state(key(API, 2), alpha=False) is True  # starts down
    assert set(plan.services_changed) == {WEB, API}
    assert plan.checks.kept == (key(WEB, 1), key(API, 3))
    running.pop(key(WEB, 2))
    running[key(API, 2)] = RunningServer(False, run(new)[key(API, 2)].checks)

    # 5. the scheduler of one service changes: that service only, no check touched
    old, new = new, conf([rs(1, tcp(), http("/ready"), weight=5)],
                         [rs(3, tcp()), rs(2, http("/ready"))], web_algo="rr")
    plan = plan_balancer_reload(old, new, running)
    assert (plan.services_changed, plan.services_kept) == ((WEB,), (API,))
    assert plan.touched == {WEB}
    assert set(plan.checks.kept) == set(running) and not plan.checks.changed

    # 6. a service goes with its server; a new server with the moved one's address but
    # other checks comes in: not a move, it starts as configured
    old, new = new, conf([rs(1, tcp(), http("/ready"), weight=5), rs(2, tcp())],
                         web_algo="rr")
    plan = plan_balancer_reload(old, new, running)
    assert plan.services_removed == (API,) and plan.services_kept == ()
    assert plan.servers_removed == (key(API, 3), key(API, 2))
    assert plan.servers_added == (key(WEB, 2),) and plan.moved == {}
    assert plan.checks.carried == {}
    assert plan.checks.start_state(key(WEB, 2), alpha=False) is False
    assert plan.checks.removed == (key(API, 3), key(API, 2))


def test_duplicate_checks_pair_up_one_to_one() -> None:
    old = conf([rs(1, tcp())])
    a, b = lower_checks(old, diff_configs(conf([]), old), {})[key(WEB, 1)] * 2
    assert match_checks([a, a], [a]) == ([(0, 0)], [], [1])
    assert match_checks([a], [b, a]) == ([(0, 0)], [1], [])


def test_only_servers_whose_context_changed_are_lowered_again(tmp_path: Path) -> None:
    track = tmp_path / "weight"
    old = conf([rs(1, tcp()), rs(2, tcp()), rs(3, {"FILE_CHECK": {"track_file": "w"}})],
               track_file=str(track))
    running = run(old)
    # a stand-in for "what runs" that lowering never produces: kept means reused
    marker = {k: RunningServer(True, tuple(dataclasses.replace(p, kind=f"{p.kind}*")
                                           if p.kind == "TCP_CHECK" else p for p in r.checks))
              for k, r in running.items()}
    new = conf([rs(1, tcp()), rs(2, tcp(), weight=3), rs(3, {"FILE_CHECK": {"track_file": "w"}})],
               track_file=str(tmp_path / "elsewhere"))
    lowered = lower_checks(new, diff_configs(old, new), marker)
    assert lowered[key(WEB, 1)] == marker[key(WEB, 1)].checks  # unchanged: what runs, kept
    assert lowered[key(WEB, 2)] == running[key(WEB, 2)].checks  # changed: lowered again
    # FILE_CHECK reads the vrrp_track_file, which moved: lowered again at every reload
    (file_check,) = lowered[key(WEB, 3)]
    assert file_check != running[key(WEB, 3)].checks[0]
    assert str(tmp_path / "elsewhere") in repr(file_check.params)
    # a change of a service setting its checks read lowers all of its servers again
    alpha = conf([rs(1, tcp()), rs(2, tcp()), rs(3, {"FILE_CHECK": {"track_file": "w"}})],
                 track_file=str(track), alpha=True)
    assert {k: tuple(p.kind for p in v)
            for k, v in lower_checks(alpha, diff_configs(old, alpha), marker).items()} == {
        k: tuple(p.kind for p in r.checks) for k, r in running.items()}


def test_the_fields_a_check_reads_are_those_the_plan_watches() -> None:
    """Read `hacluster.config.lower`: every use of a virtual or real server while a
    check is lowered is one of CHECK_VS_FIELDS / CHECK_RS_FIELDS, or goes to a function
    of that module (read in turn), or names it in a message."""
    source = Path(lower.__file__).read_text()
    tree = ast.parse(source)
    local = {f.name for f in tree.body if isinstance(f, ast.FunctionDef)}
    read: dict[str, set[str]] = {"vs": set(), "rs": set()}
    for func in tree.body:
        if not isinstance(func, ast.FunctionDef):
            continue
        params = {a.arg for a in func.args.args}
        if not params & {"vs", "rs"} or func.name.endswith("instance"):
            continue
        if func.name == "unsupported_virtual_server":
            continue  # (the server's own keys, not a check's)
        for node in ast.walk(func):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in read):
                read[node.value.id].add(node.attr)
            if isinstance(node, ast.Call) and any(
                    isinstance(a, ast.Name) and a.id in read for a in node.args):
                assert isinstance(node.func, ast.Name) and node.func.id in local, (
                    f"{func.name} hands a server to {ast.unparse(node.func)}")
    assert read["vs"] <= CHECK_VS_FIELDS, read["vs"] - CHECK_VS_FIELDS
    assert read["rs"] <= CHECK_RS_FIELDS, read["rs"] - CHECK_RS_FIELDS
    assert "weight" in read["rs"] and "virtualhost" in read["vs"]  # (the reading works)


def test_a_change_checks_do_not_read_keeps_them_without_lowering() -> None:
    old = conf([rs(1, tcp()), rs(2, tcp())])
    running = run(old)
    marker = {k: RunningServer(True, tuple(dataclasses.replace(p, kind=f"{p.kind}*")
                                           for p in r.checks)) for k, r in running.items()}
    for new in (conf([rs(1, tcp()), rs(2, tcp())], web_algo="rr"),
                parse_config(yaml.safe_dump({"virtual_servers": [{
                    "ip": "10.0.0.100", "port": 80, "lb_algo": "wrr", "lb_kind": "NAT",
                    "real_servers": [rs(1, tcp()), {**rs(2, tcp()), "lb_kind": "DR"}]}]},
                    sort_keys=False), "t.yaml")):
        assert lower_checks(new, diff_configs(old, new), marker) == {
            k: r.checks for k, r in marker.items()}
    # ...and one they read lowers them again
    new = conf([rs(1, tcp()), rs(2, tcp(), weight=4)], web_algo="rr")
    lowered = lower_checks(new, diff_configs(old, new), marker)
    assert lowered[key(WEB, 1)] == marker[key(WEB, 1)].checks
    assert lowered[key(WEB, 2)] == running[key(WEB, 2)].checks
