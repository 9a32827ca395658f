"""Rise/fall, retry and alpha: turns a stream of check results into up/down changes. Does no I/O.

keepalived's model: a failed check is retried ``retry`` times, ``delay_before_retry``
apart, before it counts; one counted failure takes a server down and one success brings
it back. HAProxy's ``rise``/``fall`` generalise that: ``fall`` counted failures in a row
take it down, ``rise`` successes in a row bring it up (both default to 1). ``alpha``
starts the server down until it passes.
"""

from __future__ import annotations

from dataclasses import dataclass

from healthchecks.params import Timing
from healthchecks.result import CheckResult


@dataclass(frozen=True, slots=True)
class Transition:
    """The check's state changed (or, while up, its dynamic weight did)."""

    up: bool
    reason: str
    weight: int | None
    at: float


class Tracker:
    """Pure state of one check: feed it results with the time, it says what changed."""

    __slots__ = (
        "_retry_it", "_retrying", "_timing", "failures", "last_failure", "last_reason",
        "successes", "up", "weight",
    )

    def __init__(self, timing: Timing) -> None:
        if timing.retry is None or timing.delay_before_retry is None:
            raise ValueError("Tracker needs a resolved Timing (see Timing.resolved)")
        self._timing = timing
        self.up = not timing.alpha
        self.successes = 0  # consecutive successes while down
        self.failures = 0  # consecutive counted (post-retry) failures while up
        self._retry_it = 0
        self._retrying = False
        self.last_failure: str | None = "alpha: not checked yet" if timing.alpha else None
        self.last_reason: str = self.last_failure or "not checked yet"
        self.weight: int | None = None

    @property
    def timing(self) -> Timing:
        return self._timing

    @property
    def retrying(self) -> bool:
        """The last result was a failure that will be retried after delay_before_retry."""
        return self._retrying

    def observe(self, result: CheckResult, now: float) -> Transition | None:
        """Take one result; return the change it causes, if any."""
        self.last_reason = result.reason
        if result.ok and self.up and result.weight is None:
            # The steady state of a healthy server: nothing can change but the counters.
            self._retry_it = self.failures = 0
            self._retrying = False
            return None
        if result.ok:
            self._retry_it = 0
            self._retrying = False
            self.failures = 0
            weight_changed = result.weight is not None and result.weight != self.weight
            if weight_changed:
                self.weight = result.weight
            if not self.up:
                self.successes += 1
                if self.successes >= self._timing.rise:
                    self.up = True
                    self.successes = 0
                    return Transition(True, result.reason, self.weight, now)
                return None
            if weight_changed:
                return Transition(True, result.reason, self.weight, now)
            return None

        self.last_failure = result.reason
        self.successes = 0
        assert self._timing.retry is not None
        if self._retry_it < self._timing.retry:
            self._retry_it += 1
            self._retrying = True
            return None
        self._retry_it = 0
        self._retrying = False
        if not self.up:
            return None
        self.failures += 1
        if self.failures >= self._timing.fall:
            self.up = False
            self.failures = 0
            return Transition(False, result.reason, self.weight, now)
        return None

    def next_due(self, scheduled: float, now: float, started: float | None = None) -> float:
        """When the next check should start, given when this one was due, started, and now.

        A retry comes ``delay_before_retry`` after the failure; otherwise checks keep
        their phase (``scheduled + delay_loop``), skipping slots a slow check overran, and
        the slot too close to a late start: the next start is never less than half an
        interval after this one, so a server is never checked back to back.
        """
        if self._retrying:
            assert self._timing.delay_before_retry is not None
            return now + self._timing.delay_before_retry
        loop = self._timing.delay_loop
        earliest = now if started is None else max(now, started + loop / 2)
        due = scheduled + loop
        if due < earliest:
            due += loop * (int((earliest - due) / loop) + 1)
        return due
