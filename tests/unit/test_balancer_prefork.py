"""`hacluster run` forks the balancer as the file is accepted; the supervisor's role for
that same file takes the process over instead of forking another (no process forked
here: the fork is recorded)."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from hacluster.config.loader import parse_config
from hacluster.roles import balancer as role_module
from hacluster.roles.balancer import BalancerRole, prefork
from hacluster.roles.process import RoleProcess

FILE = """
virtual_servers:
  - ip: 10.0.0.1
    port: 80
    real_servers: [{ip: 10.0.1.1, port: 80}]
"""


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    made: list[Any] = []

    def fake_fork(self: RoleProcess, child: Any) -> None:
        self.pid = 1_000_000 + len(made)
        self._sock, _ = socket.socketpair()
        made.append(self)

    monkeypatch.setattr(RoleProcess, "_fork", fake_fork)
    monkeypatch.setattr(RoleProcess, "_kill", lambda self, sig=9: made.append(("killed", self.pid)))
    monkeypatch.setattr(RoleProcess, "_reap", lambda self, block: True)
    monkeypatch.setattr(role_module, "_preforked", None)
    return made


def test_the_supervisor_takes_over_the_balancer_forked_early(forks: list[Any]) -> None:
    config = parse_config(FILE, "lb.yaml")
    prefork(config)
    assert len(forks) == 1
    role = BalancerRole(config)
    role.fork()
    assert len(forks) == 1 and role.pid == forks[0].pid and role._sock is forks[0]._sock
    again = BalancerRole(config)  # a restart forks anew
    again.fork()
    assert len(forks) == 2


def test_one_forked_for_another_file_is_killed(forks: list[Any]) -> None:
    prefork(parse_config(FILE, "lb.yaml"))
    role = BalancerRole(parse_config(FILE, "lb.yaml"))
    role.fork()
    early = forks[0]
    assert ("killed", early.pid) in forks and early._sock is None
    assert role is forks[-1] and role.pid != early.pid


def test_nothing_is_forked_without_virtual_servers(forks: list[Any]) -> None:
    prefork(parse_config("global_defs: {router_id: a}\n", "lb.yaml"))
    assert forks == []
