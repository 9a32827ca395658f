"""Field coverage of virtual and real servers: every key is consumed or reported unsupported.

For each field of `VirtualServer` and `RealServer`, a file that differs from a base one in
that key alone (written in YAML, so that what the loader resolves into the checks, such
as `delay_loop` or `virtualhost`, is resolved as in a real file) must change what the
daemon is given: the desired table (`hacluster.policy`) under several health states, the
checks' plans (`hacluster.config.lower.plans_of`), the notify commands, the mail alerts,
or what `omega` reports on removal; else the key must be named by
`unsupported_virtual_server()`. A new field without an alternative below fails the test
until it is given one, so no setting of a server is accepted and silently dropped.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
import yaml

from hacluster.alerts import QuorumEvent, RealServerEvent, alert_enabled
from hacluster.config.loader import parse_config
from hacluster.config.lower import plans_of, unsupported_virtual_server
from hacluster.config.model import Config, RealServer, VirtualServer
from hacluster.notify import notify_commands
from hacluster.policy import PolicyState, ServerHealth, evaluate, on_removal, service_of

BASE: dict[str, Any] = {
    "global_defs": {"notification_email": ["ops@example.org"], "smtp_server": "127.0.0.1"},
    "virtual_servers": [{
        "ip": "10.0.0.1", "port": 80, "lb_algo": "rr",
        "real_servers": [{
            "ip": "10.0.1.1", "port": 80, "weight": 2,
            "TCP_CHECK": {"connect_timeout": 3},
            "HTTP_GET": {"url": [{"path": "/"}]},
        }],
    }],
}

VS_ALTERNATIVES: dict[str, Any] = {
    "ip": "10.0.0.2",
    "port": 81,
    "fwmark": 5,
    "protocol": "UDP",
    "ip_family": "inet6",
    "lb_algo": "wrr",
    "lb_kind": "DR",
    "persistence_timeout": 300,
    "ops": True,
    "delay_loop": 7.0,
    "connect_timeout": 1.5,
    "retry": 4,
    "delay_before_retry": 2.5,
    "warmup": 3.0,
    "quorum": 5,
    "hysteresis": 1,
    "quorum_up": "/bin/true up",
    "quorum_down": "/bin/true down",
    "sorry_server": "10.0.2.1:80",
    "sorry_server_inhibit": True,
    "sorry_server_lb_kind": "DR",
    "alpha": True,
    "omega": True,
    "inhibit_on_failure": True,
    "virtualhost": "www.example",
    "ha_suspend": True,
    "smtp_alert": True,
    "real_servers": [{"ip": "10.0.1.2", "port": 80}],
}
RS_ALTERNATIVES: dict[str, Any] = {
    "ip": "10.0.1.9",
    "port": 8080,
    "weight": 5,
    "lb_kind": "DR",
    "inhibit_on_failure": True,
    "notify_up": "/bin/true up",
    "notify_down": "/bin/true down",
    "smtp_alert": False,
    "uthreshold": 100,
    "lthreshold": 10,
    "virtualhost": "www.example",
    "alpha": True,
    "connect_timeout": 1.5,
    "retry": 4,
    "delay_before_retry": 2.5,
    "delay_loop": 7.0,
    "warmup": 3.0,
    "checks": {"MISC_CHECK": {"misc_path": "/bin/true"}},
}
#: What the variant changes besides the key (a fwmark service has no ip nor port).
VS_VARIANT_ALSO: dict[str, dict[str, Any]] = {"fwmark": {"port": None, "ip": None}}
#: Keys that only act with others changed too (in the base and in the variant alike).
VS_NEEDS: dict[str, dict[str, Any]] = {
    # (a fwmark service without real servers: none to give it their family)
    "ip_family": {"fwmark": 5, "port": None, "ip": None, "real_servers": []},
    "sorry_server_inhibit": {"sorry_server": "10.0.2.1:80"},
    "sorry_server_lb_kind": {"sorry_server": "10.0.2.1:80", "sorry_server_inhibit": True},
}


def _load(doc: dict[str, Any]) -> Config:
    return parse_config(yaml.safe_dump(doc), "t.yaml")


def _vs_doc(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    vs = doc["virtual_servers"][0]
    for key, value in changes.items():
        if value is None:
            vs.pop(key, None)
        else:
            vs[key] = copy.deepcopy(value)
    return doc


def _rs_doc(key: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    rs = doc["virtual_servers"][0]["real_servers"][0]
    if key == "checks":
        rs.update(copy.deepcopy(value))
    else:
        rs[key] = copy.deepcopy(value)
    return doc


def _healths(vs: VirtualServer, up: bool | None) -> dict[Any, ServerHealth]:
    """Every real server up, down, or (None) not checked yet."""
    if up is None:
        return {}
    key = service_of(vs).key
    return {(key, rs.key): ServerHealth(up) for rs in vs.real_servers}


def _given(config: Config) -> tuple[Any, ...]:
    """What the daemon is given of the servers of `config`."""
    out: list[Any] = [tuple(notify_commands(config))]
    for vs in config.virtual_servers:
        for up in (None, True, False):
            health = _healths(vs, up)
            for was in (None, True, False):
                state = None if was is None else PolicyState({service_of(vs).key: was})
                result = evaluate([vs], health, state)
                out.append((result.table, result.state, result.events))
            out.append(tuple(on_removal(vs, health, PolicyState({service_of(vs).key: True}))))
        out.append(alert_enabled(QuorumEvent(vs, True, 1, 1), config))
        for rs in vs.real_servers:
            out.append(plans_of(config, vs, rs))
            out.append(alert_enabled(RealServerEvent(vs, rs, True), config))
    return tuple(out)


def test_the_base_has_nothing_unsupported_and_every_alternative_differs() -> None:
    base = _load(BASE)
    [vs] = base.virtual_servers
    assert unsupported_virtual_server(vs) == []
    # Each alternative differs from the base's own value (else it would prove nothing).
    for key, value in VS_ALTERNATIVES.items():
        assert _vs_doc(**VS_NEEDS.get(key, {}), **{key: value}) != _vs_doc(
            **VS_NEEDS.get(key, {})), key


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(VirtualServer)])
def test_every_virtual_server_field_is_consumed_or_reported(field: str) -> None:
    assert field in VS_ALTERNATIVES, f"{field}: give it an alternative value here"
    needs = VS_NEEDS.get(field, {})
    base = _load(_vs_doc(**needs))
    variant = _load(_vs_doc(**needs, **VS_VARIANT_ALSO.get(field, {}),
                            **{field: VS_ALTERNATIVES[field]}))
    [vs] = variant.virtual_servers
    reported = any(note.startswith(field) for note in unsupported_virtual_server(vs))
    assert reported or _given(variant) != _given(base), (
        f"virtual_servers[].{field} is neither carried out nor reported as unsupported")


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(RealServer)])
def test_every_real_server_field_is_consumed(field: str) -> None:
    assert field in RS_ALTERNATIVES, f"{field}: give it an alternative value here"
    base = _load(BASE)
    variant = _load(_rs_doc(field, RS_ALTERNATIVES[field]))
    assert _given(variant) != _given(base), (
        f"virtual_servers[].real_servers[].{field} is not carried out")


def test_ha_suspend_is_said_to_be_ignored() -> None:
    [vs] = _load(_vs_doc(ha_suspend=True)).virtual_servers
    [note] = unsupported_virtual_server(vs)
    assert note.startswith("ha_suspend") and "ignored" in note
