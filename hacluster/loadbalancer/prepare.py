"""A configuration's real servers made runnable: their checks planned and secured, worker count."""

from __future__ import annotations

import logging
import math
import os
import shlex
from collections.abc import Mapping

from hacluster import scripts
from hacluster.balancer import LoadBalancerError
from hacluster.config.diff import ConfigDiff
from hacluster.config.lower import (
    CheckConfigError,
    CheckPlan,
    plan,
    unsupported,
    unsupported_virtual_server,
    where,
)
from hacluster.config.model import Config
from hacluster.loadbalancer.members import Wanted
from hacluster.policy import HealthKey
from hacluster.reload_balancer import REPLANNED, real_servers_of, same_context
from healthchecks.params import MiscCheckParams

log = logging.getLogger("hacluster.loadbalancer")

#: Checks a second one worker process is given at most when their number is derived
#: (a TCP_CHECK worker does ~10,000/s on a core, an HTTP_GET one a few thousand).
CHECKS_PER_WORKER = 2500.0


def secure_check(p: CheckPlan, config: Config, what: str) -> CheckPlan:
    """A MISC_CHECK's program found in PATH and checked as `enable_script_security` says."""
    params = p.params
    if not isinstance(params, MiscCheckParams):
        return p
    g = config.global_defs
    try:
        script = scripts.prepare(
            params.argv,
            user=params.script_user,
            group=params.script_group,
            security=g.enable_script_security,
            what=what,
        )
    except scripts.ScriptError as exc:
        raise CheckConfigError(str(exc)) from None
    resolved = MiscCheckParams(
        misc_path=shlex.join(script.argv),
        misc_timeout=params.misc_timeout,
        misc_dynamic=params.misc_dynamic,
        script_user=params.script_user,
        script_group=params.script_group,
    )
    return CheckPlan(p.kind, resolved, p.timing)


def prepare(
    config: Config,
    previous: Mapping[HealthKey, Wanted] | None = None,
    diff: ConfigDiff | None = None,
) -> dict[HealthKey, Wanted]:
    """Every real server of `config` with its runnable checks; LoadBalancerError if any fails.

    A virtual server with the same IPVS service as an earlier one, and a real server
    given twice in one virtual server, are skipped (the policy reports them). With
    `previous` (the result for the running configuration) and `diff` (from it to
    `config`), the plans of a real server whose context the diff finds unchanged are
    reused, except MISC_CHECK's, whose program is looked up and checked again (a reload
    is when an operator expects that).
    """
    same = same_context(diff) if diff is not None and previous is not None else None
    wanted: dict[HealthKey, Wanted] = {}
    problems: list[str] = []
    for vs in config.virtual_servers:
        for note in unsupported_virtual_server(vs):
            log.warning("[%s] %s", vs, note)
    for key, (vs, rs) in real_servers_of(config).items():
        old = previous.get(key) if same is not None and previous is not None else None
        reuse = old is not None and same is not None and same(vs, rs)
        plans: list[CheckPlan] = []
        for i, check in enumerate(rs.checks):
            if reuse and old is not None and old.plans[i].kind not in REPLANNED:
                plans.append(old.plans[i])
                continue
            what = where(vs, rs, check)
            try:
                planned = plan(check, vs, rs, config.global_defs, config.vrrp_track_files)
                plans.append(secure_check(planned, config, what))
            except CheckConfigError as exc:
                problems.append(str(exc))
                continue
            for note in unsupported(check):
                log.warning("[%s] %s", what, note)
        wanted[key] = Wanted(vs, rs, tuple(plans))
    if problems:
        raise LoadBalancerError("\n".join(problems))
    return wanted


def checker_processes(config: Config, cpus: int | None = None) -> int:
    """How many health-check worker processes `config` asks for (0: none, in-process)."""
    configured = config.global_defs.checker_processes
    if configured is not None:
        return configured
    rate = sum(
        1.0 / check.delay_loop
        for vs in config.virtual_servers for rs in vs.real_servers for check in rs.checks
    )
    if not rate:
        return 0
    cpus = cpus or usable_cpus()
    return max(1, min(cpus, math.ceil(rate / CHECKS_PER_WORKER)))


def usable_cpus() -> int:
    """The CPUs this process may run on (systemd's CPUAffinity=, taskset), not the
    machine's: more workers than that would only take turns on the same ones."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1
