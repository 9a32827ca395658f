"""Real servers and their checks: how they start, run, and report their changes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, cast

from hacluster.balancer import Handed
from hacluster.config.lower import CheckPlan
from hacluster.ipvs.model import ServiceKey
from hacluster.loadbalancer.measured import Measured, MeasuredLaunch
from hacluster.loadbalancer.members import Check, Real, Wanted
from hacluster.loadbalancer.state import BalancerState
from hacluster.policy import HealthKey, ServerHealth
from healthchecks import CheckResult, CheckSpec, HealthChanged, make_checker
from healthchecks.result import result_label

if TYPE_CHECKING:
    from healthchecks.sharded import RunBatch

log = logging.getLogger("hacluster.loadbalancer")


class HealthPart(BalancerState):
    """The real servers and their checks: added with the state they start in, checked,
    their changes reported to the policy, the notifier and `on_health`."""

    def _add_real(
        self, key: HealthKey, want: Wanted, now: float,
        carried: bool | None = None, since: float | None = None,
    ) -> Real:
        """A new real server; `carried`: the health it carries on (moved by a reload)."""
        real = Real(want.vs, want.rs, key, want.plans, since=now if since is None else since)
        # State before any check runs: as a reload carried it over, or as a predecessor
        # handed it over, else up unless a check starts down (alpha).
        handed = self._handed.pop((str(want.vs), real.name), None) if self._handed else None
        if carried is not None:
            alphas = [not carried for _ in want.plans]
            real.reason = "carried over by reload"
        elif handed is not None and len(handed.ups) == len(want.plans):
            alphas = [not up for up in handed.ups]
            real.reason = handed.reason
        else:
            alphas = [p.timing.alpha for p in want.plans]
            real.reason = "not checked yet" if want.plans else "no checks"
        real.up = not any(alphas) if carried is None else carried
        self._reals[key] = real
        for p, alpha in zip(want.plans, alphas, strict=True):
            real.checks.append(self._add_check(real, p, alpha=alpha))
        self._refresh_health(real)
        if carried is not None:
            self._hand_on(real)
        return real

    def _hand_on(self, real: Real, gone: bool = False) -> None:
        """Tell `on_health` the states of a real server's checks (None: it is gone)."""
        if self.on_health is None:
            return
        handed = None if gone else Handed(
            tuple(self._runner.status(c.check_id).up for c in real.checks), real.reason)
        self.on_health(str(real.vs), real.name, handed)

    def _add_check(self, real: Real, p: CheckPlan, *, alpha: bool) -> Check:
        check_id = f"{real.vs} {real.rs} {p.kind}#{next(self._seq)}"
        inner = make_checker(p.params, p.timing, http=self._http)
        wrapper_cls = MeasuredLaunch if hasattr(inner, "launch") else Measured
        checker = wrapper_cls(inner, self._report)
        timing = p.timing
        if timing.alpha != alpha:
            timing = type(timing)(
                timing.delay_loop, timing.retry, timing.delay_before_retry, timing.warmup,
                alpha, timing.rise, timing.fall,
            )
        check = Check(check_id, p, checker)
        # A worker process rebuilds the checker from its parameters: it gets the bare one.
        self._runner.add(CheckSpec(check_id, real.key,
                                   inner if self._sharded is not None else checker, timing))
        return check

    def _refresh_health(self, real: Real) -> None:
        """What the policy is told about a server: the runner's view of its checks."""
        if not real.checks:
            self._health.pop(real.key, None)
            return
        weight = None
        for check in real.checks:
            w = self._runner.status(check.check_id).weight
            if w is not None:
                weight = w
        self._health[real.key] = ServerHealth(self._runner.server_up(real.key), weight)

    def _report(self, kind: str, result: CheckResult, seconds: float) -> None:
        self.counters["checks"] += 1
        if self._metrics is not None:
            self._metrics.check_done(kind, result_label(result), max(0.0, seconds))

    def _on_results(self, batches: list[RunBatch]) -> None:
        """Outcomes of the runs done in the worker processes since their last batch."""
        for batch in batches:
            self.counters["checks"] += batch.runs
            if self._metrics is not None:
                self._metrics.checks_counted(batch.kind, batch.label, batch.seconds,
                                             batch.buckets)

    async def refresh(self, max_age: float = 1.0) -> None:
        """Read the checks' counters from the worker processes, when the last reading is
        older than `max_age` (status asked for twice a second reads them once)."""
        if self._sharded is not None and self._started:
            await self._sharded.refresh(max_age)

    def _on_change(self, event: HealthChanged) -> None:
        real = self._reals.get(cast(HealthKey, event.server))
        if real is None or not any(c.check_id == event.check_id for c in real.checks):
            # A check being added to a server during a reload; it is accounted for
            # once the reload has finished with the server.
            if real is not None:
                self._dirty.add(real.key[0])
            return
        self._refresh_health(real)
        if real.up != event.up:
            kind = next((c.plan.kind for c in real.checks if c.check_id == event.check_id), None)
            self._notify_real(real, event.up, event.reason, kind)
        self._hand_on(real)
        self._dirty.add(real.key[0])
        self._wake.set()

    def _notify_real(self, real: Real, up: bool, reason: str, check: str | None = None) -> None:
        real.up = up
        real.reason = reason
        with contextlib.suppress(RuntimeError):
            real.since = asyncio.get_running_loop().time()
        self.counters["real_server_up" if up else "real_server_down"] += 1
        log.info("[%s] real server %s %s (%s)", real.vs, real.rs, "UP" if up else "DOWN", reason)
        if self._notifier is not None:
            try:
                self._notifier.real_server(real.vs, real.rs, up, reason, check)
            except Exception:
                log.exception("[%s] notify for %s failed", real.vs, real.rs)

    def _regroup(self) -> None:
        members: dict[ServiceKey, list[Real]] = {k: [] for k in self._servers}
        for real in self._reals.values():
            members.setdefault(real.key[0], []).append(real)
        self._members = members
