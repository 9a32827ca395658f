"""The daemon as the control API sees it: VRRP from its role, the rest from the balancer.

`DaemonController` (`hacluster.apitypes.Controller`) reads what the roles of a
composition root (`hacluster.daemon.Root`) report when a request comes, through their
`snapshot()`: the VRRP instances and counters, and the balancer's part. The
balancer builds its part of `GET /v1/status` itself, in slices, and hands it over as
bytes (`Balancer.snapshot`): here it is joined to the few lines of VRRP state and
counters without being decoded, so a poller of a daemon with 10,000 real servers costs
this process a copy, not a rebuild.
"""

from __future__ import annotations

import json
import socket
import time
from typing import TYPE_CHECKING, Any

from hacluster.apitypes import Status, UnknownInstance, UnknownVirtualServer

if TYPE_CHECKING:
    from hacluster.daemon import Root

#: What a VRRP role that is restarting shows.
_NO_VRRP: dict[str, Any] = {"instances": [], "transport": {}, "dropped": {}}


class DaemonController:
    """The daemon as the control API sees it (`hacluster.api.Controller`)."""

    def __init__(self, daemon: Root) -> None:
        self.daemon = daemon

    async def _vrrp(self) -> dict[str, Any]:
        """The VRRP instances and counters, from the role or from this process."""
        vrrp = self.daemon.vrrp
        return (None if vrrp is None else await vrrp.snapshot()) or _NO_VRRP

    async def summary(self) -> dict[str, Any]:
        """What `GET /v1/summary` shows, without building the whole status."""
        daemon = self.daemon
        instances = (await self._vrrp())["instances"]
        balancer = daemon.balancer
        g = daemon.config.global_defs
        lb: dict[str, Any] = {"virtual_servers": [], "dataplane_error": None}
        if balancer is not None:
            summary_of = getattr(balancer, "summary_of", None)
            if summary_of is not None:  # a role process: one request
                lb = await summary_of()
            else:
                lb = {"virtual_servers": balancer.summary(),  # type: ignore[union-attr]
                      "dataplane_error": balancer.dataplane_error}  # type: ignore[union-attr]
        return {
            "router_id": g.router_id or socket.gethostname(),
            "uptime_seconds": round(time.monotonic() - daemon.started_at, 3),
            "instances": [
                {"name": i["name"], "state": i["state"], "priority": i["effective_priority"],
                 "master": i["master"], "maintenance": i["maintenance"]}
                for i in instances
            ],
            "virtual_servers": lb["virtual_servers"],
            "dataplane_error": lb["dataplane_error"],
        }

    async def status_document(self) -> bytes:
        """`GET /v1/status` as JSON: VRRP and counters read now, the balancer's part as
        it handed it over (`status_age_seconds` old; `ipvs` is the table as reconcile
        last read it back, `ipvs_age_seconds` ago, and wrote it since)."""
        daemon = self.daemon
        balancer = daemon.balancer
        part = await balancer.snapshot() if balancer is not None else None
        vrrp = await self._vrrp()
        if part is None:
            status = dict(self._status(vrrp, None))
            del status["virtual_servers"]
            return json.dumps({**status, "virtual_servers": [], "ipvs": []}).encode()
        newline = part.index(b"\n")
        lb = json.loads(part[:newline])
        head = dict(self._status(vrrp, {**lb, "virtual_servers": []}))
        del head["virtual_servers"]
        now = time.monotonic()
        built_at, read_at = lb.get("built_at"), lb.get("table_read_at")
        tail = {
            "status_age_seconds": None if built_at is None else round(now - built_at, 3),
            "ipvs_age_seconds": None if read_at is None else round(now - read_at, 3),
        }
        # (a view, not a slice: the part is megabytes at 10,000 servers, and a slice
        # would be one more copy of it alive while the document is joined)
        return b"".join((json.dumps(head).encode()[:-1], b", ",
                         memoryview(part)[newline + 1:], b", ", json.dumps(tail).encode()[1:]))

    async def status(self) -> Status:
        """The whole status as a value (the balancer's part decoded: costly at scale;
        the API's /v1/status uses `status_document`)."""
        daemon = self.daemon
        balancer = daemon.balancer
        lb = await balancer.status(table=False) if balancer is not None else None
        return self._status(await self._vrrp(), lb)

    def _status(self, vrrp: dict[str, Any], lb: dict[str, Any] | None) -> Status:
        """Status from what the VRRP part and the balancer said (`vrrp`: its
        `snapshot()`; `lb`: its `virtual_servers`, `dataplane_error` and `counters`)."""
        from hacluster import __version__

        daemon = self.daemon
        g = daemon.config.global_defs
        counters: dict[str, Any] = {
            "transport": vrrp["transport"],
            "dropped": vrrp["dropped"],
            "reloads": dict(daemon.reloads),
        }
        restarts = daemon.role_restarts()
        if restarts:
            counters["role_restarts"] = restarts
        if lb is not None:
            counters["load_balancer"] = lb["counters"]
        options = daemon.options
        return Status(
            router_id=g.router_id or socket.gethostname(),
            version=__version__,
            dataplane=g.dataplane,
            uptime_seconds=round(time.monotonic() - daemon.started_at, 3),
            config_file=str(options.config_file) if options.config_file else None,
            instances=vrrp["instances"],
            virtual_servers=lb["virtual_servers"] if lb is not None else [],
            dataplane_error=lb["dataplane_error"] if lb is not None else None,
            counters=counters,
        )

    async def virtual_server(self, name: str) -> dict[str, Any]:
        """One virtual server's status row with its rows of the table."""
        balancer = self.daemon.balancer
        if balancer is None:
            raise UnknownVirtualServer(name)
        return await balancer.virtual_server(name)

    async def ipvs(self) -> dict[str, Any]:
        balancer = self.daemon.balancer
        return {"services": []} if balancer is None else await balancer.ipvs()

    async def recent_ipvs(self) -> dict[str, Any]:
        """The table as last listed (at most about a second old), for the status page."""
        balancer = self.daemon.balancer
        return {"services": []} if balancer is None else await balancer.recent_ipvs()

    async def drain(self, virtual_server: str, real_server: str) -> None:
        await self._drain(virtual_server, real_server, True)

    async def undrain(self, virtual_server: str, real_server: str) -> None:
        await self._drain(virtual_server, real_server, False)

    async def _drain(self, virtual_server: str, real_server: str, on: bool) -> None:
        balancer = self.daemon.balancer
        if balancer is None:
            raise UnknownVirtualServer(virtual_server)
        await balancer.drain(virtual_server, real_server, on)
        self.daemon.changed()

    async def maintenance(self, instance: str, on: bool) -> None:
        if not await self.daemon.set_maintenance(instance, on):
            raise UnknownInstance(instance)

    async def reload(self) -> tuple[bool, str]:
        return await self.daemon.reload()

    def prepare_status(self) -> None:
        """Have the first status snapshot built now, in the background."""
        balancer = self.daemon.balancer
        if balancer is not None:
            balancer.prepare_status()
