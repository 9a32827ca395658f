"""`hacluster status`: the daemon's VRRP instances and real servers, from its control socket."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from hacluster.commands.daemon_client import add_target_arguments, get, target_of


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be within [0.1, 3600]: {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Show the running daemon's VRRP states, real servers and weights; with --watch, "
        "again every few seconds until interrupted. Against the local control socket, or "
        "a remote director with --api."
    )
    parser.add_argument("--json", action="store_true", help="the daemon's answer as JSON")
    parser.add_argument(
        "-w", "--watch", nargs="?", type=_interval, const=2.0, default=None,
        metavar="SECONDS", help="show it again every SECONDS (2) until Ctrl-C",
    )
    parser.add_argument(
        "--count", type=int, default=None, metavar="N",
        help="with --watch: stop after N times",
    )
    add_target_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.watch is None:
        return _once(args)
    shown = 0
    clear = sys.stdout.isatty()
    try:
        while args.count is None or shown < args.count:
            if shown:
                time.sleep(args.watch)
            if clear:
                sys.stdout.write("\x1b[H\x1b[2J")
            elif shown:
                sys.stdout.write("\n")
            stamp = time.strftime("%Y-%m-%d %H:%M:%S%z")
            sys.stdout.write(f"Every {args.watch:g}s: hacluster status    {stamp}\n\n")
            _once(args)
            sys.stdout.flush()
            shown += 1
    except KeyboardInterrupt:
        return 0
    return 0


def _once(args: argparse.Namespace) -> int:
    ok, data = get("hacluster status", target_of(args), "/v1/status", args.timeout)
    if not ok:
        return 1
    if not isinstance(data, dict):
        print(f"hacluster status: the daemon answered HTTP 200: {data}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    try:
        text = render(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        print(f"hacluster status: unexpected answer from the daemon ({exc!r}); try --json",
              file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


# --------------------------------------------------------------------------- rendering


def age(seconds: Any) -> str:
    """A short human duration: 4s, 2m13s, 3h07m, 5d02h."""
    if not isinstance(seconds, int | float) or seconds < 0:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "  ") -> str:
    """Left-aligned columns, two spaces apart; the last column is not padded."""
    cells = [list(header)] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    out = []
    for row in cells:
        parts = [c.ljust(w) for c, w in zip(row[:-1], widths[:-1], strict=True)] + [row[-1]]
        out.append(indent + "  ".join(parts).rstrip() + "\n")
    return "".join(out)


def _check_text(checks: Sequence[Mapping[str, Any]]) -> str:
    if not checks:
        return "no checks (always up)"
    texts = []
    for check in checks:
        reason = check.get("reason") or ("ok" if check.get("ok") else "failed")
        text = f"{check.get('checker', '?')}: {reason}"
        extra = []
        duration = check.get("duration_seconds")
        if isinstance(duration, int | float):
            extra.append(f"{duration * 1000:.0f} ms")
        if check.get("age_seconds") is None:
            extra.append("not run yet")
        else:
            extra.append(f"{age(check.get('age_seconds'))} ago")
        texts.append(f"{text} ({', '.join(extra)})")
    return "; ".join(texts)


#: The parts of the status a role gives, as `missing` names them, and their sections.
_PARTS = {"vrrp": "VRRP instances", "balancer": "Virtual servers"}


def _missing_text(note: Mapping[str, Any]) -> str:
    seconds = note.get("age_seconds")
    shown = "not shown" if seconds is None else f"shown as they were {age(seconds)} ago"
    return f"{shown}, {note.get('reason') or 'no answer'}"


def _as_of(note: Mapping[str, Any] | None) -> str:
    if note is None:
        return ""
    seconds = note.get("age_seconds")
    return " (not known now)" if seconds is None else f" (as of {age(seconds)} ago, STALE)"


def render(status: Mapping[str, Any]) -> str:
    """The status document as the tables `hacluster status` prints."""
    out = []
    head = f"hacluster {status.get('version') or ''}".rstrip()
    head += f" on {status.get('router_id') or '?'}, up {age(status.get('uptime_seconds'))}"
    head += f", dataplane {status.get('dataplane') or '?'}"
    if status.get("config_file"):
        head += f", config {status['config_file']}"
    out.append(head + "\n\n")
    missing = {str(m.get("part")): m for m in status.get("missing") or [] if isinstance(m, dict)}
    for part, title in _PARTS.items():
        if part in missing:
            out.append(f"{title}: {_missing_text(missing[part])}\n")
    if missing:
        out.append("\n")

    instances = status.get("instances") or []
    out.append("VRRP instances" + _as_of(missing.get("vrrp")) + "\n")
    if not instances:
        out.append("  (not known)\n" if "vrrp" in missing else "  (none)\n")
    else:
        rows = []
        for inst in instances:
            last = inst.get("last_transition") or {}
            notes = []
            if inst.get("maintenance"):
                notes.append("maintenance")
            if inst.get("sync_group"):
                notes.append(f"group {inst['sync_group']}")
            if inst.get("faults"):
                notes.append("faults: " + ", ".join(str(f) for f in inst["faults"]))
            master = inst.get("master")
            if isinstance(master, dict):  # {"address": ..., "priority": ...}
                master = master.get("address")
            rows.append([
                inst.get("name"), inst.get("state"), inst.get("effective_priority"),
                inst.get("base_priority"), inst.get("interface"), inst.get("virtual_router_id"),
                master, age(last.get("age_seconds")) if last else None,
                last.get("reason") if last else None, ", ".join(notes),
            ])
        out.append(table(["NAME", "STATE", "PRIO", "BASE", "INTERFACE", "VRID", "MASTER",
                          "SINCE", "REASON", "NOTES"], rows))

    servers = status.get("virtual_servers") or []
    out.append("\nVirtual servers" + _as_of(missing.get("balancer")) + "\n")
    if not servers:
        out.append("  (not known)\n" if "balancer" in missing else "  (none)\n")
    for vs in servers:
        reals = vs.get("real_servers") or []
        up = sum(1 for rs in reals if rs.get("up"))
        line = f"  {vs.get('name')}  {vs.get('lb_algo') or '-'} {vs.get('lb_kind') or '-'}"
        line += f"  {up}/{len(reals)} up"
        quorum = vs.get("quorum")
        if quorum is not None:
            line += f"  quorum {quorum} {'met' if vs.get('quorum_up') else 'LOST'}"
        if vs.get("sorry_server_active"):
            line += f"  sorry server {vs.get('sorry_server')} ACTIVE"
        out.append(line + "\n")
        if reals:
            rows = []
            for rs in reals:
                state = "up" if rs.get("up") else "DOWN"
                if rs.get("drained"):
                    state += ",drained"
                rows.append([rs.get("name"), state, rs.get("weight"),
                             rs.get("effective_weight"), _check_text(rs.get("checks") or [])])
            out.append(table(["REAL SERVER", "STATE", "WEIGHT", "NOW", "LAST CHECK"], rows,
                             indent="    "))
    if status.get("dataplane_error"):
        out.append(f"\nDataplane unavailable: {status['dataplane_error']}\n")
    if status.get("ipvs_error"):
        out.append(f"\nIPVS table unavailable: {status['ipvs_error']}\n")
    return "".join(out)
