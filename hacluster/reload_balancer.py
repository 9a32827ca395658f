"""Reload plan for the balancer, pure: which virtual and real servers a new configuration
keeps, changes, adds and removes, and what it does to their checks. Does no I/O.

Built from the one configuration diff (`hacluster.config.diff`). A virtual server the
diff finds unchanged is not evaluated again, so the dataplane gets no operation for it;
a changed one (its scheduler, say) is evaluated again and reconcile changes what
differs. Real servers are matched by (service, ip, port), so one that moves to another
virtual server is removed from one and added to the other; with the same checks it
carries on the health it had. Only real servers whose settings or context changed are
lowered again (`hacluster.config.lower`); the others keep the checks they run.

Virtual servers with the same IPVS service as an earlier one, and real servers given
twice in one virtual server, are skipped, as the load balancer skips them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from hacluster.config.diff import ConfigDiff, diff_configs
from hacluster.config.lower import CheckPlan, plans_of
from hacluster.config.model import Config, RealServer, VirtualServer
from hacluster.ipvs.model import ServiceKey
from hacluster.policy import HealthKey, service_of
from hacluster.reload_checks import ChecksPlan, RunningServer, plan_checks_reload


@dataclass(frozen=True, slots=True)
class BalancerPlan:
    """What one reload does to the virtual servers, real servers and checks."""

    services_kept: tuple[ServiceKey, ...] = ()  # not evaluated again: no dataplane op
    services_changed: tuple[ServiceKey, ...] = ()  # evaluated again
    services_added: tuple[ServiceKey, ...] = ()
    services_removed: tuple[ServiceKey, ...] = ()
    servers_added: tuple[HealthKey, ...] = ()
    servers_removed: tuple[HealthKey, ...] = ()
    moved: Mapping[HealthKey, HealthKey] = field(default_factory=dict)  # new -> old
    timeouts: bool = False  # global_defs.lvs_timeouts changed
    checks: ChecksPlan = field(default_factory=ChecksPlan)

    @property
    def touched(self) -> frozenset[ServiceKey]:
        """The services to evaluate again (added or changed)."""
        return frozenset(self.services_changed) | frozenset(self.services_added)


def services_of(config: Config) -> dict[ServiceKey, VirtualServer]:
    """The IPVS services of `config`, each from the first virtual server that has it."""
    out: dict[ServiceKey, VirtualServer] = {}
    for vs in config.virtual_servers:
        out.setdefault(service_of(vs).key, vs)
    return out


def real_servers_of(config: Config) -> dict[HealthKey, tuple[VirtualServer, RealServer]]:
    """Every real server of `config` by (service, ip, port): the first of duplicates."""
    out: dict[HealthKey, tuple[VirtualServer, RealServer]] = {}
    for skey, vs in services_of(config).items():
        for rs in vs.real_servers:
            out.setdefault((skey, rs.key), (vs, rs))
    return out


def same_context(diff: ConfigDiff) -> Callable[[VirtualServer, RealServer], bool]:
    """Whether a real server's checks lower as they did: its virtual server's settings,
    its own and the global ones they read are unchanged (per the diff)."""
    if diff.global_defs or not diff.vrrp_track_files.is_empty:
        return lambda vs, rs: False  # (FILE_CHECK reads vrrp_track_files)
    whole = {vs.key for vs in diff.virtual_servers.unchanged}
    servers: set[tuple[tuple[str, str, int], tuple[object, int]]] = set()
    for c in diff.virtual_servers.changed:
        if not c.fields:
            servers.update((c.new.key, rs.key) for rs in c.real_servers.unchanged)
    return lambda vs, rs: vs.key in whole or (vs.key, rs.key) in servers


def lower_checks(
    config: Config, diff: ConfigDiff, running: Mapping[HealthKey, RunningServer]
) -> dict[HealthKey, tuple[CheckPlan, ...]]:
    """The checks of every real server of `config`, lowered again only where its context
    changed (CheckConfigError: a check that cannot be run)."""
    same = same_context(diff)
    out: dict[HealthKey, tuple[CheckPlan, ...]] = {}
    for key, (vs, rs) in real_servers_of(config).items():
        now = running.get(key)
        out[key] = now.checks if now is not None and same(vs, rs) else plans_of(config, vs, rs)
    return out


def plan_balancer_reload(
    old: Config,
    new: Config,
    running: Mapping[HealthKey, RunningServer],
    *,
    diff: ConfigDiff | None = None,
    after: Mapping[HealthKey, tuple[CheckPlan, ...]] | None = None,
) -> BalancerPlan:
    """What a reload from `old` to `new` does to the balancer, `running` being every real
    server as it runs. `diff` is `diff_configs(old, new)` and `after` the new real
    servers' lowered checks, when the caller has them (the load balancer has them
    checked for being runnable first)."""
    d = diff if diff is not None else diff_configs(old, new)
    checks = after if after is not None else lower_checks(new, d, running)
    before_vs, after_vs = services_of(old), services_of(new)
    unchanged = {vs.key for vs in d.virtual_servers.unchanged}
    kept: list[ServiceKey] = []
    changed: list[ServiceKey] = []
    for skey, vs in after_vs.items():
        was = before_vs.get(skey)
        if was is None:
            continue
        (kept if vs.key in unchanged and was.key == vs.key else changed).append(skey)
    before_rs = dict.fromkeys([*real_servers_of(old), *running])
    added = tuple(k for k in checks if k not in before_rs)
    removed = tuple(k for k in before_rs if k not in checks)
    # A real server gone from one service and new in another, checks the same: moved.
    gone: dict[tuple[object, int], list[HealthKey]] = {}
    for k in removed:
        gone.setdefault(k[1], []).append(k)
    moved: dict[HealthKey, HealthKey] = {}
    for k in added:
        for origin in gone.get(k[1], []):
            now = running.get(origin)
            if now is not None and now.checks == tuple(checks[k]):
                moved[k] = origin
                gone[k[1]].remove(origin)
                break
    return BalancerPlan(
        services_kept=tuple(kept),
        services_changed=tuple(changed),
        services_added=tuple(k for k in after_vs if k not in before_vs),
        services_removed=tuple(k for k in before_vs if k not in after_vs),
        servers_added=added,
        servers_removed=removed,
        moved=moved,
        timeouts=old.global_defs.lvs_timeouts != new.global_defs.lvs_timeouts,
        checks=plan_checks_reload(checks, running, moved),
    )
