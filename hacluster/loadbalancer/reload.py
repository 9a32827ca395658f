"""A reload of the load balancer: the plan of the config diff carried out."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from hacluster.config.diff import diff_configs
from hacluster.config.model import Config
from hacluster.loadbalancer.members import Real, Wanted
from hacluster.loadbalancer.prepare import prepare
from hacluster.loadbalancer.reconciling import ReconcilePart
from hacluster.policy import HealthKey, PolicyState, on_removal
from hacluster.reload_balancer import BalancerPlan, plan_balancer_reload
from hacluster.reload_checks import RunningServer, ServerChecks

if TYPE_CHECKING:
    from hacluster.notify import Notifier


log = logging.getLogger("hacluster.loadbalancer")


class ReloadPart(ReconcilePart):
    """A new configuration carried out from the pure plan of `hacluster.reload_balancer`,
    touching only what changed."""

    def set_notifier(self, notifier: Notifier | None) -> None:
        """Report real server and quorum changes to `notifier` from now on (None: to nobody)."""
        self._notifier = notifier

    async def reconfigure(self, config: Config) -> None:
        """Switch to `config`, touching only what changed; LoadBalancerError keeps the old one."""
        changes = diff_configs(self._config, config)
        wanted = prepare(config, self._wanted, changes)  # raises before anything is touched
        if not self._started:  # nothing runs yet: start() builds from this one
            self._wanted, self._config = wanted, config
            self._flush_first = config.global_defs.lvs_flush
            return
        for line in changes.summary():
            log.info("[reload] %s", line)
        running = {key: RunningServer(self._runner.server_up(key), real.plans)
                   for key, real in self._reals.items()}
        p = plan_balancer_reload(self._config, config, running, diff=changes,
                                 after={k: w.plans for k, w in wanted.items()})
        await self._carry_out(p, config, wanted)

    async def _carry_out(
        self, p: BalancerPlan, config: Config, wanted: dict[HealthKey, Wanted]
    ) -> None:
        """Carry out a reload plan (`hacluster.reload_balancer`)."""
        now = asyncio.get_running_loop().time()
        servers = self._service_map(config)
        state = PolicyState(dict(self._quorum))
        # Virtual servers that went away: omega reports, then their real servers go.
        for skey in p.services_removed:
            self._handle_events(on_removal(self._servers[skey], self._health, state),
                                "removed")
            self._retired.add(skey)
        # Real servers that went away (from kept or removed services).
        gone: dict[HealthKey, Real] = {}
        for key in p.servers_removed:
            real = gone[key] = self._reals.pop(key)
            self._health.pop(key, None)
            self._drained.discard(key)
            for check in real.checks:
                self._runner.remove(check.check_id)
            if key[0] in servers and real.vs.omega and real.up:
                self._notify_real(real, False, "removed from the configuration")
            self._hand_on(real, gone=True)
            log.info("[%s] real server %s removed", real.vs, real.rs)
        for key in p.servers_added:
            want = wanted[key]
            origin = gone.get(p.moved.get(key, key))
            self._add_real(key, want, now, carried=p.checks.carried.get(key),
                           since=None if origin is None else origin.since)
            if origin is not None and key in p.checks.carried:
                log.info("[%s] real server %s added, moved from %s with its health (%s)",
                         want.vs, want.rs, origin.vs, "up" if origin.up else "down")
            else:
                log.info("[%s] real server %s added", want.vs, want.rs)
        for change in p.checks.changed:
            self._update_real(self._reals[change.server], wanted[change.server], change)
        for key in p.checks.kept:
            real, want = self._reals[key], wanted[key]
            real.vs, real.rs = want.vs, want.rs
        self._servers = servers
        self._retired -= set(servers)
        self._quorum = {k: v for k, v in self._quorum.items() if k in servers}
        # Keep the configuration's order; evaluate again what was added or changed.
        self._entries = {k: self._entries[k] for k in servers if k in self._entries}
        self._regroup()
        self._dirty |= {k for k in servers if k in p.touched or k not in self._entries}
        self._wanted = wanted
        self._config = config
        if p.timeouts:
            await self._apply_timeouts(config)
        await self.reconcile("reload", full=False)

    def _update_real(self, real: Real, want: Wanted, change: ServerChecks) -> None:
        """A kept real server whose checks changed: new checks first, starting in the
        server's present state, then the old ones go: the server's state never passes
        through a value it does not have."""
        real.vs, real.rs = want.vs, want.rs
        running = real.checks
        keep = [(j, running[i]) for i, j in change.kept]
        for j in change.added:
            keep.append((j, self._add_check(real, want.plans[j], alpha=not change.up)))
        real.checks = [c for _, c in sorted(keep, key=lambda jc: jc[0])]
        real.plans = want.plans
        for i in change.removed:
            self._runner.remove(running[i].check_id)
        self._refresh_health(real)
        now_up = self._runner.server_up(real.key)
        if now_up != real.up:  # e.g. the only failing check was removed
            self._notify_real(real, now_up, "check removed by reload")
        self._hand_on(real)
        log.info("[%s] real server %s: %d check(s) kept, %d replaced or added, %d removed",
                 real.vs, real.rs, len(change.kept), len(change.added), len(change.removed))
