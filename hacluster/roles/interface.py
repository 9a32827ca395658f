"""The interface every role has: `start`, `reconfigure(config)`, `stop`, `snapshot`.

Four parts offer it: the VRRP part in this process (`hacluster.vrrp_part.VrrpPart`)
and its role process's handle (`hacluster.roles.vrrp.VrrpRole`), the balancer in this
process (`hacluster.balancer.Balancer`) and its role process's handle
(`hacluster.roles.balancer.BalancerRole`). The composition roots (`hacluster.daemon`)
and the reload coordinator (`hacluster.reload_coordinator`) drive them through it
alone, whether a part runs here or in a process of its own:

- `start()` runs the part (or waits until its process runs it); `RoleFailed` says why
  it cannot;
- `reconfigure(config)` switches to a new configuration by difference: (taken, what it
  did) or (False, why it refused, having changed nothing);
- `stop()` stops it gracefully (VRRP masters resign, the dataplane is flushed as the
  configuration says);
- `snapshot()` is what it shows the control API now: the VRRP instances and counters,
  or the balancer's part of the status (bytes, built in slices).

Imports nothing beyond typing: the VRRP role's start path imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from hacluster.config.model import Config

S_co = TypeVar("S_co", covariant=True)

#: What a reconfiguration says: (taken, what it did) or (False, why it was refused).
Outcome = tuple[bool, str]


class RoleFailed(Exception):
    """A role cannot run its configuration here (a missing interface, a dataplane that
    is not there...); the message says why."""


@runtime_checkable
class Role(Protocol[S_co]):
    """A role as its composition root and the reload coordinator drive it."""

    async def start(self) -> None:
        """Run (RoleFailed: it cannot)."""

    async def reconfigure(self, config: Config) -> Outcome:
        """Switch to `config` by difference; (False, why) changes nothing."""

    async def stop(self) -> None:
        """Stop gracefully."""

    async def snapshot(self) -> S_co:
        """What the control API shows of it now."""
