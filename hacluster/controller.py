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

import asyncio
import json
import socket
import time
from typing import TYPE_CHECKING, Any

from hacluster.apitypes import Status, UnknownInstance, UnknownVirtualServer

if TYPE_CHECKING:
    from hacluster.daemon import Root

#: What a VRRP role that never answered shows.
_NO_VRRP: dict[str, Any] = {"instances": [], "transport": {}, "dropped": {}}
#: How long a status request waits for the VRRP role's part (within the 10 s a client
#: such as `hacluster status` waits by default, as the balancer's wait is).
VRRP_TIMEOUT = 5.0
#: How long the VRRP role's latest part is kept to be shown, marked stale with its age,
#: while the role does not answer in time (busy) or restarts.
VRRP_KEEP = 300.0


class DaemonController:
    """The daemon as the control API sees it (`hacluster.api.Controller`)."""

    def __init__(self, daemon: Root) -> None:
        self.daemon = daemon
        self._vrrp_seen: tuple[float, dict[str, Any]] | None = None  # (when, the part)

    async def _vrrp(self) -> dict[str, Any]:
        """The VRRP instances and counters, from the role or from this process."""
        return (await self._vrrp_part())[0]

    async def _vrrp_part(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The VRRP instances and counters, and what is missing from them and why (None:
        nothing): a role that does not answer in time shows its latest part, with its
        age, as long as `VRRP_KEEP`; one that never answered shows none."""
        from hacluster.roles.channel import RoleError, RoleGone
        from hacluster.roles.vrrp import VrrpRole

        role = self.daemon.vrrp
        if role is None:
            return _NO_VRRP, None
        if not isinstance(role, VrrpRole):  # in this process (--single-process)
            return (await role.snapshot()) or _NO_VRRP, None
        try:
            value = await role.call("status", timeout=VRRP_TIMEOUT)
        except TimeoutError:
            reason = f"the VRRP role did not answer within {VRRP_TIMEOUT:g} s (busy)"
        except RoleGone:
            reason = (f"the VRRP role is restarting (restart {role.restarts})" if role.restarts
                      else "the VRRP role is starting")
        except RoleError as exc:
            reason = f"the VRRP role could not give its status: {exc}"
        else:
            if isinstance(value, dict):
                self._vrrp_seen = (time.monotonic(), value)
                return value, None
            reason = "the VRRP role gave no status"
        seen, now = self._vrrp_seen, time.monotonic()
        if seen is None or now - seen[0] > VRRP_KEEP:
            self._vrrp_seen = None
            return _NO_VRRP, {"part": "vrrp", "reason": reason, "age_seconds": None}
        return seen[1], {"part": "vrrp", "reason": reason, "age_seconds": round(now - seen[0], 3)}

    async def summary(self) -> dict[str, Any]:
        """What `GET /v1/summary` shows, without building the whole status."""
        daemon = self.daemon
        vrrp, vrrp_missing = await self._vrrp_part()
        instances = vrrp["instances"]
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
            **_missing(vrrp_missing, lb.get("missing")),
        }

    async def status_document(self) -> bytes:
        """`GET /v1/status` as JSON: VRRP and counters read now, the balancer's part as
        it handed it over (`status_age_seconds` old; `ipvs` is the table as reconcile
        last read it back, `ipvs_age_seconds` ago, and wrote it since)."""
        daemon = self.daemon
        balancer = daemon.balancer
        # Both asked at once: the answer waits for the slower, never for their sum.
        (vrrp, vrrp_missing), part = await asyncio.gather(
            self._vrrp_part(), _none() if balancer is None else balancer.snapshot())
        if part is None:
            status = dict(self._status(vrrp, None))
            del status["virtual_servers"]
            return json.dumps({**status, **_missing(vrrp_missing, None),
                               "virtual_servers": [], "ipvs": []}).encode()
        newline = part.index(b"\n")
        lb = json.loads(part[:newline])
        head = dict(self._status(vrrp, {**lb, "virtual_servers": []}))
        head.update(_missing(vrrp_missing, lb.get("missing")))
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
        vrrp, vrrp_missing = await self._vrrp_part()
        status = self._status(vrrp, lb)
        lb_missing = None
        if balancer is not None and lb is None:
            lb_missing = {"reason": "the balancer did not answer", "age_seconds": None}
        missing = _missing(vrrp_missing, lb_missing)
        if missing:
            status["missing"] = missing["missing"]
        return status

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


def _missing(vrrp: dict[str, Any] | None, balancer: Any) -> dict[str, Any]:
    """`{"missing": [...]}`: each part of the status shown from an older copy
    (`age_seconds`) or not at all (None), and why; nothing when every part is fresh."""
    out = [] if vrrp is None else [vrrp]
    if isinstance(balancer, dict):
        out.append({"part": "balancer", "reason": str(balancer.get("reason")),
                    "age_seconds": balancer.get("age_seconds")})
    return {"missing": out} if out else {}


async def _none() -> None:
    return None
