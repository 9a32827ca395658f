"""Health and configuration -> the desired entries, quorum changes and their notifications."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from hacluster.config.model import Config, VirtualServer
from hacluster.ipvs.model import Destination, DestKey, ServiceEntry, ServiceKey
from hacluster.loadbalancer.health import HealthPart
from hacluster.loadbalancer.members import dest_key
from hacluster.policy import (
    Conflict,
    PolicyEvent,
    QuorumDown,
    QuorumUp,
    RealServerDown,
    evaluate_one,
    service_of,
)

log = logging.getLogger("hacluster.loadbalancer")


class PolicyPart(HealthPart):
    """The policy (`hacluster.policy`) evaluated for the services that changed: desired
    entries (drains applied), quorum, and what its events call for."""

    def _service_map(self, config: Config) -> dict[ServiceKey, VirtualServer]:
        servers: dict[ServiceKey, VirtualServer] = {}
        for vs in config.virtual_servers:
            key = service_of(vs).key
            first = servers.setdefault(key, vs)
            if first is not vs:
                message = f"{vs}: the same IPVS service as {first}; the later one is ignored"
                if message not in self._conflicts:
                    self._conflicts.add(message)
                    log.warning("[%s] %s", key, message)
        return servers

    def _evaluate(self, keys: Iterable[ServiceKey]) -> None:
        """Evaluate the policy again for these services: desired entries, quorum, events."""
        for skey in keys:
            vs = self._servers.get(skey)
            if vs is None:
                self._entries.pop(skey, None)
                continue
            service, dests, up, events = evaluate_one(vs, self._health, self._quorum.get(skey))
            self._quorum[skey] = up
            drained = {
                dest_key(vs, real.rs)
                for real in self._members.get(skey, [])
                if real.key in self._drained
            }
            by_key: dict[DestKey, Destination] = {}
            for dest in dests:
                if dest.weight and dest.key in drained:
                    dest = Destination(dest.address, dest.port, 0, dest.forward,
                                       dest.u_threshold, dest.l_threshold)
                by_key[dest.key] = dest
            self._entries[skey] = ServiceEntry(service, by_key)
            self._handle_events(events, "health")

    def _handle_events(self, events: Sequence[PolicyEvent], why: str) -> None:
        for event in events:
            match event:
                case QuorumUp() | QuorumDown():
                    vs = self._servers.get(event.service)
                    if vs is None:
                        continue
                    up = isinstance(event, QuorumUp)
                    reason = f"weight {event.weight_sum}, threshold {event.threshold}"
                    self.counters["quorum_up" if up else "quorum_down"] += 1
                    log.log(
                        logging.INFO if up else logging.WARNING,
                        "[%s] quorum %s (%s)", vs, "UP" if up else "DOWN", reason,
                    )
                    if self._notifier is not None:
                        try:
                            self._notifier.quorum(
                                vs, up, reason, weight_sum=event.weight_sum,
                                threshold=event.threshold,
                            )
                        except Exception:
                            log.exception("[%s] quorum notify failed", vs)
                case RealServerDown():
                    real = self._reals.get((event.service, event.server))
                    if real is not None and real.up:
                        self._notify_real(real, False, why)
                case Conflict():
                    if event.message not in self._conflicts:
                        self._conflicts.add(event.message)
                        log.warning("[%s] %s", event.service, event.message)
