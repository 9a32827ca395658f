"""The supervisor's heartbeat on the balancer role: a late answer is progress, silence is a hang."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest

from hacluster.config.model import Config
from hacluster.roles import balancer as role_module
from hacluster.roles.balancer import BalancerRole

FAKE_PID = 999_999_999  # never signalled: os.kill is replaced below


class SlowChannel:
    """Answers each ping after `delay` seconds (None: never), as a busy balancer would."""

    def __init__(self, delay: float | None) -> None:
        self.delay = delay
        self.pings = 0
        self.closed = asyncio.Event()

    async def call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        assert method == "ping"
        self.pings += 1
        async with asyncio.timeout(timeout):
            if self.delay is None:
                await asyncio.Event().wait()
            await asyncio.sleep(self.delay)
        return "pong"


async def _beat(monkeypatch: pytest.MonkeyPatch, delay: float | None,
                seconds: float) -> tuple[list[tuple[int, int]], SlowChannel]:
    monkeypatch.setattr(role_module, "HEARTBEAT", 0.05)
    monkeypatch.setattr(role_module, "HUNG_AFTER", 0.6)
    killed: list[tuple[int, int]] = []
    monkeypatch.setattr(role_module.os, "kill", lambda pid, sig: killed.append((pid, sig)))
    role = BalancerRole(Config())
    channel = SlowChannel(delay)
    role._channel = channel  # type: ignore[assignment]
    role.pid = FAKE_PID
    role._last_answer = asyncio.get_running_loop().time()
    role._ready.set()
    task = asyncio.get_running_loop().create_task(role._heartbeat())
    await asyncio.sleep(seconds)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return killed, channel


async def test_a_balancer_answering_late_is_not_replaced(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Each answer takes four heartbeat periods (a loaded or emulated machine), well
    # within HUNG_AFTER: the balancer works, slowly, and stays.
    killed, channel = await _beat(monkeypatch, 0.2, 2.0)
    assert channel.pings >= 5
    assert killed == []


async def test_a_balancer_answering_nothing_is_replaced(
        monkeypatch: pytest.MonkeyPatch) -> None:
    killed, _ = await _beat(monkeypatch, None, 1.0)
    assert killed[:1] == [(FAKE_PID, signal.SIGKILL)]
