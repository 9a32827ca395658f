"""The dataplane a configuration names, opened and closed for a load balancer."""

from __future__ import annotations

import logging

from hacluster.config.model import Config
from hacluster.ipvs.backend import Backend
from hacluster.ipvs.dataplane import from_dataplane, open_backend


def backend_for(config: Config, *, netns: str | None = None) -> Backend | None:
    """The dataplane `global_defs.dataplane` names (None for `none`).

    Raises `hacluster.ipvs.backend.BackendUnavailable` with advice when it cannot run
    here (e.g. no IPVS in the kernel: use `dataplane: nftables`).
    """
    name = from_dataplane(config.global_defs.dataplane)
    return None if name is None else open_backend(name, netns=netns)


async def close_backend(backend: Backend, logger: logging.Logger) -> None:
    """Close a dataplane `backend_for` opened; a failure is logged to `logger`, not raised."""
    try:
        await backend.close()
    except Exception as exc:
        logger.error("closing the dataplane failed: %s", exc)
