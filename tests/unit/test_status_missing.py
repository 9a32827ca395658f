"""A role that is slow or restarting still gives a status: its latest part, marked stale
with its age, or none, and `hacluster status` says what is missing and why."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest

from hacluster.commands.status import render
from hacluster.config.model import Config
from hacluster.controller import DaemonController
from hacluster.roles import balancer as role_module
from hacluster.roles.balancer import BalancerRole
from hacluster.roles.channel import RoleGone
from hacluster.roles.vrrp import VrrpRole

PART = (b'{"built_at": 1.0, "table_read_at": 1.0, "dataplane_error": null, "counters": {}}'
        b'\n"virtual_servers": [{"name": "10.0.0.1:80/TCP", "real_servers": []}], "ipvs": []')


class Channel:
    """Answers `snapshot` with `answer`, never (None) or by raising `answer`."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.closed = asyncio.Event()

    async def call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        if isinstance(self.answer, BaseException):
            raise self.answer
        if method != "snapshot":
            return None
        async with asyncio.timeout(timeout):
            if self.answer is None:
                await asyncio.Event().wait()
        return self.answer


def _role(answer: Any) -> BalancerRole:
    role = BalancerRole(Config())
    role._channel = Channel(answer)  # type: ignore[assignment]
    role._ready.set()
    role._warmed = 1e18  # no status building asked for in the background
    return role


def _head(part: bytes) -> dict[str, Any]:
    return dict(json.loads(part[:part.index(b"\n")]))


async def test_a_busy_balancer_shows_its_latest_part_marked_stale(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(role_module, "STATUS_TIMEOUT", 0.05)
    monkeypatch.setattr(role_module, "STATUS_WAIT_AFTER", 0.0)
    role = _role(None)
    nothing = await role.snapshot()
    assert _head(nothing)["missing"] == {
        "reason": "the balancer did not answer within 0.05 s (busy)", "age_seconds": None}
    role._event("status", (PART,))
    await asyncio.sleep(0.01)
    stale = await role.snapshot()
    missing = _head(stale)["missing"]
    assert missing["reason"].startswith("the balancer did not answer")
    assert missing["age_seconds"] > 0
    assert stale[stale.index(b"\n"):] == PART[PART.index(b"\n"):]  # the servers, as they were


async def test_a_restarting_balancer_says_so() -> None:
    role = _role(RoleGone("snapshot"))
    role.restarts = 2
    assert _head(await role.snapshot())["missing"]["reason"] == \
        "the balancer is restarting (restart 2)"
    summary = await _role(RoleGone("summary")).summary_of()
    assert summary["missing"]["reason"] == "the balancer is starting"


class FakeVrrpRole(VrrpRole):
    """The supervisor's handle on a VRRP role whose `status` request answers `answer`
    (or raises it)."""

    def __init__(self) -> None:
        super().__init__()
        self.answer: Any = {"instances": [{"name": "VI_1", "state": "MASTER",
                                           "effective_priority": 100, "master": None,
                                           "maintenance": False}],
                            "transport": {}, "dropped": {}}
        self.restarts = 0

    async def call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


def _controller(role: FakeVrrpRole) -> DaemonController:
    daemon = SimpleNamespace(vrrp=role, balancer=None, started_at=0.0,
                             config=Config())
    return DaemonController(daemon)  # type: ignore[arg-type]


async def test_a_busy_vrrp_role_shows_its_latest_instances_marked_stale() -> None:
    role = FakeVrrpRole()
    controller = _controller(role)
    fresh = await controller.summary()
    assert [i["name"] for i in fresh["instances"]] == ["VI_1"] and "missing" not in fresh
    role.answer = TimeoutError()
    summary = await controller.summary()
    assert [i["name"] for i in summary["instances"]] == ["VI_1"]
    (missing,) = summary["missing"]
    assert missing["part"] == "vrrp" and missing["age_seconds"] is not None
    assert missing["reason"] == "the VRRP role did not answer within 5 s (busy)"


async def test_a_vrrp_role_never_heard_shows_no_instances_and_why() -> None:
    role = FakeVrrpRole()
    role.answer, role.restarts = RoleGone("status"), 1
    summary = await _controller(role).summary()
    assert summary["instances"] == []
    assert summary["missing"] == [{"part": "vrrp", "age_seconds": None,
                                   "reason": "the VRRP role is restarting (restart 1)"}]


def test_hacluster_status_says_what_is_missing_and_why() -> None:
    text = render({
        "router_id": "lvs-a", "version": "1", "uptime_seconds": 30, "dataplane": "ipvs",
        "instances": [{"name": "VI_1", "state": "MASTER"}], "virtual_servers": [],
        "missing": [
            {"part": "vrrp", "reason": "the VRRP role did not answer within 5 s (busy)",
             "age_seconds": 12.0},
            {"part": "balancer", "reason": "the balancer is starting", "age_seconds": None},
        ],
    })
    assert ("VRRP instances: shown as they were 12s ago, the VRRP role did not answer "
            "within 5 s (busy)") in text
    assert "Virtual servers: not shown, the balancer is starting" in text
    assert "VRRP instances (as of 12s ago, STALE)" in text
    assert "  VI_1  MASTER" in text
    assert "Virtual servers (not known now)\n  (not known)" in text
