"""Reload plan for the balancer, pure: virtual and real servers kept, changed, added, removed.

Which virtual and real servers a new configuration keeps, changes, adds and removes, and
what it does to their checks. Does no I/O.

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
from hacluster.config.lower import CheckPlan, plan, plans_of
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


#: Kinds lowered again at every reload: MISC_CHECK's program is looked up again (and
#: its user is global_defs.script_user's by default), FILE_CHECK reads a vrrp_track_file.
#: Nothing else a check's lowering reads lies outside its virtual and real server.
REPLANNED = ("MISC_CHECK", "FILE_CHECK")


#: What a check's lowering (`hacluster.config.lower`) reads of its virtual server and of
#: its real server: a change elsewhere leaves its checks as they run (a test reads that
#: module to keep these true).
CHECK_VS_FIELDS = frozenset({"port", "alpha", "virtualhost"})
CHECK_RS_FIELDS = frozenset({"ip", "port", "alpha", "virtualhost", "weight", "checks"})


def same_context(diff: ConfigDiff) -> Callable[[VirtualServer, RealServer], bool]:
    """Whether a real server's checks (other than the `REPLANNED` kinds) lower as they
    did: nothing they read of their virtual and real server changed (per the diff; the
    loader refuses a virtual server, or a real server in one, given twice)."""
    whole = {vs.key for vs in diff.virtual_servers.unchanged}
    servers: set[tuple[tuple[str, str, int], tuple[object, int]]] = set()
    for c in diff.virtual_servers.changed:
        if not CHECK_VS_FIELDS.isdisjoint(c.fields):
            continue
        reals = c.real_servers
        servers.update((c.new.key, rs.key) for rs in reals.unchanged)
        servers.update((c.new.key, r.new.key) for r in reals.changed
                       if r.checks.is_empty and CHECK_RS_FIELDS.isdisjoint(r.fields))
    return lambda vs, rs: vs.key in whole or (vs.key, rs.key) in servers


def lower_checks(
    config: Config, diff: ConfigDiff, running: Mapping[HealthKey, RunningServer]
) -> dict[HealthKey, tuple[CheckPlan, ...]]:
    """The checks of every real server of `config`, lowered again only where its context
    changed, and the `REPLANNED` kinds (CheckConfigError: a check that cannot be run)."""
    same = same_context(diff)
    g, files = config.global_defs, config.vrrp_track_files
    out: dict[HealthKey, tuple[CheckPlan, ...]] = {}
    for key, (vs, rs) in real_servers_of(config).items():
        now = running.get(key)
        if now is None or not same(vs, rs):
            out[key] = plans_of(config, vs, rs)
            continue
        out[key] = tuple(plan(check, vs, rs, g, files) if was.kind in REPLANNED else was
                         for check, was in zip(rs.checks, now.checks, strict=True))
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
    checks_plan = plan_checks_reload(checks, running)
    # A real server gone from one service and new in another, checks the same: moved.
    gone: dict[tuple[object, int], list[HealthKey]] = {}
    for k in checks_plan.removed:
        gone.setdefault(k[1], []).append(k)
    moved: dict[HealthKey, HealthKey] = {}
    for k in checks_plan.added if gone else ():
        for origin in gone.get(k[1], []):
            if running[origin].checks == tuple(checks[k]):
                moved[k] = origin
                gone[k[1]].remove(origin)
                break
    if moved:
        checks_plan = plan_checks_reload(checks, running, moved)
    return BalancerPlan(
        services_kept=tuple(kept),
        services_changed=tuple(changed),
        services_added=tuple(k for k in after_vs if k not in before_vs),
        services_removed=tuple(k for k in before_vs if k not in after_vs),
        servers_added=checks_plan.added,
        servers_removed=checks_plan.removed,
        moved=moved,
        timeouts=old.global_defs.lvs_timeouts != new.global_defs.lvs_timeouts,
        checks=checks_plan,
    )
