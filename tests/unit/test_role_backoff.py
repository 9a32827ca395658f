"""A role that keeps dying is started again with backoff, each restart logged and counted.

`hacluster.roles.process.RoleProcess` with a real forked child that exits at once: the
delays it logs double from the first up to the cap, and start again from the first for
a role that ran long enough (`STABLE`) before it died. The backoff is scaled down here;
what is checked is the sequence of delays chosen, never how long anything took.
"""

from __future__ import annotations

import logging

import pytest

from hacluster.roles import process
from hacluster.roles.process import RoleProcess


class _Crashing(RoleProcess):
    """A role whose process exits as soon as it is forked, `lives` times in all."""

    label = "the test role"

    def __init__(self, lives: int) -> None:
        self.counted = 0
        super().__init__(on_restart=self._count)
        self._lives = lives

    def _count(self) -> None:
        self.counted += 1

    def fork(self) -> None:
        self._fork(lambda _sock, _parent: 3)

    async def start(self) -> None:
        self.fork()
        await self._connect()
        self._supervise_from_now()

    async def _restarted(self) -> bool:
        self.fork()
        await self._connect()
        return self.restarts < self._lives - 1

    def _heartbeat_period(self) -> float:
        return 3600.0

    async def _beat(self) -> None:
        return None

    async def finished(self) -> None:
        import asyncio

        async with asyncio.timeout(30):
            while self._tasks and self.restarts < self._lives - 1:
                await asyncio.sleep(0.01)
        await self._stop(timeout=5)


def _delays(caplog: pytest.LogCaptureFixture) -> list[float]:
    return [float(r.args[2]) for r in caplog.records  # type: ignore[index]
            if r.name == "hacluster.roles" and "starting it again" in r.getMessage()]


async def test_restarts_back_off_to_the_cap_each_logged_and_counted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(process, "BACKOFF", (0.01, 2.0, 0.04))
    caplog.set_level(logging.ERROR, "hacluster.roles")
    role = _Crashing(lives=6)
    await role.start()
    await role.finished()
    assert _delays(caplog) == [0.01, 0.02, 0.04, 0.04, 0.04]
    assert role.restarts == role.counted == 5
    assert role.pid is None  # the last process was collected


async def test_a_role_that_ran_long_enough_starts_the_backoff_again(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(process, "BACKOFF", (0.01, 2.0, 0.04))
    monkeypatch.setattr(process, "STABLE", -1.0)  # every run counts as a long one
    caplog.set_level(logging.ERROR, "hacluster.roles")
    role = _Crashing(lives=4)
    await role.start()
    await role.finished()
    assert _delays(caplog) == [0.01, 0.01, 0.01]
    assert role.restarts == role.counted == 3
