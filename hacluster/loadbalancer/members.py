"""The running real servers of a load balancer: their checks, and those a configuration wants."""

from __future__ import annotations

from dataclasses import dataclass, field

from hacluster.config.lower import CheckPlan
from hacluster.config.model import RealServer, VirtualServer
from hacluster.ipvs.model import DestKey
from hacluster.loadbalancer.measured import Measured
from hacluster.policy import HealthKey


@dataclass(slots=True, eq=False)
class Check:
    """One running check of a real server: its runner id, its plan, its measured checker."""

    check_id: str
    plan: CheckPlan
    checker: Measured


@dataclass(slots=True, eq=False)
class Real:
    """One running real server: its configuration, its checks and its state now."""

    vs: VirtualServer
    rs: RealServer
    key: HealthKey
    plans: tuple[CheckPlan, ...]
    checks: list[Check] = field(default_factory=list)
    up: bool = True
    reason: str = "no checks"
    since: float = 0.0
    name: str = ""  # as the API names it (str(rs)), computed once

    def __post_init__(self) -> None:
        self.name = str(self.rs)


@dataclass(frozen=True, slots=True)
class Wanted:
    """One real server of a configuration, ready to run."""

    vs: VirtualServer
    rs: RealServer
    plans: tuple[CheckPlan, ...]


def dest_key(vs: VirtualServer, rs: RealServer) -> DestKey:
    port = rs.port if rs.port or vs.fwmark is not None else (vs.port or 0)
    return DestKey(rs.ip, port)
