"""The load-balancing side of the daemon: health checks -> policy -> desired table -> dataplane.

`LoadBalancer` runs every configured check (through `healthchecks.Runner`), turns
health changes into the desired IPVS table (`hacluster.policy`), and keeps the
dataplane equal to it (`hacluster.ipvs.reconcile` against `Backend.dump()`):

- on every health change, coalesced: a burst of changes makes one reconcile, and it
  compares only the services that changed with the table as last read or written;
- periodically (`global_defs.reconcile_interval`), reading the whole table back, so a
  hand-typed `ipvsadm` or a dataplane restart is put right (an operation refused on a
  partial pass, a sign the table is not what we think, brings a full pass at once);
- at start, so a restart after a crash finds the table it left and duplicates nothing
  (with `lvs_flush` the first pass owns the whole table and removes anything else).

Real-server `notify_up`/`notify_down` are queued when a server's state changes, and
`quorum_up`/`quorum_down` when the policy reports them (the first evaluation of a
virtual server reports its initial quorum state), so a server's notification always
comes before the quorum change it causes. Backend errors are logged with the service
they concern and counted; they never stop the loop.

A reload (`reconfigure`) carries out the pure plan of `hacluster.reload_balancer`, built
from the one config diff: real servers are matched by (service, ip, port) and checks by
their runnable form (`hacluster.config.lower.CheckPlan`); what did not change keeps its
health, timers and rise/fall state, and an unchanged virtual server is not evaluated
again (no dataplane operation). A check that changed is replaced by a new one
that starts in the state the server is in (so nothing flaps), then the old one is
removed. `drain`/`undrain` is an operator override (weight 0, connections stay) kept
across reloads as long as the real server stays configured.

A module a job: checkers wrapped to measure them (`measured`), the running real servers
(`members`), a configuration made runnable (`prepare`), the shared state (`state`), real
servers and their checks (`health`), the policy (`evaluate`), the reconcile loop
(`reconciling`), reloads (`reload`), status (`status`), the component that ties them
together (`component`) and the dataplane a configuration names (`dataplane`).
"""

from hacluster.balancer import Handed, LoadBalancerError  # (light to import)
from hacluster.loadbalancer.component import DEFAULT_COALESCE, STOP_GRACE, LoadBalancer
from hacluster.loadbalancer.dataplane import backend_for, close_backend
from hacluster.loadbalancer.measured import LastResult
from hacluster.loadbalancer.prepare import (
    CHECKS_PER_WORKER,
    checker_processes,
    prepare,
    secure_check,
)
from hacluster.loadbalancer.status import STATUS_PIECE, servers_of
from healthchecks.result import result_label

__all__ = [
    "CHECKS_PER_WORKER",
    "DEFAULT_COALESCE",
    "STATUS_PIECE",
    "STOP_GRACE",
    "Handed",
    "LastResult",
    "LoadBalancer",
    "LoadBalancerError",
    "backend_for",
    "checker_processes",
    "close_backend",
    "prepare",
    "result_label",
    "secure_check",
    "servers_of",
]
