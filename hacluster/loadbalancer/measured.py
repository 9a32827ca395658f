"""Checkers wrapped to remember their last result and report each run's duration."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from healthchecks import CheckResult

if TYPE_CHECKING:
    from healthchecks.base import Checker


@dataclass(slots=True)
class LastResult:
    """The latest result of one check, with when it ended and how long it took."""

    ok: bool
    reason: str
    at: float  # monotonic
    duration: float


class Measured:
    """Wraps a checker to remember its last result and report each run's duration."""

    __slots__ = ("inner", "last", "report")

    def __init__(self, inner: Checker, report: Callable[[str, CheckResult, float], None]) -> None:
        self.inner = inner
        self.last: LastResult | None = None
        self.report = report

    @property
    def kind(self) -> str:
        return self.inner.kind

    @property
    def timeout(self) -> float:
        return self.inner.timeout

    def _record(self, result: CheckResult, started: float) -> None:
        now = time.monotonic()
        self.last = LastResult(result.ok, result.reason, now, now - started)
        self.report(self.inner.kind, result, now - started)

    async def check(self) -> CheckResult:
        started = time.monotonic()
        try:
            result = await self.inner.check()
        except Exception as exc:
            self._record(CheckResult.down(f"checker raised {type(exc).__name__}: {exc}"), started)
            raise
        if isinstance(result, CheckResult):
            self._record(result, started)
        return result

    async def close(self) -> None:
        await self.inner.close()


class MeasuredLaunch(Measured):
    """The same, for a checker with the callback-only `launch` fast path (TCP_CHECK)."""

    __slots__ = ()

    def launch(self, on_done: Callable[[CheckResult], None]) -> Callable[[], None]:
        return self.launch_on(asyncio.get_running_loop(), on_done)

    def launch_on(
        self, loop: asyncio.AbstractEventLoop, on_done: Callable[[CheckResult], None]
    ) -> Callable[[], None]:
        # The runner names its loop: the inner checker is spared a loop lookup per run.
        started = time.monotonic()

        def done(result: CheckResult) -> None:
            self._record(result, started)
            on_done(result)

        launch_on = getattr(self.inner, "launch_on", None)
        if launch_on is not None:
            return cast("Callable[[], None]", launch_on(loop, done))
        return cast("Callable[[], None]", self.inner.launch(done))  # type: ignore[attr-defined]
