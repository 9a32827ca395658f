"""The SIGUSR1 dump as plain log lines (no Python reprs): one per instance, channel and
virtual server. Does no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _pairs(counts: Mapping[str, Any]) -> str:
    """`a=1 b=2`, in the given order; `none` when empty."""
    return " ".join(f"{k}={v}" for k, v in counts.items()) or "none"


def dump_lines(status: Mapping[str, Any]) -> list[str]:
    """What `hacluster.vrrp_status.status_dump` holds, as lines an operator reads in the log."""
    lines = []
    for name, inst in (status.get("instances") or {}).items():
        master = inst.get("master")
        if isinstance(master, Mapping):
            master = f"{master.get('address')} (priority {master.get('priority')})"
        text = (f"[{name}] {inst.get('state')} priority {inst.get('priority')}, "
                f"master {master or 'unknown'}")
        if inst.get("maintenance"):
            text += ", maintenance"
        if inst.get("faults"):
            text += ", faults: " + "; ".join(str(f) for f in inst["faults"])
        counters = {k: v for k, v in (inst.get("counters") or {}).items()
                    if isinstance(v, int) and not isinstance(v, bool)}
        for key in ("adverts_sent_on_wire", "adverts_accepted", "transitions"):
            if key in inst:
                counters[key] = inst[key]
        lines.append(f"{text}; counters: {_pairs(counters)}")
    for channel, counts in (status.get("transport") or {}).items():
        lines.append(f"transport {channel}: {_pairs(counts)}")
    lines.append(f"packets dropped: {_pairs(status.get('dropped') or {})}")
    if status.get("announce_errors"):
        lines.append(f"announce errors: {_pairs(status['announce_errors'])}")
    for tracked in status.get("tracked") or []:
        lines.append(f"tracked {tracked.get('kind')} {tracked.get('name')}: "
                     f"{'up' if tracked.get('up') else 'down'}"
                     + (f", value {tracked['value']}" if tracked.get("value") is not None
                        else ""))
    lines.append(f"reloads: {_pairs(status.get('reloads') or {})}")
    lb = status.get("load_balancer")
    if isinstance(lb, Mapping):
        for vs in lb.get("virtual_servers") or []:
            reals = vs.get("real_servers") or []
            up = sum(1 for r in reals if r.get("up"))
            down = ", ".join(f"{r.get('name')} ({r.get('reason')})" for r in reals
                             if not r.get("up"))
            lines.append(f"[{vs.get('name')}] {up}/{len(reals)} real servers up"
                         + (f"; down: {down}" if down else ""))
        if lb.get("dataplane_error"):
            lines.append(f"dataplane error: {lb['dataplane_error']}")
    return lines
